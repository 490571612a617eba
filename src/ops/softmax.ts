/**
 * Softmax, log-softmax and logsumexp along any axis, numerically stable, each one fused dispatch
 * forward and one backward. Rows along a non-last axis are read in place through a stride (the
 * `[O1, R, O2]` view), never transposed. Also exports the row planner the other row ops share.
 */
import {
  ROW_WG,
  type RowMode,
  softmaxBackwardSpec,
  softmaxForwardSpec,
  type SoftmaxKind,
} from "../../shaders/softmax.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { record } from "../tensor/autograd.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import { normAxis } from "./broadcast.ts";
import { mapN } from "./map.ts";
import { contiguous, reshape } from "./views.ts";

/** How a row kernel is launched. */
export interface RowPlan {
  /** One row per thread or per workgroup. */
  mode: RowMode;
  /** Workgroup size in group mode. */
  wg: number;
  /** Dispatch grid. */
  grid: [number, number];
}

/**
 * Forces a row mode (tests and benches); `null` restores the automatic choice. Thread mode is
 * still replaced by group mode for rows over the loop budget. `vec4 = false` disables the
 * vectorised row access.
 */
export function setRowModeOverride(mode: RowMode | null, vec4 = true): void {
  override = mode;
  vec4Allowed = vec4;
}
let override: RowMode | null = null;
let vec4Allowed = true;

/** True when rows can be read and written as `vec4`s: last-axis rows, R % 4 = 0, aligned offsets. */
export function vec4Ok(R: number, O2: number, ...offsets: number[]): boolean {
  return vec4Allowed && O2 === 1 && R % 4 === 0 && offsets.every((o) => o % 4 === 0);
}

/**
 * Most loop iterations one invocation may run. Mesa's lavapipe (llvmpipe) silently leaves every
 * loop once an invocation has run 65535 iterations in total, so row kernels keep each thread's
 * share of a row under this on every adapter.
 */
export const LOOP_BUDGET = 49152;

/**
 * Chooses thread-per-row or workgroup-per-row for `rows` rows of length `R` with element stride
 * `O2`, for a kernel making `passes` passes over each row. Software adapters (lavapipe) run
 * shared memory and barriers slowly, so they use workgroups only for rows too long for one
 * thread's loop budget; real GPUs use them for all but short rows (or many strided rows, which
 * thread mode reads coalesced). On a software adapter, throws when a row is too long even for a
 * 1024-thread workgroup (over 25 million elements).
 */
export function rowPlan(rows: number, R: number, O2: number, passes = 2): RowPlan {
  const fallback = gpu().isFallback;
  const fitsThread = passes * R <= LOOP_BUDGET;
  let mode: RowMode;
  if (override) mode = override === "thread" && !fitsThread ? "group" : override;
  else if (fallback) mode = fitsThread ? "thread" : "group";
  else mode = fitsThread && (R <= 32 || (O2 >= 32 && rows >= 32768)) ? "thread" : "group";
  let wg = fallback ? 64 : R >= 2048 ? 256 : R >= 256 ? 128 : 64;
  while (passes * Math.ceil(R / wg) + 16 > LOOP_BUDGET && wg < 1024) wg *= 2;
  if (fallback && mode === "group" && passes * Math.ceil(R / wg) + 16 > LOOP_BUDGET) {
    const most = Math.floor((LOOP_BUDGET - 16) / passes) * 1024;
    throw new Error(
      `rows of ${R} elements are too long for this software adapter's row kernels (at most ${most})`,
    );
  }
  const grid = grid1d(mode === "group" ? rows : Math.ceil(rows / ROW_WG));
  return { mode, wg, grid };
}

/** `[O1, R, O2]` sizes of a shape split around axis `ax` (a rank-0 shape is one row of one). */
export function rowDims(shape: Shape, ax: number): { O1: number; R: number; O2: number } {
  const prod = (s: Shape) => s.reduce((a, b) => a * b, 1);
  return { O1: prod(shape.slice(0, ax)), R: shape.length ? shape[ax] : 1, O2: prod(shape.slice(ax + 1)) };
}

const specs = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

function checkInput(name: string, t: Tensor, axis: number): number {
  t.assertAlive();
  if (t.dtype !== "f32") throw new Error(`${name}: needs an f32 tensor, got ${t.dtype}`);
  return t.ndim === 0 ? 0 : normAxis(axis, t.ndim);
}

function rowwise(kind: "softmax" | "logsoftmax", t: Tensor, axis: number): Tensor {
  const ax = checkInput(kind, t, axis);
  const { O1, R, O2 } = rowDims(t.shape, ax);
  const rows = O1 * O2;
  const out = Tensor.empty(t.shape);
  if (out.size === 0) return record(kind, [t], out, () => [Tensor.empty(t.shape)]);
  const xc = contiguous(t);
  const plan = rowPlan(rows, R, O2);
  const v4 = vec4Ok(R, O2, xc.offset);
  const fwd = cached(
    `f${kind}${plan.mode}${plan.wg}${v4}`,
    () => softmaxForwardSpec(kind, plan.mode, plan.wg, v4),
  );
  launch(fwd, [xc.buffer, out.buffer], [rows, R, O2, xc.offset], plan.grid);
  xc.dispose();
  const saved = [out.alias()];
  return record(kind, [t], out, (g) => {
    const y = saved[0];
    const gc = contiguous(g);
    const dx = Tensor.empty(y.shape);
    const v4b = vec4Ok(R, O2, gc.offset, y.offset);
    const bwd = cached(
      `b${kind}${plan.mode}${plan.wg}${v4b}`,
      () => softmaxBackwardSpec(kind, plan.mode, plan.wg, v4b),
    );
    launch(bwd, [gc.buffer, y.buffer, dx.buffer], [rows, R, O2, gc.offset, y.offset], plan.grid);
    gc.dispose();
    return [dx];
  }, saved);
}

/**
 * Softmax along `axis` (default last): `exp(x − max) / Σ exp(x − max)`, one fused dispatch each
 * way (backward: `dx = y·(g − Σ g·y)`).
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, softmax } from "./mod.ts";
 * await initGpu();
 * const p = softmax(fromArray([[1, 2, 3], [0, 0, 0]])); // rows sum to 1
 * ```
 */
export function softmax(t: Tensor, axis = -1): Tensor {
  return rowwise("softmax", t, axis);
}

/**
 * Log-softmax along `axis` (default last): `x − logsumexp(x)`, one fused dispatch each way
 * (backward: `dx = g − softmax(x)·Σ g`).
 */
export function logSoftmax(t: Tensor, axis = -1): Tensor {
  return rowwise("logsoftmax", t, axis);
}

/**
 * `log Σ exp(x)` along `axis` (default last), stable for any magnitudes; the axis is dropped
 * unless `keepDim`. One fused dispatch forward; backward is `g·softmax(x)` in one elementwise pass.
 */
export function logsumexp(t: Tensor, axis = -1, keepDim = false): Tensor {
  const ax = checkInput("logsumexp", t, axis);
  const { O1, R, O2 } = rowDims(t.shape, ax);
  const rows = O1 * O2;
  const keepShape = t.shape.map((d, i) => (i === ax ? 1 : d));
  const outShape = keepDim ? keepShape : t.shape.filter((_, i) => i !== ax);
  let out: Tensor;
  const xc = contiguous(t);
  if (rows === 0 || R === 0) {
    out = mapN("s0", [], [-Infinity], "f32", outShape);
  } else {
    out = Tensor.empty(outShape);
    const plan = rowPlan(rows, R, O2, 1);
    const kind: SoftmaxKind = "logsumexp";
    const v4 = vec4Ok(R, O2, xc.offset);
    const fwd = cached(
      `f${kind}${plan.mode}${plan.wg}${v4}`,
      () => softmaxForwardSpec(kind, plan.mode, plan.wg, v4),
    );
    launch(fwd, [xc.buffer, out.buffer], [rows, R, O2, xc.offset], plan.grid);
  }
  const saved = [xc.alias(), out.alias()];
  xc.dispose();
  return record("logsumexp", [t], out, (g) => {
    const [x, l] = saved;
    const gk = reshape(g, keepShape);
    const lk = reshape(l, keepShape);
    const dx = mapN("x1 * exp(x0 - x2)", [x, gk, lk], [], "f32", x.shape);
    gk.dispose();
    lk.dispose();
    return [dx];
  }, saved);
}
