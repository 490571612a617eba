/**
 * `Conv2d`: a 2-D convolution layer with PyTorch's parameter names and default initialisation,
 * optionally lazy in its input channels like `torch.nn.LazyConv2d` (materialised on the first
 * forward or when a state dict is loaded).
 */
import { conv2d } from "../ops/conv.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { defaultLinearInit_, initRng } from "./init.ts";
import { Module } from "./module.ts";

/** Options of {@link Conv2d}: a number applies to both spatial dims, a pair is (h, w). */
export interface Conv2dModuleOptions {
  /** Input channels; omit for a lazy layer that takes them from the first input's dim 1. */
  inChannels?: number;
  /** Kernel size (required). */
  kernelSize: number | [number, number];
  /** Stride (default 1). */
  stride?: number | [number, number];
  /** Zero padding on each side (default 0). */
  padding?: number | [number, number];
  /** Dilation (default 1). */
  dilation?: number | [number, number];
  /** Channel groups (default 1). */
  groups?: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** Generator for the initial values (default: the process-wide one of `seedInit`). */
  rng?: Rng;
}

const pairOf = (v: number | [number, number]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

/**
 * A 2-D convolution over NCHW input. Parameters `weight` `[out, in/groups, kH, kW]` and `bias`
 * `[out]`, both drawn from U(±1/√fanIn), fanIn = in/groups·kH·kW, as PyTorch does (weight first,
 * then bias).
 *
 * @example
 * ```ts
 * import { initGpu, Conv2d, randn } from "./mod.ts";
 * await initGpu();
 * const conv = new Conv2d(16, { kernelSize: 3, padding: 1 }); // lazy: in-channels from the input
 * const y = conv.forward(randn([2, 3, 32, 32]));              // [2, 16, 32, 32]; weight [16, 3, 3, 3]
 * ```
 */
export class Conv2d extends Module {
  /** Output channels. */
  readonly outChannels: number;
  /** Kernel size (h, w). */
  readonly kernelSize: [number, number];
  /** Stride (h, w). */
  readonly stride: [number, number];
  /** Padding (h, w). */
  readonly padding: [number, number];
  /** Dilation (h, w). */
  readonly dilation: [number, number];
  /** Channel groups. */
  readonly groups: number;
  /** Whether the layer has a bias. */
  readonly hasBias: boolean;
  #inChannels: number | null = null;
  #rng: Rng;

  /** Creates the layer; with `inChannels` the parameters exist at once, else on first use. */
  constructor(outChannels: number, opts: Conv2dModuleOptions) {
    super();
    const posInt = (n: number) => Number.isInteger(n) && n > 0;
    if (!posInt(outChannels)) {
      throw new Error(`Conv2d: outChannels must be a positive integer, got ${outChannels}`);
    }
    if (opts?.kernelSize === undefined) throw new Error("Conv2d: kernelSize is required");
    this.outChannels = outChannels;
    this.kernelSize = pairOf(opts.kernelSize);
    this.stride = pairOf(opts.stride ?? 1);
    this.padding = pairOf(opts.padding ?? 0);
    this.dilation = pairOf(opts.dilation ?? 1);
    this.groups = opts.groups ?? 1;
    if (!this.kernelSize.every(posInt)) {
      throw new Error(`Conv2d: kernelSize must be positive integers, got ${JSON.stringify(opts.kernelSize)}`);
    }
    if (!this.stride.every(posInt) || !this.dilation.every(posInt)) {
      throw new Error("Conv2d: stride and dilation must be positive integers");
    }
    if (!this.padding.every((p) => Number.isInteger(p) && p >= 0)) {
      throw new Error(`Conv2d: padding must be integers ≥ 0, got ${JSON.stringify(opts.padding)}`);
    }
    if (!posInt(this.groups) || outChannels % this.groups !== 0) {
      throw new Error(
        `Conv2d: groups (${this.groups}) must be a positive integer dividing outChannels (${outChannels})`,
      );
    }
    this.hasBias = opts.bias ?? true;
    this.#rng = opts.rng ?? initRng();
    if (opts.inChannels !== undefined) this.materialize(opts.inChannels);
  }

  /** Input channels, or null while the layer is still lazy. */
  get inChannels(): number | null {
    return this.#inChannels;
  }

  /** True once the parameters exist. */
  get isMaterialized(): boolean {
    return this.#inChannels !== null;
  }

  /** The weight `[out, in/groups, kH, kW]` (throws while lazy). */
  get weight(): Tensor {
    if (this.#inChannels === null) {
      throw new Error("Conv2d: the weight of a lazy layer exists after its first forward");
    }
    return this.getParameter("weight");
  }

  /** The bias `[out]`, or null without bias (throws while lazy). */
  get bias(): Tensor | null {
    if (!this.hasBias) return null;
    if (this.#inChannels === null) {
      throw new Error("Conv2d: the bias of a lazy layer exists after its first forward");
    }
    return this.getParameter("bias");
  }

  /** Creates and initialises the parameters for `inChannels` input channels (once). */
  materialize(inChannels: number): void {
    if (this.#inChannels !== null) {
      if (inChannels !== this.#inChannels) {
        throw new Error(`Conv2d: built for ${this.#inChannels} input channels, got ${inChannels}`);
      }
      return;
    }
    if (!Number.isInteger(inChannels) || inChannels <= 0 || inChannels % this.groups !== 0) {
      throw new Error(
        `Conv2d: inChannels must be a positive integer divisible by groups (${this.groups}), got ${inChannels}`,
      );
    }
    this.#inChannels = inChannels;
    const [kH, kW] = this.kernelSize;
    const fanIn = (inChannels / this.groups) * kH * kW;
    const shape = [this.outChannels, inChannels / this.groups, kH, kW];
    this.registerParameter("weight", defaultLinearInit_(Tensor.empty(shape), fanIn, this.#rng));
    if (this.hasBias) {
      this.registerParameter("bias", defaultLinearInit_(Tensor.empty([this.outChannels]), fanIn, this.#rng));
    }
  }

  /** Materialises a lazy layer from the checkpoint's `weight` shape before loading. */
  protected override prepareLoad(prefix: string, state: Map<string, Tensor>): void {
    if (this.#inChannels !== null) return;
    const w = state.get(`${prefix}weight`);
    if (!w) return;
    const [kH, kW] = this.kernelSize;
    if (w.ndim !== 4 || w.shape[0] !== this.outChannels || w.shape[2] !== kH || w.shape[3] !== kW) {
      throw new Error(
        `loadStateDict: '${prefix}weight' has shape [${w.shape.join(", ")}] but the lazy Conv2d ` +
          `expects [${this.outChannels}, in/groups, ${kH}, ${kW}]`,
      );
    }
    this.materialize(w.shape[1] * this.groups);
  }

  /** Convolves `x` `[B, in, H, W]` → `[B, out, Ho, Wo]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`Conv2d: input must be [B, C, H, W], got [${x.shape.join(", ")}]`);
    const c = x.shape[1];
    if (this.#inChannels === null) this.materialize(c);
    else if (c !== this.#inChannels) {
      throw new Error(
        `Conv2d: input [${x.shape.join(", ")}] has ${c} channels, the layer expects ${this.#inChannels}`,
      );
    }
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}
