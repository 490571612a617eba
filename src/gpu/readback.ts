/**
 * Non-blocking reads of GPU results: a queue that keeps several reads in flight (each `mapAsync`
 * costs ≥ 10 ms in Deno, but in-flight reads overlap) and hands values to callbacks in order.
 */
import type { HostArray, Tensor } from "../tensor/tensor.ts";

/**
 * Reads tensors back without stalling recorded work. `push` starts a read and returns at once
 * unless `maxInFlight` reads are already pending, in which case it waits for the oldest.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, ReadQueue } from "./mod.ts";
 * await initGpu();
 * const q = new ReadQueue(4);
 * await q.push(fromArray([0.5]), (v) => console.log("loss", v[0]));
 * await q.drain();
 * ```
 */
export class ReadQueue {
  #pending: Promise<void>[] = [];

  /**
   * Creates a queue.
   * @param maxInFlight reads allowed in flight before `push` waits for the oldest.
   */
  constructor(readonly maxInFlight = 4) {}

  /** Number of reads in flight. */
  get inFlight(): number {
    return this.#pending.length;
  }

  /**
   * Starts reading `t` and calls `onValue` with its data when it arrives. Takes ownership of `t`
   * (disposes it after the read).
   */
  async push(t: Tensor, onValue: (data: HostArray) => void): Promise<void> {
    const p = t.toArray().then((d) => {
      t.dispose();
      onValue(d);
    });
    this.#pending.push(p);
    p.finally(() => {
      const i = this.#pending.indexOf(p);
      if (i >= 0) this.#pending.splice(i, 1);
    }).catch(() => {});
    while (this.#pending.length > this.maxInFlight) await this.#pending[0];
  }

  /** Waits for every read in flight. */
  async drain(): Promise<void> {
    while (this.#pending.length) await this.#pending[0];
  }
}
