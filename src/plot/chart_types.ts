/**
 * The public types describing a chart: its series, reference rules, explicit ticks, legend
 * position and the options shared by {@link import("./chart.ts").lineChart} and the other charts.
 */

/** How a series is drawn. */
export type SeriesType = "line" | "scatter" | "bar";

/** One data series of a chart. */
export interface Series {
  /** Legend label; series without a name are not listed in the legend. */
  name?: string;
  /** X values (default 0, 1, 2, …). */
  x?: ArrayLike<number>;
  /** Y values; non-finite values leave gaps in lines and are skipped elsewhere. */
  y: ArrayLike<number>;
  /** `line` (default for {@link lineChart}), `scatter` or `bar`. */
  type?: SeriesType;
  /** CSS colour (default: the next colour of the Tableau-10 cycle). */
  color?: string;
  /** Dashed line. */
  dashed?: boolean;
  /** Line width in pixels (default 1.8). */
  lineWidth?: number;
  /** Draw a dot on each point of a line. */
  markers?: boolean;
  /** Dot radius for markers and scatter points (default 3). */
  markerSize?: number;
  /** Opacity of the series, 0–1 (default 1; 0.85 for bars). */
  opacity?: number;
  /** A shaded band around a line, e.g. mean ± std over seeds (same length as `y`). */
  band?: { lo: ArrayLike<number>; hi: ArrayLike<number> };
  /** Bar width in x units (default: 80% of the smallest spacing of x, shared by grouped bar series). */
  barWidth?: number;
}

/** A tick given explicitly: a position and, optionally, its label. */
export type Tick = number | { value: number; label: string };

/** Where the legend goes: inside a corner of the plot, outside on the right, or nowhere. */
export type LegendPosition =
  | "best"
  | "top-right"
  | "top-left"
  | "bottom-right"
  | "bottom-left"
  | "right"
  | "none";

/** A horizontal (`y`) or vertical (`x`) reference line across the whole plot, e.g. chance level. */
export interface Rule {
  /** Draws a horizontal line at this y. */
  y?: number;
  /** Draws a vertical line at this x. */
  x?: number;
  /** CSS colour (default grey). */
  color?: string;
  /** Dashed (default true). */
  dashed?: boolean;
  /** Legend label. */
  name?: string;
}

/** Everything a chart shows. */
export interface ChartOptions {
  /** The data. */
  series: Series[];
  /** Title above the plot. */
  title?: string;
  /** X axis label. */
  xLabel?: string;
  /** Y axis label. */
  yLabel?: string;
  /** Width in SVG pixels (default 640; {@link smallMultiples} uses its `panelWidth` instead). */
  width?: number;
  /** Height in SVG pixels (default 400; {@link smallMultiples} uses its `panelHeight` instead). */
  height?: number;
  /** Fixed x range (default: the data's, with a margin for scatter and bars). */
  xRange?: [number, number];
  /** Fixed y range (default: the data's plus a 4% margin; bars start at 0). */
  yRange?: [number, number];
  /** Logarithmic x axis (non-positive values are dropped). */
  xLog?: boolean;
  /** Logarithmic y axis, e.g. for losses (non-positive values are dropped). */
  yLog?: boolean;
  /** Explicit x ticks (default: chosen by d3). */
  xTicks?: Tick[];
  /** Explicit y ticks (default: chosen by d3). */
  yTicks?: Tick[];
  /** Legend position (default `best`: the inside corner covering the fewest data points). */
  legend?: LegendPosition;
  /** Grid lines at the ticks (default true). */
  grid?: boolean;
  /** Reference lines. */
  rules?: Rule[];
  /** Pixel density of the rendered image (default 1; 2 for sharper, larger PNGs). */
  scale?: number;
}
