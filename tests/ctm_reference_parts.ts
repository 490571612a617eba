/**
 * The stateless pieces of the float64 reference CTM (`ctm_reference.ts`): the synchronisation-size
 * and U-Net width rules, small float64 kernels (Linear, LayerNorm, GLU, SiLU), the synapse model
 * (depth 1 and U-Net) and the neuron-level models (SuperLinear, deep and linear, optional history
 * LayerNorm). The recurrence that ties them together lives in `ctm_reference.ts`.
 */
import type { CtmOptions } from "../src/models/ctm.ts";

/** Reads a float64 weight by its reference state-dict name (throws when it is missing). */
export type RefGet = (name: string) => Float64Array;

/** Synchronisation size for a selection type: n for random-pairing, n(n+1)/2 otherwise. */
export function refSyncSize(type: string, n: number): number {
  return type === "random-pairing" ? n : (n * (n + 1)) / 2;
}

/** SynapseUNET widths: `int(np.linspace(D, 16, depth))` (truncation per element, last exactly 16). */
export function refUnetWidths(D: number, depth: number, minWidth = 16): number[] {
  if (depth === 1) return [D];
  const step = (minWidth - D) / (depth - 1);
  const w: number[] = [];
  for (let i = 0; i < depth; i++) w.push(Math.trunc(i === depth - 1 ? minWidth : D + i * step));
  return w;
}

// ---------------------------------------------------------------- small float64 kernels

/** y[r, o] = Σ_i x[r, i]·W[o, i] + b[o] for `rows` rows (PyTorch Linear: W is [out, in]). */
export function linear(
  x: Float64Array,
  rows: number,
  inF: number,
  W: Float64Array,
  b: Float64Array | null,
): Float64Array {
  const outF = W.length / inF;
  if (!Number.isInteger(outF)) throw new Error(`linear: weight of ${W.length} does not divide by in ${inF}`);
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * W[o * inF + i];
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** LayerNorm over the last `n` elements of each row (biased variance, eps 1e-5, affine). */
export function layerNorm(
  x: Float64Array,
  n: number,
  g: Float64Array,
  b: Float64Array,
  eps = 1e-5,
): Float64Array {
  const rows = x.length / n;
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let i = 0; i < n; i++) mu += x[r * n + i];
    mu /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r * n + i] - mu) ** 2;
    v /= n;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = (x[r * n + i] - mu) * inv * g[i] + b[i];
  }
  return y;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** GLU over the last dim of width 2h: first half × sigmoid(second half). */
function glu(x: Float64Array, width: number): Float64Array {
  const h = width / 2;
  const rows = x.length / width;
  const y = new Float64Array(rows * h);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < h; i++) y[r * h + i] = x[r * width + i] * sigmoid(x[r * width + h + i]);
  }
  return y;
}

/** SiLU: x·sigmoid(x). */
function silu(x: Float64Array): Float64Array {
  return x.map((v) => v * sigmoid(v));
}

// ---------------------------------------------------------------- synapses and neuron-level models

/**
 * The synapse model on the pre-synapse rows `[B, d + D]` (attention output, z) → `[B, D]`:
 * depth 1 is Linear → GLU → LayerNorm, deeper is the U-Net of `refUnetWidths` with skip LayerNorms.
 */
export function refSynapses(cfg: CtmOptions, get: RefGet, B: number, pre: Float64Array): Float64Array {
  const D = cfg.dModel, d = cfg.dInput;
  const inF = d + D;
  if (cfg.synapseDepth === 1) {
    const h = linear(pre, B, inF, get("synapses.1.weight"), get("synapses.1.bias"));
    return layerNorm(glu(h, 2 * D), D, get("synapses.3.weight"), get("synapses.3.bias"));
  }
  const widths = refUnetWidths(D, cfg.synapseDepth);
  const block = (xin: Float64Array, inW2: number, outW: number, lin: string, ln: string) =>
    silu(
      layerNorm(
        linear(xin, B, inW2, get(`${lin}.weight`), get(`${lin}.bias`)),
        outW,
        get(`${ln}.weight`),
        get(`${ln}.bias`),
      ),
    );
  const outs = [block(pre, inF, widths[0], "synapses.first_projection.0", "synapses.first_projection.1")];
  for (let i = 0; i < widths.length - 1; i++) {
    outs.push(
      block(
        outs[i],
        widths[i],
        widths[i + 1],
        `synapses.down_projections.${i}.1`,
        `synapses.down_projections.${i}.2`,
      ),
    );
  }
  let u = outs[outs.length - 1];
  for (let i = widths.length - 2; i >= 0; i--) {
    const up = block(
      u,
      widths[i + 1],
      widths[i],
      `synapses.up_projections.${i}.1`,
      `synapses.up_projections.${i}.2`,
    );
    const s = up.map((v, k) => v + outs[i][k]);
    u = layerNorm(s, widths[i], get(`synapses.skip_lns.${i}.weight`), get(`synapses.skip_lns.${i}.bias`));
  }
  return u;
}

/** SuperLinear: x (B, N, in) → (B, N, out) / T, one weight slice per neuron (N = D). */
function superLinear(
  cfg: CtmOptions,
  get: RefGet,
  B: number,
  xin: Float64Array,
  inF: number,
  outF: number,
  prefix: string,
): Float64Array {
  const N = cfg.dModel;
  let xs = xin;
  if (cfg.doLayernormNlm) {
    xs = layerNorm(xin, inF, get(`${prefix}.layernorm.weight`), get(`${prefix}.layernorm.bias`));
  }
  const w1 = get(`${prefix}.w1`), b1 = get(`${prefix}.b1`), Tt = get(`${prefix}.T`)[0];
  const y = new Float64Array(B * N * outF);
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < N; n++) {
      for (let h = 0; h < outF; h++) {
        let s = b1[n * outF + h];
        for (let m = 0; m < inF; m++) s += xs[(b * N + n) * inF + m] * w1[(m * outF + h) * N + n];
        y[(b * N + n) * outF + h] = s / Tt;
      }
    }
  }
  return y;
}

/** The neuron-level models on the trace `[B, D, M]` → post-activations `[B, D]` (deep or linear). */
export function refNlm(cfg: CtmOptions, get: RefGet, B: number, tr: Float64Array): Float64Array {
  const M = cfg.memoryLength, H = cfg.memoryHiddenDims;
  if (cfg.deepNlms) {
    const h1 = glu(superLinear(cfg, get, B, tr, M, 2 * H, "trace_processor.0.0"), 2 * H); // (B, D, H)
    return glu(superLinear(cfg, get, B, h1, H, 2, "trace_processor.0.2"), 2); // (B, D)
  }
  return glu(superLinear(cfg, get, B, tr, M, 2, "trace_processor.0.0"), 2);
}
