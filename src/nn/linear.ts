/**
 * `Linear`: `y = x·Wᵀ + b` with PyTorch's weight layout `[out, in]`, optionally lazy in its input
 * width like `torch.nn.LazyLinear` (materialised on the first forward or when a state dict is
 * loaded).
 */
import { linear } from "../ops/matmul.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { defaultLinearInit_, initRng } from "./init.ts";
import { Module } from "./module.ts";

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Input width; omit for a lazy layer that takes it from the first input's last dim. */
  inFeatures?: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** Generator for the initial values (default: the process-wide one of `seedInit`). */
  rng?: Rng;
}

/**
 * A fully connected layer. Parameters `weight` `[out, in]` and `bias` `[out]`, both initialised
 * from U(±1/√in) as in PyTorch (weight first, then bias).
 *
 * @example
 * ```ts
 * import { initGpu, Linear, randn } from "./mod.ts";
 * await initGpu();
 * const fc = new Linear(16);            // lazy: in-features from the first input
 * const y = fc.forward(randn([4, 8]));  // [4, 16]; fc.weight is now [16, 8]
 * ```
 */
export class Linear extends Module {
  /** Output width. */
  readonly outFeatures: number;
  /** Whether the layer has a bias. */
  readonly hasBias: boolean;
  #inFeatures: number | null;
  #rng: Rng;

  /** Creates the layer; with `inFeatures` the parameters exist at once, else on first use. */
  constructor(outFeatures: number, opts: LinearOptions = {}) {
    super();
    if (!Number.isInteger(outFeatures) || outFeatures <= 0) {
      throw new Error(`Linear: outFeatures must be a positive integer, got ${outFeatures}`);
    }
    this.outFeatures = outFeatures;
    this.hasBias = opts.bias ?? true;
    this.#rng = opts.rng ?? initRng();
    this.#inFeatures = null;
    if (opts.inFeatures !== undefined) this.materialize(opts.inFeatures);
  }

  /** Input width, or null while the layer is still lazy. */
  get inFeatures(): number | null {
    return this.#inFeatures;
  }

  /** True once the parameters exist. */
  get isMaterialized(): boolean {
    return this.#inFeatures !== null;
  }

  /** The weight `[out, in]` (throws while lazy). */
  get weight(): Tensor {
    if (this.#inFeatures === null) {
      throw new Error("Linear: the weight of a lazy layer exists after its first forward");
    }
    return this.getParameter("weight");
  }

  /** The bias `[out]`, or null without bias (throws while lazy). */
  get bias(): Tensor | null {
    if (!this.hasBias) return null;
    if (this.#inFeatures === null) {
      throw new Error("Linear: the bias of a lazy layer exists after its first forward");
    }
    return this.getParameter("bias");
  }

  /** Creates and initialises the parameters for input width `inFeatures` (once). */
  materialize(inFeatures: number): void {
    if (this.#inFeatures !== null) {
      if (inFeatures !== this.#inFeatures) {
        throw new Error(`Linear: built for ${this.#inFeatures} input features, got ${inFeatures}`);
      }
      return;
    }
    if (!Number.isInteger(inFeatures) || inFeatures <= 0) {
      throw new Error(`Linear: inFeatures must be a positive integer, got ${inFeatures}`);
    }
    this.#inFeatures = inFeatures;
    const w = defaultLinearInit_(Tensor.empty([this.outFeatures, inFeatures]), inFeatures, this.#rng);
    this.registerParameter("weight", w);
    if (this.hasBias) {
      this.registerParameter(
        "bias",
        defaultLinearInit_(Tensor.empty([this.outFeatures]), inFeatures, this.#rng),
      );
    }
  }

  /** Materialises a lazy layer from the checkpoint's `weight` shape before loading. */
  protected override prepareLoad(prefix: string, state: Map<string, Tensor>): void {
    if (this.#inFeatures !== null) return;
    const w = state.get(`${prefix}weight`);
    if (!w) return;
    if (w.ndim !== 2 || w.shape[0] !== this.outFeatures) {
      throw new Error(
        `loadStateDict: '${prefix}weight' has shape [${w.shape.join(", ")}] but the lazy Linear ` +
          `expects [${this.outFeatures}, in]`,
      );
    }
    this.materialize(w.shape[1]);
  }

  /** `x·Wᵀ + b` over the last dim of `x` (any leading dims). */
  override forward(x: Tensor): Tensor {
    if (x.ndim < 1) throw new Error("Linear: input needs at least one dim");
    const n = x.shape[x.ndim - 1];
    if (this.#inFeatures === null) this.materialize(n);
    else if (n !== this.#inFeatures) {
      throw new Error(
        `Linear: input [${x.shape.join(", ")}] has ${n} features, the layer expects ${this.#inFeatures}`,
      );
    }
    return linear(x, this.weight, this.bias ?? undefined);
  }
}
