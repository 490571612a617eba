/**
 * Training metrics without host syncs: {@link GpuMetrics} sums per-step loss and metric tensors
 * into GPU accumulators (one small in-place kernel each) and, when asked, packs their means into
 * one flat tensor read back through a {@link ReadQueue}, so several reads stay in flight while
 * training goes on. {@link History} records values per step on the host (JSON-able, for
 * checkpoints and plots).
 */
import { ReadQueue } from "../gpu/readback.ts";
import { mapInto, mapN } from "../ops/map.ts";
import { concat, reshape } from "../ops/views.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, tidy } from "../tensor/scope.ts";
import type { Shape, Tensor } from "../tensor/tensor.ts";

/** One metric value on the host: a scalar, or a flat array (e.g. accuracy per tick). */
export type MetricValue = number | number[];

/** Metric values by name. */
export type MetricValues = Record<string, MetricValue>;

/** Values recorded at a series of steps; every array in `values` is aligned with `iters`. */
export interface History {
  /** The step (number of completed training steps) of each record. */
  iters: number[];
  /** Values by metric name; NaN where a metric was not given at that record. */
  values: Record<string, MetricValue[]>;
}

/** The histories a training run keeps: running training metrics and evaluation results. */
export interface Histories {
  /** Means of the per-step training metrics over each read window, recorded at its last step. */
  train: History;
  /** What `evaluate` returned at each evaluation point. */
  eval: History;
}

/** An empty history. */
export function emptyHistory(): History {
  return { iters: [], values: {} };
}

/** Empty training and evaluation histories. */
export function emptyHistories(): Histories {
  return { train: emptyHistory(), eval: emptyHistory() };
}

/** Appends `values` recorded at `step`, padding metrics missing on either side with NaN. */
export function appendHistory(h: History, step: number, values: MetricValues): void {
  const n = h.iters.length;
  for (const [k, v] of Object.entries(values)) {
    const arr = h.values[k] ??= [];
    while (arr.length < n) arr.push(NaN);
    arr.push(Array.isArray(v) ? [...v] : v);
  }
  h.iters.push(step);
  for (const arr of Object.values(h.values)) while (arr.length < n + 1) arr.push(NaN);
}

/** The scalar entries of `values` (what a progress bar can show). */
export function scalarMetrics(values: MetricValues): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) if (typeof v === "number") out[k] = v;
  return out;
}

/**
 * Makes a history safe to load from JSON: `JSON.stringify` writes NaN and ±∞ as null, which
 * this turns back into NaN. Throws when the object is not a history.
 */
export function historyFromJson(raw: unknown, what = "history"): History {
  const o = raw as { iters?: unknown; values?: unknown } | null;
  if (
    !o || typeof o !== "object" || !Array.isArray(o.iters) || !o.values || typeof o.values !== "object" ||
    Array.isArray(o.values)
  ) {
    throw new Error(`${what} must be an object with 'iters' (array) and 'values' (object)`);
  }
  const num = (x: unknown) => (typeof x === "number" ? x : NaN);
  const values: Record<string, MetricValue[]> = {};
  for (const [k, arr] of Object.entries(o.values as Record<string, unknown>)) {
    if (!Array.isArray(arr) || arr.length !== o.iters.length) {
      throw new Error(`${what}: '${k}' must be an array as long as 'iters' (${o.iters.length})`);
    }
    values[k] = arr.map((v) => (Array.isArray(v) ? v.map(num) : num(v)));
  }
  return { iters: o.iters.map(num), values };
}

interface Slot {
  acc: Tensor;
  shape: Shape;
}

const fmt = (s: Shape) => `[${s.join(", ")}]`;

/**
 * Sums metric tensors on the GPU and reads their means back without blocking.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray } from "./mod.ts";
 * import { GpuMetrics } from "./src/train/metrics.ts";
 * await initGpu();
 * const m = new GpuMetrics();
 * m.add({ loss: fromArray(0.5), acc: fromArray([1, 0]) });
 * m.add({ loss: fromArray(1.5), acc: fromArray([1, 1]) });
 * await m.flush((v, steps) => console.log(v, steps)); // { loss: 1, acc: [1, 0.5] } 2
 * await m.drain();
 * m.dispose();
 * ```
 */
export class GpuMetrics {
  #slots = new Map<string, Slot>();
  #count = 0;
  #queue: ReadQueue;

  /** `maxInFlight`: reads allowed in flight before {@link GpuMetrics.flush} waits for the oldest. */
  constructor(maxInFlight = 4) {
    this.#queue = new ReadQueue(maxInFlight);
  }

  /** Steps added since the last flush. */
  get count(): number {
    return this.#count;
  }

  /** Reads in flight. */
  get inFlight(): number {
    return this.#queue.inFlight;
  }

  /**
   * Adds one step's metrics (any dtype, any shape, detached or not; the tensors are only read).
   * A metric keeps the shape it had on its first add. Counts one step.
   */
  add(metrics: Record<string, Tensor>): void {
    noGrad(() => {
      for (const [name, t] of Object.entries(metrics)) {
        let slot = this.#slots.get(name);
        if (!slot) {
          slot = { acc: keep(mapN("0.0", [], [], "f32", t.shape)), shape: [...t.shape] };
          this.#slots.set(name, slot);
        }
        if (t.shape.length !== slot.shape.length || t.shape.some((d, i) => d !== slot.shape[i])) {
          throw new Error(
            `GpuMetrics: metric '${name}' has shape ${fmt(t.shape)}, but ${fmt(slot.shape)} before; ` +
              `a metric must keep its shape`,
          );
        }
        mapInto(slot.acc, t.dtype === "f32" ? "x0 + x1" : "x0 + f32(x1)", [slot.acc, t]);
      }
    });
    this.#count++;
  }

  /**
   * Starts reading the means since the last flush (one read for all metrics) and resets the sums;
   * `onValues` gets them with the number of steps averaged when the read completes. Returns at once
   * unless too many reads are in flight. Does nothing when no step was added.
   */
  async flush(onValues: (values: MetricValues, steps: number) => void): Promise<void> {
    const n = this.#count;
    if (n === 0) return;
    this.#count = 0;
    const entries = [...this.#slots];
    const flat = tidy(() =>
      noGrad(() => concat(entries.map(([, s]) => reshape(mapN("x0 * s0", [s.acc], [1 / n]), [-1])), 0))
    );
    for (const [, s] of entries) mapInto(s.acc, "0.0", []);
    await this.#queue.push(flat, (data) => {
      const out: MetricValues = {};
      let at = 0;
      for (const [name, s] of entries) {
        const size = s.shape.reduce((a, b) => a * b, 1);
        const v = Array.from(data.subarray(at, at + size));
        out[name] = s.shape.length === 0 ? v[0] : v;
        at += size;
      }
      onValues(out, n);
    });
  }

  /** Waits until every read in flight has delivered its values. */
  drain(): Promise<void> {
    return this.#queue.drain();
  }

  /** Frees the accumulators (reads in flight still complete). */
  dispose(): void {
    for (const s of this.#slots.values()) s.acc.dispose();
    this.#slots.clear();
    this.#count = 0;
  }
}
