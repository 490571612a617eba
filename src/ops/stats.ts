/**
 * Statistics over axes: variance and standard deviation with `torch.var` / `torch.std`
 * semantics (Bessel-corrected by default). Forward: a sum, a fused squared-deviation map, a sum
 * and a scale; backward: one elementwise pass `g · 2(x − mean) / (N − correction)`.
 */
import { noGrad, record } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { normAxis } from "./broadcast.ts";
import { mapN } from "./map.ts";
import { sum } from "./reduce.ts";
import { sqrt } from "./unary.ts";
import { reshape } from "./views.ts";

function resolveAxes(t: Tensor, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(t.ndim).keys()];
  const list = typeof axes === "number" ? [axes] : axes;
  return [...new Set(list.map((a) => normAxis(a, t.ndim)))].sort((a, b) => a - b);
}

/**
 * Variance over `axes` (all by default): `Σ (x − mean)² / max(0, N − correction)`, where `N` is
 * the number of reduced elements. `correction = 1` (default) is the unbiased estimator,
 * `0` the population variance. `N − correction ≤ 0` gives inf or NaN, as in PyTorch.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, variance } from "./mod.ts";
 * await initGpu();
 * const v = variance(fromArray([[1, 2, 3], [4, 6, 8]]), 1); // [1, 4]
 * ```
 */
export function variance(
  x: Tensor,
  axes?: number | readonly number[],
  keepDim = false,
  correction = 1,
): Tensor {
  x.assertAlive();
  if (x.dtype !== "f32") throw new Error(`variance: needs an f32 tensor, got ${x.dtype}`);
  const ax = resolveAxes(x, axes);
  const n = ax.reduce((p, i) => p * x.shape[i], 1);
  const keepShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const inv = 1 / Math.max(0, n - correction);
  const { out, s } = noGrad(() => {
    const s = sum(x, ax, true);
    const sq = mapN("(x0 - x1 * s0) * (x0 - x1 * s0)", [x, s], [1 / n]);
    const ss = sum(sq, ax, keepDim);
    const out = mapN("x0 * s0", [ss], [inv]);
    sq.dispose();
    ss.dispose();
    return { out, s };
  });
  const saved = [x.alias(), s.alias()];
  s.dispose();
  return record("variance", [x], out, (g) => {
    const [xs, ss] = saved;
    const gk = reshape(g, keepShape);
    const dx = mapN("x2 * s1 * 2.0 * (x0 - x1 * s0)", [xs, ss, gk], [1 / n, inv], "f32", xs.shape);
    gk.dispose();
    return [dx];
  }, saved);
}

/** Standard deviation over `axes`: `sqrt(variance(x, axes, keepDim, correction))`. */
export function std(x: Tensor, axes?: number | readonly number[], keepDim = false, correction = 1): Tensor {
  const v = variance(x, axes, keepDim, correction);
  const out = sqrt(v);
  v.dispose();
  return out;
}
