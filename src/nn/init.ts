/**
 * Seeded parameter initialisation on the host (PyTorch's default schemes), uploaded to the GPU.
 *
 * All initialisers draw from one process-wide {@link Rng} unless given their own, so a model built
 * after {@link seedInit} is identical from run to run. Values are drawn in row-major order.
 */
import { recorder } from "../gpu/recorder.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import { Rng } from "../util/rng.ts";

let globalRng = new Rng(0);

/** Reseeds the process-wide initialisation generator (default seed 0). */
export function seedInit(seed: number): void {
  globalRng = new Rng(seed);
}

/** The process-wide initialisation generator (shared by every module that was given no `rng`). */
export function initRng(): Rng {
  return globalRng;
}

/** Number of elements of a shape. */
function count(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Fan-in and fan-out of a weight shape, as PyTorch computes them: dim 1 × receptive field and
 * dim 0 × receptive field (receptive field = product of dims 2…).
 */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fans: need at least 2 dims, got [${shape.join(", ")}]`);
  const rf = count(shape.slice(2));
  return { fanIn: shape[1] * rf, fanOut: shape[0] * rf };
}

/** Writes host values into a contiguous f32 tensor (ordered with recorded work). */
function upload(t: Tensor, data: Float32Array): Tensor {
  if (t.dtype !== "f32") throw new Error(`init: needs an f32 tensor, got ${t.dtype}`);
  if (!t.isContiguous) throw new Error("init: needs a contiguous tensor");
  recorder().upload(t.buffer, t.offset * 4, data);
  return t;
}

/** Host array of `n` draws from U(lo, hi). */
export function uniformData(n: number, lo: number, hi: number, rng: Rng = globalRng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

/** Host array of `n` draws from N(mean, std²). */
export function normalData(n: number, mean: number, std: number, rng: Rng = globalRng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = mean + std * rng.normal();
  return a;
}

/** Fills `t` in place with U(lo, hi); returns `t`. */
export function uniform_(t: Tensor, lo: number, hi: number, rng: Rng = globalRng): Tensor {
  return upload(t, uniformData(t.size, lo, hi, rng));
}

/** Fills `t` in place with N(mean, std²); returns `t`. */
export function normal_(t: Tensor, mean = 0, std = 1, rng: Rng = globalRng): Tensor {
  return upload(t, normalData(t.size, mean, std, rng));
}

/** Fills `t` in place with a constant; returns `t`. */
export function constant_(t: Tensor, value: number): Tensor {
  return upload(t, new Float32Array(t.size).fill(value));
}

/** Xavier/Glorot uniform: U(±gain·√(6 / (fanIn + fanOut))); returns `t`. */
export function xavierUniform_(t: Tensor, gain = 1, rng: Rng = globalRng): Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const b = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -b, b, rng);
}

/** PyTorch's Linear/Conv default: U(±1/√fanIn) (kaiming-uniform with a = √5); returns `t`. */
export function defaultLinearInit_(t: Tensor, fanIn: number, rng: Rng = globalRng): Tensor {
  const b = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform_(t, -b, b, rng);
}

/** A new f32 tensor drawn from U(lo, hi). */
export function uniformTensor(shape: Shape, lo: number, hi: number, rng: Rng = globalRng): Tensor {
  return uniform_(Tensor.empty(shape), lo, hi, rng);
}

/** A new f32 tensor drawn from N(mean, std²). */
export function normalTensor(shape: Shape, mean = 0, std = 1, rng: Rng = globalRng): Tensor {
  return normal_(Tensor.empty(shape), mean, std, rng);
}

/** A new f32 tensor filled with `value`. */
export function constantTensor(shape: Shape, value: number): Tensor {
  return constant_(Tensor.empty(shape), value);
}
