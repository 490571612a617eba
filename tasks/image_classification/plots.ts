/**
 * The image trainer's figures, rewritten at every evaluation: `losses.png` (training windows,
 * re-estimated train batches and test loss over iterations) and `accuracies.png` (test top-1 of
 * every tick as a viridis ramp, and dashed lines for the most-certain tick on test and train), as
 * the reference's trainer draws them.
 */
import { colorAt, lineChart, type RgbaImage, type Series, writePng } from "../../src/plot/mod.ts";
import type { History } from "../../src/train/metrics.ts";
import { join } from "../../src/util/std.ts";
import type { ImageMetricsFile } from "./train.ts";

function scalar(h: History, key: string): number[] | null {
  const v = h.values[key];
  return v && !v.some(Array.isArray) ? (v as number[]) : null;
}

/** Loss curves: training windows, the evaluation's train batches, and test. */
export async function lossChart(m: ImageMetricsFile): Promise<RgbaImage | null> {
  const { train, eval: ev } = m.histories;
  const series: Series[] = [];
  const tr = scalar(train, "loss");
  if (tr) series.push({ name: "train (running)", x: train.iters, y: tr, color: "#9ecae1" });
  const et = scalar(ev, "train_loss");
  if (et) {
    series.push({ name: "train", x: ev.iters, y: et, color: "#3182bd", markers: ev.iters.length <= 40 });
  }
  const te = scalar(ev, "test_loss");
  if (te) series.push({ name: "test", x: ev.iters, y: te, color: "#e6550d", markers: ev.iters.length <= 40 });
  if (!series.length || !series.some((s) => Array.from(s.y).some(Number.isFinite))) return null;
  const positive = series.every((s) => Array.from(s.y).every((v) => !Number.isFinite(v) || v > 0));
  return await lineChart({
    title: `${m.dataset} ${m.model}: loss`,
    xLabel: "training iteration",
    yLabel: "cross-entropy",
    series,
    yLog: positive,
    width: 720,
    height: 420,
  });
}

/** Accuracy curves: test top-1 per tick (viridis, early → late) and at the most certain tick. */
export async function accuracyChart(m: ImageMetricsFile): Promise<RgbaImage | null> {
  const ev = m.histories.eval;
  const series: Series[] = [];
  const perTick = ev.values["test_top1_per_tick"] as (number | number[])[] | undefined;
  if (perTick && m.ticks > 1) {
    for (let t = 0; t < m.ticks; t++) {
      const y = perTick.map((row) => (Array.isArray(row) ? row[t] : NaN));
      const [r, g, b] = colorAt("viridis", t, 0, m.ticks - 1);
      series.push({
        name: t === 0 ? "tick 1" : t === m.ticks - 1 ? `tick ${m.ticks}` : undefined,
        x: ev.iters,
        y,
        color: `rgb(${r},${g},${b})`,
        lineWidth: 1,
        opacity: 0.7,
      });
    }
  }
  const test = scalar(ev, "test_top1");
  if (test) series.push({ name: "test, most certain", x: ev.iters, y: test, color: "#d62728", dashed: true });
  const train = scalar(ev, "train_top1");
  if (train) series.push({ name: "train, most certain", x: ev.iters, y: train, color: "#222", dashed: true });
  if (!series.length) return null;
  return await lineChart({
    title: `${m.dataset} ${m.model}: top-1 accuracy`,
    xLabel: "training iteration",
    yLabel: "accuracy",
    series,
    yRange: [0, 1.02],
    width: 720,
    height: 420,
    legend: "bottom-right",
  });
}

/** Writes `losses.png` and `accuracies.png` into `dir` (charts without data are skipped). */
export async function writeTrainingPlots(dir: string, m: ImageMetricsFile): Promise<string[]> {
  const out: string[] = [];
  for (const [name, make] of [["losses", lossChart], ["accuracies", accuracyChart]] as const) {
    const img = await make(m);
    if (!img) continue;
    const path = join(dir, `${name}.png`);
    await writePng(path, img);
    out.push(path);
  }
  return out;
}
