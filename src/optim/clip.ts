/**
 * Gradient clipping entirely on the GPU (no host reads): global L2-norm clipping like
 * `torch.nn.utils.clip_grad_norm_`, and per-parameter quantile clipping like autoclip's
 * `QuantileClip` (the reference's parity trainer). The small WGSL kernels live here.
 */
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { zeros } from "../ops/creation.ts";
import { mapInto, mapN } from "../ops/map.ts";
import { contiguous } from "../ops/views.ts";
import { keep } from "../tensor/scope.ts";
import { Tensor } from "../tensor/tensor.ts";

const WG = 256;
const MAX_PARTIALS = 256;

const REDUCE_TREE = `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { sh[lid.x] = sh[lid.x] + sh[lid.x + s]; }
    workgroupBarrier();
  }`;

/** Partial sums of squares of X[off .. off+n) over G workgroups into Part[base + wg]. */
const sumsqSpec: KernelSpec = {
  params: ["n", "off", "base", "G"],
  bindings: [{ name: "X", type: "f32", access: "read" }, { name: "Part", type: "f32", access: "rw" }],
  workgroup: [WG],
  prelude: `var<workgroup> sh: array<f32, ${WG}>;`,
  body: `
  let wg = wid.x + wid.y * nwg.x;
  var acc = 0.0;
  for (var i = wg * ${WG}u + lid.x; i < P.n; i += P.G * ${WG}u) { let v = X[P.off + i]; acc += v * v; }
  sh[lid.x] = acc;${REDUCE_TREE}
  if (lid.x == 0u) { Part[P.base + wg] = sh[0]; }`,
};

/** One workgroup: norm = √ΣPart, Out[0] = norm, Out[1] = min(1, maxNorm / (norm + 1e-6)). */
const finishSpec: KernelSpec = {
  params: ["count", "maxNorm"],
  bindings: [{ name: "Part", type: "f32", access: "read" }, { name: "Out", type: "f32", access: "rw" }],
  workgroup: [WG],
  prelude: `var<workgroup> sh: array<f32, ${WG}>;`,
  body: `
  var acc = 0.0;
  for (var i = lid.x; i < P.count; i += ${WG}u) { acc += Part[i]; }
  sh[lid.x] = acc;${REDUCE_TREE}
  if (lid.x == 0u) {
    let norm = sqrt(sh[0]);
    Out[0] = norm;
    Out[1] = min(1.0, bitcast<f32>(P.maxNorm) / (norm + 1e-6));
  }`,
};

function partialCount(n: number): number {
  return Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(n / (WG * 4))));
}

/** Records the partial sums of squares of `g` into `part` at `base`; returns the count written. */
function sumsq(g: Tensor, part: Tensor, base: number): number {
  const c = g.isContiguous ? g : contiguous(g);
  const G = partialCount(c.size);
  launch(sumsqSpec, [c.buffer, part.buffer], [c.size, c.offset, base, G], grid1d(G));
  if (c !== g) c.dispose();
  return G;
}

/** Multiplies `g` in place by the scalar tensor `coef`. */
function scaleInPlace(g: Tensor, coef: Tensor): void {
  mapInto(g, "x0 * x1", [g, coef]);
}

/**
 * Clips the gradients of `params` in place so their global L2 norm is at most `maxNorm`
 * (scale `min(1, maxNorm / (norm + 1e-6))`, as PyTorch), all on the GPU. Parameters without a
 * gradient are skipped. Returns the norm before clipping as a scalar GPU tensor (read it later,
 * or never; dispose it).
 *
 * @example
 * ```ts
 * import { initGpu, clipGradNorm, fromArray, sum, mul } from "./mod.ts";
 * await initGpu();
 * const w = fromArray([3, 4]).requireGrad();
 * sum(mul(w, w)).backward();                 // grad [6, 8], norm 10
 * const norm = clipGradNorm([w], 1);         // grad becomes ≈ [0.6, 0.8]
 * console.log(await norm.item());            // 10
 * ```
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  if (!(maxNorm >= 0)) throw new Error(`clipGradNorm: maxNorm must be ≥ 0, got ${maxNorm}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null && g.size > 0);
  const out = Tensor.empty([2]);
  const norm = out.alias([], [], 0, true);
  if (grads.length === 0) {
    mapInto(norm, "0.0", []);
    out.dispose();
    return norm;
  }
  const total = grads.reduce((a, g) => a + partialCount(g.size), 0);
  const part = Tensor.empty([total]);
  let base = 0;
  for (const g of grads) base += sumsq(g, part, base);
  launch(finishSpec, [part.buffer, out.buffer], [total, f32bits(Math.min(maxNorm, 3.4e38))], [1]);
  part.dispose();
  const coef = out.alias([], [], 1, true);
  for (const g of grads) scaleInPlace(g, coef);
  coef.dispose();
  out.dispose();
  return norm;
}

function quantileSpec(N: number): KernelSpec {
  return {
    params: ["count", "m", "pos", "q"],
    bindings: [
      { name: "Part", type: "f32", access: "read" },
      { name: "Hist", type: "f32", access: "rw" },
      { name: "Out", type: "f32", access: "rw" },
    ],
    workgroup: [WG],
    prelude: `var<workgroup> sh: array<f32, ${WG}>;\nvar<workgroup> sv: array<f32, ${N}>;`,
    body: `
  var acc = 0.0;
  for (var i = lid.x; i < P.count; i += ${WG}u) { acc += Part[i]; }
  sh[lid.x] = acc;${REDUCE_TREE}
  let norm = sqrt(sh[0]);
  let inf = bitcast<f32>(0x7f800000u);
  for (var i = lid.x; i < ${N}u; i += ${WG}u) { sv[i] = select(inf, Hist[i], i < P.m); }
  workgroupBarrier();
  for (var k = 2u; k <= ${N}u; k = k << 1u) {
    for (var j = k >> 1u; j > 0u; j = j >> 1u) {
      for (var t = lid.x; t < ${N}u; t += ${WG}u) {
        let o = t ^ j;
        if (o > t) {
          let a = sv[t];
          let b = sv[o];
          if ((a > b) == ((t & k) == 0u)) { sv[t] = b; sv[o] = a; }
        }
      }
      workgroupBarrier();
    }
  }
  if (lid.x == 0u) {
    var thr = inf;
    if (P.m > 0u) {
      let r = bitcast<f32>(P.q) * f32(P.m - 1u);
      let lo = u32(floor(r));
      let hi = min(u32(ceil(r)), P.m - 1u);
      let w = r - f32(lo);
      let a = sv[lo];
      let b = sv[hi];
      thr = select(b - (b - a) * (1.0 - w), a + w * (b - a), w < 0.5);
    }
    Hist[P.pos] = norm;
    Out[0] = min(1.0, thr / (norm + 1e-6));
  }`,
  };
}

const quantileSpecs = new Map<number, KernelSpec>();

/** Options of {@link QuantileClip}. */
export interface QuantileClipOptions {
  /** Quantile of past norms used as each parameter's threshold (default 0.9). */
  quantile?: number;
  /** Number of past norms kept per parameter (default 1000, at most 2048). */
  historyLength?: number;
}

/** JSON-able part of a {@link QuantileClip} checkpoint. */
export interface QuantileClipMeta {
  /** Norms recorded per parameter index. */
  counts: number[];
  /** The quantile. */
  quantile: number;
  /** History length. */
  historyLength: number;
}

/**
 * Per-parameter adaptive clipping (autoclip's `QuantileClip` without a global threshold): each
 * parameter's gradient is clipped to the `quantile` of its own last `historyLength` pre-clip
 * norms (no clipping on its first step), then its current norm joins the history. Call
 * `step()` before the optimizer's step. Entirely on the GPU: one workgroup sorts each history.
 */
export class QuantileClip {
  /** The clipped parameters. */
  readonly params: readonly Tensor[];
  /** The quantile in [0, 1]. */
  readonly quantile: number;
  /** History length. */
  readonly historyLength: number;
  #hist: Tensor[];
  #counts: number[];
  #spec: KernelSpec;

  /** Creates the clipper (history buffers are allocated now). */
  constructor(params: readonly Tensor[], opts: QuantileClipOptions = {}) {
    this.params = [...params];
    this.quantile = opts.quantile ?? 0.9;
    this.historyLength = opts.historyLength ?? 1000;
    if (!(this.quantile >= 0 && this.quantile <= 1)) {
      throw new Error(`QuantileClip: quantile must be in [0, 1]`);
    }
    const L = this.historyLength;
    if (!Number.isInteger(L) || L < 1 || L > 2048) {
      throw new Error(`QuantileClip: historyLength must be in 1…2048`);
    }
    const N = 2 ** Math.ceil(Math.log2(Math.max(L, 2)));
    let spec = quantileSpecs.get(N);
    if (!spec) quantileSpecs.set(N, spec = quantileSpec(N));
    this.#spec = spec;
    this.#hist = this.params.map(() => keep(zeros([L])));
    this.#counts = this.params.map(() => 0);
  }

  /** Clips every parameter that has a gradient (in place) and records its norm. */
  step(): void {
    const L = this.historyLength;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g || g.size === 0) return;
      const part = Tensor.empty([partialCount(g.size)]);
      const count = sumsq(g, part, 0);
      const coef = Tensor.empty([]);
      const n = this.#counts[i];
      const params = [count, Math.min(n, L), n % L, f32bits(this.quantile)];
      launch(this.#spec, [part.buffer, this.#hist[i].buffer, coef.buffer], params, [1]);
      part.dispose();
      scaleInPlace(g, coef);
      coef.dispose();
      this.#counts[i] = n + 1;
    });
  }

  /** Metadata (counts) and the history tensors named `history.<index>` (own tensors: do not dispose). */
  stateDict(): { meta: QuantileClipMeta; tensors: Map<string, Tensor> } {
    return {
      meta: { counts: [...this.#counts], quantile: this.quantile, historyLength: this.historyLength },
      tensors: new Map(this.#hist.map((h, i) => [`history.${i}`, h])),
    };
  }

  /** Restores a checkpoint of a clipper over the same number of parameters (histories are copied). */
  loadStateDict(sd: { meta: QuantileClipMeta; tensors: Map<string, Tensor> }): void {
    const { meta, tensors } = sd;
    if (meta.counts.length !== this.params.length || meta.historyLength !== this.historyLength) {
      throw new Error(
        `QuantileClip.loadStateDict: checkpoint has ${meta.counts.length} parameters and history ` +
          `${meta.historyLength}, this clipper ${this.params.length} and ${this.historyLength}`,
      );
    }
    const src = this.#hist.map((_, i) => {
      const t = tensors.get(`history.${i}`);
      if (!t || t.size !== this.historyLength) {
        throw new Error(`QuantileClip.loadStateDict: 'history.${i}' is missing or has the wrong size`);
      }
      return t;
    });
    const copies = src.map((t) => keep(mapN("x0", [t]))); // before freeing: sources may be our own
    for (const h of this.#hist) h.dispose();
    this.#hist = copies;
    this.#counts = [...meta.counts];
  }

  /** Frees the history buffers. */
  dispose(): void {
    for (const h of this.#hist) h.dispose();
  }
}
