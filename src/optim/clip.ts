/**
 * Gradient clipping entirely on the GPU (no host reads): global L2-norm clipping like
 * `torch.nn.utils.clip_grad_norm_`, and per-parameter quantile clipping like autoclip's
 * `QuantileClip` (the reference's parity trainer). Both gather the gradients into one buffer
 * first (`grad_arena.ts`), so a step takes three dispatches however many parameters there are;
 * the kernels are in `shaders/clip.ts`.
 */
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { fromArray, zeros } from "../ops/creation.ts";
import { mapInto } from "../ops/map.ts";
import { reshape } from "../ops/views.ts";
import { keep } from "../tensor/scope.ts";
import { Tensor } from "../tensor/tensor.ts";
import {
  chunkScaleSpec,
  chunkSumsqSpec,
  normFinishSpec,
  quantileStepSpec,
  rebuildSortedSpec,
} from "../../shaders/clip.ts";
import { type ArenaLayout, gatherGrads } from "./grad_arena.ts";

/** Sums of squares of every chunk of a gathered arena into a new `[nChunks]` tensor. */
function chunkSumsq(arena: Tensor, l: ArenaLayout): Tensor {
  const part = Tensor.empty([Math.max(l.nChunks, 1)]);
  launch(chunkSumsqSpec, [arena.buffer, l.chunks.buffer, part.buffer], [l.nChunks], grid1d(l.nChunks));
  return part;
}

/** Scales every segment s of the arena by `coef[off + s·stride]`. */
function chunkScale(arena: Tensor, l: ArenaLayout, coef: Tensor, off: number, stride: number): void {
  launch(
    chunkScaleSpec,
    [arena.buffer, l.chunks.buffer, coef.buffer],
    [l.nChunks, off, stride],
    grid1d(l.nChunks),
  );
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
  const { arena, layout } = gatherGrads(grads);
  const part = chunkSumsq(arena, layout);
  launch(normFinishSpec, [part.buffer, out.buffer], [layout.nChunks, f32bits(Math.min(maxNorm, 3.4e38))], [
    1,
  ]);
  part.dispose();
  chunkScale(arena, layout, out, 1, 0);
  arena.dispose();
  out.dispose();
  return norm;
}

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
 * `step()` before the optimizer's step. Entirely on the GPU in three dispatches per step
 * whatever the number of parameters: the gradients are gathered into one buffer
 * (`grad_arena.ts`; each `p.grad` keeps its identity) and each parameter's window of past norms
 * is kept sorted, so a step moves only the entries between the removed and the inserted norm.
 */
export class QuantileClip {
  /** The clipped parameters. */
  readonly params: readonly Tensor[];
  /** The quantile in [0, 1]. */
  readonly quantile: number;
  /** History length. */
  readonly historyLength: number;
  /** Rings of past norms `[params, L]`, the same windows sorted, and norms recorded per parameter. */
  #hist: Tensor;
  #sorted: Tensor;
  #gpuCounts: Tensor;
  #views: Tensor[];
  #counts: number[];
  #step: KernelSpec;
  /** Segment tables (`[param, first partial, end partial]` per gradient) by parameter subset. */
  #segs = new Map<string, Tensor>();

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
    let spec = stepSpecs.get(L);
    if (!spec) stepSpecs.set(L, spec = quantileStepSpec(L));
    this.#step = spec;
    const n = Math.max(this.params.length, 1);
    this.#hist = keep(zeros([n * L]));
    this.#sorted = keep(zeros([n * L]));
    this.#gpuCounts = keep(fromArray(new Uint32Array(n)));
    this.#views = this.params.map((_, i) => keep(this.#hist.alias([L], [1], i * L)));
    this.#counts = this.params.map(() => 0);
  }

  /** Clips every parameter that has a gradient (in place) and records its norm. */
  step(): void {
    const active: number[] = [];
    this.params.forEach((p, i) => {
      if (p.grad && p.grad.size > 0) active.push(i);
    });
    if (active.length === 0) return;
    const { arena, layout } = gatherGrads(active.map((i) => this.params[i].grad!));
    const part = chunkSumsq(arena, layout);
    const coef = Tensor.empty([active.length]);
    const seg = this.#segTable(active, layout);
    launch(
      this.#step,
      [part.buffer, seg.buffer, this.#hist.buffer, this.#sorted.buffer, this.#gpuCounts.buffer, coef.buffer],
      [active.length, f32bits(this.quantile)],
      grid1d(active.length),
    );
    part.dispose();
    chunkScale(arena, layout, coef, 0, 1);
    coef.dispose();
    arena.dispose();
    for (const i of active) this.#counts[i]++;
  }

  #segTable(active: number[], l: ArenaLayout): Tensor {
    const key = active.join(",") + "|" + l.chunkRange.map((r) => r.join(":")).join(",");
    let t = this.#segs.get(key);
    if (!t) {
      if (this.#segs.size >= 8) {
        for (const old of this.#segs.values()) old.dispose();
        this.#segs.clear();
      }
      t = keep(fromArray(Uint32Array.from(active.flatMap((p, s) => [p, ...l.chunkRange[s]]))));
      this.#segs.set(key, t);
    }
    return t;
  }

  /** Metadata (counts) and the history tensors named `history.<index>` (own tensors: do not dispose). */
  stateDict(): { meta: QuantileClipMeta; tensors: Map<string, Tensor> } {
    return {
      meta: { counts: [...this.#counts], quantile: this.quantile, historyLength: this.historyLength },
      tensors: new Map(this.#views.map((h, i) => [`history.${i}`, h])),
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
    const src = this.#views.map((_, i) => {
      const t = tensors.get(`history.${i}`);
      if (!t || t.size !== this.historyLength) {
        throw new Error(`QuantileClip.loadStateDict: 'history.${i}' is missing or has the wrong size`);
      }
      return t;
    });
    this.#views.forEach((v, i) => {
      if (src[i] === v) return;
      const flat = reshape(src[i], [this.historyLength]);
      mapInto(v, "x0", [flat]);
      if (flat !== src[i]) flat.dispose();
    });
    this.#counts = [...meta.counts];
    this.#gpuCounts.dispose();
    this.#gpuCounts = keep(fromArray(Uint32Array.from(this.#counts)));
    const n = this.params.length;
    if (n > 0) {
      launch(
        rebuildSpec(this.historyLength),
        [this.#hist.buffer, this.#sorted.buffer, this.#gpuCounts.buffer],
        [n],
        grid1d(n),
      );
    }
  }

  /** Frees the history buffers. */
  dispose(): void {
    for (const t of [this.#hist, this.#sorted, this.#gpuCounts, ...this.#views, ...this.#segs.values()]) {
      t.dispose();
    }
    this.#segs.clear();
  }
}

const stepSpecs = new Map<number, KernelSpec>();
const rebuildSpecs = new Map<number, KernelSpec>();

function rebuildSpec(L: number): KernelSpec {
  let s = rebuildSpecs.get(L);
  if (!s) rebuildSpecs.set(L, s = rebuildSortedSpec(L));
  return s;
}
