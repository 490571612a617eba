/** Pooling layers with PyTorch semantics: `MaxPool2d` and `AdaptiveAvgPool2d` (no parameters). */
import { adaptiveAvgPool2d, maxPool2d, type MaxPool2dOptions, type Size2 } from "../ops/pool.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Module } from "./module.ts";

/** Options of {@link MaxPool2d} besides the kernel size. */
export type MaxPool2dLayerOptions = Omit<MaxPool2dOptions, "kernelSize">;

/**
 * Max pooling over `[B, C, H, W]` (or `[C, H, W]`), like `torch.nn.MaxPool2d(kernel_size, stride,
 * padding, dilation, ceil_mode=...)`; the stride defaults to the kernel size.
 *
 * @example
 * ```ts
 * import { initGpu, randn, MaxPool2d } from "./mod.ts";
 * await initGpu();
 * const y = new MaxPool2d(3, { stride: 2, padding: 1 }).forward(randn([1, 2, 8, 8])); // [1, 2, 4, 4]
 * ```
 */
export class MaxPool2d extends Module {
  /** The pooling geometry. */
  readonly options: MaxPool2dOptions;

  /** Creates the layer; options are checked on the first forward. */
  constructor(kernelSize: Size2, opts: MaxPool2dLayerOptions = {}) {
    super();
    this.options = { ...opts, kernelSize };
  }

  /** Pools `x`. */
  override forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }
}

/**
 * Adaptive average pooling to a fixed output size, like `torch.nn.AdaptiveAvgPool2d(output_size)`
 * (`null` in a pair keeps that input dim).
 *
 * @example
 * ```ts
 * import { initGpu, randn, AdaptiveAvgPool2d } from "./mod.ts";
 * await initGpu();
 * const y = new AdaptiveAvgPool2d(1).forward(randn([2, 8, 5, 5])); // [2, 8, 1, 1]
 * ```
 */
export class AdaptiveAvgPool2d extends Module {
  /** Output size: one for both dims or `[OH, OW]`. */
  readonly outputSize: number | readonly [number | null, number | null];

  /** Creates the layer. */
  constructor(outputSize: number | readonly [number | null, number | null]) {
    super();
    this.outputSize = outputSize;
  }

  /** Pools `x`. */
  override forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}
