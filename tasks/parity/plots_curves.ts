/**
 * Figures of the training histories of a parity run: loss, per-position accuracy and
 * whole-sequence accuracy curves over training iterations, and one matrix (iteration × index) per
 * array-valued metric such as the test accuracy per internal tick.
 */
import {
  evenlySpaced,
  lineChart,
  matrixChart,
  type RgbaImage,
  type Series,
  seriesColor,
} from "../../src/plot/mod.ts";
import type { Histories, History } from "../../src/train/metrics.ts";

/** Scalar series of a history (NaN where missing), or null when the metric is not scalar. */
function scalarSeries(h: History, key: string): number[] | null {
  const v = h.values[key];
  if (!v || v.some((x) => Array.isArray(x))) return null;
  return v as number[];
}

/** Which chart a metric name belongs to. */
export type CurveKind = "loss" | "accuracy" | "full" | "other";

/** Sorts a metric name into the loss, per-position accuracy or whole-sequence accuracy chart. */
export function curveKind(name: string): CurveKind {
  const n = name.toLowerCase();
  if (n.includes("loss")) return "loss";
  if (!n.includes("acc")) return "other";
  if (/full|whole|seq|per_input|input|all/.test(n)) return "full";
  return "accuracy";
}

/**
 * A legend name: the split (`train`, or `test` for evaluation records) and whatever the metric
 * name says beyond its kind (`test_acc` → `test`, `train_acc_ema` → `train ema`).
 */
export function seriesName(split: "train" | "eval", key: string): string {
  const words = key.toLowerCase().split(/[_\s]+/).filter((w) => w !== "");
  let name = split === "train" ? "train" : "test";
  if (["train", "test", "val", "eval"].includes(words[0])) {
    name = words.shift() === "train" ? "train" : "test";
  }
  const drop = new Set(["acc", "accuracy", "loss", "full", "whole", "sequence", "seq"]);
  const rest = words.filter((w) => !drop.has(w));
  return rest.length ? `${name} ${rest.join(" ")}` : name;
}

/** One chart of the training curves: its file stem and image. */
export interface NamedImage {
  /** File name without extension. */
  name: string;
  /** The figure. */
  image: RgbaImage;
}

/**
 * Loss and accuracy curves over training iterations from the checkpoint histories: `losses`,
 * `accuracies` (per position) and `accuracies_full_sequence` (whole sequence right); a chart is
 * left out when no metric of its kind was recorded.
 */
export async function trainingCurves(h: Histories): Promise<NamedImage[]> {
  const groups: Record<Exclude<CurveKind, "other">, Series[]> = { loss: [], accuracy: [], full: [] };
  for (const split of ["train", "eval"] as const) {
    const hist = h[split];
    for (const key of Object.keys(hist.values).sort()) {
      const kind = curveKind(key);
      const y = scalarSeries(hist, key);
      if (kind === "other" || !y || !y.some(Number.isFinite)) continue;
      groups[kind].push({
        name: seriesName(split, key),
        x: hist.iters,
        y,
        dashed: split === "train",
        markers: split === "eval" && hist.iters.length <= 40,
      });
    }
  }
  const out: NamedImage[] = [];
  const specs = [
    ["losses", "loss", "Loss", "loss", true],
    ["accuracies", "accuracy", "Accuracy per position", "accuracy", false],
    ["accuracies_full_sequence", "full", "Whole-sequence accuracy (all positions right)", "accuracy", false],
  ] as const;
  for (const [name, kind, title, yLabel, log] of specs) {
    const series = groups[kind].map((s, i) => ({ ...s, color: seriesColor(i) }));
    if (!series.length) continue;
    const allPositive = series.every((s) => Array.from(s.y).every((v) => !Number.isFinite(v) || v > 0));
    out.push({
      name,
      image: await lineChart({
        title,
        xLabel: "training iteration",
        yLabel,
        series,
        yLog: log && allPositive,
        yRange: kind === "loss" ? undefined : [0, 1.02],
        width: 720,
        height: 420,
        legend: "best",
      }),
    });
  }
  return out;
}

/** A metric recorded as an array per record (e.g. test accuracy per tick at each evaluation). */
export interface ArrayHistory {
  /** `train` or `test`. */
  split: "train" | "test";
  /** The metric name without a split prefix (e.g. `acc_per_tick`). */
  key: string;
  /** Iteration of each row. */
  iters: number[];
  /** One array per record, all of the same length. */
  rows: number[][];
}

/** The array-valued metrics of the histories (records without a value are left out). */
export function arrayHistories(h: Histories): ArrayHistory[] {
  const out: ArrayHistory[] = [];
  for (const split of ["train", "eval"] as const) {
    const hist = h[split];
    for (const [key, vals] of Object.entries(hist.values)) {
      const rows: number[][] = [], iters: number[] = [];
      vals.forEach((v, i) => {
        if (Array.isArray(v) && v.length > 0) {
          rows.push(v);
          iters.push(hist.iters[i]);
        }
      });
      if (rows.length && rows.every((r) => r.length === rows[0].length)) {
        out.push({
          split: split === "eval" ? "test" : "train",
          key: key.replace(/^(train|test|eval)_/, ""),
          iters,
          rows,
        });
      }
    }
  }
  return out;
}

/** At most this many records of a per-tick history are drawn (evenly spaced). */
const MAX_HISTORY_ROWS = 80;

/**
 * The figures of the histories: {@link trainingCurves}, and one matrix (iteration × index) per
 * array-valued metric, e.g. `test_acc_per_tick_over_training`.
 */
export async function historyFigures(h: Histories): Promise<NamedImage[]> {
  const out = await trainingCurves(h);
  for (const a of arrayHistories(h)) {
    const T = a.rows[0].length;
    const keep = evenlySpaced(a.rows.length, MAX_HISTORY_ROWS);
    const isAcc = /acc/.test(a.key), perTick = /tick/.test(a.key);
    const what = isAcc && perTick ? "accuracy per internal tick" : a.key.replace(/_/g, " ");
    out.push({
      name: `${a.split}_${a.key.replace(/[^a-z0-9]+/gi, "_").toLowerCase()}_over_training`,
      image: await matrixChart({
        values: keep.flatMap((i) => a.rows[i]),
        rows: keep.length,
        cols: T,
        rowLabels: keep.map((i) => String(a.iters[i])),
        colLabels: Array.from({ length: T }, (_, t) => String(t + 1)),
        title: `${a.split === "test" ? "Test" : "Training"} ${what}, over training`,
        xLabel: perTick ? "internal tick" : "index",
        yLabel: "training iteration",
        colorbarLabel: isAcc ? "accuracy" : a.key,
        min: isAcc ? 0 : undefined,
        max: isAcc ? 1 : undefined,
      }),
    });
  }
  return out;
}
