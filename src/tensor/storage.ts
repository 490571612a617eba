/**
 * Reference-counted device memory shared by a tensor and its views.
 *
 * A storage goes back to the buffer pool when its last handle is released: tensors, views and
 * tensors saved for backward each hold one reference.
 */
import { BufferPool, type PoolStats } from "../gpu/buffer_pool.ts";
import { gpu } from "../gpu/device.ts";
import { clearBindGroupCache } from "../gpu/kernel.ts";

let pool: BufferPool | null = null;

function thePool(): BufferPool {
  return pool ??= new BufferPool(gpu().device);
}

/** Counters of the process-wide buffer pool. */
export function memoryStats(): PoolStats {
  return thePool().stats();
}

/** Destroys idle pooled buffers, giving their memory back to the device. */
export function trimMemory(): void {
  thePool().trim();
  clearBindGroupCache();
}

/** Device memory with a reference count. */
export class Storage {
  /** The buffer; valid while `refs > 0`. */
  readonly buffer: GPUBuffer;
  /** Requested size in bytes (the buffer may be larger). */
  readonly bytes: number;
  #refs = 1;

  /** Takes a pooled buffer of at least `bytes` bytes. */
  constructor(bytes: number) {
    this.bytes = bytes;
    this.buffer = thePool().acquire(Math.max(bytes, 4));
  }

  /** Number of live handles. */
  get refs(): number {
    return this.#refs;
  }

  /** Adds a handle. */
  retain(): void {
    if (this.#refs <= 0) throw new Error("internal: retain of freed storage");
    this.#refs++;
  }

  /** Drops a handle; the memory returns to the pool with the last one. */
  release(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs === 0) thePool().release(this.buffer);
  }
}
