/**
 * Figures of the image-classification analysis (`tasks/image_classification/analysis.ts`), from
 * the host maths of `readouts.ts`: top-1/top-5 accuracy per tick for the four readouts
 * (`accuracy_vs_ticks.png`), the fraction of images right or wrong with certainty above 0.5, 0.8
 * and 0.9 per tick (`certainty_threshold.png`), and reliability diagrams at a few ticks
 * (`calibration.png`). The per-tick attention GIF frames are in `attention_frames.ts`.
 */
import {
  type ChartOptions,
  colorAt,
  hstack,
  lineChart,
  type RgbaImage,
  type Series,
  seriesColor,
  smallMultiples,
  textImage,
  type Tick,
  vstack,
} from "../../src/plot/mod.ts";
import {
  type CalibrationCurve,
  type ReadoutAccuracy,
  READOUTS,
  type ThresholdFractions,
} from "./readouts.ts";

/** What the figure titles say about the analysed run. */
export interface FigureContext {
  /** E.g. `cifar10 ctm, iteration 24`. */
  run: string;
  /** Test images analysed. */
  images: number;
}

const READOUT_STYLE: Record<typeof READOUTS[number], Partial<Series>> = {
  "instant": { color: seriesColor(0) },
  "most certain": { color: seriesColor(1), dashed: true },
  "average logits": { color: seriesColor(2) },
  "certainty-weighted logits": { color: seriesColor(3), dashed: true },
};

/** `1…T` as x values. */
function tickAxis(T: number): number[] {
  return Array.from({ length: T }, (_, t) => t + 1);
}

/** Axis ticks at every internal tick for short runs (no fractional ticks); undefined (automatic) beyond 15. */
export function tickMarks(T: number): Tick[] | undefined {
  return T <= 15 ? tickAxis(T).map((t) => ({ value: t, label: String(t) })) : undefined;
}

/**
 * Top-1 and top-k accuracy against internal ticks for the four readouts, side by side, under a
 * title naming the run.
 */
export async function accuracyVsTicksFigure(
  acc: ReadoutAccuracy,
  k: number,
  ctx: FigureContext,
): Promise<RgbaImage> {
  const T = acc.instant.top1.length;
  const x = tickAxis(T);
  const chart = (which: "top1" | "topk", label: string) =>
    lineChart({
      title: `${label} accuracy`,
      xLabel: "internal tick t",
      yLabel: `${label} accuracy (readout of ticks 1…t)`,
      series: READOUTS.map((r) => ({
        name: r,
        x,
        y: acc[r][which],
        markers: T <= 20,
        ...READOUT_STYLE[r],
      })),
      xRange: T > 1 ? [1, T] : [0.5, 1.5],
      xTicks: tickMarks(T),
      yRange: [0, 1.02],
      legend: "bottom-right",
      width: 560,
      height: 400,
    });
  const charts = hstack([await chart("top1", "Top-1"), await chart("topk", `Top-${k}`)], { gap: 8 });
  const title = await textImage(
    `Accuracy per readout over internal ticks · ${ctx.run} · ${ctx.images} test images`,
    charts.width,
    { fontSize: 15, bold: true },
  );
  return vstack([title, charts], { gap: 2, pad: 6 });
}

/**
 * The reference's `steps_versus_correct`, one panel per threshold: at each tick, stacked bars of
 * the fraction of all images whose instant prediction is right (bottom) or wrong (top) with
 * certainty ≥ the threshold.
 */
export function certaintyThresholdFigure(fr: ThresholdFractions[], ctx: FigureContext): Promise<RgbaImage> {
  const T = fr[0]?.correct.length ?? 0;
  const x = tickAxis(T);
  const panels: ChartOptions[] = fr.map((f) => ({
    title: `certainty ≥ ${f.threshold}`,
    xLabel: "internal tick",
    yLabel: "fraction of images",
    // Two bars at the same x with the same explicit width: the total (wrong on top) drawn first,
    // the right part over its lower end, so the bars read as stacked.
    series: [
      {
        name: "incorrect",
        x,
        y: f.correct.map((c, t) => c + f.incorrect[t]),
        type: "bar",
        color: "#d62728",
        barWidth: 0.8,
        opacity: 1,
      },
      { name: "correct", x, y: f.correct, type: "bar", color: "#2ca02c", barWidth: 0.8, opacity: 1 },
    ],
    xRange: [0.4, T + 0.6],
    xTicks: tickMarks(T),
    yRange: [0, 1.02],
  }));
  return smallMultiples(panels, {
    title: `Images right / wrong with certainty above a threshold · ${ctx.run} · ${ctx.images} images`,
    cols: panels.length,
    panelWidth: 400,
    panelHeight: 300,
    type: "bar",
  });
}

/**
 * Reliability diagram: per selected tick (a viridis ramp, early → late), the accuracy of the
 * images in each confidence bin against the bin's mean confidence, with the diagonal of perfect
 * calibration; the legend gives each tick's expected calibration error.
 */
export function calibrationFigure(curves: CalibrationCurve[], ctx: FigureContext): Promise<RgbaImage> {
  const n = curves.length;
  const series: Series[] = curves.map((c, i) => {
    const keep = c.count.map((k, b) => (k > 0 ? b : -1)).filter((b) => b >= 0);
    const [r, g, b] = colorAt("viridis", i, 0, Math.max(1, n - 1));
    return {
      name: `tick ${c.tick + 1} (ECE ${c.ece.toFixed(3)})`,
      x: keep.map((b) => c.confidence[b]),
      y: keep.map((b) => c.accuracy[b]),
      color: `rgb(${r},${g},${b})`,
      markers: true,
    };
  });
  return lineChart({
    title: `Calibration · ${ctx.run} · ${ctx.images} images`,
    xLabel: "confidence: probability of the predicted class, averaged over ticks 1…t (bin mean)",
    yLabel: "accuracy in the bin",
    series: [
      ...series,
      { name: "perfect calibration", x: [0, 1], y: [0, 1], color: "#888", dashed: true, lineWidth: 1.2 },
    ],
    xRange: [0, 1],
    yRange: [0, 1.02],
    legend: "best",
    width: 720,
    height: 520,
  });
}
