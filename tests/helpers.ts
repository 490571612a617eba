/**
 * Test helpers: GPU setup, a float64 reference toolkit, closeness asserts, and `gradcheck`, which
 * compares the engine's backward with central finite differences of a float64 reference forward.
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { Rng } from "../src/util/rng.ts";

export { Rng };

/** Throws unless `f` throws an error whose text contains `text`. */
export function expectThrow(f: () => unknown, text: string): void {
  try {
    f();
  } catch (e) {
    if (String(e).includes(text)) return;
    throw new Error(`expected '${text}', got ${e}`);
  }
  throw new Error(`expected an error containing '${text}'`);
}

/** A kept 1-D f32 leaf that requires grad. */
export function param(data: ArrayLike<number>): Tensor {
  return keep(fromArray(Float32Array.from(data)).requireGrad());
}

/** Replaces `p.grad` with a kept tensor of `g` in `p`'s shape. */
export function setGrad(p: Tensor, g: ArrayLike<number>): void {
  p.grad?.dispose();
  p.grad = keep(fromArray(Float32Array.from(g), p.shape));
}

/** Registers a GPU test (WebGPU's async ops are exempt from Deno's leak sanitizers). */
export function gpuTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      await initGpu();
      await fn();
    },
  });
}

/** A float64 host tensor for references. */
export interface Ref {
  shape: number[];
  data: Float64Array;
}

/** Number of elements of a shape. */
export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Random float64 data in [lo, hi). */
export function randRef(rng: Rng, shape: number[], lo = -1, hi = 1): Ref {
  return { shape, data: rng.uniformArray(size(shape), lo, hi) };
}

/** Uploads a reference tensor (as f32). */
export function toGpu(r: Ref, requiresGrad = false): Tensor {
  const t = fromArray(Float32Array.from(r.data), r.shape);
  return requiresGrad ? t.requireGrad() : t;
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Broadcast shape (float64 reference side). */
export function bshape(...shapes: number[][]): number[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out = new Array(r).fill(1);
  for (const s of shapes) {
    s.forEach((d, i) => {
      const o = r - s.length + i;
      if (d !== 1) out[o] = d;
    });
  }
  return out;
}

/** Elementwise op over broadcast inputs in float64. */
export function refMap(inputs: Ref[], f: (...v: number[]) => number): Ref {
  const shape = bshape(...inputs.map((x) => x.shape));
  const n = size(shape);
  const out = new Float64Array(n);
  const ost = stridesOf(shape);
  const ist = inputs.map((x) => {
    const st = stridesOf(x.shape);
    return shape.map((_, o) => {
      const k = o - (shape.length - x.shape.length);
      return k < 0 || x.shape[k] === 1 ? 0 : st[k];
    });
  });
  const vals = new Array(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inputs.length; j++) {
      let off = 0;
      let r = i;
      for (let d = 0; d < shape.length; d++) {
        const c = Math.floor(r / ost[d]);
        r -= c * ost[d];
        off += c * ist[j][d];
      }
      vals[j] = inputs[j].data[off];
    }
    out[i] = f(...vals);
  }
  return { shape, data: out };
}

/** Sum or other reduction of a reference along axes (keepDim layout dropped unless asked). */
export function refReduce(
  x: Ref,
  axes: number[],
  f: (vals: number[]) => number,
  keepDim = false,
): Ref {
  const ax = axes.map((a) => (a < 0 ? a + x.shape.length : a));
  const outShapeKeep = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  const st = stridesOf(x.shape);
  const ost = stridesOf(outShapeKeep);
  for (let i = 0; i < x.data.length; i++) {
    let r = i;
    let o = 0;
    for (let d = 0; d < x.shape.length; d++) {
      const c = Math.floor(r / st[d]);
      r -= c * st[d];
      if (!ax.includes(d)) o += c * ost[d];
    }
    let g = groups.get(o);
    if (!g) groups.set(o, g = []);
    g.push(x.data[i]);
  }
  const n = size(outShapeKeep);
  const data = new Float64Array(n);
  for (let o = 0; o < n; o++) data[o] = f(groups.get(o) ?? []);
  const shape = keepDim ? outShapeKeep : x.shape.filter((_, i) => !ax.includes(i));
  return { shape, data };
}

/** Asserts |a − e| ≤ atol + rtol·|e| everywhere, with a message naming the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; msg?: string } = {},
): void {
  const { atol = 1e-5, rtol = 1e-4, msg = "" } = opts;
  if (actual.length !== expected.length) {
    throw new Error(`${msg} length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${msg} mismatch at ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Largest absolute value of `a` (0 when empty). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** float32-level agreement with a float64 reference: |a − e| ≤ tol·max(1, max|e|) + tol·|e|. */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, msg: string, tol = 1e-4): void {
  assertClose(actual, expected, { atol: tol * Math.max(1, maxAbs(expected)), rtol: tol, msg });
}

/** Asserts a shape. */
export function assertShape(t: { shape: readonly number[] }, shape: readonly number[], msg = ""): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${msg} shape [${t.shape.join(", ")}] != expected [${shape.join(", ")}]`);
  }
}

/**
 * Checks forward and backward of `gpuFn` against a float64 reference `refFn`:
 * the forward must match, and the gradient of `sum(out · R)` (R random) must match central
 * finite differences (eps 1e-6, in float64) of the same function of the reference.
 */
export async function gradcheck(
  gpuFn: (...xs: Tensor[]) => Tensor,
  refFn: (...xs: Ref[]) => Ref,
  inputs: Ref[],
  opts: {
    atol?: number;
    rtol?: number;
    gradAtol?: number;
    gradRtol?: number;
    seed?: number;
    wrt?: number[];
  } = {},
): Promise<void> {
  const rng = new Rng(opts.seed ?? 99);
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const refOut = refFn(...inputs);
  const R = rng.uniformArray(refOut.data.length, -1, 1);
  const leaves = inputs.map((x, i) => toGpu(x, wrt.includes(i)));
  const out = tidy(() => {
    const y = gpuFn(...leaves);
    assertShape(y, refOut.shape, "forward");
    const loss = sum(mul(y, fromArray(Float32Array.from(R), y.shape)));
    if (loss.requiresGrad) loss.backward();
    return y;
  });
  assertClose(await out.toArray(), refOut.data, {
    atol: opts.atol ?? 1e-5,
    rtol: opts.rtol ?? 1e-4,
    msg: "forward",
  });
  const objective = (xs: Ref[]) => {
    const o = refFn(...xs).data;
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * R[i];
    return s;
  };
  for (const i of wrt) {
    const x = inputs[i];
    const fd = new Float64Array(x.data.length);
    for (let j = 0; j < x.data.length; j++) {
      const eps = 1e-6 * Math.max(1, Math.abs(x.data[j]));
      const plus = inputs.slice();
      const minus = inputs.slice();
      const dp = x.data.slice();
      const dm = x.data.slice();
      dp[j] += eps;
      dm[j] -= eps;
      plus[i] = { shape: x.shape, data: dp };
      minus[i] = { shape: x.shape, data: dm };
      fd[j] = (objective(plus) - objective(minus)) / (2 * eps);
    }
    const g = leaves[i].grad;
    if (!g) throw new Error(`input ${i} got no gradient`);
    assertShape(g, x.shape, `grad ${i}`);
    const scale = Math.max(1, ...Array.from(fd, Math.abs));
    assertClose(await g.toArray(), fd, {
      atol: (opts.gradAtol ?? 1e-4) * scale,
      rtol: opts.gradRtol ?? 1e-3,
      msg: `grad of input ${i}`,
    });
  }
  out.dispose();
  for (const l of leaves) l.dispose();
}

/** A random shape of rank `rank` with dims in [1, max] (often odd sizes). */
export function randShape(rng: Rng, rank: number, max = 7): number[] {
  return Array.from({ length: rank }, () => 1 + rng.int(max));
}
