/**
 * Backbones and positional embeddings selectable by the reference's names. Those that belong to
 * the image-classification work (ResNets, shallow-wide, Fourier and 2-D rotational embeddings)
 * are recognised and refused with a clear message until they land.
 */
import { mapN } from "../ops/map.ts";
import { fromArray } from "../ops/creation.ts";
import { permute, unsqueeze } from "../ops/views.ts";
import { Embedding, Identity } from "../nn/layers.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Every backbone name of the reference (`resnet{18,34,50,101,152}-{1..4}`, shallow-wide, parity). */
export const VALID_BACKBONE_TYPES: readonly string[] = [
  ...[18, 34, 50, 101, 152].flatMap((d) => [1, 2, 3, 4].map((k) => `resnet${d}-${k}`)),
  "shallow-wide",
  "parity_backbone",
];

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
  if (type === "parity_backbone") return dInput;
  const m = /^resnet(18|34|50|101|152)-(\d)$/.exec(type);
  if (!m) throw new Error(`unknown backbone_type '${type}'; valid: none, ${VALID_BACKBONE_TYPES.join(", ")}`);
  const stage = Number(m[2]);
  const basic = m[1] === "18" || m[1] === "34";
  return (basic ? [64, 128, 256, 512] : [256, 512, 1024, 2048])[stage - 1];
}

/** Maps ±1 sequences `[B, L]` to learned embeddings `[B, d, L]` (+1 → row 1, −1 → row 0). */
export class ParityBackbone extends Module {
  /** The two-row embedding table. */
  readonly embedding: Embedding;

  /** Creates the table (`backbone.embedding.weight`, N(0, 1)). */
  constructor(nEmbeddings: number, dEmbedding: number) {
    super();
    this.embedding = this.registerModule("embedding", new Embedding(nEmbeddings, dEmbedding));
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

/**
 * Fixed 1-D rotational positions: the vector [0, 1] rotated by angles from 0° to 180° over the
 * sequence, projected by a learned `Linear(2 → d)` (`projection`). Output `[1, d, L]`.
 */
export class CustomRotationalEmbedding1D extends Module {
  /** The learned projection. */
  readonly projection: Linear;

  /** Creates the projection. */
  constructor(dModel: number) {
    super();
    this.projection = this.registerModule("projection", new Linear(dModel, { inFeatures: 2 }));
  }

  /** Positions for features `x [B, d, L]`, broadcastable to it: `[1, d, L]`. */
  override forward(x: Tensor): Tensor {
    const L = x.shape[2];
    const rot = new Float32Array(L * 2);
    for (let i = 0; i < L; i++) {
      const theta = (L === 1 ? 0 : (180 * i) / (L - 1)) * Math.PI / 180;
      rot[2 * i] = -Math.sin(theta);
      rot[2 * i + 1] = Math.cos(theta);
    }
    const v = fromArray(rot, [L, 2]);
    const pe = this.projection.forward(v);
    v.dispose();
    const t = permute(pe, [1, 0]);
    pe.dispose();
    const out = unsqueeze(t, 0);
    t.dispose();
    return out;
  }
}

/** Builds the backbone module for `type` (`Identity` for `none`). */
export function makeBackbone(type: string, dInput: number): Module {
  backboneWidth(type, dInput);
  if (type === "none") return new Identity();
  if (type === "parity_backbone") return new ParityBackbone(2, dInput);
  throw new Error(
    `backbone_type '${type}' is recognised but not available yet: the ResNet and shallow-wide backbones ` +
      `come with image classification. Use 'parity_backbone' or 'none'.`,
  );
}

/** Builds the positional embedding for `type`, or null for `none`. */
export function makePositionalEmbedding(type: string, dBackbone: number | null): Module | null {
  if (type === "none") return null;
  if (!VALID_POSITIONAL_EMBEDDING_TYPES.includes(type)) {
    throw new Error(
      `unknown positional_embedding_type '${type}'; valid: none, ${
        VALID_POSITIONAL_EMBEDDING_TYPES.join(", ")
      }`,
    );
  }
  if (dBackbone === null) throw new Error("backbone_type 'none' requires positional_embedding_type 'none'");
  if (type === "custom-rotational-1d") return new CustomRotationalEmbedding1D(dBackbone);
  throw new Error(
    `positional_embedding_type '${type}' is recognised but not available yet (it comes with image ` +
      `classification). Use 'custom-rotational-1d' or 'none'.`,
  );
}
