/**
 * Charts drawn as SVG and rasterised by {@link import("./render.ts").renderSvg}: lines (with
 * optional markers, dashes and shaded bands), scatter points and bars on shared axes, with title,
 * axis labels, ticks, grid and legend; and small multiples (a grid of compact charts, e.g. one per
 * neuron) in a single image.
 *
 * Scales and tick positions come from `d3-scale`. This module holds the entry points; the types
 * live in `chart_types.ts`, the drawing of one chart in `chart_panel.ts` (with scales, legend,
 * series preparation and style in the other `chart_*.ts` files) and small multiples in
 * `small_multiples.ts`, all re-exported here.
 *
 * @example
 * ```ts
 * const img = await lineChart({
 *   title: "Parity", xLabel: "iteration", yLabel: "accuracy",
 *   series: [{ name: "train", x: its, y: trainAcc }, { name: "test", x: its, y: testAcc, dashed: true }],
 * });
 * await writePng("out/accuracy.png", img);
 * ```
 */
import { drawPanel } from "./chart_panel.ts";
import { FULL, svgDoc } from "./chart_style.ts";
import type { ChartOptions, SeriesType } from "./chart_types.ts";
import type { RgbaImage } from "./image.ts";
import { renderSvg } from "./render.ts";

export type { ChartOptions, LegendPosition, Rule, Series, SeriesType, Tick } from "./chart_types.ts";
export { smallMultiples, type SmallMultiplesOptions, smallMultiplesSvg } from "./small_multiples.ts";

/** The SVG document of a chart; series default to lines. */
export function chartSvg(opts: ChartOptions, defaultType: SeriesType = "line"): string {
  const W = opts.width ?? 640, H = opts.height ?? 400;
  return svgDoc(W, H, drawPanel(opts, defaultType, 0, 0, W, H, FULL));
}

/** Renders a chart whose series default to lines (set `type` per series for scatter or bars). */
export function lineChart(opts: ChartOptions): Promise<RgbaImage> {
  return renderSvg(chartSvg(opts, "line"), { scale: opts.scale });
}

/** Renders a chart whose series default to scatter points (e.g. accuracy vs thinking time). */
export function scatterChart(opts: ChartOptions): Promise<RgbaImage> {
  return renderSvg(chartSvg(opts, "scatter"), { scale: opts.scale });
}

/**
 * Renders a chart whose series default to bars centred on their x values, e.g. a reliability
 * diagram: bars of accuracy per confidence bin plus a dashed `line` series for the diagonal.
 * Several bar series sharing x values are drawn side by side.
 */
export function barChart(opts: ChartOptions): Promise<RgbaImage> {
  return renderSvg(chartSvg(opts, "bar"), { scale: opts.scale });
}
