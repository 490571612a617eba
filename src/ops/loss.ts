/**
 * Classification losses with PyTorch semantics: `crossEntropy` (fused log-softmax + pick, one
 * dispatch) and `nllLoss` on log-probabilities, over a class axis of any position, with integer
 * targets, `ignoreIndex` and `none` / `mean` / `sum` reductions. Backward is one elementwise
 * dispatch: `(softmax − onehot)·g` (or `−onehot·g` for NLL).
 */
import {
  CE_BWD_WG,
  crossEntropyForwardSpec,
  lossBackwardSpec,
  nllForwardSpec,
} from "../../shaders/cross_entropy.ts";
import { ROW_WG } from "../../shaders/softmax.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { contiguousStrides, Tensor } from "../tensor/tensor.ts";
import { normAxis, sameShape } from "./broadcast.ts";
import { mapN } from "./map.ts";
import { sum } from "./reduce.ts";
import { rowDims, rowPlan } from "./softmax.ts";
import { contiguous } from "./views.ts";

/** Options of {@link crossEntropy} and {@link nllLoss}. */
export interface LossOptions {
  /** The class axis of the input (default 1, or 0 for a 1-D input); negative counts from the end. */
  axis?: number;
  /** `mean` (default) over non-ignored targets, `sum`, or `none` (per-element losses). */
  reduction?: "none" | "mean" | "sum";
  /** Targets equal to this contribute neither loss nor gradient (default -100, as in PyTorch). */
  ignoreIndex?: number;
}

const specs = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

function loss(kind: "ce" | "nll", x: Tensor, target: Tensor, opts: LossOptions): Tensor {
  const name = kind === "ce" ? "crossEntropy" : "nllLoss";
  x.assertAlive();
  target.assertAlive();
  const reduction = opts.reduction ?? "mean";
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!["none", "mean", "sum"].includes(reduction)) {
    throw new Error(`${name}: reduction must be "none", "mean" or "sum", got "${reduction}"`);
  }
  if (!Number.isInteger(ignoreIndex)) throw new Error(`${name}: ignoreIndex must be an integer`);
  if (x.dtype !== "f32") throw new Error(`${name}: input must be f32, got ${x.dtype}`);
  if (x.ndim === 0) throw new Error(`${name}: input needs a class dimension, got a scalar`);
  if (target.dtype !== "i32") {
    throw new Error(`${name}: target must be an i32 tensor of class indices, got ${target.dtype}`);
  }
  const ax = normAxis(opts.axis ?? (x.ndim === 1 ? 0 : 1), x.ndim);
  const tShape = x.shape.filter((_, i) => i !== ax);
  if (!sameShape(target.shape, tShape)) {
    throw new Error(
      `${name}: target shape [${target.shape.join(", ")}] does not match input [${x.shape.join(", ")}] ` +
        `without its class dim ${ax}: expected [${tShape.join(", ")}]`,
    );
  }
  const { O1, R, O2 } = rowDims(x.shape, ax);
  const rows = O1 * O2;
  if (R === 0) throw new Error(`${name}: the class dim ${ax} is empty`);
  const ign = ignoreIndex >>> 0;
  const xc = contiguous(x);
  const tc = contiguous(target);
  const L = Tensor.empty([2 * rows]);
  const lse = kind === "ce" ? Tensor.empty([rows]) : null;
  if (rows > 0) {
    const params = [rows, R, O2, xc.offset, tc.offset, ign];
    if (kind === "ce") {
      const plan = rowPlan(rows, R, O2, 1);
      const spec = cached(`ce${plan.mode}${plan.wg}`, () => crossEntropyForwardSpec(plan.mode, plan.wg));
      launch(spec, [xc.buffer, tc.buffer, L.buffer, lse!.buffer], params, plan.grid);
    } else {
      launch(
        cached("nll", nllForwardSpec),
        [xc.buffer, tc.buffer, L.buffer],
        params,
        grid1d(Math.ceil(rows / ROW_WG)),
      );
    }
  }
  let out: Tensor;
  let cnt: Tensor | null = null;
  if (reduction === "none") {
    out = L.alias(tShape, contiguousStrides(tShape), 0, true);
  } else {
    const losses = L.alias([rows], [1], 0);
    if (reduction === "sum") {
      out = noGrad(() => sum(losses));
    } else {
      const both = L.alias([2, rows], [rows, 1], 0);
      const tot = noGrad(() => sum(both, 1));
      const a = tot.alias([], [], 0);
      cnt = tot.alias([], [], 1);
      out = mapN("x0 / x1", [a, cnt], [], "f32", []);
      for (const t of [both, tot, a]) t.dispose();
    }
    losses.dispose();
  }
  L.dispose();
  const saved = [xc.alias(), tc.alias(), ...(lse ? [lse.alias()] : []), ...(cnt ? [cnt] : [])];
  for (const t of [xc, tc, lse]) t?.dispose();
  return record(name, [x], out, (g) => {
    const xs = saved[0], ts = saved[1];
    const ls = kind === "ce" ? saved[2] : null;
    const gg = cnt ? mapN("x0 / x1", [g, cnt]) : contiguous(g);
    const dx = Tensor.empty(xs.shape);
    if (dx.size > 0) {
      const bufs = kind === "ce" ? [xs.buffer, ts.buffer, ls!.buffer] : [ts.buffer];
      bufs.push(gg.buffer, dx.buffer);
      const gs = reduction === "none" ? 1 : 0;
      const params = [dx.size, R, O2, xs.offset, ts.offset, gg.offset, gs, ign];
      launch(
        cached(`b${kind}`, () => lossBackwardSpec(kind)),
        bufs,
        params,
        grid1d(Math.ceil(dx.size / CE_BWD_WG)),
      );
    }
    gg.dispose();
    return [dx];
  }, saved);
}

/**
 * Cross-entropy between `logits` and integer class `target`s, like
 * `torch.nn.functional.cross_entropy`: logits `[B, C]` or `[B, C, d1, …]` with the class dim at
 * `axis` (default 1; any dim allowed), targets (i32) of the logits' shape without the class dim.
 * `mean` averages over targets that are not `ignoreIndex`. An out-of-range target gives NaN.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, crossEntropy } from "./mod.ts";
 * await initGpu();
 * const l = crossEntropy(fromArray([[2, 0, 1], [0, 3, 0]]), fromArray(new Int32Array([0, 1])));
 * ```
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  return loss("ce", logits, target, opts);
}

/**
 * Negative log-likelihood of integer `target`s under log-probabilities `logProbs` (e.g. from
 * `logSoftmax`), like `torch.nn.functional.nll_loss`; shapes and options as {@link crossEntropy}.
 */
export function nllLoss(logProbs: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  return loss("nll", logProbs, target, opts);
}
