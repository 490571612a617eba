/**
 * RGBA images on the host and the pixel operations the plots need: blank canvases, nearest and
 * bilinear resizing, rows, columns and grids of images, padding to a common size, alpha blending,
 * and conversion of float tensors (an input image, in HWC or CHW layout) to displayable pixels.
 *
 * Everything here is synchronous and pure (no text, no I/O); text goes through
 * {@link import("./render.ts")}.
 */

/** An 8-bit RGBA image, rows top to bottom, 4 bytes a pixel (straight, not premultiplied alpha). */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * 4` bytes, RGBA. */
  data: Uint8Array;
}

/** An RGBA colour, each channel 0–255 (alpha optional, 255 when missing). */
export type Rgba = readonly [number, number, number, number?];

/** White, the default background. */
export const WHITE: Rgba = [255, 255, 255, 255];

function check(img: RgbaImage): void {
  if (img.data.length !== img.width * img.height * 4) {
    throw new Error(
      `RGBA image ${img.width}x${img.height} needs ${
        img.width * img.height * 4
      } bytes, got ${img.data.length}`,
    );
  }
}

/** A new `width`×`height` image filled with `color` (white by default). */
export function createImage(width: number, height: number, color: Rgba = WHITE): RgbaImage {
  if (!(width >= 1 && height >= 1) || !Number.isInteger(width) || !Number.isInteger(height)) {
    throw new Error(`image size must be positive integers, got ${width}x${height}`);
  }
  const data = new Uint8Array(width * height * 4);
  const [r, g, b, a = 255] = color;
  for (let i = 0; i < data.length; i += 4) {
    data[i] = r;
    data[i + 1] = g;
    data[i + 2] = b;
    data[i + 3] = a;
  }
  return { width, height, data };
}

/** The RGBA value at pixel (x, y). */
export function getPixel(img: RgbaImage, x: number, y: number): [number, number, number, number] {
  const i = (y * img.width + x) * 4;
  return [img.data[i], img.data[i + 1], img.data[i + 2], img.data[i + 3]];
}

/** Copies `src` into `dst` with its top-left corner at (x, y), clipped to `dst`; alpha is copied, not blended. */
export function blit(dst: RgbaImage, src: RgbaImage, x: number, y: number): void {
  check(dst);
  check(src);
  const x0 = Math.max(0, x), y0 = Math.max(0, y);
  const x1 = Math.min(dst.width, x + src.width), y1 = Math.min(dst.height, y + src.height);
  if (x1 <= x0) return;
  for (let yy = y0; yy < y1; yy++) {
    const s = ((yy - y) * src.width + (x0 - x)) * 4;
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * 4), (yy * dst.width + x0) * 4);
  }
}

/** Resampling filter of {@link resize}: `nearest` keeps hard cell edges, `bilinear` smooths. */
export type ResizeMode = "nearest" | "bilinear";

/** Resizes an image to `width`×`height` (nearest by default). */
export function resize(
  img: RgbaImage,
  width: number,
  height: number,
  mode: ResizeMode = "nearest",
): RgbaImage {
  check(img);
  const out = createImage(width, height);
  const { data: s, width: sw, height: sh } = img;
  const d = out.data;
  if (mode === "nearest") {
    for (let y = 0; y < height; y++) {
      const sy = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / width));
        const si = (sy * sw + sx) * 4, di = (y * width + x) * 4;
        d[di] = s[si];
        d[di + 1] = s[si + 1];
        d[di + 2] = s[si + 2];
        d[di + 3] = s[si + 3];
      }
    }
    return out;
  }
  // Bilinear with pixel centres aligned (as align_corners=False), edges clamped.
  for (let y = 0; y < height; y++) {
    const fy = Math.min(sh - 1, Math.max(0, ((y + 0.5) * sh) / height - 0.5));
    const y0 = Math.floor(fy), y1 = Math.min(sh - 1, y0 + 1), wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(sw - 1, Math.max(0, ((x + 0.5) * sw) / width - 0.5));
      const x0 = Math.floor(fx), x1 = Math.min(sw - 1, x0 + 1), wx = fx - x0;
      const a = (y0 * sw + x0) * 4, b = (y0 * sw + x1) * 4, c = (y1 * sw + x0) * 4, e = (y1 * sw + x1) * 4;
      const di = (y * width + x) * 4;
      for (let k = 0; k < 4; k++) {
        const top = s[a + k] + (s[b + k] - s[a + k]) * wx;
        const bot = s[c + k] + (s[e + k] - s[c + k]) * wx;
        d[di + k] = Math.round(top + (bot - top) * wy);
      }
    }
  }
  return out;
}

/** Enlarges an image by an integer factor with nearest-neighbour sampling (crisp cells). */
export function upscale(img: RgbaImage, factor: number): RgbaImage {
  if (!Number.isInteger(factor) || factor < 1) {
    throw new Error(`upscale factor must be a positive integer, got ${factor}`);
  }
  return factor === 1
    ? { ...img, data: img.data.slice() }
    : resize(img, img.width * factor, img.height * factor);
}

/** Layout options of {@link hstack}, {@link vstack} and {@link grid}. */
export interface LayoutOptions {
  /** Pixels between images (default 4). */
  gap?: number;
  /** Pixels around the whole layout (default 0). */
  pad?: number;
  /** Fill colour (default white). */
  background?: Rgba;
}

/**
 * Lays images out in a grid, row-major, `cols` per row; each cell is as wide as the widest image of
 * its column and as tall as the tallest of its row, and images are centred in their cells.
 */
export function grid(images: RgbaImage[], cols: number, opts: LayoutOptions = {}): RgbaImage {
  if (images.length === 0) throw new Error("grid needs at least one image");
  const gap = opts.gap ?? 4, pad = opts.pad ?? 0;
  cols = Math.max(1, Math.min(cols, images.length));
  const rows = Math.ceil(images.length / cols);
  const colW = new Array(cols).fill(0), rowH = new Array(rows).fill(0);
  images.forEach((im, i) => {
    colW[i % cols] = Math.max(colW[i % cols], im.width);
    rowH[Math.floor(i / cols)] = Math.max(rowH[Math.floor(i / cols)], im.height);
  });
  const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
  const out = createImage(
    sum(colW) + gap * (cols - 1) + 2 * pad,
    sum(rowH) + gap * (rows - 1) + 2 * pad,
    opts.background ?? WHITE,
  );
  let y = pad;
  for (let r = 0; r < rows; r++) {
    let x = pad;
    for (let c = 0; c < cols; c++) {
      const im = images[r * cols + c];
      if (im) {
        blit(out, im, x + Math.floor((colW[c] - im.width) / 2), y + Math.floor((rowH[r] - im.height) / 2));
      }
      x += colW[c] + gap;
    }
    y += rowH[r] + gap;
  }
  return out;
}

/** Images side by side, left to right, vertically centred. */
export function hstack(images: RgbaImage[], opts: LayoutOptions = {}): RgbaImage {
  return grid(images, images.length, opts);
}

/** Images one above the other, top to bottom, horizontally centred. */
export function vstack(images: RgbaImage[], opts: LayoutOptions = {}): RgbaImage {
  return grid(images, 1, opts);
}

/** `img` centred on a white `W`×`H` canvas (`img` itself when it already has that size). */
export function padTo(img: RgbaImage, W: number, H: number): RgbaImage {
  if (img.width === W && img.height === H) return img;
  const out = createImage(W, H);
  blit(out, img, Math.floor((W - img.width) / 2), Math.floor((H - img.height) / 2));
  return out;
}

/** Pads every frame to the largest width and height among them (frames of a GIF must all have the same size). */
export function sameSize(frames: RgbaImage[]): RgbaImage[] {
  const W = Math.max(...frames.map((f) => f.width)), H = Math.max(...frames.map((f) => f.height));
  return frames.map((f) => padTo(f, W, H));
}

/**
 * Blends `top` over `base` (same size; `top` is resized bilinearly when not): each pixel becomes
 * `base·(1−a) + top·a` with `a = alpha · top's own alpha / 255`. Returns a new image.
 */
export function blend(base: RgbaImage, top: RgbaImage, alpha = 0.5): RgbaImage {
  check(base);
  if (top.width !== base.width || top.height !== base.height) {
    top = resize(top, base.width, base.height, "bilinear");
  }
  const out = { width: base.width, height: base.height, data: base.data.slice() };
  const d = out.data, t = top.data;
  for (let i = 0; i < d.length; i += 4) {
    const a = (alpha * t[i + 3]) / 255;
    d[i] = Math.round(d[i] * (1 - a) + t[i] * a);
    d[i + 1] = Math.round(d[i + 1] * (1 - a) + t[i + 1] * a);
    d[i + 2] = Math.round(d[i + 2] * (1 - a) + t[i + 2] * a);
  }
  return out;
}

/** Options of {@link imageFromFloats}. */
export interface FloatImageOptions {
  /** 1 (grey) or 3 (RGB) channels; default 3. */
  channels?: 1 | 3;
  /** `hwc` (height, width, channel; default) or `chw` (channel-first, as tensors usually are). */
  layout?: "hwc" | "chw";
  /** Value shown as black (default: the data's minimum). */
  min?: number;
  /** Value shown as full intensity (default: the data's maximum). */
  max?: number;
  /** Per-channel mean and std to undo a normalisation first (`x·std + mean`). */
  denormalize?: { mean: readonly number[]; std: readonly number[] };
}

/**
 * Turns float pixel values (e.g. a model's input image read back from a tensor) into an RGBA image:
 * optional de-normalisation, then a linear map of [min, max] to [0, 255], clamped.
 */
export function imageFromFloats(
  values: ArrayLike<number>,
  height: number,
  width: number,
  opts: FloatImageOptions = {},
): RgbaImage {
  const C = opts.channels ?? 3, chw = opts.layout === "chw";
  const n = height * width;
  if (values.length !== n * C) {
    throw new Error(`expected ${n * C} values for ${height}x${width}x${C}, got ${values.length}`);
  }
  const at = (p: number, c: number) => {
    let v = chw ? values[c * n + p] : values[p * C + c];
    if (opts.denormalize) v = v * opts.denormalize.std[c] + opts.denormalize.mean[c];
    return v;
  };
  let lo = opts.min, hi = opts.max;
  if (lo === undefined || hi === undefined) {
    let mn = Infinity, mx = -Infinity;
    for (let p = 0; p < n; p++) {
      for (let c = 0; c < C; c++) {
        const v = at(p, c);
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
    }
    lo ??= mn;
    hi ??= mx;
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = createImage(width, height);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < 3; k++) {
      const v = (at(p, C === 1 ? 0 : k) - lo) * scale;
      out.data[p * 4 + k] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}
