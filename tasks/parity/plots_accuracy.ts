/**
 * Accuracy figures of the parity analysis: accuracy per internal tick and thinking time (the tick
 * of lowest normalised entropy) of one checkpoint, and accuracy per position and per tick across
 * checkpoints (line charts, matrices and a GIF).
 */
import {
  barChart,
  heatmapFrames,
  lineChart,
  matrixChart,
  type RgbaImage,
  seriesColor,
} from "../../src/plot/mod.ts";
import type { NamedImage } from "./plots_curves.ts";

/**
 * The tick at which a sequence's prediction counts, as in the trainer's accuracy: the most
 * certain tick (the CTM, and the LSTM with `use_most_certain_with_lstm`), or the last tick.
 */
export type TickChoice = "most certain" | "last";

/** What the tick and thinking-time figures show of one checkpoint on the test batch. */
export interface ParitySummary {
  /** Accuracy over positions and sequences at each tick `[T]`. */
  accuracyPerTick: number[];
  /** Fraction of sequences right at every position, at each tick `[T]`. */
  fullSequencePerTick: number[];
  /** Which tick per sequence the accuracies below use: the most certain one, or the last one. */
  tickChoice: TickChoice;
  /** Per-position accuracy at each sequence's chosen tick. */
  accuracyAtTick: number;
  /** Accuracy of each position at the chosen tick `[L]`. */
  accuracyPerPosition: number[];
  /** Fraction of positions whose thinking time is tick t `[T]`. */
  thinkingTimeHistogram: number[];
  /** Accuracy of the positions with thinking time t, at that tick `[T]` (NaN where none). */
  accuracyByThinkingTime: number[];
  /** Mean and std of the thinking time (1-based tick) of each position `[L]`. */
  thinkingTimePerPosition: { mean: number[]; std: number[] };
}

/**
 * Accuracy vs thinking time: `accuracy_vs_tick` (accuracy per internal tick, per position and
 * whole sequence), `thinking_time_histogram`, `accuracy_vs_thinking_time` and
 * `thinking_time_vs_seq_element`.
 */
export async function tickFigures(
  s: ParitySummary,
  iteration: number,
  sequences: number,
): Promise<NamedImage[]> {
  const T = s.accuracyPerTick.length, L = s.accuracyPerPosition.length;
  const ticks = Array.from({ length: T }, (_, t) => t + 1);
  const size = { width: 720, height: 420 };
  const chance = { y: 0.5, color: "#bbb" };
  const { mean, std } = s.thinkingTimePerPosition;
  return [
    {
      name: "accuracy_vs_tick",
      image: await lineChart({
        title: `Test accuracy per internal tick (iteration ${iteration}, ${sequences} sequences)`,
        xLabel: "internal tick",
        yLabel: "accuracy",
        series: [
          { name: "per position", x: ticks, y: s.accuracyPerTick, markers: T <= 30 },
          { name: "whole sequence", x: ticks, y: s.fullSequencePerTick, dashed: true },
        ],
        rules: [
          {
            y: s.accuracyAtTick,
            color: seriesColor(2),
            name: `at the ${s.tickChoice} tick: ${(100 * s.accuracyAtTick).toFixed(1)}%`,
          },
          { ...chance, name: "chance (per position)" },
        ],
        yRange: [0, 1.02],
        ...size,
      }),
    },
    {
      name: "thinking_time_histogram",
      image: await barChart({
        title: "Thinking time: tick of lowest normalised entropy per position",
        xLabel: "internal tick",
        yLabel: "fraction of positions",
        series: [{ x: ticks, y: s.thinkingTimeHistogram }],
        ...size,
      }),
    },
    {
      name: "accuracy_vs_thinking_time",
      image: await lineChart({
        title: "Accuracy vs thinking time (at each position's lowest-entropy tick)",
        xLabel: "thinking time (internal tick)",
        yLabel: "accuracy",
        series: [{
          name: "positions with this thinking time",
          x: ticks,
          y: s.accuracyByThinkingTime,
          markers: true,
          lineWidth: 1,
        }],
        rules: [{ ...chance, name: "chance" }],
        yRange: [0, 1.02],
        xRange: [0.5, T + 0.5],
        ...size,
      }),
    },
    {
      name: "thinking_time_vs_seq_element",
      image: await lineChart({
        title: "Thinking time per sequence position (mean ± std)",
        xLabel: "sequence position",
        yLabel: "thinking time (internal tick)",
        series: [{
          name: "mean over sequences",
          x: Array.from({ length: L }, (_, l) => l),
          y: mean,
          band: { lo: mean.map((m, l) => m - std[l]), hi: mean.map((m, l) => m + std[l]) },
          markers: L <= 32,
        }],
        yRange: [0, T + 1],
        ...size,
      }),
    },
  ];
}

/** One checkpoint's accuracies on the test batch, for the across-checkpoint figures. */
export interface CheckpointAccuracy {
  /** Its training iteration. */
  iteration: number;
  /** Per-position accuracy at the chosen tick `[L]`. */
  perPosition: number[];
  /** Accuracy per tick `[T]`. */
  perTick: number[];
  /** Accuracy at the chosen tick. */
  accuracy: number;
}

/** A colour from light to dark blue for checkpoint `t ∈ [0, 1]` (early → late). */
function rampColor(t: number): string {
  const a = [158, 202, 225], b = [8, 48, 107];
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * Accuracy across checkpoints (oldest first): `accuracy_vs_seq_element` (one line per checkpoint)
 * always; with two or more checkpoints also the `accuracy_heatmap` (checkpoint × position) and
 * `tick_accuracy_heatmap` (checkpoint × tick) PNGs and the `accuracy_heatmap` GIF (one √L×√L
 * frame per checkpoint).
 */
export async function checkpointFigures(
  rows: CheckpointAccuracy[],
  tickChoice: TickChoice = "most certain",
): Promise<{ images: NamedImage[]; gifs: { name: string; frames: RgbaImage[] }[] }> {
  const L = rows[0].perPosition.length, T = rows[0].perTick.length, side = Math.round(Math.sqrt(L));
  const positions = Array.from({ length: L }, (_, l) => l);
  const n = rows.length;
  const images: NamedImage[] = [{
    name: "accuracy_vs_seq_element",
    image: await lineChart({
      title: n > 1
        ? "Accuracy per sequence position, across checkpoints"
        : `Accuracy per sequence position (iteration ${rows[0].iteration})`,
      xLabel: "sequence position",
      yLabel: `accuracy at the ${tickChoice} tick`,
      series: rows.map((r, i) => ({
        name: n <= 8 || i === n - 1 || i % Math.ceil(n / 6) === 0 ? `iteration ${r.iteration}` : undefined,
        x: positions,
        y: r.perPosition,
        color: n > 1 ? rampColor(i / (n - 1)) : seriesColor(0),
        lineWidth: i === n - 1 ? 2.5 : 1.4,
        markers: L <= 16,
      })),
      rules: [{ y: 0.5, color: "#bbb" }],
      yRange: [0, 1.02],
      legend: "right",
      width: 820,
      height: 420,
    }),
  }];
  if (n < 2) return { images, gifs: [] };
  const common = {
    rows: n,
    rowLabels: rows.map((r) => String(r.iteration)),
    yLabel: "checkpoint (iteration)",
    colorbarLabel: "accuracy",
    min: 0,
    max: 1,
  };
  images.push({
    name: "accuracy_heatmap",
    image: await matrixChart({
      ...common,
      values: rows.flatMap((r) => r.perPosition),
      cols: L,
      colLabels: positions.map(String),
      title: "Accuracy per sequence position across checkpoints",
      xLabel: "sequence position",
    }),
  });
  images.push({
    name: "tick_accuracy_heatmap",
    image: await matrixChart({
      ...common,
      values: rows.flatMap((r) => r.perTick),
      cols: T,
      colLabels: Array.from({ length: T }, (_, t) => String(t + 1)),
      title: "Accuracy per internal tick across checkpoints",
      xLabel: "internal tick",
    }),
  });
  const frames = await heatmapFrames(rows.map((r) => r.perPosition), side, side, {
    cellSize: Math.max(8, Math.floor(192 / side)),
    gap: 1,
    gapColor: [200, 200, 200, 255],
    min: 0,
    max: 1,
    colorbar: true,
    titles: rows.map((r) =>
      `accuracy per position · iteration ${r.iteration} · mean ${(100 * r.accuracy).toFixed(1)}%`
    ),
    fontSize: 12,
  });
  return { images, gifs: [{ name: "accuracy_heatmap", frames }] };
}
