/**
 * MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, …): a parser
 * and a dataset over an images/labels pair. Fashion-MNIST uses the same layout; Debian's
 * `dataset-fashion-mnist` package installs it at {@link FASHION_MNIST_DEFAULT_ROOT}.
 */
import { join } from "../util/std.ts";
import { maybeGunzip } from "./tar.ts";
import {
  checkIndex,
  type DatasetDescription,
  type ImageDataset,
  type ImageSample,
  type Split,
} from "./types.ts";

/** Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST. */
export const FASHION_MNIST_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist";

/** Fashion-MNIST class names, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** MNIST class names ("0" … "9"). */
export const MNIST_CLASSES: readonly string[] = Array.from({ length: 10 }, (_, i) => String(i));

/** A parsed IDX array of unsigned bytes. */
export interface IdxArray {
  /** Dimensions, e.g. [60000, 28, 28] for images or [60000] for labels. */
  dims: number[];
  /** The values, row-major. */
  data: Uint8Array;
}

/** Parses IDX bytes (gzip or raw). Only the unsigned-byte element type (0x08) is supported. */
export function parseIdx(bytes: Uint8Array, what = "IDX file"): IdxArray {
  const b = maybeGunzip(bytes, what);
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) {
    throw new Error(`${what}: not an IDX file (expected magic 0x0000TTDD, got ${hex(b.subarray(0, 4))})`);
  }
  if (b[2] !== 0x08) {
    throw new Error(`${what}: IDX element type 0x${b[2].toString(16)} unsupported (need 0x08)`);
  }
  const nd = b[3], head = 4 + 4 * nd;
  if (nd === 0 || b.length < head) throw new Error(`${what}: IDX header truncated`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i));
  const n = dims.reduce((a, d) => a * d, 1);
  if (b.length - head !== n) {
    throw new Error(
      `${what}: IDX dims ${dims.join("×")} need ${n} bytes of data, file has ${b.length - head}`,
    );
  }
  return { dims, data: b.subarray(head) };
}

function hex(b: Uint8Array): string {
  return "0x" + Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
}

/** The candidate file names of one IDX array (gzip or raw, `-idx3-ubyte` or `.idx3-ubyte`). */
function candidates(prefix: string, kind: "images-idx3" | "labels-idx1"): string[] {
  const base = [`${prefix}-${kind}-ubyte`, `${prefix}-${kind.replace("-", ".")}-ubyte`];
  return base.flatMap((n) => [`${n}.gz`, n]);
}

function findFile(dirs: string[], names: string[]): string | undefined {
  for (const d of dirs) {
    for (const n of names) {
      try {
        if (Deno.statSync(join(d, n)).isFile) return join(d, n);
      } catch { /* not there */ }
    }
  }
  return undefined;
}

/** The folders searched for IDX files under `root` (torchvision keeps them in `raw/`). */
function idxDirs(root: string): string[] {
  return [root, join(root, "raw"), join(root, "MNIST", "raw"), join(root, "FashionMNIST", "raw")];
}

/** Finds the images/labels pair of `split` under `root`, or throws naming the expected layout. */
export function findIdxPair(
  root: string,
  split: Split,
  name = "IDX dataset",
): { images: string; labels: string } {
  const prefix = split === "train" ? "train" : "t10k";
  const dirs = idxDirs(root);
  const images = findFile(dirs, candidates(prefix, "images-idx3"));
  const labels = findFile(dirs, candidates(prefix, "labels-idx1"));
  if (!images || !labels) {
    throw new Error(
      `${name} not found at ${root}: expected ${prefix}-images-idx3-ubyte.gz and ${prefix}-labels-idx1-ubyte.gz ` +
        `(gzipped or not) in that folder or in its raw/ subfolder` +
        (images
          ? ` (found ${images} but no labels file)`
          : labels
          ? ` (found ${labels} but no images file)`
          : ""),
    );
  }
  return { images, labels };
}

/** A dataset over an IDX images/labels pair: 1-channel H×W samples. */
export class IdxDataset implements ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly classes: readonly string[];
  readonly channels = 1;
  readonly height: number;
  readonly width: number;
  readonly labels: Int32Array;
  readonly description: DatasetDescription;
  #pixels: Uint8Array;

  /** Reads the split's images and labels under `root` (see {@link findIdxPair}). */
  constructor(root: string, split: Split, name = "mnist", classes?: readonly string[]) {
    const { images, labels } = findIdxPair(root, split, name);
    const im = parseIdx(Deno.readFileSync(images), images);
    const lb = parseIdx(Deno.readFileSync(labels), labels);
    if (im.dims.length !== 3) throw new Error(`${images}: expected 3 dims [N, H, W], got [${im.dims}]`);
    if (lb.dims.length !== 1) throw new Error(`${labels}: expected 1 dim [N], got [${lb.dims}]`);
    if (im.dims[0] !== lb.dims[0]) {
      throw new Error(`${root}: ${im.dims[0]} images but ${lb.dims[0]} labels (${images}, ${labels})`);
    }
    let maxLabel = 0;
    for (const v of lb.data) maxLabel = Math.max(maxLabel, v);
    const names = classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
    if (maxLabel >= names.length) {
      throw new Error(`${labels}: label ${maxLabel} is out of range for ${names.length} classes`);
    }
    this.name = name;
    this.length = im.dims[0];
    [this.height, this.width] = [im.dims[1], im.dims[2]];
    this.classes = names;
    this.labels = Int32Array.from(lb.data);
    this.#pixels = im.data;
    this.description = { kind: "idx", root, split, name, classes: [...names] };
  }

  /** Sample `i` as a 1-channel HWC image. */
  get(i: number): ImageSample {
    checkIndex(this.name, i, this.length);
    const n = this.height * this.width;
    const pixels = this.#pixels.slice(i * n, (i + 1) * n);
    return { pixels, h: this.height, w: this.width, c: 1, label: this.labels[i] };
  }
}

/** Encodes an unsigned-byte IDX array (for tests and tools). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 0x08, dims.length]);
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
