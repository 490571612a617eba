/**
 * The reference's ResNet backbones (`models/resnet.py`): torchvision's BasicBlock/Bottleneck
 * ResNets with a 3×3 stride-1 stem (a smaller receptive field, so models must look around), BN,
 * ReLU and MaxPool(3, 2, 1), truncated after stage k for `resnetXX-k`. No avgpool or fc, no
 * pretrained weights, PyTorch default initialisation. Parameter names follow torchvision
 * (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, …).
 */
import { add } from "../ops/arith.ts";
import { relu } from "../ops/unary.ts";
import { Sequential } from "../nn/containers.ts";
import { Conv2d } from "../nn/conv.ts";
import { initRng } from "../nn/init.ts";
import { identity } from "../nn/layers.ts";
import { Module } from "../nn/module.ts";
import { BatchNorm2d } from "../nn/norm2d.ts";
import { MaxPool2d } from "../nn/pool.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";

/** ResNet depths of the reference. */
export type ResNetDepth = 18 | 34 | 50 | 101 | 152;

/** Block kind and blocks per stage of each depth (152 is the repo's [3, 4, 36, 3], not torchvision's). */
export const RESNET_LAYOUTS: Readonly<
  Record<ResNetDepth, { block: "basic" | "bottleneck"; layers: number[] }>
> = {
  18: { block: "basic", layers: [2, 2, 2, 2] },
  34: { block: "basic", layers: [3, 4, 6, 3] },
  50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  101: { block: "bottleneck", layers: [3, 4, 23, 3] },
  152: { block: "bottleneck", layers: [3, 4, 36, 3] },
};

/** Options shared by the blocks. */
interface BlockOptions {
  stride?: number;
  rng?: Rng;
}

/** A bias-free k×k convolution with padding k/2 (torchvision's conv3x3 / conv1x1). */
function conv(inC: number, outC: number, k: 1 | 3, stride: number, rng: Rng): Conv2d {
  return new Conv2d(outC, {
    inChannels: inC,
    kernelSize: k,
    stride,
    padding: k === 3 ? 1 : 0,
    bias: false,
    rng,
  });
}

/** The projection shortcut (1×1 conv with the block's stride + BN) when the shape changes, else null. */
function downsample(inC: number, outC: number, stride: number, rng: Rng): Sequential | null {
  if (stride === 1 && inC === outC) return null;
  return new Sequential(conv(inC, outC, 1, stride, rng), new BatchNorm2d(outC));
}

/** `relu(residual + shortcut)`, freeing both inputs. */
function join(residual: Tensor, shortcut: Tensor): Tensor {
  const s = add(residual, shortcut);
  residual.dispose();
  shortcut.dispose();
  const out = relu(s);
  s.dispose();
  return out;
}

/** Two 3×3 convolutions with BN (expansion 1): `relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut)`. */
export class BasicBlock extends Module {
  /** Output channels = planes. */
  static readonly expansion = 1;
  /** Output channels. */
  readonly outChannels: number;
  readonly #conv1: Conv2d;
  readonly #bn1: BatchNorm2d;
  readonly #conv2: Conv2d;
  readonly #bn2: BatchNorm2d;
  readonly #down: Sequential | null;

  /** Creates the block; the first conv carries the stride. */
  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const stride = opts.stride ?? 1, rng = opts.rng ?? initRng();
    this.outChannels = planes;
    this.#conv1 = this.registerModule("conv1", conv(inplanes, planes, 3, stride, rng));
    this.#bn1 = this.registerModule("bn1", new BatchNorm2d(planes));
    this.#conv2 = this.registerModule("conv2", conv(planes, planes, 3, 1, rng));
    this.#bn2 = this.registerModule("bn2", new BatchNorm2d(planes));
    const d = downsample(inplanes, planes, stride, rng);
    this.#down = d ? this.registerModule("downsample", d) : null;
  }

  /** Runs the block on `[B, C, H, W]`. */
  override forward(x: Tensor): Tensor {
    const c1 = this.#conv1.forward(x);
    const h = this.#bn1.forwardRelu(c1);
    c1.dispose();
    const c2 = this.#conv2.forward(h);
    h.dispose();
    const r = this.#bn2.forward(c2);
    c2.dispose();
    return join(r, this.#down ? this.#down.forward(x) : identity(x));
  }
}

/**
 * 1×1 → 3×3 (stride) → 1×1 convolutions with BN (expansion 4, torchvision v1.5 layout):
 * width `planes`, output `4·planes`.
 */
export class Bottleneck extends Module {
  /** Output channels = 4 · planes. */
  static readonly expansion = 4;
  /** Output channels. */
  readonly outChannels: number;
  readonly #convs: Conv2d[];
  readonly #bns: BatchNorm2d[];
  readonly #down: Sequential | null;

  /** Creates the block; the 3×3 conv carries the stride. */
  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const stride = opts.stride ?? 1, rng = opts.rng ?? initRng();
    const out = planes * Bottleneck.expansion;
    this.outChannels = out;
    const convs = [
      conv(inplanes, planes, 1, 1, rng),
      conv(planes, planes, 3, stride, rng),
      conv(planes, out, 1, 1, rng),
    ];
    const widths = [planes, planes, out];
    this.#convs = [];
    this.#bns = [];
    for (let i = 0; i < 3; i++) {
      this.#convs.push(this.registerModule(`conv${i + 1}`, convs[i]));
      this.#bns.push(this.registerModule(`bn${i + 1}`, new BatchNorm2d(widths[i])));
    }
    const d = downsample(inplanes, out, stride, rng);
    this.#down = d ? this.registerModule("downsample", d) : null;
  }

  /** Runs the block on `[B, C, H, W]`. */
  override forward(x: Tensor): Tensor {
    let h = x;
    for (let i = 0; i < 3; i++) {
      const c = this.#convs[i].forward(h);
      if (h !== x) h.dispose();
      h = i < 2 ? this.#bns[i].forwardRelu(c) : this.#bns[i].forward(c);
      c.dispose();
    }
    return join(h, this.#down ? this.#down.forward(x) : identity(x));
  }
}

/** Options of {@link ResNet}. */
export interface ResNetOptions {
  /** Network depth (block kind and counts per stage). */
  depth: ResNetDepth;
  /** Keep stages 1…`stages` (1–4; default 4). */
  stages?: number;
  /** Input channels: 1 or 3 build the stem at once; anything else (or omitted: 3) … see below. */
  inChannels?: number | null;
  /** Generator for the initial weights. */
  rng?: Rng;
}

/**
 * A truncated ResNet feature extractor: `conv1` (3×3, stride 1, pad 1, no bias) → `bn1` → ReLU →
 * MaxPool(3, 2, 1) → `layer1` … `layer{stages}` (stages 2–4 with stride 2). `inChannels` 1 or 3
 * builds the stem conv at once; any other value (or null) makes it lazy, as in the reference.
 * Output `[B, C, H′, W′]` with C from {@link resnetChannels}.
 *
 * @example
 * ```ts
 * import { initGpu, randn, ResNet } from "./mod.ts";
 * await initGpu();
 * const net = new ResNet({ depth: 18, stages: 1, inChannels: 3 });
 * const f = net.forward(randn([2, 3, 32, 32])); // [2, 64, 16, 16]; 149,824 parameters
 * ```
 */
export class ResNet extends Module {
  /** Depth. */
  readonly depth: ResNetDepth;
  /** Number of stages kept. */
  readonly stages: number;
  /** Channels of the output features. */
  readonly outChannels: number;
  readonly #conv1: Conv2d;
  readonly #bn1: BatchNorm2d;
  readonly #maxpool: MaxPool2d;
  readonly #layers: Sequential[] = [];

  /** Builds the stem and the kept stages. */
  constructor(opts: ResNetOptions) {
    super();
    const layout = RESNET_LAYOUTS[opts.depth];
    if (!layout) throw new Error(`ResNet: depth must be one of 18, 34, 50, 101, 152, got ${opts.depth}`);
    const stages = opts.stages ?? 4;
    if (!Number.isInteger(stages) || stages < 1 || stages > 4) {
      throw new Error(`ResNet: stages must be 1, 2, 3 or 4, got ${stages}`);
    }
    const rng = opts.rng ?? initRng();
    this.depth = opts.depth;
    this.stages = stages;
    const inC = opts.inChannels === undefined ? 3 : opts.inChannels;
    const eager = inC === 1 || inC === 3;
    this.#conv1 = this.registerModule(
      "conv1",
      new Conv2d(64, {
        inChannels: eager ? inC as number : undefined,
        kernelSize: 3,
        stride: 1,
        padding: 1,
        bias: false,
        rng,
      }),
    );
    this.#bn1 = this.registerModule("bn1", new BatchNorm2d(64));
    this.#maxpool = this.registerModule("maxpool", new MaxPool2d(3, { stride: 2, padding: 1 }));
    const Block = layout.block === "basic" ? BasicBlock : Bottleneck;
    let inplanes = 64;
    for (let s = 0; s < stages; s++) {
      const planes = 64 << s;
      const layer = new Sequential();
      for (let b = 0; b < layout.layers[s]; b++) {
        const block = new Block(inplanes, planes, { stride: b === 0 && s > 0 ? 2 : 1, rng });
        layer.append(block);
        inplanes = block.outChannels;
      }
      this.#layers.push(this.registerModule(`layer${s + 1}`, layer));
    }
    this.outChannels = inplanes;
  }

  /** Features of `x [B, C, H, W]`: `[B, outChannels, H′, W′]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`ResNet: expects images [B, C, H, W], got [${x.shape.join(", ")}]`);
    const c = this.#conv1.forward(x);
    const h = this.#bn1.forwardRelu(c);
    c.dispose();
    let f = this.#maxpool.forward(h);
    h.dispose();
    for (const layer of this.#layers) {
      const next = layer.forward(f);
      f.dispose();
      f = next;
    }
    return f;
  }
}

/** Output channels of a ResNet of `depth` truncated after `stages`. */
export function resnetChannels(depth: ResNetDepth, stages: number): number {
  return (64 << (stages - 1)) * (RESNET_LAYOUTS[depth].block === "basic" ? 1 : 4);
}

/** Spatial output size for input size `h`: stem keeps it, maxpool and stages 2…k halve (⌊(h−1)/2⌋+1). */
export function resnetOutputSize(h: number, stages: number): number {
  let s = h;
  for (let i = 0; i < stages; i++) s = Math.floor((s - 1) / 2) + 1;
  return s;
}

/**
 * Reads a `resnetXX-k` name as the reference does: the family by substring ('34', '50', '101',
 * '152', otherwise 18) and the stages from the digits after the last '-' (capped at 4; no digits
 * means all 4 stages).
 */
export function parseResNetType(type: string): { depth: ResNetDepth; stages: number } {
  let depth: ResNetDepth = 18;
  for (const d of [34, 50, 101, 152] as const) if (type.includes(String(d))) depth = d;
  const suffix = type.split("-").at(-1) ?? "";
  const stages = /^\d+$/.test(suffix) ? Math.min(4, Number(suffix)) : 4;
  if (stages < 1) throw new Error(`'${type}': the stage count after '-' must be at least 1`);
  return { depth, stages };
}

/** The reference's `prepare_resnet_backbone(type)`: a ResNet on 3-channel input. */
export function prepareResnetBackbone(type: string, opts: { rng?: Rng } = {}): ResNet {
  return new ResNet({ ...parseResNetType(type), inChannels: 3, rng: opts.rng });
}
