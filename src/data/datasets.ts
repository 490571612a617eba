/**
 * The dataset registry: `openImageDataset(name, root, split)` for the formats users bring (MNIST and
 * Fashion-MNIST IDX, CIFAR-10/100 binary, ImageNet-style folders), and `openFromDescription` which
 * workers use to re-open a dataset from its serialisable {@link DatasetDescription}.
 */
import { CifarDataset } from "./cifar.ts";
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DEFAULT_ROOT, IdxDataset, MNIST_CLASSES } from "./idx.ts";
import { ImageFolderDataset, openImageFolder } from "./image_folder.ts";
import {
  checkIndex,
  type DatasetDescription,
  type ImageDataset,
  type ImageSample,
  type Split,
} from "./types.ts";

/** The names {@link openImageDataset} accepts. */
export const DATASET_NAMES: readonly string[] = [
  "mnist",
  "fashion-mnist",
  "cifar10",
  "cifar100",
  "imagenet",
  "imagefolder",
];

/** True when Debian's Fashion-MNIST files are installed at {@link FASHION_MNIST_DEFAULT_ROOT}. */
export function hasFashionMnist(root: string = FASHION_MNIST_DEFAULT_ROOT): boolean {
  try {
    return Deno.statSync(`${root}/train-images-idx3-ubyte.gz`).isFile &&
      Deno.statSync(`${root}/t10k-labels-idx1-ubyte.gz`).isFile;
  } catch {
    return false;
  }
}

const ALIASES: Record<string, string> = {
  fashionmnist: "fashion-mnist",
  fmnist: "fashion-mnist",
  "cifar-10": "cifar10",
  "cifar-100": "cifar100",
  "imagenet-1k": "imagenet",
  "image-folder": "imagefolder",
};

function normaliseName(name: string): string {
  const n = name.toLowerCase().replace(/_/g, "-");
  return ALIASES[n] ?? n;
}

function normaliseSplit(split: string): Split {
  if (split === "train" || split === "test" || split === "val") return split;
  if (split === "validation") return "val";
  throw new Error(`unknown split "${split}": use "train", "test" or "val"`);
}

/**
 * Opens a dataset by name. `root` is the folder that holds it (or an archive, for CIFAR); it defaults
 * to {@link FASHION_MNIST_DEFAULT_ROOT} for Fashion-MNIST and is required otherwise. Splits: "train",
 * and "test"/"val" (the same split). Errors name the path and the layout that was expected.
 */
export function openImageDataset(name: string, root?: string, split: string = "train"): ImageDataset {
  const n = normaliseName(name), s = normaliseSplit(split);
  if (n === "fashion-mnist") {
    return new IdxDataset(root ?? FASHION_MNIST_DEFAULT_ROOT, s, n, FASHION_MNIST_CLASSES);
  }
  if (root === undefined) throw new Error(`openImageDataset("${name}"): a root path is required`);
  switch (n) {
    case "mnist":
      return new IdxDataset(root, s, n, MNIST_CLASSES);
    case "cifar10":
    case "cifar100":
      return new CifarDataset(n, root, s);
    case "imagenet":
    case "imagefolder":
      return openImageFolder(root, s, n);
    default:
      throw new Error(`unknown dataset "${name}": expected one of ${DATASET_NAMES.join(", ")}`);
  }
}

/** Re-opens a dataset from its description (what loader workers do). */
export function openFromDescription(d: DatasetDescription): ImageDataset {
  switch (d.kind) {
    case "idx":
      return new IdxDataset(d.root, d.split, d.name, d.classes);
    case "cifar10":
    case "cifar100":
      return new CifarDataset(d.kind, d.root, d.split);
    case "imagefolder":
      return new ImageFolderDataset(d.root, { classes: d.classes, split: d.split, name: d.name });
    default:
      throw new Error(
        `openFromDescription: unknown dataset kind ${JSON.stringify((d as { kind: unknown }).kind)}`,
      );
  }
}

/**
 * An in-memory dataset of equally sized 8-bit HWC images (synthetic data, tests). It has no
 * description, so loaders over it must use `workers: 0`.
 */
export class ArrayImageDataset implements ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly classes: readonly string[];
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly labels: Int32Array;
  #pixels: Uint8Array;

  /** `pixels` holds `labels.length` images of h×w×c bytes back to back. */
  constructor(
    pixels: Uint8Array,
    labels: ArrayLike<number>,
    shape: { h: number; w: number; c: number },
    classes?: readonly string[],
    name = "array",
  ) {
    const n = labels.length, size = shape.h * shape.w * shape.c;
    if (pixels.length !== n * size) {
      throw new Error(
        `ArrayImageDataset: ${pixels.length} bytes is not ${n} images of ${shape.h}×${shape.w}×${shape.c}`,
      );
    }
    this.labels = Int32Array.from(labels);
    const k = this.labels.reduce((a, b) => Math.max(a, b + 1), 0);
    this.classes = classes ?? Array.from({ length: k }, (_, i) => String(i));
    if (k > this.classes.length) {
      throw new Error(`ArrayImageDataset: label ${k - 1} but ${this.classes.length} classes`);
    }
    this.name = name;
    this.length = n;
    [this.height, this.width, this.channels] = [shape.h, shape.w, shape.c];
    this.#pixels = pixels;
  }

  /** A copy of image `i`. */
  get(i: number): ImageSample {
    checkIndex(this.name, i, this.length);
    const size = this.height * this.width * this.channels;
    const pixels = this.#pixels.slice(i * size, (i + 1) * size);
    return { pixels, h: this.height, w: this.width, c: this.channels, label: this.labels[i] };
  }
}
