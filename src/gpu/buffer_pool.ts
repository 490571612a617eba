/**
 * A pool of storage buffers in size classes (four per octave, so at most ~19 % slack).
 *
 * Buffers released to the pool are reused by later allocations of the same class. Reuse is safe
 * without any host sync because every use of a buffer is recorded, in order, into the same queue:
 * a later kernel that writes a recycled buffer runs after the earlier kernels that read it.
 */
import { FreeList } from "./free_list.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const MIN_BYTES = 256;

/** Rounds a byte size up to its size class. */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 4;
  return Math.ceil(bytes / step) * step;
}

/** Counters describing the pool, for tests and memory benches. */
export interface PoolStats {
  /** Bytes of buffers currently handed out. */
  liveBytes: number;
  /** Number of buffers currently handed out. */
  liveBuffers: number;
  /** Bytes held idle in the pool. */
  freeBytes: number;
  /** Bytes ever created on the device and not destroyed. */
  totalBytes: number;
}

/** Size-class buffer pool over one device. */
export class BufferPool {
  #free = new Map<number, FreeList<GPUBuffer>>();
  #nums = new WeakMap<GPUBuffer, number>();
  #created = 0;
  #live = 0;
  #liveBytes = 0;
  #freeBytes = 0;
  #total = 0;

  /** Creates an empty pool on `device`. */
  constructor(private device: GPUDevice) {}

  /** Hands out a buffer of at least `bytes` bytes (contents undefined). */
  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    let buf = list?.pop();
    if (buf) this.#freeBytes -= size;
    else {
      buf = this.device.createBuffer({ size, usage: USAGE });
      this.#nums.set(buf, this.#created++);
      this.#total += size;
    }
    this.#live++;
    this.#liveBytes += size;
    return buf;
  }

  /** Returns a buffer obtained from {@link acquire} to the pool. */
  release(buf: GPUBuffer): void {
    const size = buf.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = new FreeList());
    list.push(buf, this.#nums.get(buf) ?? -1);
    this.#live--;
    this.#liveBytes -= size;
    this.#freeBytes += size;
  }

  /** Destroys every idle buffer (the live ones are untouched). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list.drain()) {
        this.#total -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
    this.#freeBytes = 0;
  }

  /** Current counters. */
  stats(): PoolStats {
    return {
      liveBytes: this.#liveBytes,
      liveBuffers: this.#live,
      freeBytes: this.#freeBytes,
      totalBytes: this.#total,
    };
  }
}
