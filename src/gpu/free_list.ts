/**
 * The idle resources of one size class of a pool, handed out oldest first.
 *
 * A plain stack hands out whatever was released last, so the same sequence of allocations in two
 * training steps gets different buffers whenever the releases of the step before came in another
 * order (autograd frees intermediates as it goes). Kernels then see new buffer combinations and
 * need new bind groups (~17 µs each to create in Deno, 70–180 per CTM bench step). Handing out by
 * creation order makes the assignment depend only on which resources are idle, not on the order
 * they came back, so a step that repeats the previous one reuses its bind groups.
 */
export class FreeList<T> {
  // Sorted by descending creation number: pop() takes the oldest.
  #items: T[] = [];
  #nums: number[] = [];

  /** Idle resources held. */
  get length(): number {
    return this.#items.length;
  }

  /** Adds `item`, created as number `num` (unique per pool, increasing with creation). */
  push(item: T, num: number): void {
    const n = this.#nums;
    let lo = 0, hi = n.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (n[mid] > num) lo = mid + 1;
      else hi = mid;
    }
    n.splice(lo, 0, num);
    this.#items.splice(lo, 0, item);
  }

  /** Removes and returns the oldest idle resource, or undefined when empty. */
  pop(): T | undefined {
    this.#nums.pop();
    return this.#items.pop();
  }

  /** Removes and returns every idle resource. */
  drain(): T[] {
    const all = this.#items;
    this.#items = [];
    this.#nums = [];
    return all;
  }
}
