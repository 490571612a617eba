/**
 * Charts drawn as SVG and rasterised by {@link import("./render.ts").renderSvg}: lines (with
 * optional markers, dashes and shaded bands), scatter points and bars on shared axes, with title,
 * axis labels, ticks, grid and legend; and small multiples (a grid of compact charts, e.g. one per
 * neuron) in a single image.
 *
 * Scales and tick positions come from `d3-scale`; the layout is computed here.
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
import { scaleLinear, scaleLog } from "d3-scale";
import { seriesColor } from "./colormap.ts";
import type { RgbaImage } from "./image.ts";
import { escapeXml, FONT_FAMILY, renderSvg, textWidth } from "./render.ts";

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

interface Style {
  title: number;
  label: number;
  tick: number;
  legend: number;
  pad: number;
  xTickSpacing: number;
  yTickSpacing: number;
}

const FULL: Style = {
  title: 15,
  label: 13,
  tick: 11,
  legend: 11.5,
  pad: 10,
  xTickSpacing: 90,
  yTickSpacing: 50,
};
const COMPACT: Style = {
  title: 11,
  label: 10,
  tick: 9,
  legend: 9.5,
  pad: 5,
  xTickSpacing: 60,
  yTickSpacing: 32,
};

interface Scale {
  (v: number): number;
  domain(d: number[]): Scale;
  range(r: number[]): Scale;
  ticks(n: number): number[];
  tickFormat(n: number, spec?: string): (v: number) => string;
}

const f2 = (v: number) => (Math.round(v * 100) / 100).toString();

let clipCounter = 0;

interface Prepared {
  s: Series;
  type: SeriesType;
  color: string;
  xs: number[];
  ys: number[];
}

function prepare(opts: ChartOptions, defaultType: SeriesType): Prepared[] {
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

function ok(v: number, log: boolean): boolean {
  return Number.isFinite(v) && (!log || v > 0);
}

/** The default width of bars: 80% of the smallest gap between distinct x values. */
function defaultBarWidth(series: Prepared[]): number {
  const xs = [...new Set(series.filter((p) => p.type === "bar").flatMap((p) => p.xs.filter(Number.isFinite)))]
    .sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < xs.length; i++) gap = Math.min(gap, xs[i] - xs[i - 1]);
  return 0.8 * (Number.isFinite(gap) ? gap : 1);
}

function extent(values: number[], log: boolean): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!ok(v, log)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return log ? [1, 10] : [0, 1];
  return [lo, hi];
}

function widen([lo, hi]: [number, number], log: boolean, frac: number): [number, number] {
  if (log) {
    if (lo === hi) return [lo / 2, hi * 2];
    const r = Math.log10(hi / lo) * frac;
    return [lo / 10 ** r, hi * 10 ** r];
  }
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  const r = (hi - lo) * frac;
  return [lo - r, hi + r];
}

function makeScale(log: boolean, domain: [number, number], range: [number, number]): Scale {
  const s = (log ? scaleLog() : scaleLinear()) as unknown as Scale;
  return s.domain(domain).range(range);
}

function tickList(
  scale: Scale,
  log: boolean,
  explicit: Tick[] | undefined,
  count: number,
): { v: number; label: string }[] {
  if (explicit) {
    const fmt = scale.tickFormat(count, log ? "~g" : undefined);
    return explicit.map((
      t,
    ) => (typeof t === "number" ? { v: t, label: fmt(t) } : { v: t.value, label: t.label }));
  }
  const ticks = scale.ticks(count);
  const fmt = scale.tickFormat(count, log ? "~g" : undefined);
  let out = ticks.map((v) => ({ v, label: fmt(v) }));
  if (log) {
    // d3 returns every minor tick of a log axis; keep only the labelled ones unless that leaves too few.
    const labelled = out.filter((t) => t.label !== "");
    out = labelled.length >= 2
      ? labelled
      : out.map((t) => ({ v: t.v, label: fmt(t.v) || String(+t.v.toPrecision(3)) }));
    if (out.length > count * 2) out = out.filter((t) => Number.isInteger(Math.log10(t.v)));
  }
  return out;
}

interface LegendEntry {
  name: string;
  color: string;
  kind: "line" | "scatter" | "bar";
  dashed: boolean;
  markers: boolean;
}

function legendEntries(prep: Prepared[], rules: Rule[]): LegendEntry[] {
  const out: LegendEntry[] = [];
  for (const p of prep) {
    if (p.s.name) {
      out.push({
        name: p.s.name,
        color: p.color,
        kind: p.type,
        dashed: !!p.s.dashed,
        markers: !!p.s.markers,
      });
    }
  }
  for (const r of rules) {
    if (r.name) {
      out.push({
        name: r.name,
        color: r.color ?? "#777",
        kind: "line",
        dashed: r.dashed ?? true,
        markers: false,
      });
    }
  }
  return out;
}

function swatch(e: LegendEntry, x: number, y: number, w: number): string {
  if (e.kind === "bar") {
    return `<rect x="${f2(x)}" y="${f2(y - 4.5)}" width="${
      f2(w)
    }" height="9" fill="${e.color}" fill-opacity="0.85"/>`;
  }
  let s = "";
  if (e.kind === "line") {
    s +=
      `<line x1="${f2(x)}" y1="${f2(y)}" x2="${f2(x + w)}" y2="${
        f2(y)
      }" stroke="${e.color}" stroke-width="2"` +
      (e.dashed ? ` stroke-dasharray="5 3"` : "") + "/>";
  }
  if (e.kind === "scatter" || e.markers) {
    s += `<circle cx="${f2(x + w / 2)}" cy="${f2(y)}" r="3" fill="${e.color}"/>`;
  }
  return s;
}

/** Legend box contents at (x, y), entries stacked vertically. */
function legendSvg(entries: LegendEntry[], x: number, y: number, st: Style): string {
  const rowH = st.legend * 1.45, sw = st.legend * 2;
  const w = legendWidth(entries, st), h = entries.length * rowH + 6;
  let s =
    `<rect x="${f2(x)}" y="${f2(y)}" width="${f2(w)}" height="${f2(h)}" fill="white" fill-opacity="0.85" ` +
    `stroke="#bbb" stroke-width="0.8" rx="3"/>`;
  entries.forEach((e, i) => {
    const cy = y + 3 + rowH * (i + 0.5);
    s += swatch(e, x + 6, cy, sw);
    s += `<text x="${f2(x + 12 + sw)}" y="${f2(cy + st.legend * 0.35)}" font-size="${st.legend}">${
      escapeXml(e.name)
    }</text>`;
  });
  return s;
}

function legendWidth(entries: LegendEntry[], st: Style): number {
  return Math.max(...entries.map((e) => textWidth(e.name, st.legend))) + st.legend * 2 + 20;
}

/** Draws one chart into the box (x0, y0, w, h) and returns the SVG fragment. */
function drawPanel(
  opts: ChartOptions,
  defaultType: SeriesType,
  x0: number,
  y0: number,
  W: number,
  H: number,
  st: Style,
) {
  const prep = prepare(opts, defaultType);
  const rules = opts.rules ?? [];
  const xLog = !!opts.xLog, yLog = !!opts.yLog;
  const bars = prep.filter((p) => p.type === "bar");
  const barW = bars.length ? bars[0].s.barWidth ?? defaultBarWidth(prep) : 0;

  // ---- domains
  let xDom: [number, number];
  if (opts.xRange) xDom = opts.xRange;
  else {
    const xs = prep.flatMap((p) =>
      p.type === "bar" ? p.xs.flatMap((v) => [v - barW / 2, v + barW / 2]) : p.xs
    );
    xDom = extent(xs.concat(rules.flatMap((r) => (r.x === undefined ? [] : [r.x]))), xLog);
    const allLines = prep.every((p) => p.type === "line");
    xDom = allLines && xDom[0] !== xDom[1] ? xDom : widen(xDom, xLog, bars.length ? 0.02 : 0.04);
  }
  let yDom: [number, number];
  if (opts.yRange) yDom = opts.yRange;
  else {
    const ys = prep.flatMap((p) =>
      p.s.band ? [...p.ys, ...Array.from(p.s.band.lo), ...Array.from(p.s.band.hi)] : p.ys
    );
    if (bars.length && !yLog) ys.push(0);
    yDom = widen(extent(ys.concat(rules.flatMap((r) => (r.y === undefined ? [] : [r.y]))), yLog), yLog, 0.04);
    if (bars.length && !yLog) {
      const [lo, hi] = extent(bars.flatMap((p) => p.ys), false);
      if (lo >= 0) yDom[0] = 0;
      if (hi <= 0) yDom[1] = 0;
    }
  }

  // ---- layout
  const hasLegend = legendEntries(prep, rules);
  const legendPos: LegendPosition = hasLegend.length === 0 ? "none" : opts.legend ?? "best";
  const top = y0 + st.pad + (opts.title ? st.title * 1.5 : 0);
  const bottom = y0 + H - st.pad - st.tick * 1.2 - 5 - (opts.xLabel ? st.label * 1.5 : 0);
  const yCount = Math.max(2, Math.round((bottom - top) / st.yTickSpacing));
  const yProbe = makeScale(yLog, yDom, [bottom, top]);
  const yTicks = tickList(yProbe, yLog, opts.yTicks, yCount);
  const yTickW = Math.max(0, ...yTicks.map((t) => textWidth(t.label, st.tick)));
  const left = x0 + st.pad + (opts.yLabel ? st.label * 1.5 : 0) + yTickW + 6;
  const legendOut = legendPos === "right" ? legendWidth(hasLegend, st) + 8 : 0;
  const right = x0 + W - st.pad - legendOut - st.tick; // room for half of the last x tick label
  if (right - left < 10 || bottom - top < 10) throw new Error(`chart ${W}x${H} is too small for its labels`);
  const xs = makeScale(xLog, xDom, [left, right]);
  const ys = yProbe;
  const xCount = Math.max(2, Math.round((right - left) / st.xTickSpacing));
  const xTicks = tickList(xs, xLog, opts.xTicks, xCount);

  let s = "";

  // ---- grid, ticks, labels
  const inX = (v: number) => xs(v) >= left - 0.5 && xs(v) <= right + 0.5;
  const inY = (v: number) => ys(v) >= top - 0.5 && ys(v) <= bottom + 0.5;
  if (opts.grid ?? true) {
    for (const t of xTicks.filter((t) => inX(t.v))) {
      s += `<line x1="${f2(xs(t.v))}" y1="${f2(top)}" x2="${f2(xs(t.v))}" y2="${
        f2(bottom)
      }" stroke="#e6e6e6"/>`;
    }
    for (const t of yTicks.filter((t) => inY(t.v))) {
      s += `<line x1="${f2(left)}" y1="${f2(ys(t.v))}" x2="${f2(right)}" y2="${
        f2(ys(t.v))
      }" stroke="#e6e6e6"/>`;
    }
  }
  for (const t of xTicks.filter((t) => inX(t.v))) {
    const x = f2(xs(t.v));
    s += `<line x1="${x}" y1="${f2(bottom)}" x2="${x}" y2="${f2(bottom + 4)}" stroke="#444"/>`;
    s +=
      `<text x="${x}" y="${
        f2(bottom + 5 + st.tick)
      }" font-size="${st.tick}" text-anchor="middle" fill="#333">` +
      `${escapeXml(t.label)}</text>`;
  }
  for (const t of yTicks.filter((t) => inY(t.v))) {
    const y = f2(ys(t.v));
    s += `<line x1="${f2(left - 4)}" y1="${y}" x2="${f2(left)}" y2="${y}" stroke="#444"/>`;
    s +=
      `<text x="${f2(left - 6)}" y="${
        f2(ys(t.v) + st.tick * 0.35)
      }" font-size="${st.tick}" text-anchor="end" ` +
      `fill="#333">${escapeXml(t.label)}</text>`;
  }
  if (opts.title) {
    s += `<text x="${f2((left + right) / 2)}" y="${f2(y0 + st.pad + st.title)}" font-size="${st.title}" ` +
      `font-weight="bold" text-anchor="middle">${escapeXml(opts.title)}</text>`;
  }
  if (opts.xLabel) {
    s +=
      `<text x="${f2((left + right) / 2)}" y="${
        f2(y0 + H - st.pad - st.label * 0.25)
      }" font-size="${st.label}" ` +
      `text-anchor="middle">${escapeXml(opts.xLabel)}</text>`;
  }
  if (opts.yLabel) {
    const cx = x0 + st.pad + st.label, cy = (top + bottom) / 2;
    s +=
      `<text transform="translate(${f2(cx)},${
        f2(cy)
      }) rotate(-90)" font-size="${st.label}" text-anchor="middle">` +
      `${escapeXml(opts.yLabel)}</text>`;
  }

  // ---- data (clipped to the plot only when something lies outside: a clip path is slow in resvg)
  let data = "";
  const pts: [number, number][] = []; // pixel positions, for legend placement and the clip test
  const px = (v: number) => xs(v), py = (v: number) => ys(v);
  for (const r of rules) {
    const dash = r.dashed ?? true ? ` stroke-dasharray="6 4"` : "";
    const c = r.color ?? "#777";
    if (r.y !== undefined && ok(r.y, yLog)) {
      data +=
        `<line x1="${f2(left)}" y1="${f2(py(r.y))}" x2="${f2(right)}" y2="${f2(py(r.y))}" stroke="${c}" ` +
        `stroke-width="1.3"${dash}/>`;
    }
    if (r.x !== undefined && ok(r.x, xLog)) {
      data +=
        `<line x1="${f2(px(r.x))}" y1="${f2(top)}" x2="${f2(px(r.x))}" y2="${f2(bottom)}" stroke="${c}" ` +
        `stroke-width="1.3"${dash}/>`;
    }
  }
  const yBase = yLog ? bottom : Math.min(bottom, Math.max(top, py(0)));
  bars.forEach((p, bi) => {
    const w = p.s.barWidth ?? barW;
    const each = bars.length > 1 && p.s.barWidth === undefined ? w / bars.length : w;
    const off = bars.length > 1 && p.s.barWidth === undefined ? -w / 2 + each * (bi + 0.5) : 0;
    const op = p.s.opacity ?? 0.85;
    data += `<g fill="${p.color}" fill-opacity="${op}">`;
    p.xs.forEach((x, j) => {
      const y = p.ys[j];
      if (!ok(x, xLog) || !ok(y, yLog)) return;
      const xa = px(x + off - each / 2), xb = px(x + off + each / 2), yv = py(y);
      data +=
        `<rect x="${f2(Math.min(xa, xb))}" y="${f2(Math.min(yv, yBase))}" width="${f2(Math.abs(xb - xa))}" ` +
        `height="${f2(Math.abs(yBase - yv))}"/>`;
      for (let k = 0; k <= 4; k++) {
        pts.push([xa + ((xb - xa) * k) / 4, yv], [xa + ((xb - xa) * k) / 4, (yv + yBase) / 2]);
      }
    });
    data += `</g>`;
  });
  for (const p of prep) {
    if (p.type === "bar") continue;
    const valid = (j: number) => ok(p.xs[j], xLog) && ok(p.ys[j], yLog);
    const op = p.s.opacity ?? 1;
    if (p.s.band && p.type === "line") {
      const { lo, hi } = p.s.band;
      // One polygon per run of valid points.
      let run: number[] = [];
      const flush = () => {
        if (run.length > 1) {
          const fwd = run.map((j) => `${f2(px(p.xs[j]))},${f2(py(Number(hi[j])))}`);
          const back = run.slice().reverse().map((j) => `${f2(px(p.xs[j]))},${f2(py(Number(lo[j])))}`);
          data += `<polygon points="${fwd.concat(back).join(" ")}" fill="${p.color}" fill-opacity="${
            0.2 * op
          }"/>`;
          for (const j of run) pts.push([px(p.xs[j]), py(Number(hi[j]))], [px(p.xs[j]), py(Number(lo[j]))]);
        }
        run = [];
      };
      for (let j = 0; j < p.xs.length; j++) {
        if (valid(j) && ok(Number(lo[j]), yLog) && ok(Number(hi[j]), yLog)) run.push(j);
        else flush();
      }
      flush();
    }
    if (p.type === "line") {
      let d = "", pen = false, prev: [number, number] | null = null;
      for (let j = 0; j < p.xs.length; j++) {
        if (!valid(j)) {
          pen = false;
          prev = null;
          continue;
        }
        const X = px(p.xs[j]), Y = py(p.ys[j]);
        d += `${pen ? "L" : "M"}${f2(X)} ${f2(Y)}`;
        pen = true;
        if (prev) {
          const steps = Math.min(50, Math.ceil(Math.hypot(X - prev[0], Y - prev[1]) / 8));
          for (let k = 1; k < steps; k++) {
            pts.push([prev[0] + ((X - prev[0]) * k) / steps, prev[1] + ((Y - prev[1]) * k) / steps]);
          }
        }
        pts.push([X, Y]);
        prev = [X, Y];
      }
      const lw = p.s.lineWidth ?? 1.8;
      data += `<path d="${d}" fill="none" stroke="${p.color}" stroke-width="${lw}" stroke-linejoin="round" ` +
        `stroke-linecap="round"${p.s.dashed ? ` stroke-dasharray="${f2(lw * 3.5)} ${f2(lw * 2)}"` : ""}` +
        `${op < 1 ? ` stroke-opacity="${op}"` : ""}/>`;
    }
    if (p.type === "scatter" || p.s.markers) {
      const r = p.s.markerSize ?? 3;
      data += `<g fill="${p.color}"${op < 1 ? ` fill-opacity="${op}"` : ""}>`;
      for (let j = 0; j < p.xs.length; j++) {
        if (!valid(j)) continue;
        const X = px(p.xs[j]), Y = py(p.ys[j]);
        data += `<circle cx="${f2(X)}" cy="${f2(Y)}" r="${r}"/>`;
        pts.push([X, Y]);
      }
      data += `</g>`;
    }
  }
  const outside = pts.some(([x, y]) => x < left - 1 || x > right + 1 || y < top - 1 || y > bottom + 1);
  if (outside) {
    const clip = `clip${++clipCounter}`;
    s += `<defs><clipPath id="${clip}"><rect x="${f2(left)}" y="${f2(top)}" width="${f2(right - left)}" ` +
      `height="${f2(bottom - top)}"/></clipPath></defs><g clip-path="url(#${clip})">${data}</g>`;
  } else s += data;
  s +=
    `<rect x="${f2(left)}" y="${f2(top)}" width="${f2(right - left)}" height="${
      f2(bottom - top)
    }" fill="none" ` +
    `stroke="#444" stroke-width="1"/>`;

  // ---- legend
  if (legendPos !== "none") {
    const lw = legendWidth(hasLegend, st), lh = hasLegend.length * st.legend * 1.45 + 6, m = 6;
    const corners: Record<string, [number, number]> = {
      "top-right": [right - lw - m, top + m],
      "top-left": [left + m, top + m],
      "bottom-right": [right - lw - m, bottom - lh - m],
      "bottom-left": [left + m, bottom - lh - m],
    };
    let at: [number, number];
    if (legendPos === "right") at = [right + st.tick + 6, top];
    else if (legendPos === "best") {
      let best = Infinity;
      at = corners["top-right"];
      for (const c of Object.values(corners)) {
        const n = pts.filter(([x, y]) =>
          x >= c[0] - 2 && x <= c[0] + lw + 2 && y >= c[1] - 2 && y <= c[1] + lh + 2
        ).length;
        if (n < best) {
          best = n;
          at = c;
        }
      }
    } else at = corners[legendPos];
    s += legendSvg(hasLegend, at[0], at[1], st);
  }
  return s;
}

function svgDoc(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/>${body}</svg>`;
}

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

/** Options of {@link smallMultiples}. */
export interface SmallMultiplesOptions {
  /** Panels per row (default: about square). */
  cols?: number;
  /** Width of each panel in SVG pixels (default 220). */
  panelWidth?: number;
  /** Height of each panel (default 150). */
  panelHeight?: number;
  /** Figure title. */
  title?: string;
  /** One legend for the figure, listing each series name once, under the title (default true). */
  legend?: boolean;
  /** Default series type of the panels (default `line`). */
  type?: SeriesType;
  /** Pixel density (default 1). */
  scale?: number;
}

/** The SVG document of {@link smallMultiples}. */
export function smallMultiplesSvg(panels: ChartOptions[], opts: SmallMultiplesOptions = {}): string {
  if (panels.length === 0) throw new Error("smallMultiples needs at least one panel");
  const cols = Math.max(1, Math.min(panels.length, opts.cols ?? Math.ceil(Math.sqrt(panels.length))));
  const rows = Math.ceil(panels.length / cols);
  const pw = opts.panelWidth ?? 220, ph = opts.panelHeight ?? 150;
  const type = opts.type ?? "line";

  // Shared legend: each name once, with the style of its first appearance.
  const entries: LegendEntry[] = [];
  if (opts.legend ?? true) {
    const seen = new Set<string>();
    for (const p of panels) {
      for (const e of legendEntries(prepare(p, type), p.rules ?? [])) {
        if (!seen.has(e.name)) {
          seen.add(e.name);
          entries.push(e);
        }
      }
    }
  }
  const W = cols * pw;
  let y = 0, head = "";
  if (opts.title) {
    head +=
      `<text x="${f2(W / 2)}" y="${
        f2(FULL.pad + FULL.title)
      }" font-size="${FULL.title}" font-weight="bold" ` +
      `text-anchor="middle">${escapeXml(opts.title)}</text>`;
    y += FULL.pad + FULL.title * 1.5;
  }
  if (entries.length) {
    // One row, centred.
    const fs = FULL.legend, sw = fs * 2;
    const widths = entries.map((e) => sw + 10 + textWidth(e.name, fs) + 16);
    let x = (W - widths.reduce((a, b) => a + b, 0)) / 2;
    const cy = y + FULL.pad + fs * 0.5;
    entries.forEach((e, i) => {
      head += swatch(e, x, cy, sw);
      head += `<text x="${f2(x + sw + 6)}" y="${f2(cy + fs * 0.35)}" font-size="${fs}">${
        escapeXml(e.name)
      }</text>`;
      x += widths[i];
    });
    y += FULL.pad + fs * 1.5;
  }
  let body = head;
  panels.forEach((p, i) => {
    const px = (i % cols) * pw, py = y + Math.floor(i / cols) * ph;
    body += drawPanel({ legend: "none", ...p }, type, px, py, pw, ph, COMPACT);
  });
  return svgDoc(W, Math.ceil(y + rows * ph), body);
}

/**
 * Renders many compact charts in a grid, e.g. neural dynamics: one panel per neuron, with its
 * pre- and post-activation traces over internal ticks. Panels share one legend at the top.
 */
export function smallMultiples(panels: ChartOptions[], opts: SmallMultiplesOptions = {}): Promise<RgbaImage> {
  return renderSvg(smallMultiplesSvg(panels, opts), { scale: opts.scale });
}
