/**
 * Backbones and positional embeddings selectable by the reference's names, and the input side the
 * CTM and the LSTM baseline share ({@link Featuriser}): `initial_rgb` → `backbone` →
 * (+ `positional_embedding`) → flatten → `kv_proj`, giving key/value tokens for the attention.
 */
import { add } from "../ops/arith.ts";
import { mapN } from "../ops/map.ts";
import { flatten, permute } from "../ops/views.ts";
import { Sequential } from "../nn/containers.ts";
import { Conv2d } from "../nn/conv.ts";
import { initRng } from "../nn/init.ts";
import { Embedding, Identity, LayerNorm } from "../nn/layers.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import {
  CustomRotationalEmbedding,
  CustomRotationalEmbedding1D,
  LearnableFourierPositionalEncoding,
  MultiLearnableFourierPositionalEncoding,
} from "./positional.ts";
import { MnistBackbone } from "./mnist_backbone.ts";
import { prepareResnetBackbone } from "./resnet.ts";
import { ShallowWide } from "./shallow_wide.ts";

export { CustomRotationalEmbedding1D };

/** Every backbone name of the reference (`resnet{18,34,50,101,152}-{1..4}`, shallow-wide, parity). */
export const VALID_BACKBONE_TYPES: readonly string[] = [
  ...[18, 34, 50, 101, 152].flatMap((d) => [1, 2, 3, 4].map((k) => `resnet${d}-${k}`)),
  "shallow-wide",
  "parity_backbone",
];

/**
 * Backbones this toolkit adds: `mnist`, the reference's two-block `MNISTBackbone` (its QAMNIST
 * digit encoder), offered to the image trainers for small greyscale images.
 */
export const EXTRA_BACKBONE_TYPES: readonly string[] = ["mnist"];

/** Every positional-embedding name of the reference. */
export const VALID_POSITIONAL_EMBEDDING_TYPES: readonly string[] = [
  "learnable-fourier",
  "multi-learnable-fourier",
  "custom-rotational",
  "custom-rotational-1d",
];

/** Channel width of a backbone's output, as the reference's `get_d_backbone` gives it. */
export function backboneWidth(type: string, dInput: number): number | null {
  if (type === "none") return null;
  if (type === "shallow-wide") return 2048;
  if (type === "parity_backbone" || type === "mnist") return dInput;
  const m = /^resnet(18|34|50|101|152)-([1-4])$/.exec(type);
  if (!m) {
    throw new Error(
      `unknown backbone_type '${type}'; valid: none, ${
        [...VALID_BACKBONE_TYPES, ...EXTRA_BACKBONE_TYPES].join(", ")
      }`,
    );
  }
  const stage = Number(m[2]);
  const basic = m[1] === "18" || m[1] === "34";
  return (basic ? [64, 128, 256, 512] : [256, 512, 1024, 2048])[stage - 1];
}

/** Maps ±1 sequences `[B, L]` to learned embeddings `[B, d, L]` (+1 → row 1, −1 → row 0). */
export class ParityBackbone extends Module {
  /** The two-row embedding table. */
  readonly embedding: Embedding;

  /** Creates the table (`backbone.embedding.weight`, N(0, 1)). */
  constructor(nEmbeddings: number, dEmbedding: number, opts: { rng?: Rng } = {}) {
    super();
    this.embedding = this.registerModule("embedding", new Embedding(nEmbeddings, dEmbedding, opts));
  }

  /** Embeds `x` (f32 ±1) as `[B, d, L]` (a transposed view). */
  override forward(x: Tensor): Tensor {
    const idx = mapN("select(0i, 1i, x0 == 1.0)", [x], [], "i32");
    const e = this.embedding.forward(idx);
    idx.dispose();
    const t = permute(e, [0, 2, 1]);
    e.dispose();
    return t;
  }
}

/** Builds the backbone module for `type` (`Identity` for `none`). */
export function makeBackbone(type: string, dInput: number, opts: { rng?: Rng } = {}): Module {
  backboneWidth(type, dInput);
  if (type === "none") return new Identity();
  if (type === "parity_backbone") return new ParityBackbone(2, dInput, opts);
  if (type === "shallow-wide") return new ShallowWide(opts);
  if (type === "mnist") return new MnistBackbone(dInput, opts);
  return prepareResnetBackbone(type, opts);
}

/**
 * The module applied to the raw input before the backbone: a lazy 1×1 convolution to 3 channels
 * for ResNet backbones (the reference's "legacy" `initial_rgb`), `Identity` otherwise.
 */
export function makeInitialRgb(type: string, opts: { rng?: Rng } = {}): Module {
  if (!type.includes("resnet")) return new Identity();
  return new Conv2d(3, { kernelSize: 1, stride: 1, rng: opts.rng ?? initRng() });
}

/** Builds the positional embedding for `type`, or null for `none`. */
export function makePositionalEmbedding(
  type: string,
  dBackbone: number | null,
  opts: { rng?: Rng } = {},
): Module | null {
  if (type === "none") return null;
  if (!VALID_POSITIONAL_EMBEDDING_TYPES.includes(type)) {
    throw new Error(
      `unknown positional_embedding_type '${type}'; valid: none, ${
        VALID_POSITIONAL_EMBEDDING_TYPES.join(", ")
      }`,
    );
  }
  if (dBackbone === null) throw new Error("backbone_type 'none' requires positional_embedding_type 'none'");
  switch (type) {
    case "learnable-fourier":
      return new LearnableFourierPositionalEncoding(dBackbone, { gamma: 1 / 2.5, rng: opts.rng });
    case "multi-learnable-fourier":
      return new MultiLearnableFourierPositionalEncoding(dBackbone, { rng: opts.rng });
    case "custom-rotational":
      return new CustomRotationalEmbedding(dBackbone, opts);
    default:
      return new CustomRotationalEmbedding1D(dBackbone, opts);
  }
}

/** Options of {@link Featuriser}. */
export interface FeaturiserOptions {
  /** Backbone name (`resnet18-1`, `parity_backbone`, `none`, …). */
  backboneType: string;
  /** Positional embedding name (`learnable-fourier`, `none`, …). */
  positionalEmbeddingType: string;
  /** Token width after `kv_proj` (the attention width d_input). */
  dInput: number;
  /** Generator for the initial values. */
  rng?: Rng;
}

/** Key/value tokens and the backbone feature shape they came from. */
export interface Features {
  /** Tokens `[B, L, d_input]` (after `kv_proj`). */
  kv: Tensor;
  /** Shape of the backbone output: `[B, C, H′, W′]` for images, `[B, C, L]` for sequences. */
  featureShape: number[];
}

/**
 * The input side shared by the CTM and the LSTM baseline. It registers its modules on the host
 * model under the reference's names, in the reference's order (`initial_rgb`, `backbone`,
 * `positional_embedding` unless `none`, `kv_proj` = Sequential(Linear(d_input), LayerNorm)), so
 * the host's state dict is unchanged; it is not a module itself.
 */
export class Featuriser {
  /** `initial_rgb` (lazy 1×1 conv to 3 channels for ResNets, else Identity). */
  readonly initialRgb: Module;
  /** `backbone`. */
  readonly backbone: Module;
  /** `positional_embedding`, or null for `none`. */
  readonly positionalEmbedding: Module | null;
  /** `kv_proj`. */
  readonly kvProj: Sequential;
  /** Backbone channels (null for `none`: `kv_proj` is then lazy). */
  readonly dBackbone: number | null;

  /** Builds the modules and registers them on `host`. */
  constructor(host: Module, o: FeaturiserOptions) {
    const rng = o.rng ?? initRng();
    if (o.backboneType === "none" && o.positionalEmbeddingType !== "none") {
      throw new Error("backbone_type 'none' requires positional_embedding_type 'none'");
    }
    this.dBackbone = backboneWidth(o.backboneType, o.dInput);
    this.initialRgb = host.registerModule("initial_rgb", makeInitialRgb(o.backboneType, { rng }));
    this.backbone = host.registerModule("backbone", makeBackbone(o.backboneType, o.dInput, { rng }));
    const pe = makePositionalEmbedding(o.positionalEmbeddingType, this.dBackbone, { rng });
    this.positionalEmbedding = pe ? host.registerModule("positional_embedding", pe) : null;
    this.kvProj = host.registerModule(
      "kv_proj",
      new Sequential(
        new Linear(o.dInput, { inFeatures: this.dBackbone ?? undefined, rng }),
        new LayerNorm(o.dInput),
      ),
    );
  }

  /**
   * Raw input → tokens: `kv_proj(flatten₂(f + pe)ᵀ)` with `f = backbone(initial_rgb(x))`. Images
   * `[B, C, H, W]` give `L = H′·W′` tokens in row-major order; parity `[B, L]` gives L tokens.
   */
  featurise(x: Tensor): Features {
    const r = this.initialRgb.forward(x) as Tensor;
    const f = this.backbone.forward(r) as Tensor;
    if (f.ndim < 3) {
      throw new Error(
        `the backbone output must be [B, C, ...] with at least one position dim, got [${
          f.shape.join(", ")
        }]; ` +
          `with backbone 'none' pass the input as [B, C, L] or [B, C, H, W]`,
      );
    }
    // Permute to tokens first, then add the positional embedding: the add writes the tokens
    // contiguously, so kv_proj's matmul needs no copy of a transposed view.
    const flat = flatten(f, 2);
    const ft = permute(flat, [0, 2, 1]);
    let tokens = ft;
    const tmp = [r, f, flat, ft];
    if (this.positionalEmbedding) {
      const pe = this.positionalEmbedding.forward(f) as Tensor;
      const pf = flatten(pe, 2), pt = permute(pf, [0, 2, 1]);
      tokens = add(ft, pt);
      tmp.push(pe, pf, pt, tokens);
    }
    const kv = this.kvProj.forward(tokens);
    const featureShape = [...f.shape];
    for (const t of new Set(tmp)) if (t !== x) t.dispose();
    return { kv, featureShape };
  }
}
