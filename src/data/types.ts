/**
 * Shared types of the image data pipeline: the dataset interface every reader implements, its
 * serialisable description (so a worker can re-open it), and the 8-bit image the transforms work on.
 */

/** The dataset families the readers understand. */
export type DatasetKind = "idx" | "cifar10" | "cifar100" | "imagefolder";

/** Which part of a dataset: `"val"` and `"test"` are the same split for every reader. */
export type Split = "train" | "test" | "val";

/**
 * A serialisable description of an opened dataset: enough for a worker to re-open it with
 * {@link import("./datasets.ts").openFromDescription} instead of receiving its pixels.
 */
export interface DatasetDescription {
  /** Reader to use. */
  kind: DatasetKind;
  /** The path the reader resolved (a folder, or an archive file). */
  root: string;
  /** The split. */
  split: Split;
  /** Display name, e.g. "fashion-mnist" (IDX files carry no class names; see `classes`). */
  name: string;
  /** Class names, when the reader cannot find them on disk (IDX). */
  classes?: string[];
}

/** An 8-bit image in HWC order (row-major, channels interleaved), 1 or 3 channels. */
export interface Image8 {
  /** `h * w * c` bytes, HWC order. */
  pixels: Uint8Array;
  /** Height in pixels. */
  h: number;
  /** Width in pixels. */
  w: number;
  /** Channels (1 = grey, 3 = RGB). */
  c: number;
}

/** One sample: its pixels (always HWC, 8-bit) and its class index. */
export interface ImageSample extends Image8 {
  /** Class index in `[0, classes.length)`. */
  label: number;
}

/** What every reader returns: random access to decoded samples plus metadata. */
export interface ImageDataset {
  /** Display name ("cifar10", "fashion-mnist", "imagefolder", …). */
  readonly name: string;
  /** Number of samples. */
  readonly length: number;
  /** Class names; labels index into this list. */
  readonly classes: readonly string[];
  /** Channels of every decoded sample (1 or 3). */
  readonly channels: number;
  /** Fixed height of every sample, when the format has one (IDX, CIFAR); undefined for folders. */
  readonly height?: number;
  /** Fixed width of every sample, when the format has one. */
  readonly width?: number;
  /** Every sample's label, without decoding anything. */
  readonly labels: Int32Array;
  /** How to re-open this dataset in a worker; undefined for purely in-memory datasets. */
  readonly description?: DatasetDescription;
  /** Decodes sample `i` (0 ≤ i < length) into a fresh HWC image. */
  get(i: number): ImageSample;
}

/** Throws a RangeError unless `i` is an integer index into a dataset of `length` samples. */
export function checkIndex(name: string, i: number, length: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new RangeError(`${name}: sample index ${i} is out of range [0, ${length})`);
  }
}
