/**
 * Animated GIFs from RGBA frames through `gifenc`: one colour table shared by all frames (so colours
 * do not flicker between frames), exact when the frames use at most 256 colours (heatmaps), else
 * quantised from a sample of every frame.
 */
import * as gifenc from "gifenc/dist/gifenc.esm.js";
import { writeFileAtomic } from "../util/std.ts";
import type { RgbaImage } from "./image.ts";

type Palette = number[][];
interface Encoder {
  writeFrame(
    index: Uint8Array,
    width: number,
    height: number,
    opts: { palette?: Palette; delay?: number; repeat?: number },
  ): void;
  finish(): void;
  bytes(): Uint8Array;
}
const lib = gifenc as unknown as {
  GIFEncoder(): Encoder;
  quantize(rgba: Uint8Array, maxColors: number, opts?: { format?: string }): Palette;
  applyPalette(rgba: Uint8Array, palette: Palette, format?: string): Uint8Array;
};

/** Options of {@link encodeGif}. */
export interface GifOptions {
  /** Delay between frames in milliseconds (default 100; GIF stores hundredths of a second). */
  delayMs?: number;
  /** How long the last frame stays before looping (default: `delayMs`). */
  lastDelayMs?: number;
  /** `true` (default) loops forever, `false` plays once, a number loops that many extra times. */
  loop?: boolean | number;
}

/** Up to 256 distinct RGB colours of the frames, or null when there are more. */
function exactPalette(frames: RgbaImage[]): Map<number, number> | null {
  const map = new Map<number, number>();
  for (const f of frames) {
    const d = f.data;
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      if (!map.has(key)) {
        if (map.size === 256) return null;
        map.set(key, map.size);
      }
    }
  }
  return map;
}

/** A sample of at most ~`limit` pixels spread over all frames, for quantisation. */
function samplePixels(frames: RgbaImage[], limit = 1 << 19): Uint8Array {
  const total = frames.reduce((s, f) => s + f.width * f.height, 0);
  const stride = Math.max(1, Math.ceil(total / limit));
  const out = new Uint8Array(Math.ceil(total / stride) * 4 + 4 * frames.length);
  let o = 0;
  for (const f of frames) {
    for (let p = 0; p < f.width * f.height; p += stride) {
      out.set(f.data.subarray(p * 4, p * 4 + 4), o);
      o += 4;
    }
  }
  return out.subarray(0, o);
}

/** Encodes frames (all the same size, alpha ignored) as an animated GIF; returns the bytes. */
export function encodeGif(frames: RgbaImage[], opts: GifOptions = {}): Uint8Array {
  if (frames.length === 0) throw new Error("encodeGif needs at least one frame");
  const { width, height } = frames[0];
  for (const [i, f] of frames.entries()) {
    if (f.width !== width || f.height !== height) {
      throw new Error(`GIF frame ${i} is ${f.width}x${f.height}, frame 0 is ${width}x${height}`);
    }
    if (f.data.length !== width * height * 4) {
      throw new Error(`GIF frame ${i}: data is not width*height*4 bytes`);
    }
  }
  const delay = opts.delayMs ?? 100;
  const loop = opts.loop ?? true;
  const repeat = loop === true ? 0 : loop === false ? -1 : Math.max(0, Math.floor(loop));

  const exact = exactPalette(frames);
  let palette: Palette;
  let indexOf: (f: RgbaImage) => Uint8Array;
  if (exact) {
    palette = [...exact.keys()].map((k) => [(k >> 16) & 255, (k >> 8) & 255, k & 255]);
    indexOf = (f) => {
      const idx = new Uint8Array(width * height);
      const d = f.data;
      for (let p = 0; p < idx.length; p++) {
        idx[p] = exact.get((d[p * 4] << 16) | (d[p * 4 + 1] << 8) | d[p * 4 + 2])!;
      }
      return idx;
    };
  } else {
    palette = lib.quantize(samplePixels(frames), 256, { format: "rgb565" });
    indexOf = (f) => lib.applyPalette(f.data, palette, "rgb565");
  }
  // GIF colour tables have a power-of-two size of at least 2 entries.
  while (palette.length < 2) palette.push([0, 0, 0]);

  const enc = lib.GIFEncoder();
  frames.forEach((f, i) => {
    const last = i === frames.length - 1;
    enc.writeFrame(indexOf(f), width, height, {
      ...(i === 0 ? { palette, repeat } : {}),
      delay: last ? opts.lastDelayMs ?? delay : delay,
    });
  });
  enc.finish();
  return enc.bytes();
}

/** Encodes frames as an animated GIF and writes it to `path` atomically (see {@link encodeGif}). */
export async function writeGif(path: string, frames: RgbaImage[], opts: GifOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeGif(frames, opts));
}
