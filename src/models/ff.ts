/**
 * The feed-forward baseline of the CTM paper (reference `models/ff.py`): `initial_rgb` (lazy 1×1
 * conv to 3 channels) → a truncated ResNet → global average pool → Linear(d_model) → ReLU →
 * Dropout → Linear(out_dims). One prediction per image, no internal ticks. Parameter names match
 * the reference state dict (`initial_rgb`, `backbone`, `output_projector.{3,6}`).
 */
import { Sequential } from "../nn/containers.ts";
import { Conv2d } from "../nn/conv.ts";
import { initRng } from "../nn/init.ts";
import { Dropout, ReLU, Squeeze } from "../nn/layers.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import { AdaptiveAvgPool2d } from "../nn/pool.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { VALID_BACKBONE_TYPES } from "./backbones.ts";
import { parseResNetType, ResNet } from "./resnet.ts";

/** Constructor arguments of the FF baseline (the reference's, in camelCase). */
export interface FfBaselineOptions {
  /** Width of the hidden layer of the head. */
  dModel: number;
  /**
   * `resnetXX-k` picks the ResNet family (by substring) and keeps stages 1…k. As in the
   * reference, `none`, `shallow-wide` and `parity_backbone` are accepted and build a full
   * 4-stage resnet18.
   */
  backboneType: string;
  /** Output width (classes). */
  outDims: number;
  /** Dropout before the last layer (default 0). */
  dropout?: number;
  /** Generator for the initial weights. */
  rng?: Rng;
}

/** Checks the baseline's arguments, with clear messages. */
export function verifyFfBaselineOptions(o: FfBaselineOptions): void {
  if (o.backboneType !== "none" && !VALID_BACKBONE_TYPES.includes(o.backboneType)) {
    throw new Error(
      `unknown backbone_type '${o.backboneType}'; valid: none, ${VALID_BACKBONE_TYPES.join(", ")}`,
    );
  }
  for (const k of ["dModel", "outDims"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
  }
  const p = o.dropout ?? 0;
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout must be in [0, 1], got ${p}`);
}

/**
 * The FF baseline: logits `[B, outDims]` for images `[B, C, H, W]`.
 *
 * @example
 * ```ts
 * import { initGpu, FfBaseline, randn } from "./mod.ts";
 * await initGpu();
 * const ff = new FfBaseline({ dModel: 256, backboneType: "resnet18-1", outDims: 10 });
 * const logits = ff.forward(randn([2, 3, 32, 32])); // [2, 10]; 169,046 parameters
 * ```
 */
export class FfBaseline extends Module {
  /** The options the model was built with (defaults filled in). */
  readonly options: Required<Omit<FfBaselineOptions, "rng">>;
  /** `initial_rgb`: lazy 1×1 convolution to 3 channels. */
  readonly initialRgb: Conv2d;
  /** `backbone`: the truncated ResNet. */
  readonly backbone: ResNet;
  /** `output_projector`: pool, squeeze ×2, Linear, ReLU, Dropout, Linear. */
  readonly outputProjector: Sequential;

  /** Builds the model. */
  constructor(opts: FfBaselineOptions) {
    super();
    verifyFfBaselineOptions(opts);
    const o = this.options = { dropout: 0, ...opts } as FfBaseline["options"];
    const rng = opts.rng ?? initRng();
    this.initialRgb = this.registerModule("initial_rgb", new Conv2d(3, { kernelSize: 1, stride: 1, rng }));
    this.backbone = this.registerModule(
      "backbone",
      new ResNet({ ...parseResNetType(o.backboneType), inChannels: 3, rng }),
    );
    this.outputProjector = this.registerModule(
      "output_projector",
      new Sequential(
        new AdaptiveAvgPool2d(1),
        new Squeeze(-1),
        new Squeeze(-1),
        new Linear(o.dModel, { inFeatures: this.backbone.outChannels, rng }),
        new ReLU(),
        new Dropout(o.dropout),
        new Linear(o.outDims, { inFeatures: o.dModel, rng }),
      ),
    );
  }

  /** Logits `[B, outDims]` for images `x [B, C, H, W]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`FfBaseline: expects images [B, C, H, W], got [${x.shape.join(", ")}]`);
    const r = this.initialRgb.forward(x);
    const f = this.backbone.forward(r);
    r.dispose();
    const out = this.outputProjector.forward(f);
    f.dispose();
    return out;
  }
}
