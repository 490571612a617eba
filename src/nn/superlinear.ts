/**
 * `SuperLinear`: N independent linear maps, one per neuron — the CTM's neuron-level models.
 * Parameters follow the reference layout and names: `w1 [in, out, N]`, `b1 [1, N, out]`, a
 * learnable temperature `T [1]`, and, only with `doNorm`, a `layernorm` over the history (the
 * reference builds `LayerNorm(in) if do_norm else Identity()`, so its state dict has
 * `layernorm.{weight,bias}` only when `do_norm`).
 */
import { div } from "../ops/arith.ts";
import { groupedMatmul } from "../ops/matmul.ts";
import { dropout } from "../ops/random.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { constantTensor, initRng, uniformTensor } from "./init.ts";
import { LayerNorm } from "./layers.ts";
import { Module } from "./module.ts";

/** Options of {@link SuperLinear}. */
export interface SuperLinearOptions {
  /** Initial temperature (default 1). */
  T?: number;
  /** Layer-normalise each neuron's input history first (default false). */
  doNorm?: boolean;
  /** Dropout on the input (default 0). */
  dropout?: number;
  /** Generator for the initial weights. */
  rng?: Rng;
}

/**
 * Per-neuron linear layer: `y[b,n,:] = (x[b,n,:] · w1[:,:,n] + b1[0,n,:]) / T` for x `[B, N, in]`.
 *
 * @example
 * ```ts
 * import { initGpu, randn, SuperLinear } from "./mod.ts";
 * await initGpu();
 * const nlm = new SuperLinear(25, 32, 512);    // history 25 → 32 hidden, 512 neurons
 * const y = nlm.forward(randn([8, 512, 25]));  // [8, 512, 32]
 * ```
 */
export class SuperLinear extends Module {
  /** Input width (history length). */
  readonly inDims: number;
  /** Output width per neuron. */
  readonly outDims: number;
  /** Number of neurons. */
  readonly N: number;
  /** Whether the history is layer-normalised. */
  readonly doNorm: boolean;
  /** Input dropout probability. */
  readonly p: number;
  /** The history LayerNorm (null unless `doNorm`). */
  readonly layernorm: LayerNorm | null;

  /** Creates the layer with w1 ~ U(±1/√(in+out)), b1 = 0, T = `T`. */
  constructor(inDims: number, outDims: number, N: number, opts: SuperLinearOptions = {}) {
    super();
    this.inDims = inDims;
    this.outDims = outDims;
    this.N = N;
    this.doNorm = opts.doNorm ?? false;
    this.p = opts.dropout ?? 0;
    const bound = 1 / Math.sqrt(inDims + outDims);
    const rng = opts.rng ?? initRng();
    this.registerParameter("w1", uniformTensor([inDims, outDims, N], -bound, bound, rng));
    this.registerParameter("b1", constantTensor([1, N, outDims], 0));
    this.registerParameter("T", constantTensor([1], opts.T ?? 1));
    this.layernorm = this.doNorm ? this.registerModule("layernorm", new LayerNorm(inDims)) : null;
  }

  /** Maps `[B, N, in]` to `[B, N, out]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 3 || x.shape[1] !== this.N || x.shape[2] !== this.inDims) {
      throw new Error(
        `SuperLinear: expected input [B, ${this.N}, ${this.inDims}], got [${x.shape.join(", ")}]`,
      );
    }
    let h = this.p > 0 ? dropout(x, this.p, this.training) : x;
    if (this.layernorm) {
      const n = this.layernorm.forward(h);
      if (h !== x) h.dispose();
      h = n;
    }
    const y = groupedMatmul(h, this.getParameter("w1"), this.getParameter("b1"));
    if (h !== x) h.dispose();
    const out = div(y, this.getParameter("T"));
    y.dispose();
    return out;
  }
}
