/**
 * Building one batch, shared by the loader's in-thread mode and its workers: the epoch order, the
 * per-sample random stream (a function of seed, epoch and dataset index only, so results do not
 * depend on how samples are spread over workers), and decode → augment → normalise into NCHW floats.
 */
import { Rng } from "../util/rng.ts";
import { applySteps, toTensorInto, type TransformSpec } from "./transforms.ts";
import type { ImageDataset } from "./types.ts";

/** murmur3's 32-bit finaliser: a bijective mix of all bits. */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed mixed from (seed, epoch, index, stream). */
export function mixSeed(seed: number, epoch: number, index: number, stream = 0): number {
  let h = fmix((seed >>> 0) ^ 0x9e3779b9);
  h = fmix(h ^ Math.imul(epoch >>> 0, 0xcc9e2d51) ^ 0x1b873593);
  h = fmix(h ^ Math.imul(index >>> 0, 0x27d4eb2f) ^ (index / 4294967296 >>> 0));
  return fmix(h ^ Math.imul(stream + 1, 0x165667b1));
}

/** The random stream of sample `index` in `epoch`. */
export function sampleRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(mixSeed(seed, epoch, index, 0));
}

/** The dataset indices of one epoch: 0…n−1, Fisher–Yates shuffled from (seed, epoch) when `shuffle`. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new Rng(mixSeed(seed, epoch, 0, 1));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** A decoded, augmented, normalised batch. */
export interface Batch {
  /** Images, [size, channels, height, width] row-major. */
  images: Float32Array;
  /** Class indices, [size]. */
  labels: Int32Array;
  /** Samples in this batch (the last batch may be short unless `dropLast`). */
  size: number;
  /** Channels per image. */
  channels: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** The dataset indices of the samples, in batch order. */
  indices: Int32Array;
}

/** Decodes, augments and normalises `indices` of `ds` into one NCHW batch. */
export function buildBatch(
  ds: ImageDataset,
  indices: Int32Array,
  spec: TransformSpec,
  seed: number,
  epoch: number,
): Batch {
  const n = indices.length;
  const labels = new Int32Array(n);
  let images = new Float32Array(0), c = 0, h = 0, w = 0;
  for (let b = 0; b < n; b++) {
    const i = indices[b];
    const sample = ds.get(i);
    const img = applySteps(sample, spec, sampleRng(seed, epoch, i));
    if (b === 0) {
      [c, h, w] = [img.c, img.h, img.w];
      images = new Float32Array(n * c * h * w);
    } else if (img.c !== c || img.h !== h || img.w !== w) {
      throw new Error(
        `${ds.name}: sample ${i} came out ${img.c}×${img.h}×${img.w} after the transforms, but sample ` +
          `${
            indices[0]
          } is ${c}×${h}×${w}; batches need one size (add a resize + centerCrop or randomResizedCrop)`,
      );
    }
    toTensorInto(img, spec, images, b * c * h * w);
    labels[b] = sample.label;
  }
  return { images, labels, size: n, channels: c, height: h, width: w, indices };
}
