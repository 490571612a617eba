/** Reductions along any axes or all: sum, mean, max, min, argmax, argmin; and `sumToShape`. */
import { RED_WG, RED_WG_CPU, type ReduceOp, reduceSpec, reduceVec4Spec } from "../../shaders/reduce.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import { normAxis, sameShape } from "./broadcast.ts";
import { mapN } from "./map.ts";
import { contiguous, permute, reshape } from "./views.ts";

const specs = new Map<string, KernelSpec>();

/** Axes to reduce: undefined means all; numbers may be negative. Sorted, unique. */
function resolveAxes(t: Tensor, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(t.ndim).keys()];
  const list = typeof axes === "number" ? [axes] : axes;
  return [...new Set(list.map((a) => normAxis(a, t.ndim)))].sort((a, b) => a - b);
}

/** Output shape with reduced axes kept as 1 or dropped. */
function reducedShape(shape: Shape, axes: number[], keepDim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDim) out.push(1);
  });
  return out;
}

/** Runs one reduction kernel (no autograd). Returns the reduced tensor (keepDim layout applied). */
function reduceRaw(op: ReduceOp, t: Tensor, axes: number[], keepDim: boolean): Tensor {
  return noGrad(() => reduceKernel(op, t, axes, keepDim));
}

function reduceKernel(op: ReduceOp, t: Tensor, axes: number[], keepDim: boolean): Tensor {
  if (t.dtype !== "f32") throw new Error(`${op}: needs an f32 tensor, got ${t.dtype}`);
  const outShape = reducedShape(t.shape, axes, keepDim);
  const out = Tensor.empty(outShape, op.startsWith("arg") ? "i32" : "f32");
  if (out.size === 0) return out;
  let x: Tensor;
  let O1: number, R: number, O2: number;
  const adjacent = axes.length === 0 || axes[axes.length - 1] - axes[0] === axes.length - 1;
  if (adjacent) {
    x = contiguous(t);
    const a0 = axes.length ? axes[0] : t.ndim;
    const a1 = axes.length ? axes[axes.length - 1] + 1 : t.ndim;
    O1 = t.shape.slice(0, a0).reduce((p, d) => p * d, 1);
    R = t.shape.slice(a0, a1).reduce((p, d) => p * d, 1);
    O2 = t.shape.slice(a1).reduce((p, d) => p * d, 1);
  } else {
    const kept = [...Array(t.ndim).keys()].filter((i) => !axes.includes(i));
    const p = permute(t, [...kept, ...axes]);
    x = contiguous(p);
    p.dispose();
    O1 = kept.reduce((q, i) => q * t.shape[i], 1);
    R = axes.reduce((q, i) => q * t.shape[i], 1);
    O2 = 1;
  }
  if (R === 0) {
    x.dispose();
    throw new Error(`${op}: cannot reduce over an empty axis`);
  }
  const nOut = O1 * O2;
  // On a CPU adapter one thread per output wins unless there are too few outputs to occupy the
  // cores or a thread's loop would get long (see RED_WG_CPU).
  const cpu = gpu().isFallback;
  const mode = cpu
    ? (nOut < 8 && R >= 256) || R > 16384 ? "group" : "thread"
    : nOut < 2048 && R >= 256
    ? "group"
    : "thread";
  // Lavapipe silently leaves loops after 65535 iterations per invocation: widen the workgroup so
  // each thread's share of a long reduction stays well under that.
  let wg = mode === "thread" && cpu ? RED_WG_CPU : RED_WG;
  while (mode === "group" && R / wg > 32768 && wg < 1024) wg *= 2;
  if (cpu && mode === "thread" && !op.startsWith("arg") && O2 % 4 === 0 && x.offset % 4 === 0) {
    const key = op + "vec4" + wg;
    let spec = specs.get(key);
    if (!spec) specs.set(key, spec = reduceVec4Spec(op as "sum" | "max" | "min", wg));
    launch(spec, [x.buffer, out.buffer], [O1, R, O2, x.offset], grid1d(Math.ceil(nOut / 4 / wg)));
    x.dispose();
    return out;
  }
  const key = op + mode + wg;
  let spec = specs.get(key);
  if (!spec) specs.set(key, spec = reduceSpec(op, mode, wg));
  const groups = mode === "group" ? nOut : Math.ceil(nOut / wg);
  launch(spec, [x.buffer, out.buffer], [O1, R, O2, x.offset], grid1d(groups));
  x.dispose();
  return out;
}

/** Broadcasts a reduced gradient (keepDim layout) back to `shape` as a contiguous tensor. */
function spread(g: Tensor, shape: Shape, axes: number[], scale = 1): Tensor {
  const k = reshape(g, reducedShape(shape, axes, true));
  const out = mapN(scale === 1 ? "x0" : "x0 * s0", [k], scale === 1 ? [] : [scale], "f32", shape);
  k.dispose();
  return out;
}

/**
 * Sum over `axes` (all by default).
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, sum } from "./mod.ts";
 * await initGpu();
 * const s = sum(fromArray([[1, 2], [3, 4]]), 0); // [4, 6]
 * ```
 */
export function sum(t: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  const ax = resolveAxes(t, axes);
  const out = reduceRaw("sum", t, ax, keepDim);
  return record("sum", [t], out, (g) => [spread(g, t.shape, ax)]);
}

/** Mean over `axes` (all by default). */
export function mean(t: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  const ax = resolveAxes(t, axes);
  const n = ax.reduce((p, i) => p * t.shape[i], 1);
  const s = reduceRaw("sum", t, ax, keepDim);
  const out = mapN("x0 * s0", [s], [1 / n]);
  s.dispose();
  return record("mean", [t], out, (g) => [spread(g, t.shape, ax, 1 / n)]);
}

function extremum(
  op: "max" | "min",
  t: Tensor,
  axes: number | readonly number[] | undefined,
  keepDim: boolean,
) {
  const ax = resolveAxes(t, axes);
  const out = reduceRaw(op, t, ax, keepDim);
  const saved = [t.alias(), out.alias()];
  return record(op, [t], out, (g) => {
    // Gradient goes to the extreme elements, shared equally between ties.
    const [x, m] = saved;
    const mk = reshape(m, reducedShape(x.shape, ax, true));
    const mask = mapN("b2f(x0 == x1)", [x, mk]);
    const cnt = reduceRaw("sum", mask, ax, true);
    const gk = reshape(g, reducedShape(x.shape, ax, true));
    const gi = mapN("x0 * x1 / x2", [mask, gk, cnt]);
    for (const u of [mk, mask, cnt, gk]) u.dispose();
    return [gi];
  }, saved);
}

/** Maximum over `axes` (all by default); the gradient is shared between tied maxima. */
export function max(t: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  return extremum("max", t, axes, keepDim);
}

/** Minimum over `axes` (all by default); the gradient is shared between tied minima. */
export function min(t: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  return extremum("min", t, axes, keepDim);
}

/** Index (i32) of the largest element along `axis` (first one on ties); all elements if omitted. */
export function argmax(t: Tensor, axis?: number, keepDim = false): Tensor {
  if (axis === undefined) {
    const f = reshape(t, [t.size]);
    const r = reduceRaw("argmax", f, [0], false);
    f.dispose();
    return r;
  }
  return reduceRaw("argmax", t, [normAxis(axis, t.ndim)], keepDim);
}

/** Index (i32) of the smallest element along `axis` (first one on ties); all elements if omitted. */
export function argmin(t: Tensor, axis?: number, keepDim = false): Tensor {
  if (axis === undefined) {
    const f = reshape(t, [t.size]);
    const r = reduceRaw("argmin", f, [0], false);
    f.dispose();
    return r;
  }
  return reduceRaw("argmin", t, [normAxis(axis, t.ndim)], keepDim);
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return contiguous(g);
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = reduceRaw("sum", g, axes, true);
  const out = reshape(s, shape);
  s.dispose();
  return out;
}
