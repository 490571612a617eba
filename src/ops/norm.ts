/**
 * Layer normalisation (PyTorch semantics: normalise over the trailing `normalizedShape` dims with
 * the biased variance, then an optional elementwise affine). One fused dispatch forward (saving
 * per-row mean and rstd), one for the input gradient, one (plus a column sum for many rows) for
 * the weight and bias gradients.
 */
import {
  layerNormBackwardSpec,
  layerNormForwardSpec,
  layerNormParamGradSpec,
  LN_PARAM_WG,
} from "../../shaders/layernorm.ts";
import { gpu } from "../gpu/device.ts";
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { record } from "../tensor/autograd.ts";
import { numel, type Shape, Tensor } from "../tensor/tensor.ts";
import { sameShape } from "./broadcast.ts";
import { zeros } from "./creation.ts";
import { sum } from "./reduce.ts";
import { LOOP_BUDGET, rowPlan, vec4Ok } from "./softmax.ts";
import { contiguous, reshape } from "./views.ts";

const specs = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

function fmt(s: Shape): string {
  return `[${s.join(", ")}]`;
}

function check(x: Tensor, ns: Shape, weight: Tensor | null, bias: Tensor | null): void {
  x.assertAlive();
  const k = ns.length;
  if (ns.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`layerNorm: invalid normalizedShape ${fmt(ns)}`);
  }
  if (k > x.ndim || !sameShape(x.shape.slice(x.ndim - k), ns)) {
    throw new Error(
      `layerNorm: normalizedShape ${fmt(ns)} does not match the trailing dims of input ${fmt(x.shape)}`,
    );
  }
  for (const [name, t] of [["input", x], ["weight", weight], ["bias", bias]] as const) {
    if (t && t.dtype !== "f32") throw new Error(`layerNorm: ${name} must be f32, got ${t.dtype}`);
    if (t && t !== x && !sameShape(t.shape, ns)) {
      throw new Error(`layerNorm: ${name} has shape ${fmt(t.shape)}, expected normalizedShape ${fmt(ns)}`);
    }
  }
}

/** Weight/bias gradients: per-chunk column sums in one kernel, then a sum over chunks if needed. */
function paramGrads(
  g: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  ns: Shape,
  gw: boolean,
  gb: boolean,
): [Tensor | null, Tensor | null] {
  const D = numel(ns);
  const rows = mean.size;
  if (rows === 0 || D === 0) return [gw ? zeros(ns) : null, gb ? zeros(ns) : null];
  const target = gpu().isFallback ? 2048 : 65536;
  // Enough chunks to fill the device, each short enough for the loop budget.
  let nch = Math.max(
    1,
    Math.min(Math.ceil(target / D), Math.ceil(rows / 16)),
    Math.ceil(rows / (LOOP_BUDGET >> 1)),
  );
  const CH = Math.ceil(rows / nch);
  nch = Math.ceil(rows / CH);
  const pw = gw ? Tensor.empty([nch, D]) : null;
  const pb = gb ? Tensor.empty([nch, D]) : null;
  const spec = cached(`p${gw}${gb}`, () => layerNormParamGradSpec(gw, gb));
  const bufs = [g.buffer, x.buffer, mean.buffer, rstd.buffer];
  for (const p of [pw, pb]) if (p) bufs.push(p.buffer);
  launch(spec, bufs, [rows, D, CH, nch, g.offset, x.offset], grid1d(Math.ceil((nch * D) / LN_PARAM_WG)));
  const finish = (p: Tensor | null) => {
    if (!p) return null;
    const s = nch === 1 ? p : sum(p, 0);
    const r = reshape(s, ns);
    if (s !== p) s.dispose();
    p.dispose();
    return r;
  };
  return [finish(pw), finish(pb)];
}

/**
 * Layer normalisation over the trailing dims `normalizedShape` of `x`:
 * `(x − mean) / sqrt(var + eps) · weight + bias`, with the biased variance, like
 * `torch.nn.functional.layer_norm`. `weight` and `bias` (shape `normalizedShape`) are optional.
 *
 * @example
 * ```ts
 * import { initGpu, randn, ones, zeros, layerNorm } from "./mod.ts";
 * await initGpu();
 * const y = layerNorm(randn([8, 16]), [16], ones([16]), zeros([16]));
 * ```
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const ns = [...normalizedShape];
  const w = weight ?? null;
  const b = bias ?? null;
  check(x, ns, w, b);
  const D = numel(ns);
  const rows = D === 0 ? numel(x.shape.slice(0, x.ndim - ns.length)) : x.size / D;
  const out = Tensor.empty(x.shape);
  const mean = Tensor.empty([rows]);
  const rstd = Tensor.empty([rows]);
  const xc = contiguous(x);
  const wc = w ? contiguous(w) : null;
  const bc = b ? contiguous(b) : null;
  const plan = rowPlan(rows, D, 1);
  if (rows > 0 && D > 0) {
    const v4 = vec4Ok(D, 1, xc.offset, wc?.offset ?? 0, bc?.offset ?? 0);
    const key = `f${plan.mode}${plan.wg}${v4}${!!w}${!!b}`;
    const fwd = cached(key, () => layerNormForwardSpec(plan.mode, plan.wg, v4, !!w, !!b));
    const bufs = [xc.buffer];
    if (wc) bufs.push(wc.buffer);
    if (bc) bufs.push(bc.buffer);
    bufs.push(out.buffer, mean.buffer, rstd.buffer);
    launch(fwd, bufs, [rows, D, 1, xc.offset, wc?.offset ?? 0, bc?.offset ?? 0, f32bits(eps)], plan.grid);
  }
  const saved = [xc.alias(), mean.alias(), rstd.alias(), ...(wc ? [wc.alias()] : [])];
  for (const t of [xc, wc, bc, mean, rstd]) t?.dispose();
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record("layerNorm", inputs, out, (g) => {
    const [xs, ms, rs, ws] = saved;
    const gc = contiguous(g);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape);
      if (rows > 0 && D > 0) {
        const v4 = vec4Ok(D, 1, gc.offset, xs.offset, ws?.offset ?? 0);
        const key = `b${plan.mode}${plan.wg}${v4}${!!ws}`;
        const bwd = cached(key, () => layerNormBackwardSpec(plan.mode, plan.wg, v4, !!ws));
        const bufs = [gc.buffer, xs.buffer, ms.buffer, rs.buffer, ...(ws ? [ws.buffer] : []), dx.buffer];
        launch(bwd, bufs, [rows, D, 1, gc.offset, xs.offset, ws?.offset ?? 0], plan.grid);
      }
    }
    const [dw, db] = paramGrads(gc, xs, ms, rs, ns, !!w?.requiresGrad, !!b?.requiresGrad);
    gc.dispose();
    const grads: (Tensor | null)[] = [dx];
    if (w) grads.push(dw);
    if (b) grads.push(db);
    return grads;
  }, saved);
}
