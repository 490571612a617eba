/**
 * Parity data: random ±1 sequences and their cumulative parity (1 where the number of −1 so far
 * is odd), generated on the host from a seeded generator so that a batch depends only on
 * (seed, step) and a resumed run sees the same data.
 */
import { Rng } from "../../src/util/rng.ts";

/** One batch on the host: `x` `[B, L]` of ±1 and `y` `[B, L]` of 0/1. */
export interface ParityBatch {
  /** Inputs, row-major `[B, L]`. */
  x: Float32Array;
  /** Cumulative parity targets, row-major `[B, L]`. */
  y: Int32Array;
  /** Batch size. */
  batch: number;
  /** Sequence length. */
  length: number;
}

/** Throws unless `length` is a positive perfect square (the reference shows sequences as a grid). */
export function checkParityLength(length: number): void {
  const r = Math.round(Math.sqrt(length));
  if (!Number.isInteger(length) || length < 1 || r * r !== length) {
    throw new Error(`parity sequence length must be a perfect square (4, 16, 64, …), got ${length}`);
  }
}

/** Cumulative parity of a ±1 sequence. */
export function cumulativeParity(x: ArrayLike<number>): Int32Array {
  const y = new Int32Array(x.length);
  let odd = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] === -1) odd ^= 1;
    y[i] = odd;
  }
  return y;
}

/** A batch drawn from `rng`. */
export function parityBatch(rng: Rng, batch: number, length: number): ParityBatch {
  checkParityLength(length);
  const x = new Float32Array(batch * length);
  const y = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const row = x.subarray(b * length, (b + 1) * length);
    for (let i = 0; i < length; i++) row[i] = rng.next() < 0.5 ? -1 : 1;
    y.set(cumulativeParity(row), b * length);
  }
  return { x, y, batch, length };
}

/** The batch of training step `step` for run seed `seed` (independent of what came before). */
export function parityBatchAt(
  seed: number,
  step: number,
  batch: number,
  length: number,
  stream = 0,
): ParityBatch {
  const rng = new Rng(
    (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca77) ^
      Math.imul(stream + 1, 0xc2b2ae3d)) >>> 0,
  );
  return parityBatch(rng, batch, length);
}
