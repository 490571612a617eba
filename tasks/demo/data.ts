/**
 * Generated 2-D classification data for the demo: two interleaved spirals or two concentric
 * circles, seeded and reproducible, with a shuffled train/test split and an epoch batcher.
 */
import { Rng } from "../../src/util/rng.ts";

/** Points and their labels, on the host. */
export interface Dataset {
  /** Coordinates, row-major `[n, 2]`. */
  x: Float32Array;
  /** Class of each point, in `[0, classes)`. */
  y: Int32Array;
  /** Number of points. */
  n: number;
  /** Number of classes. */
  classes: number;
}

/** The datasets the demo can generate. */
export const DATASETS = ["spirals", "circles"] as const;

/** Name of a generated dataset. */
export type DatasetName = typeof DATASETS[number];

/** Options of the generators. */
export interface GenOptions {
  /** Seed of the generator (same seed, same points). */
  seed?: number;
  /** Standard deviation of the Gaussian noise added to each coordinate. */
  noise?: number;
  /** Spirals only: number of turns of each arm. */
  turns?: number;
}

/**
 * Two interleaved spiral arms (class 0 and class 1), each point at radius `r ∈ [0.1, 1]` and angle
 * `turns · 2π · r` (plus π for class 1), with Gaussian noise. Half the points in each class.
 */
export function spirals(n: number, opts: GenOptions = {}): Dataset {
  const rng = new Rng(opts.seed ?? 0);
  const noise = opts.noise ?? 0.03;
  const turns = opts.turns ?? 2;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const r = 0.1 + 0.9 * rng.next();
    const a = turns * 2 * Math.PI * r + c * Math.PI;
    x[2 * i] = r * Math.cos(a) + noise * rng.normal();
    x[2 * i + 1] = r * Math.sin(a) + noise * rng.normal();
    y[i] = c;
  }
  return { x, y, n, classes: 2 };
}

/** Two concentric circles: class 0 at radius 1, class 1 at radius 0.5, with Gaussian noise. */
export function circles(n: number, opts: GenOptions = {}): Dataset {
  const rng = new Rng(opts.seed ?? 0);
  const noise = opts.noise ?? 0.05;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const r = c === 0 ? 1 : 0.5;
    const a = 2 * Math.PI * rng.next();
    x[2 * i] = r * Math.cos(a) + noise * rng.normal();
    x[2 * i + 1] = r * Math.sin(a) + noise * rng.normal();
    y[i] = c;
  }
  return { x, y, n, classes: 2 };
}

/** Generates the named dataset. */
export function generate(name: DatasetName, n: number, opts: GenOptions = {}): Dataset {
  return name === "spirals" ? spirals(n, opts) : circles(n, opts);
}

/** The points at `idx`, in that order. */
export function subset(ds: Dataset, idx: ArrayLike<number>): Dataset {
  const m = idx.length;
  const x = new Float32Array(m * 2);
  const y = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const j = idx[i];
    x[2 * i] = ds.x[2 * j];
    x[2 * i + 1] = ds.x[2 * j + 1];
    y[i] = ds.y[j];
  }
  return { x, y, n: m, classes: ds.classes };
}

/** Shuffles the points (seeded) and splits off the last `testFraction` of them as the test set. */
export function trainTestSplit(
  ds: Dataset,
  testFraction: number,
  seed = 0,
): { train: Dataset; test: Dataset } {
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new Error(`testFraction must be in (0, 1), got ${testFraction}`);
  }
  const order = new Rng(seed ^ 0x5bd1e995).shuffle(Array.from({ length: ds.n }, (_, i) => i));
  const nTest = Math.max(1, Math.round(ds.n * testFraction));
  return { train: subset(ds, order.slice(0, ds.n - nTest)), test: subset(ds, order.slice(ds.n - nTest)) };
}

/**
 * Yields index batches of size `batchSize` forever: each epoch is a fresh seeded permutation of
 * `[0, n)`; a batch never spans two epochs' duplicates (the tail of an epoch is dropped when
 * shorter than a batch, unless the whole set is smaller than one batch).
 */
export function* batches(n: number, batchSize: number, seed = 0): Generator<Int32Array> {
  const rng = new Rng(seed ^ 0x27d4eb2f);
  const b = Math.min(batchSize, n);
  const order = Array.from({ length: n }, (_, i) => i);
  while (true) {
    rng.shuffle(order);
    for (let i = 0; i + b <= n; i += b) yield Int32Array.from(order.slice(i, i + b));
  }
}
