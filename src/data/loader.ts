/**
 * The batched image loader: shuffled epochs from a seed, decode + augment + normalise in a pool of
 * Deno workers with `prefetch` batches in flight (or in-thread with `workers: 0`), yielding NCHW
 * `Float32Array` images and `Int32Array` labels in order. Each sample's randomness depends only on
 * (seed, epoch, dataset index), so batches are identical for any number of workers. Live workers keep
 * the process running: call `close()` (or declare the loader with `using`) when done.
 *
 * @example
 * ```ts
 * const ds = openImageDataset("fashion-mnist");
 * const loader = new ImageLoader(ds, { batchSize: 64, seed: 1, workers: 2, transform: presetTransform("fashion-mnist", "train") });
 * for await (const batch of loader.epoch(0)) console.log(batch.size, batch.images.length);
 * loader.close();
 * ```
 */
import { type Batch, buildBatch, epochOrder } from "./batch.ts";
import type { TransformSpec } from "./transforms.ts";
import type { DatasetDescription, ImageDataset } from "./types.ts";

/** Options of {@link ImageLoader}. */
export interface LoaderOptions {
  /** Samples per batch (≥ 1). */
  batchSize: number;
  /** Shuffle each epoch's order from (seed, epoch). Default true. */
  shuffle?: boolean;
  /** Seed of the order and of every sample's augmentation. Default 0. */
  seed?: number;
  /** Augmentation + normalisation. Default: none (only ÷255). */
  transform?: TransformSpec;
  /** Worker threads; 0 builds batches on the calling thread. Default 0. */
  workers?: number;
  /** Batches requested ahead of the consumer (with workers). Default 2 × workers. */
  prefetch?: number;
  /** Drop the last, short batch of an epoch. Default false. */
  dropLast?: boolean;
}

/** A message to a worker (see `worker.ts`). */
export type WorkerRequest =
  | { type: "init"; description: DatasetDescription; spec: TransformSpec; seed: number; length: number }
  | { type: "batch"; id: number; epoch: number; indices: Int32Array };

/** A worker's answer. */
export type WorkerReply =
  | { type: "batch"; id: number; batch: Batch }
  | { type: "error"; id: number; message: string };

interface Job {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  pending: number;
}

/** Workers that each re-open the dataset from its description and build whole batches. */
class WorkerPool {
  #slots: Slot[] = [];
  #jobs = new Map<number, Job>();
  #nextId = 0;
  #failure: Error | undefined;

  constructor(n: number, init: WorkerRequest) {
    for (let i = 0; i < n; i++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      const slot: Slot = { worker, pending: 0 };
      worker.onmessage = (ev: MessageEvent<WorkerReply>) => this.#settle(ev.data);
      worker.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        this.#fail(new Error(`data loader worker crashed: ${ev.message}`));
      };
      worker.postMessage(init);
      this.#slots.push(slot);
    }
  }

  #settle(msg: WorkerReply): void {
    const job = this.#jobs.get(msg.id);
    if (!job) return;
    this.#jobs.delete(msg.id);
    job.slot.pending--;
    if (msg.type === "batch") job.resolve(msg.batch);
    else job.reject(new Error(msg.message));
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const job of this.#jobs.values()) job.reject(e);
    this.#jobs.clear();
    for (const s of this.#slots) s.pending = 0;
  }

  /** Sends a batch to the least busy worker. */
  run(epoch: number, indices: Int32Array): Promise<Batch> {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const id = this.#nextId++;
    slot.pending++;
    const p = new Promise<Batch>((resolve, reject) => this.#jobs.set(id, { resolve, reject, slot }));
    slot.worker.postMessage({ type: "batch", id, epoch, indices } satisfies WorkerRequest);
    return p;
  }

  close(): void {
    this.#fail(new Error("the data loader was closed"));
    for (const s of this.#slots) s.worker.terminate();
    this.#slots = [];
  }
}

/** Iterates a dataset in shuffled, augmented, normalised batches; see the module example. */
export class ImageLoader {
  /** The dataset being loaded. */
  readonly dataset: ImageDataset;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether epochs are shuffled. */
  readonly shuffle: boolean;
  /** The seed of order and augmentation. */
  readonly seed: number;
  /** The transform pipeline. */
  readonly transform: TransformSpec;
  /** Worker threads (0 = in-thread). */
  readonly workers: number;
  /** Batches kept in flight. */
  readonly prefetch: number;
  /** Whether a short last batch is dropped. */
  readonly dropLast: boolean;
  #pool: WorkerPool | undefined;
  #closed = false;

  /** Checks the options; workers start on first use. */
  constructor(dataset: ImageDataset, opts: LoaderOptions) {
    const { batchSize, workers = 0 } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`ImageLoader: batchSize ${batchSize} must be ≥ 1`);
    }
    if (!Number.isInteger(workers) || workers < 0) {
      throw new Error(`ImageLoader: workers ${workers} must be ≥ 0`);
    }
    if (workers > 0 && !dataset.description) {
      throw new Error(
        `ImageLoader: dataset "${dataset.name}" has no description workers can re-open (in-memory); use workers: 0`,
      );
    }
    if (dataset.length === 0) throw new Error(`ImageLoader: dataset "${dataset.name}" is empty`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.seed = (opts.seed ?? 0) >>> 0;
    this.transform = opts.transform ?? { steps: [] };
    this.workers = workers;
    this.prefetch = Math.max(1, opts.prefetch ?? 2 * workers);
    this.dropLast = opts.dropLast ?? false;
  }

  /** Batches per epoch (the short last batch counts unless `dropLast`). */
  get batchesPerEpoch(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  #getPool(): WorkerPool {
    if (this.#closed) throw new Error("ImageLoader: used after close()");
    this.#pool ??= new WorkerPool(this.workers, {
      type: "init",
      description: this.dataset.description!,
      spec: this.transform,
      seed: this.seed,
      length: this.dataset.length,
    });
    return this.#pool;
  }

  /** Builds the batch of the given dataset indices, with the randomness of `epoch`. */
  loadBatch(indices: ArrayLike<number>, epoch = 0): Promise<Batch> {
    const idx = Int32Array.from(indices);
    for (const i of idx) {
      if (i < 0 || i >= this.dataset.length) {
        return Promise.reject(
          new RangeError(`ImageLoader: index ${i} out of range [0, ${this.dataset.length})`),
        );
      }
    }
    if (this.workers === 0) {
      if (this.#closed) return Promise.reject(new Error("ImageLoader: used after close()"));
      try {
        return Promise.resolve(buildBatch(this.dataset, idx, this.transform, this.seed, epoch));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.#getPool().run(epoch, idx);
  }

  /** The batches of epoch `e`, in order, with `prefetch` requested ahead. Break out at any time. */
  async *epoch(e: number): AsyncGenerator<Batch, void, undefined> {
    const order = epochOrder(this.dataset.length, this.seed, e, this.shuffle);
    const nb = this.batchesPerEpoch, bs = this.batchSize;
    const slice = (b: number) => order.slice(b * bs, Math.min((b + 1) * bs, order.length));
    if (this.workers === 0) {
      for (let b = 0; b < nb; b++) yield await this.loadBatch(slice(b), e);
      return;
    }
    const inflight: Promise<Batch>[] = [];
    let next = 0;
    const request = () => {
      const p = this.loadBatch(slice(next++), e);
      p.catch(() => {}); // awaited below; this only silences rejections of batches never reached
      inflight.push(p);
    };
    while (next < nb && inflight.length < this.prefetch) request();
    for (let b = 0; b < nb; b++) {
      const batch = await inflight.shift()!;
      if (next < nb) request();
      yield batch;
    }
  }

  /** Stops the workers. The loader cannot be used afterwards. */
  close(): void {
    this.#closed = true;
    this.#pool?.close();
    this.#pool = undefined;
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
