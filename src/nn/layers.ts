/**
 * Small layers with PyTorch names, parameters and default initialisations: LayerNorm, Embedding,
 * Dropout, and the parameter-free GLU, SiLU, ReLU, Identity and Squeeze.
 */
import { embedding } from "../ops/indexing.ts";
import { layerNorm } from "../ops/norm.ts";
import { dropout } from "../ops/random.ts";
import { glu, relu, silu } from "../ops/unary.ts";
import { squeeze } from "../ops/views.ts";
import { record } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { constant_, initRng, normal_ } from "./init.ts";
import { Module } from "./module.ts";

/** A new handle on `x` that passes gradients straight through (the result of an identity layer). */
export function identity(x: Tensor): Tensor {
  const out = x.alias(x.shape, x.strides, x.offset, true);
  return record("identity", [x], out, (g) => [g.alias(g.shape, g.strides, g.offset, true)]);
}

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn `weight` (γ, init 1) and `bias` (β, init 0); default true. */
  affine?: boolean;
  /** With `affine`, whether there is a `bias` (default true). */
  bias?: boolean;
}

/** Layer normalisation over the trailing `normalizedShape` dims, like `torch.nn.LayerNorm`. */
export class LayerNorm extends Module {
  /** The normalised trailing shape. */
  readonly normalizedShape: readonly number[];
  /** Variance epsilon. */
  readonly eps: number;

  /** `normalizedShape` is a width or a list of trailing dims. */
  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.eps = opts.eps ?? 1e-5;
    if (opts.affine ?? true) {
      this.registerParameter("weight", constant_(Tensor.empty(this.normalizedShape), 1));
      if (opts.bias ?? true) this.registerParameter("bias", constant_(Tensor.empty(this.normalizedShape), 0));
    }
  }

  /** γ, or null without affine parameters. */
  get weight(): Tensor | null {
    return this.findParameter("weight");
  }

  /** β, or null. */
  get bias(): Tensor | null {
    return this.findParameter("bias");
  }

  /** Normalises `x` over its trailing dims. */
  override forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}

/** Options of {@link Embedding}. */
export interface EmbeddingOptions {
  /** Generator for the N(0, 1) initial table (default: the process-wide one). */
  rng?: Rng;
}

/** A lookup table `weight` `[num, dim]` initialised from N(0, 1), like `torch.nn.Embedding`. */
export class Embedding extends Module {
  /** Number of rows. */
  readonly numEmbeddings: number;
  /** Row width. */
  readonly embeddingDim: number;

  /** Creates the table. */
  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    if (![numEmbeddings, embeddingDim].every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`Embedding: sizes must be positive integers, got ${numEmbeddings} × ${embeddingDim}`);
    }
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const w = normal_(Tensor.empty([numEmbeddings, embeddingDim]), 0, 1, opts.rng ?? initRng());
    this.registerParameter("weight", w);
  }

  /** The table `[num, dim]`. */
  get weight(): Tensor {
    return this.getParameter("weight");
  }

  /** Rows for integer `indices` of any shape S, giving `[...S, dim]`. */
  override forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight);
  }
}

/** Dropout with probability `p` in training mode; the identity in eval mode. */
export class Dropout extends Module {
  /** Probability of zeroing an element. */
  readonly p: number;

  /** Creates the layer (default p = 0.5, as in PyTorch). */
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be in [0, 1], got ${p}`);
    this.p = p;
  }

  /** Applies dropout when training, else passes `x` through. */
  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

/** Gated linear unit over `dim`: first half × sigmoid(second half), like `torch.nn.GLU`. */
export class GLU extends Module {
  /** The split dim (default -1). */
  readonly dim: number;

  /** Creates the layer. */
  constructor(dim = -1) {
    super();
    this.dim = dim;
  }

  /** Applies the GLU. */
  override forward(x: Tensor): Tensor {
    return glu(x, this.dim);
  }
}

/** SiLU activation `x·σ(x)`. */
export class SiLU extends Module {
  /** Applies SiLU. */
  override forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** ReLU activation. */
export class ReLU extends Module {
  /** Applies ReLU. */
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** Passes its input through (a new handle on the same data, gradients flow). */
export class Identity extends Module {
  /** Returns `x` unchanged (as a new handle). */
  override forward(x: Tensor): Tensor {
    return identity(x);
  }
}

/** Removes size-1 dim `dim` (the reference's `Squeeze`). */
export class Squeeze extends Module {
  /** The dim to squeeze. */
  readonly dim: number;

  /** Creates the layer. */
  constructor(dim: number) {
    super();
    this.dim = dim;
  }

  /** Squeezes `x` at `dim` (unchanged when that dim is not 1, like PyTorch). */
  override forward(x: Tensor): Tensor {
    return squeeze(x, this.dim);
  }
}
