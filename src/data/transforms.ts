/**
 * Image augmentations as serialisable data (so workers can apply them): torchvision's
 * RandomResizedCrop, RandomHorizontalFlip, Resize (shorter side), CenterCrop, RandomCrop with padding
 * and AutoAugment (CIFAR-10 policy, in `autoaugment.ts`), then ToTensor + Normalize into a float CHW
 * buffer. Resizing is PIL's bilinear with antialiasing (a triangle filter widened by the downscale
 * factor), computed in float with one rounding to 8 bits per pass. Per-dataset means/stds of the
 * reference are in {@link DATASET_STATS}.
 */
import type { Rng } from "../util/rng.ts";
import { autoAugmentCifar10 } from "./autoaugment.ts";
import type { Image8 } from "./types.ts";

/** One augmentation step (plain data: it crosses to workers by `postMessage`). */
export type TransformStep =
  | { op: "resize"; size: number | [number, number] }
  | { op: "centerCrop"; size: [number, number] }
  | { op: "randomResizedCrop"; size: [number, number]; scale: [number, number]; ratio: [number, number] }
  | { op: "randomCrop"; size: [number, number]; padding: number }
  | { op: "hflip"; p: number }
  | { op: "autoAugment"; policy: "cifar10" };

/** A whole pipeline: 8-bit steps, then ToTensor (÷255) and, with `mean`/`std`, Normalize. */
export interface TransformSpec {
  /** Steps applied in order to the 8-bit HWC image. */
  steps: TransformStep[];
  /** Per-channel means (or one for all channels) subtracted after ÷255. */
  mean?: number[];
  /** Per-channel standard deviations (or one) divided by after subtracting the mean. */
  std?: number[];
}

/** Per-dataset normalisation. CIFAR and ImageNet are the reference's; MNIST is torchvision's usual. */
export const DATASET_STATS: Readonly<Record<string, { mean: number[]; std: number[] }>> = {
  cifar10: { mean: [0.49139968, 0.48215827, 0.44653124], std: [0.24703233, 0.24348505, 0.26158768] },
  cifar100: {
    mean: [0.5070751592371341, 0.48654887331495067, 0.4409178433670344],
    std: [0.2673342858792403, 0.2564384629170882, 0.27615047132568393],
  },
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  mnist: { mean: [0.1307], std: [0.3081] },
  /** Our choice: the Fashion-MNIST train set's pixel mean and std (checked by a test). */
  "fashion-mnist": { mean: [0.2860], std: [0.3530] },
};

const pair = (s: number | [number, number]): [number, number] => typeof s === "number" ? [s, s] : s;

/** Resize: an integer resizes the shorter side to it (aspect kept, long side truncated); [h, w] is exact. */
export function resize(size: number | [number, number]): TransformStep {
  return { op: "resize", size };
}

/** CenterCrop to `size` (zero-padded when the image is smaller). */
export function centerCrop(size: number | [number, number]): TransformStep {
  return { op: "centerCrop", size: pair(size) };
}

/** RandomResizedCrop: torchvision's 10 tries at an area/aspect sample, then a centre fallback. */
export function randomResizedCrop(
  size: number | [number, number],
  opts: { scale?: [number, number]; ratio?: [number, number] } = {},
): TransformStep {
  return {
    op: "randomResizedCrop",
    size: pair(size),
    scale: opts.scale ?? [0.08, 1],
    ratio: opts.ratio ?? [3 / 4, 4 / 3],
  };
}

/** RandomCrop of `size` after zero-padding every side by `padding` (CIFAR's "crop 32 pad 4"). */
export function randomCrop(size: number | [number, number], padding = 0): TransformStep {
  return { op: "randomCrop", size: pair(size), padding };
}

/** RandomHorizontalFlip with probability `p`. */
export function randomHorizontalFlip(p = 0.5): TransformStep {
  return { op: "hflip", p };
}

/** AutoAugment with the CIFAR-10 policy (25 sub-policies), as the reference uses for CIFAR-10/100. */
export function autoAugment(policy: "cifar10" = "cifar10"): TransformStep {
  return { op: "autoAugment", policy };
}

/**
 * The reference's pipelines (§3.1). ImageNet-style: train RandomResizedCrop(224)+flip, test
 * Resize(256)+CenterCrop(224). CIFAR: train AutoAugment (or `cifarAugment: "crop-flip"` for
 * RandomCrop(32, pad 4)+flip), test none. MNIST / Fashion-MNIST: none. All end with Normalize.
 */
export function presetTransform(
  dataset: string,
  split: "train" | "test" | "val",
  opts: { cifarAugment?: "autoaugment" | "crop-flip"; size?: number } = {},
): TransformSpec {
  const train = split === "train";
  const key = dataset === "imagefolder" ? "imagenet" : dataset;
  const stats = DATASET_STATS[key];
  if (!stats) {
    throw new Error(`presetTransform: unknown dataset "${dataset}" (${Object.keys(DATASET_STATS)})`);
  }
  let steps: TransformStep[] = [];
  if (key === "imagenet") {
    const size = opts.size ?? 224;
    steps = train
      ? [randomResizedCrop(size), randomHorizontalFlip()]
      : [resize(Math.round(size * 256 / 224)), centerCrop(size)];
  } else if (train && key.startsWith("cifar")) {
    steps = opts.cifarAugment === "crop-flip" ? [randomCrop(32, 4), randomHorizontalFlip()] : [autoAugment()];
  }
  return { steps, mean: [...stats.mean], std: [...stats.std] };
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Resampling weights of one axis: output o reads `n[o]` inputs from `lo[o]` with `w[o*k…]`. */
function axisWeights(inSize: number, outSize: number, start: number, span: number) {
  const scale = span / outSize, fs = Math.max(scale, 1), support = fs;
  const k = Math.ceil(support) * 2 + 1;
  const lo = new Int32Array(outSize), n = new Int32Array(outSize), w = new Float32Array(outSize * k);
  for (let o = 0; o < outSize; o++) {
    const centre = start + (o + 0.5) * scale;
    const a = Math.max(Math.trunc(centre - support + 0.5), 0),
      b = Math.min(Math.trunc(centre + support + 0.5), inSize);
    let sum = 0;
    for (let x = a; x < b; x++) {
      const t = Math.abs((x - centre + 0.5) / fs);
      const v = t < 1 ? 1 - t : 0;
      w[o * k + x - a] = v;
      sum += v;
    }
    for (let x = a; x < b; x++) w[o * k + x - a] /= sum || 1;
    lo[o] = a;
    n[o] = b - a;
  }
  return { lo, n, w, k };
}

/**
 * Bilinear (antialiased, PIL-style) resize of the box (top, left, boxH, boxW) of `img` to outH × outW:
 * a horizontal pass then a vertical pass, each rounded to 8 bits.
 */
export function resizeBox(
  img: Image8,
  top: number,
  left: number,
  boxH: number,
  boxW: number,
  outH: number,
  outW: number,
): Image8 {
  const { c, w: W } = img, src = img.pixels;
  const hx = axisWeights(W, outW, left, boxW), vy = axisWeights(img.h, outH, top, boxH);
  const y0 = vy.lo[0], y1 = vy.lo[outH - 1] + vy.n[outH - 1]; // rows the vertical pass needs
  const mid = new Uint8Array((y1 - y0) * outW * c);
  for (let y = y0; y < y1; y++) {
    for (let o = 0; o < outW; o++) {
      const a = hx.lo[o], m = hx.n[o], wo = o * hx.k;
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let t = 0; t < m; t++) s += hx.w[wo + t] * src[((y * W) + a + t) * c + ch];
        mid[((y - y0) * outW + o) * c + ch] = s < 0 ? 0 : s > 255 ? 255 : Math.round(s);
      }
    }
  }
  const out = new Uint8Array(outH * outW * c), row = outW * c;
  for (let o = 0; o < outH; o++) {
    const a = vy.lo[o] - y0, m = vy.n[o], wo = o * vy.k;
    for (let i = 0; i < row; i++) {
      let s = 0;
      for (let t = 0; t < m; t++) s += vy.w[wo + t] * mid[(a + t) * row + i];
      out[o * row + i] = s < 0 ? 0 : s > 255 ? 255 : Math.round(s);
    }
  }
  return { pixels: out, h: outH, w: outW, c };
}

/** Crops (top, left, h, w); parts outside the image are zero (used for padding). */
export function cropPad(img: Image8, top: number, left: number, h: number, w: number): Image8 {
  const { c } = img, out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.h) continue;
    const x0 = Math.max(0, -left), x1 = Math.min(w, img.w - left);
    if (x1 <= x0) continue;
    out.set(
      img.pixels.subarray((sy * img.w + left + x0) * c, (sy * img.w + left + x1) * c),
      (y * w + x0) * c,
    );
  }
  return { pixels: out, h, w, c };
}

/** Mirrors left–right. */
export function hflip(img: Image8): Image8 {
  const { h, w, c } = img, out = new Uint8Array(img.pixels.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = img.pixels[(y * w + w - 1 - x) * c + k];
    }
  }
  return { pixels: out, h, w, c };
}

/** torchvision's RandomResizedCrop box (top, left, h, w) for an H×W image. */
export function randomResizedCropBox(
  H: number,
  W: number,
  scale: [number, number],
  ratio: [number, number],
  rng: Rng,
): [number, number, number, number] {
  const area = H * W, lr0 = Math.log(ratio[0]), lr1 = Math.log(ratio[1]);
  for (let t = 0; t < 10; t++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(lr0, lr1));
    const w = roundHalfEven(Math.sqrt(target * aspect)), h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) return [rng.int(H - h + 1), rng.int(W - w + 1), h, w];
  }
  const inRatio = W / H;
  let w = W, h = H;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return [Math.trunc((H - h) / 2), Math.trunc((W - w) / 2), h, w];
}

/** Applies one step. */
export function applyStep(img: Image8, s: TransformStep, rng: Rng): Image8 {
  switch (s.op) {
    case "resize": {
      let oh: number, ow: number;
      if (typeof s.size === "number") {
        const short = Math.min(img.h, img.w), long = Math.max(img.h, img.w);
        const nl = Math.trunc(s.size * long / short);
        [oh, ow] = img.h <= img.w ? [s.size, nl] : [nl, s.size];
      } else [oh, ow] = s.size;
      return oh === img.h && ow === img.w ? img : resizeBox(img, 0, 0, img.h, img.w, oh, ow);
    }
    case "centerCrop": {
      const [ch, cw] = s.size;
      const top = img.h >= ch ? roundHalfEven((img.h - ch) / 2) : -Math.floor((ch - img.h) / 2);
      const left = img.w >= cw ? roundHalfEven((img.w - cw) / 2) : -Math.floor((cw - img.w) / 2);
      return cropPad(img, top, left, ch, cw);
    }
    case "randomResizedCrop": {
      const [t, l, h, w] = randomResizedCropBox(img.h, img.w, s.scale, s.ratio, rng);
      return resizeBox(img, t, l, h, w, s.size[0], s.size[1]);
    }
    case "randomCrop": {
      const [th, tw] = s.size, p = s.padding, H = img.h + 2 * p, W = img.w + 2 * p;
      if (H < th || W < tw) {
        throw new Error(`randomCrop: ${th}×${tw} is larger than the padded ${H}×${W} image`);
      }
      return cropPad(img, rng.int(H - th + 1) - p, rng.int(W - tw + 1) - p, th, tw);
    }
    case "hflip":
      return rng.next() < s.p ? hflip(img) : img;
    case "autoAugment":
      return autoAugmentCifar10(img, rng);
    default:
      throw new Error(`unknown transform step ${JSON.stringify(s)}`);
  }
}

/** Applies every step of `spec` (not the final ToTensor/Normalize). */
export function applySteps(img: Image8, spec: TransformSpec, rng: Rng): Image8 {
  for (const s of spec.steps) img = applyStep(img, s, rng);
  return img;
}

/**
 * ToTensor + Normalize: writes `img` as float CHW, `(v / 255 - mean[c]) / std[c]`, into `out` from
 * `offset`. A single mean/std applies to every channel.
 */
export function toTensorInto(img: Image8, spec: TransformSpec, out: Float32Array, offset = 0): void {
  const { h, w, c, pixels } = img, n = h * w;
  const mean = spec.mean ?? [0], std = spec.std ?? [1];
  if ((mean.length !== 1 && mean.length !== c) || (std.length !== 1 && std.length !== c)) {
    throw new Error(`normalize: ${mean.length} means / ${std.length} stds for ${c}-channel images`);
  }
  for (let k = 0; k < c; k++) {
    const m = mean[mean.length === 1 ? 0 : k], sd = std[std.length === 1 ? 0 : k];
    const a = 1 / (255 * sd), b = -m / sd, o = offset + k * n;
    for (let p = 0; p < n; p++) out[o + p] = pixels[p * c + k] * a + b;
  }
}
