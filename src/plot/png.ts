/**
 * PNG files through `fast-png`: encode an {@link RgbaImage}, decode any PNG back to 8-bit RGBA, and
 * write atomically.
 */
import { convertIndexedToRgb, decode, encode } from "fast-png";
import { writeFileAtomic } from "../util/std.ts";
import type { RgbaImage } from "./image.ts";

/** Encodes an RGBA image as PNG bytes. */
export function encodePng(img: RgbaImage): Uint8Array {
  if (img.data.length !== img.width * img.height * 4) {
    throw new Error("encodePng: data is not width*height*4 bytes");
  }
  return encode({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/** Decodes PNG bytes (any colour type or bit depth) to an 8-bit RGBA image. */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const png = decode(bytes);
  const { width, height } = png;
  const n = width * height;
  let src: ArrayLike<number> = png.data, channels = png.channels;
  if (png.palette) {
    src = convertIndexedToRgb(png);
    channels = png.palette[0]?.length ?? 3;
  } else if (png.depth < 8) throw new Error(`decodePng: ${png.depth}-bit greyscale PNGs are not supported`);
  const shift = !png.palette && png.depth === 16 ? 8 : 0;
  const data = new Uint8Array(n * 4);
  for (let p = 0; p < n; p++) {
    const s = p * channels, d = p * 4;
    const get = (c: number) => src[s + c] >> shift;
    if (channels >= 3) {
      data[d] = get(0);
      data[d + 1] = get(1);
      data[d + 2] = get(2);
      data[d + 3] = channels === 4 ? get(3) : 255;
    } else {
      data[d] = data[d + 1] = data[d + 2] = get(0);
      data[d + 3] = channels === 2 ? get(1) : 255;
    }
  }
  return { width, height, data };
}

/** Writes an image (or ready PNG bytes) to `path` atomically, creating the directory if needed. */
export async function writePng(path: string, image: RgbaImage | Uint8Array): Promise<void> {
  await writeFileAtomic(path, image instanceof Uint8Array ? image : encodePng(image));
}

/** Reads a PNG file as an 8-bit RGBA image. */
export async function readPng(path: string): Promise<RgbaImage> {
  return decodePng(await Deno.readFile(path));
}
