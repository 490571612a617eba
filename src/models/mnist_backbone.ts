/**
 * The reference's small conv backbone for digit images (`MNISTBackbone`, used by its QAMNIST CTM):
 * two blocks of LazyConv2d(d, 3×3, stride 1, pad 1) → BatchNorm2d(d) → ReLU → MaxPool2d(2, 2), as
 * one `layers` Sequential (state-dict names `layers.0.weight`, `layers.1.running_mean`, …,
 * `layers.4.weight`). On 28×28 input it gives `[B, d, 7, 7]`; on 32×32, `[B, d, 8, 8]`.
 * This toolkit also offers it to the image trainers as `backbone_type mnist` for small images.
 */
import { Sequential } from "../nn/containers.ts";
import { Conv2d } from "../nn/conv.ts";
import { ReLU } from "../nn/layers.ts";
import { Module } from "../nn/module.ts";
import { BatchNorm2d } from "../nn/norm2d.ts";
import { MaxPool2d } from "../nn/pool.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { initRng } from "../nn/init.ts";
import type { Rng } from "../util/rng.ts";

/** Two conv → BN → ReLU → 2×2 max-pool blocks of width `d`. */
export class MnistBackbone extends Module {
  /** The eight layers. */
  readonly layers: Sequential;

  /** Creates the blocks; the first conv takes its input channels from the first forward. */
  constructor(d: number, opts: { rng?: Rng } = {}) {
    super();
    const rng = opts.rng ?? initRng();
    const block = (inChannels?: number) => [
      new Conv2d(d, { inChannels, kernelSize: 3, stride: 1, padding: 1, rng }),
      new BatchNorm2d(d),
      new ReLU(),
      new MaxPool2d(2, { stride: 2 }),
    ];
    this.layers = this.registerModule("layers", new Sequential(...block(), ...block(d)));
  }

  /** `[B, C, H, W]` → `[B, d, ⌊⌊H/2⌋/2⌋, ⌊⌊W/2⌋/2⌋]`. */
  override forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}
