/**
 * Internal preparation of chart series: resolved type, colour and numeric x/y arrays, the
 * validity test of a value on a (log) axis, and the default bar width.
 */
import { seriesColor } from "./colormap.ts";
import type { ChartOptions, Series, SeriesType } from "./chart_types.ts";

/** A series with its type, colour and values resolved. */
export interface Prepared {
  /** The series as given. */
  s: Series;
  /** Its type, or the chart's default. */
  type: SeriesType;
  /** Its colour, or the next of the cycle. */
  color: string;
  /** X values (0, 1, 2, … when not given). */
  xs: number[];
  /** Y values. */
  ys: number[];
}

/** Resolves the series of a chart; throws when a series' x and y differ in length. */
export function prepare(opts: ChartOptions, defaultType: SeriesType): Prepared[] {
  return opts.series.map((s, i) => {
    const n = s.y.length;
    if (s.x && s.x.length !== n) {
      throw new Error(`series ${s.name ?? i}: x has ${s.x.length} values, y has ${n}`);
    }
    const xs = Array.from({ length: n }, (_, j) => (s.x ? Number(s.x[j]) : j));
    return {
      s,
      type: s.type ?? defaultType,
      color: s.color ?? seriesColor(i),
      xs,
      ys: Array.from(s.y, Number),
    };
  });
}

/** Whether a value can be drawn: finite, and positive on a log axis. */
export function ok(v: number, log: boolean): boolean {
  return Number.isFinite(v) && (!log || v > 0);
}

/** The default width of bars: 80% of the smallest gap between distinct x values. */
export function defaultBarWidth(series: Prepared[]): number {
  const xs = [...new Set(series.filter((p) => p.type === "bar").flatMap((p) => p.xs.filter(Number.isFinite)))]
    .sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < xs.length; i++) gap = Math.min(gap, xs[i] - xs[i - 1]);
  return 0.8 * (Number.isFinite(gap) ? gap : 1);
}
