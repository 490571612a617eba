/**
 * The image trainer's data: opens the train and test splits of the configured dataset, picks the
 * reference's transforms, and serves batches by training step. Step `s` reads batch `s mod n` of
 * epoch `⌊s / n⌋` (n full batches per epoch, shuffled from the seed), so a resumed run sees exactly
 * the batches it would have seen; batches are built by the loader's workers, `prefetch` ahead.
 */
import { type Batch, epochOrder } from "../../src/data/batch.ts";
import { openImageDataset } from "../../src/data/datasets.ts";
import { FASHION_MNIST_DEFAULT_ROOT } from "../../src/data/idx.ts";
import { ImageLoader } from "../../src/data/loader.ts";
import { presetTransform, type TransformSpec } from "../../src/data/transforms.ts";
import type { ImageDataset } from "../../src/data/types.ts";
import { existsSync, join } from "../../src/util/std.ts";
import { IMAGE_DATASETS, type ImageConfig, type ImageDatasetName } from "./config.ts";

/** A batch as the trainer uploads it. */
export type HostBatch = Batch;

/** Per-dataset: the name the readers know, the stats key, and the native image side. */
const READER: Record<ImageDatasetName, { name: string; stats: string; side: number }> = {
  cifar10: { name: "cifar10", stats: "cifar10", side: 32 },
  cifar100: { name: "cifar100", stats: "cifar100", side: 32 },
  imagenet: { name: "imagenet", stats: "imagenet", side: 224 },
  fashion: { name: "fashion-mnist", stats: "fashion-mnist", side: 28 },
  mnist: { name: "mnist", stats: "mnist", side: 28 },
};

/** Where the dataset's files are: `data_root`, or its conventional sub-folder, or Debian's Fashion-MNIST. */
export function datasetRoot(c: ImageConfig): string {
  const ds = c.dataset as ImageDatasetName;
  const sub: Record<ImageDatasetName, string[]> = {
    cifar10: ["cifar10", "cifar-10"],
    cifar100: ["cifar100", "cifar-100"],
    imagenet: ["imagenet", "ImageNet"],
    fashion: ["fashion-mnist", "fashion_mnist", "FashionMNIST"],
    mnist: ["mnist", "MNIST"],
  };
  for (const s of sub[ds]) if (existsSync(join(c.data_root, s))) return join(c.data_root, s);
  if (ds === "fashion" && !existsSync(join(c.data_root, "train-images-idx3-ubyte.gz"))) {
    return FASHION_MNIST_DEFAULT_ROOT;
  }
  return c.data_root;
}

/** Iterates training batches by step, with batches requested ahead. */
export class TrainStream {
  readonly #loader: ImageLoader;
  readonly #perEpoch: number;
  readonly #ahead: number;
  readonly #queue: Promise<Batch>[] = [];
  #order: { epoch: number; order: Int32Array } | null = null;
  #next: number;

  /** Serves steps `start`, `start + 1`, … */
  constructor(loader: ImageLoader, start: number, ahead: number) {
    this.#loader = loader;
    this.#perEpoch = Math.floor(loader.dataset.length / loader.batchSize);
    if (this.#perEpoch < 1) {
      throw new Error(
        `the training split has ${loader.dataset.length} images, fewer than one batch of ${loader.batchSize}: ` +
          `lower --batch_size`,
      );
    }
    this.#ahead = Math.max(1, ahead);
    this.#next = start;
  }

  #request(step: number): Promise<Batch> {
    const epoch = Math.floor(step / this.#perEpoch), k = step % this.#perEpoch;
    if (this.#order?.epoch !== epoch) {
      this.#order = { epoch, order: epochOrder(this.#loader.dataset.length, this.#loader.seed, epoch, true) };
    }
    const B = this.#loader.batchSize;
    return this.#loader.loadBatch(this.#order.order.subarray(k * B, (k + 1) * B), epoch);
  }

  /** The batch of the next step. */
  next(): Promise<Batch> {
    while (this.#queue.length < this.#ahead) this.#queue.push(this.#request(this.#next++));
    return this.#queue.shift()!;
  }

  /** Stops asking for batches (pending ones are ignored). */
  close(): void {
    for (const p of this.#queue) p.catch(() => {});
    this.#queue.length = 0;
  }
}

/** The opened data of a run. */
export interface ImageData {
  /** Class names. */
  classes: readonly string[];
  /** Channels of the model's input. */
  channels: number;
  /** Side of the (square) model input. */
  size: number;
  /** One line for the log. */
  describe: string;
  /** The training batches from step `start` on. */
  trainStream(start: number): TrainStream;
  /** `n_test_batches` training batches with the test transform (evaluation in training mode; with 0, as many as the test split has). */
  evalTrainBatches(iteration: number): AsyncIterable<Batch>;
  /**
   * `n_test_batches` test batches from a fresh shuffle of the test split for each evaluation, like
   * the reference's shuffled test loader (a split stored class by class, as ImageNet's folders are,
   * would otherwise give the first few classes only); all of them with 0. The same `iteration`
   * always gives the same batches.
   */
  testBatches(iteration: number): AsyncIterable<Batch>;
  /** Stops the workers. */
  close(): void;
}

async function* firstBatches(loader: ImageLoader, epoch: number, n: number): AsyncGenerator<Batch> {
  let i = 0;
  for await (const b of loader.epoch(epoch)) {
    if (n > 0 && i++ >= n) break;
    yield b;
  }
}

/** Opens both splits of `c.dataset` (errors name the path and the layout expected). */
export function openImageData(c: ImageConfig): Promise<ImageData> {
  const ds = c.dataset as ImageDatasetName;
  const r = READER[ds];
  const root = datasetRoot(c);
  let train: ImageDataset, test: ImageDataset;
  try {
    train = openImageDataset(r.name, root, "train");
    test = openImageDataset(r.name, root, ds === "imagenet" ? "val" : "test");
  } catch (e) {
    throw new Error(`${IMAGE_DATASETS[ds].what} could not be opened: ${(e as Error).message}`);
  }
  const side = c.image_size || r.side;
  const fixedSide = train.height;
  if (ds !== "imagenet" && c.image_size && fixedSide !== undefined && c.image_size !== fixedSide) {
    throw new Error(`--image_size ${c.image_size}: ${ds} images are ${fixedSide}×${fixedSide}; use 0`);
  }
  const spec = (split: "train" | "test"): TransformSpec => {
    const t = presetTransform(r.stats, split, { size: side });
    return split === "train" && !c.augment ? { ...t, steps: [] } : t;
  };
  const workers = c.num_workers_train;
  const loader = (d: ImageDataset, t: TransformSpec, batchSize: number, shuffle: boolean, w: number) =>
    new ImageLoader(d, { batchSize, shuffle, seed: c.seed, transform: t, workers: w, prefetch: c.prefetch });
  const trainLoader = loader(train, spec("train"), c.batch_size, true, workers);
  const evalTrain = loader(train, spec("test"), c.batch_size_test, true, workers);
  const testLoader = loader(test, spec("test"), c.batch_size_test, true, workers);
  const channels = train.channels;
  return Promise.resolve({
    classes: train.classes,
    channels,
    size: side,
    describe: `${train.name} at ${root}: ${train.length} train / ${test.length} test images, ` +
      `${train.classes.length} classes, ${channels}×${side}×${side}, ${workers} workers`,
    trainStream: (start) => new TrainStream(trainLoader, start, c.prefetch),
    // With n_test_batches 0 (whole test split), as many training batches as the test split has.
    evalTrainBatches: (iteration) =>
      firstBatches(evalTrain, 1_000_000 + iteration, c.n_test_batches || testLoader.batchesPerEpoch),
    testBatches: (iteration) => firstBatches(testLoader, iteration, c.n_test_batches),
    close: () => {
      trainLoader.close();
      evalTrain.close();
      testLoader.close();
    },
  });
}
