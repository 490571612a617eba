/**
 * Image file decoding to 8-bit RGB (HWC): JPEG through `jpeg-js` (greyscale and Adobe CMYK JPEGs are
 * converted to RGB by it), and PNG through `fast-png` (ImageNet's train set holds a PNG named `.JPEG`).
 * Also a JPEG encoder for tests and benchmarks.
 */
import jpeg from "jpeg-js";
import { decodePng } from "../plot/png.ts";
import type { Image8 } from "./types.ts";

/** True when `bytes` start with the JPEG SOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47;
}

/**
 * Decodes a JPEG or PNG file's bytes to an RGB image (alpha dropped, grey and CMYK converted).
 * `what` (usually the path) names the file in errors.
 */
export function decodeImage(bytes: Uint8Array, what = "image"): Image8 {
  if (isJpeg(bytes)) {
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    } catch (e) {
      throw new Error(`${what}: cannot decode JPEG (${(e as Error).message})`);
    }
    const n = img.width * img.height * 3;
    if (img.data.length !== n) {
      throw new Error(`${what}: JPEG decoder returned ${img.data.length} bytes, not ${n}`);
    }
    return { pixels: img.data, h: img.height, w: img.width, c: 3 };
  }
  if (isPng(bytes)) {
    let rgba;
    try {
      rgba = decodePng(bytes);
    } catch (e) {
      throw new Error(`${what}: cannot decode PNG (${(e as Error).message})`);
    }
    const n = rgba.width * rgba.height;
    const pixels = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      pixels[3 * p] = rgba.data[4 * p];
      pixels[3 * p + 1] = rgba.data[4 * p + 1];
      pixels[3 * p + 2] = rgba.data[4 * p + 2];
    }
    return { pixels, h: rgba.height, w: rgba.width, c: 3 };
  }
  const head = Array.from(bytes.subarray(0, 4), (v) => v.toString(16).padStart(2, "0")).join(" ");
  throw new Error(`${what}: not a JPEG or PNG file (starts with ${head || "nothing: empty file"})`);
}

/** Encodes an RGB or grey HWC image as a baseline JPEG (quality 1–100). */
export function encodeJpeg(img: Image8, quality = 90): Uint8Array {
  const n = img.w * img.h;
  if (img.pixels.length !== n * img.c || (img.c !== 1 && img.c !== 3)) {
    throw new Error(
      `encodeJpeg: expected ${img.h}×${img.w}×(1|3) bytes, got ${img.pixels.length} (c=${img.c})`,
    );
  }
  const rgba = new Uint8Array(n * 4);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < 3; k++) rgba[4 * p + k] = img.pixels[p * img.c + (img.c === 3 ? k : 0)];
    rgba[4 * p + 3] = 255;
  }
  const out = jpeg.encode({ data: rgba, width: img.w, height: img.h }, quality).data;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
