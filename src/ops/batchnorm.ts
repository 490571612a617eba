/**
 * Batch normalisation over `[B, C, …]` (PyTorch's `batch_norm`): per-channel statistics over the
 * batch and spatial dims, with the running statistics updated in place on the GPU in training
 * mode. Forward is two dispatches (statistics, fused normalise/affine/optional ReLU); backward is
 * two more (a per-channel reduction giving the weight and bias gradients and the input-gradient
 * coefficients, then one elementwise kernel).
 */
import {
  BN_EW_WG,
  bnApplySpec,
  bnEvalStatsSpec,
  bnGradApplySpec,
  bnGradReduceSpec,
  bnStatsSpec,
} from "../../shaders/batchnorm.ts";
import { gpu } from "../gpu/device.ts";
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { record } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { LOOP_BUDGET } from "./softmax.ts";
import { contiguous } from "./views.ts";

/** Options of {@link batchNorm2d}. */
export interface BatchNormOptions {
  /** True: normalise with the batch statistics (and update the running ones); false: use the running ones. */
  training: boolean;
  /** Per-channel running mean `[C]` (contiguous f32); updated in place when training. */
  runningMean?: Tensor | null;
  /** Per-channel running variance `[C]` (contiguous f32); updated in place (unbiased) when training. */
  runningVar?: Tensor | null;
  /** Weight of the new batch statistics in the running update (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** An i32 batch counter (one element, e.g. `num_batches_tracked`) incremented in place when training. */
  numBatchesTracked?: Tensor | null;
  /** Apply a ReLU to the output in the same kernel (default false). */
  relu?: boolean;
}

const specs = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function checkVec(name: string, t: Tensor | null, C: number, needContiguous: boolean): void {
  if (!t) return;
  t.assertAlive();
  if (t.dtype !== "f32") throw new Error(`batchNorm2d: ${name} must be f32, got ${t.dtype}`);
  if (t.ndim !== 1 || t.shape[0] !== C) {
    throw new Error(
      `batchNorm2d: ${name} has shape ${fmt(t.shape)}, expected [${C}] (one value per channel)`,
    );
  }
  if (needContiguous && !t.isContiguous) {
    throw new Error(`batchNorm2d: ${name} is updated in place and must be contiguous; pass a dense tensor`);
  }
}

/** Workgroup size of the per-channel reductions: each thread's share stays under the loop budget. */
function reduceWg(n: number): number {
  let wg = gpu().isFallback ? 64 : 256;
  while (Math.ceil(n / wg) + 16 > LOOP_BUDGET && wg < 1024) wg *= 2;
  if (Math.ceil(n / wg) + 16 > LOOP_BUDGET) {
    throw new Error(
      `batchNorm2d: ${n} values per channel exceed what one workgroup can reduce on this adapter ` +
        `(at most ${(LOOP_BUDGET - 16) * 1024}); split the batch`,
    );
  }
  return wg;
}

/**
 * Batch normalisation of `x` `[B, C, …]` (any number of trailing spatial dims, e.g. `[B, C, H, W]`)
 * per channel, like `torch.nn.functional.batch_norm`:
 * `y = (x − mean) / sqrt(var + eps) · weight + bias` (optionally followed by a ReLU).
 *
 * In training mode `mean` and the biased `var` are the batch statistics over all dims but C, and
 * when `runningMean`/`runningVar` are given they are updated in place:
 * `running = (1 − momentum)·running + momentum·batch` (unbiased variance for `runningVar`). In eval
 * mode the running statistics are used. Gradients flow to `x`, `weight` and `bias` (training: the
 * full batch-statistics backward; eval: the affine one).
 *
 * @example
 * ```ts
 * import { initGpu, randn, ones, zeros, batchNorm2d } from "./mod.ts";
 * await initGpu();
 * const rm = zeros([3]), rv = ones([3]);
 * const y = batchNorm2d(randn([2, 3, 4, 4]), null, null, { training: true, runningMean: rm, runningVar: rv });
 * ```
 */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null | undefined,
  bias: Tensor | null | undefined,
  opts: BatchNormOptions,
): Tensor {
  x.assertAlive();
  const w = weight ?? null;
  const b = bias ?? null;
  const rm = opts.runningMean ?? null;
  const rv = opts.runningVar ?? null;
  const training = opts.training;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const relu = opts.relu ?? false;
  if (x.dtype !== "f32") throw new Error(`batchNorm2d: input must be f32, got ${x.dtype}`);
  if (x.ndim < 2) throw new Error(`batchNorm2d: input must be [B, C, …], got shape ${fmt(x.shape)}`);
  if (!rm !== !rv) throw new Error("batchNorm2d: give both runningMean and runningVar, or neither");
  if (rm && rm.storage === rv!.storage) {
    throw new Error("batchNorm2d: runningMean and runningVar must be separate tensors");
  }
  if (!training && !rm) {
    throw new Error("batchNorm2d: eval mode needs runningMean and runningVar (or use training: true)");
  }
  if (!(eps > 0)) throw new Error(`batchNorm2d: eps must be positive, got ${eps}`);
  const [B, C] = x.shape;
  const S = x.shape.slice(2).reduce((p, d) => p * d, 1);
  checkVec("weight", w, C, false);
  checkVec("bias", b, C, false);
  checkVec("runningMean", rm, C, true);
  checkVec("runningVar", rv, C, true);
  const nbt = training ? opts.numBatchesTracked ?? null : null;
  if (nbt && (nbt.dtype !== "i32" || nbt.size !== 1)) {
    throw new Error(
      `batchNorm2d: numBatchesTracked must be a one-element i32 tensor, got ${nbt.dtype} ${fmt(nbt.shape)}`,
    );
  }
  const cnt = B * S;
  if (training && cnt <= 1) {
    throw new Error(
      `batchNorm2d: training needs more than one value per channel, got input shape ${fmt(x.shape)}`,
    );
  }
  const out = Tensor.empty(x.shape);
  const st = Tensor.empty([C, 4]);
  const xc = contiguous(x);
  const wc = w ? contiguous(w) : null;
  const bc = b ? contiguous(b) : null;
  const v4 = S % 4 === 0 && xc.offset % 4 === 0;
  const q = v4 ? 4 : 1;
  const Sv = S / q;
  if (C > 0) {
    const wb = [...(wc ? [wc.buffer] : []), ...(bc ? [bc.buffer] : [])];
    const wo = wc?.offset ?? 0, bo = bc?.offset ?? 0;
    if (training) {
      const wg = reduceWg(B * Sv);
      const track = !!rm;
      const count = !!nbt;
      const key = `s${wg}${v4}${!!w}${!!b}${track}${count}`;
      const spec = cached(key, () => bnStatsSpec(wg, v4, !!w, !!b, track, count));
      const bufs = [
        xc.buffer,
        ...wb,
        ...(track ? [rm!.buffer, rv!.buffer] : []),
        ...(nbt ? [nbt.buffer] : []),
      ];
      bufs.push(st.buffer);
      const params = [C, Sv, B * Sv, xc.offset / q, wo, bo, rm?.offset ?? 0, rv?.offset ?? 0];
      params.push(f32bits(eps), f32bits(momentum), cnt, nbt?.offset ?? 0);
      launch(spec, bufs, params, grid1d(C));
    } else {
      const spec = cached(`e${!!w}${!!b}`, () => bnEvalStatsSpec(!!w, !!b));
      const bufs = [rm!.buffer, rv!.buffer, ...wb, st.buffer];
      launch(spec, bufs, [C, wo, bo, rm!.offset, rv!.offset, f32bits(eps)], grid1d(Math.ceil(C / 64)));
    }
  }
  const n = x.size / q;
  if (n > 0) {
    const spec = cached(`a${v4}${relu}`, () => bnApplySpec(v4, relu));
    launch(
      spec,
      [xc.buffer, st.buffer, out.buffer],
      [n, Sv, C, xc.offset / q],
      grid1d(Math.ceil(n / BN_EW_WG)),
    );
  }
  const saved = [xc.alias(), st.alias()];
  for (const t of [xc, wc, bc, st]) t?.dispose();
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record("batchNorm2d", inputs, out, (g) => {
    const [xs, ss] = saved;
    const gc = contiguous(g);
    const gv4 = v4 && gc.offset % 4 === 0 && xs.offset % 4 === 0;
    const gq = gv4 ? 4 : 1;
    const gS = S / gq;
    const coef = Tensor.empty([C, 4]);
    const dw = Tensor.empty([C]);
    const db = Tensor.empty([C]);
    if (C > 0) {
      const wg = reduceWg(B * gS);
      const spec = cached(`r${wg}${gv4}${training}${relu}`, () => bnGradReduceSpec(wg, gv4, training, relu));
      const bufs = [gc.buffer, xs.buffer, ss.buffer, coef.buffer, dw.buffer, db.buffer];
      launch(spec, bufs, [C, gS, B * gS, gc.offset / gq, xs.offset / gq, cnt], grid1d(C));
    }
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape);
      const nn = x.size / gq;
      if (nn > 0) {
        const spec = cached(`g${gv4}${relu}`, () => bnGradApplySpec(gv4, relu));
        const bufs = [gc.buffer, xs.buffer, coef.buffer, ...(relu ? [ss.buffer] : []), dx.buffer];
        const params = [nn, gS, C, gc.offset / gq, xs.offset / gq];
        launch(spec, bufs, params, grid1d(Math.ceil(nn / BN_EW_WG)));
      }
    }
    gc.dispose();
    coef.dispose();
    const grads: (Tensor | null)[] = [dx];
    if (w) grads.push(w.requiresGrad ? dw : (dw.dispose(), null));
    else dw.dispose();
    if (b) grads.push(b.requiresGrad ? db : (db.dispose(), null));
    else db.dispose();
    return grads;
  }, saved);
}
