/**
 * AutoAugment with the CIFAR-10 policy (Cubuk et al. 2019; torchvision's `AutoAugmentPolicy.CIFAR10`),
 * on 8-bit HWC images: each call picks one of 25 sub-policies uniformly; each of its two operations
 * runs with its probability at its magnitude bin (of 10); signed magnitudes are negated half the
 * time. Geometric operations use nearest sampling and fill with 0, like torchvision's defaults; the
 * colour operations follow PIL's ImageEnhance / ImageOps definitions.
 */
import type { Rng } from "../util/rng.ts";
import type { Image8 } from "./types.ts";

/** The name of an AutoAugment operation. */
export type AugOp =
  | "ShearX"
  | "ShearY"
  | "TranslateX"
  | "TranslateY"
  | "Rotate"
  | "Brightness"
  | "Color"
  | "Contrast"
  | "Sharpness"
  | "Posterize"
  | "Solarize"
  | "AutoContrast"
  | "Equalize"
  | "Invert";

/** A sub-policy: two (operation, probability, magnitude bin or null) triples. */
export type SubPolicy = [[AugOp, number, number | null], [AugOp, number, number | null]];

/** The 25 CIFAR-10 sub-policies found by AutoAugment. */
export const CIFAR10_POLICY: readonly SubPolicy[] = [
  [["Invert", 0.1, null], ["Contrast", 0.2, 6]],
  [["Rotate", 0.7, 2], ["TranslateX", 0.3, 9]],
  [["Sharpness", 0.8, 1], ["Sharpness", 0.9, 3]],
  [["ShearY", 0.5, 8], ["TranslateY", 0.7, 9]],
  [["AutoContrast", 0.5, null], ["Equalize", 0.9, null]],
  [["ShearY", 0.2, 7], ["Posterize", 0.3, 7]],
  [["Color", 0.4, 3], ["Brightness", 0.6, 7]],
  [["Sharpness", 0.3, 9], ["Brightness", 0.7, 9]],
  [["Equalize", 0.6, null], ["Equalize", 0.5, null]],
  [["Contrast", 0.6, 7], ["Sharpness", 0.6, 5]],
  [["Color", 0.7, 7], ["TranslateX", 0.5, 8]],
  [["Equalize", 0.3, null], ["AutoContrast", 0.4, null]],
  [["TranslateY", 0.4, 3], ["Sharpness", 0.2, 6]],
  [["Brightness", 0.9, 6], ["Color", 0.2, 8]],
  [["Solarize", 0.5, 2], ["Invert", 0.0, null]],
  [["Equalize", 0.2, null], ["AutoContrast", 0.6, null]],
  [["Equalize", 0.2, null], ["Equalize", 0.6, null]],
  [["Color", 0.9, 9], ["Equalize", 0.6, null]],
  [["AutoContrast", 0.8, null], ["Solarize", 0.2, 8]],
  [["Brightness", 0.1, 3], ["Color", 0.7, 0]],
  [["Solarize", 0.4, 5], ["AutoContrast", 0.9, null]],
  [["TranslateY", 0.9, 9], ["TranslateY", 0.7, 9]],
  [["AutoContrast", 0.9, null], ["Solarize", 0.8, 3]],
  [["Equalize", 0.8, null], ["Invert", 0.1, null]],
  [["TranslateY", 0.7, 9], ["AutoContrast", 0.9, null]],
];

const BINS = 10;
const lin = (a: number, b: number, i: number) => a + (b - a) * i / (BINS - 1);

/** The magnitude of bin `bin` for `op` on an h×w image, and whether its sign is randomised. */
export function magnitude(op: AugOp, bin: number, h: number, w: number): [number, boolean] {
  switch (op) {
    case "ShearX":
    case "ShearY":
      return [lin(0, 0.3, bin), true];
    case "TranslateX":
      return [lin(0, 150 / 331 * w, bin), true];
    case "TranslateY":
      return [lin(0, 150 / 331 * h, bin), true];
    case "Rotate":
      return [lin(0, 30, bin), true];
    case "Brightness":
    case "Color":
    case "Contrast":
    case "Sharpness":
      return [lin(0, 0.9, bin), true];
    case "Posterize": {
      const r = bin / ((BINS - 1) / 4), f = Math.floor(r);
      return [8 - (r - f === 0.5 ? f + (f % 2) : Math.round(r)), false];
    }
    case "Solarize":
      return [lin(255, 0, bin), false];
    default:
      return [0, false];
  }
}

/** Inverse-maps every output pixel centre through `m` = [a, b, c, d, e, f] and samples the nearest. */
function affineNearest(img: Image8, m: number[]): Image8 {
  const { h, w, c, pixels } = img, out = new Uint8Array(pixels.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const X = x + 0.5, Y = y + 0.5;
      const sx = Math.floor(m[0] * X + m[1] * Y + m[2]), sy = Math.floor(m[3] * X + m[4] * Y + m[5]);
      if (sx < 0 || sy < 0 || sx >= w || sy >= h) continue;
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = pixels[(sy * w + sx) * c + k];
    }
  }
  return { pixels: out, h, w, c };
}

function mapLut(img: Image8, lut: (v: number, k: number) => number): Image8 {
  const { c, pixels } = img, out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = lut(pixels[i], i % c);
  return { ...img, pixels: out };
}

const clip8 = (v: number) => v < 0 ? 0 : v > 255 ? 255 : Math.round(v);

/** `degenerate + f·(img − degenerate)`, clipped (PIL's ImageEnhance blend). */
function blend(img: Image8, degenerate: Uint8Array | number, f: number): Image8 {
  const out = new Uint8Array(img.pixels.length);
  for (let i = 0; i < out.length; i++) {
    const d = typeof degenerate === "number" ? degenerate : degenerate[i];
    out[i] = clip8(d + f * (img.pixels[i] - d));
  }
  return { ...img, pixels: out };
}

/** PIL's "L" conversion (ITU-R 601-2 luma), one value per pixel. */
function luma(img: Image8): Uint8Array {
  const n = img.h * img.w, out = new Uint8Array(n), p = img.pixels;
  if (img.c === 1) return p.slice();
  for (let i = 0; i < n; i++) {
    out[i] = (p[3 * i] * 19595 + p[3 * i + 1] * 38470 + p[3 * i + 2] * 7471 + 0x8000) >> 16;
  }
  return out;
}

function greyAsImage(img: Image8): Uint8Array {
  const l = luma(img), out = new Uint8Array(img.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = l[Math.floor(i / img.c)];
  return out;
}

/** PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13); border pixels are kept. */
function smooth(img: Image8): Uint8Array {
  const { h, w, c, pixels } = img, out = pixels.slice();
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let k = 0; k < c; k++) {
        let s = 4 * pixels[(y * w + x) * c + k];
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) s += pixels[((y + dy) * w + x + dx) * c + k];
        }
        out[(y * w + x) * c + k] = clip8(s / 13);
      }
    }
  }
  return out;
}

function autoContrast(img: Image8): Image8 {
  const lo = new Array(img.c).fill(255), hi = new Array(img.c).fill(0);
  img.pixels.forEach((v, i) => {
    const k = i % img.c;
    if (v < lo[k]) lo[k] = v;
    if (v > hi[k]) hi[k] = v;
  });
  return mapLut(img, (v, k) => {
    if (hi[k] <= lo[k]) return v;
    const s = 255 / (hi[k] - lo[k]);
    return Math.min(255, Math.max(0, Math.trunc(v * s - lo[k] * s)));
  });
}

function equalize(img: Image8): Image8 {
  const luts: Uint8Array[] = [];
  for (let k = 0; k < img.c; k++) {
    const hist = new Array(256).fill(0);
    for (let i = k; i < img.pixels.length; i += img.c) hist[img.pixels[i]]++;
    const nz = hist.filter((v) => v > 0), lut = new Uint8Array(256);
    const step = nz.length <= 1 ? 0 : Math.floor((nz.reduce((a, b) => a + b, 0) - nz[nz.length - 1]) / 255);
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      lut[i] = step ? Math.min(255, Math.floor(n / step)) : i;
      n += hist[i];
    }
    luts.push(lut);
  }
  return mapLut(img, (v, k) => luts[k][v]);
}

/** Applies one AutoAugment operation at a signed magnitude. */
export function applyAugOp(img: Image8, op: AugOp, mag: number): Image8 {
  const { h, w } = img;
  switch (op) {
    case "ShearX":
      return affineNearest(img, [1, mag, 0, 0, 1, 0]);
    case "ShearY":
      return affineNearest(img, [1, 0, 0, mag, 1, 0]);
    case "TranslateX":
      return affineNearest(img, [1, 0, -Math.trunc(mag), 0, 1, 0]);
    case "TranslateY":
      return affineNearest(img, [1, 0, 0, 0, 1, -Math.trunc(mag)]);
    case "Rotate": {
      const t = mag * Math.PI / 180, cs = Math.cos(t), sn = Math.sin(t), cx = w / 2, cy = h / 2;
      return affineNearest(img, [cs, sn, cx - cs * cx - sn * cy, -sn, cs, cy + sn * cx - cs * cy]);
    }
    case "Brightness":
      return blend(img, 0, 1 + mag);
    case "Color":
      return blend(img, greyAsImage(img), 1 + mag);
    case "Contrast": {
      const l = luma(img);
      const mean = Math.trunc(l.reduce((a, b) => a + b, 0) / l.length + 0.5);
      return blend(img, mean, 1 + mag);
    }
    case "Sharpness":
      return blend(img, smooth(img), 1 + mag);
    case "Posterize": {
      const mask = (0xff << (8 - mag)) & 0xff;
      return mapLut(img, (v) => v & mask);
    }
    case "Solarize":
      return mapLut(img, (v) => v < mag ? v : 255 - v);
    case "AutoContrast":
      return autoContrast(img);
    case "Equalize":
      return equalize(img);
    case "Invert":
      return mapLut(img, (v) => 255 - v);
  }
}

/** AutoAugment (CIFAR-10 policy) of one image with randomness from `rng`. */
export function autoAugmentCifar10(img: Image8, rng: Rng): Image8 {
  const sub = CIFAR10_POLICY[rng.int(CIFAR10_POLICY.length)];
  for (const [op, p, bin] of sub) {
    const apply = rng.next() <= p, negate = rng.next() < 0.5;
    if (!apply) continue;
    let [mag, signed] = bin === null ? [0, false] : magnitude(op, bin, img.h, img.w);
    if (signed && negate) mag = -mag;
    img = applyAugOp(img, op, mag);
  }
  return img;
}
