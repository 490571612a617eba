/**
 * The reference's `ShallowWide` image backbone (`models/modules.py`): two wide 3×3 convolutions
 * with channel GLUs and batch norms, the second one grouped. Names `layers.{0,2,3,5}.*`.
 */
import { Sequential } from "../nn/containers.ts";
import { Conv2d } from "../nn/conv.ts";
import { initRng } from "../nn/init.ts";
import { GLU } from "../nn/layers.ts";
import { Module } from "../nn/module.ts";
import { BatchNorm2d } from "../nn/norm2d.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";

/** Options of {@link ShallowWide}. */
export interface ShallowWideOptions {
  /** Input channels; omit for a lazy first convolution (the reference's). */
  inChannels?: number;
  /** Channels after each GLU (default 2048); the convolutions produce twice as many. */
  width?: number;
  /** Groups of the second convolution (default 32). */
  groups?: number;
  /** Generator for the initial weights. */
  rng?: Rng;
}

/**
 * `Conv2d(C → 2w, 3×3, stride 2, pad 1)` → GLU over channels → BatchNorm2d(w) →
 * `Conv2d(w → 2w, 3×3, pad 1, groups)` → GLU → BatchNorm2d(w); both convolutions have biases.
 * With the defaults (w = 2048, groups 32) the output is `[B, 2048, ⌈H/2⌉, ⌈W/2⌉]`.
 */
export class ShallowWide extends Module {
  /** Output channels w. */
  readonly outChannels: number;
  /** The layer stack. */
  readonly layers: Sequential;

  /** Builds the stack (the first convolution is lazy unless `inChannels` is given). */
  constructor(opts: ShallowWideOptions = {}) {
    super();
    const w = opts.width ?? 2048, groups = opts.groups ?? 32, rng = opts.rng ?? initRng();
    if (!Number.isInteger(w) || w < 1 || w % groups !== 0) {
      throw new Error(`ShallowWide: width (${w}) must be a positive multiple of groups (${groups})`);
    }
    this.outChannels = w;
    this.layers = this.registerModule(
      "layers",
      new Sequential(
        new Conv2d(2 * w, { inChannels: opts.inChannels, kernelSize: 3, stride: 2, padding: 1, rng }),
        new GLU(1),
        new BatchNorm2d(w),
        new Conv2d(2 * w, { inChannels: w, kernelSize: 3, stride: 1, padding: 1, groups, rng }),
        new GLU(1),
        new BatchNorm2d(w),
      ),
    );
  }

  /** Features of `x [B, C, H, W]`: `[B, w, ⌈H/2⌉, ⌈W/2⌉]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 4) {
      throw new Error(`ShallowWide: expects images [B, C, H, W], got [${x.shape.join(", ")}]`);
    }
    return this.layers.forward(x);
  }
}
