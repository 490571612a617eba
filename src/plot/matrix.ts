/**
 * A matrix drawn with axes: coloured cells (one per value, rows top to bottom) with a title, axis
 * labels, row and column tick labels (a subset when there are many) and a colour bar; e.g. accuracy
 * per checkpoint × sequence position, or per training iteration × internal tick.
 */
import { colorAt, type ColormapName } from "./colormap.ts";
import { colorbar } from "./heatmap.ts";
import { hstack, type RgbaImage } from "./image.ts";
import { escapeXml, FONT_FAMILY, renderSvg, textWidth } from "./render.ts";

/** Options of {@link matrixChart}. */
export interface MatrixChartOptions {
  /** Row-major values, `rows`×`cols`. */
  values: ArrayLike<number>;
  /** Number of rows (drawn top to bottom). */
  rows: number;
  /** Number of columns. */
  cols: number;
  /** Label of each row (e.g. the checkpoint iteration); long lists show a subset. */
  rowLabels?: string[];
  /** Label of each column (default: its index). */
  colLabels?: string[];
  /** Figure title. */
  title?: string;
  /** X axis label. */
  xLabel?: string;
  /** Y axis label. */
  yLabel?: string;
  /** Label of the colour bar. */
  colorbarLabel?: string;
  /** Colormap (default viridis). */
  colormap?: ColormapName;
  /** Colour scale (default: the data's range). */
  min?: number;
  /** Colour scale (default: the data's range). */
  max?: number;
  /** Target plot size in pixels; cells are sized to fit (default 640×320). */
  plotWidth?: number;
  /** Target plot height. */
  plotHeight?: number;
}

/** Every `k`-th index so that at most `n` labels are shown (always the last one). */
function labelIndices(count: number, n: number): number[] {
  const step = Math.max(1, Math.ceil(count / n));
  const idx: number[] = [];
  for (let i = 0; i < count; i += step) idx.push(i);
  if (idx.at(-1) !== count - 1 && count - 1 - (idx.at(-1) ?? 0) >= step / 2) idx.push(count - 1);
  return idx;
}

/** A matrix drawn as coloured cells with a title, axis labels, row/column tick labels and a colour bar. */
export async function matrixChart(o: MatrixChartOptions): Promise<RgbaImage> {
  const { rows, cols } = o;
  if (o.values.length !== rows * cols) {
    throw new Error(`matrixChart: ${rows}x${cols} needs ${rows * cols} values`);
  }
  let lo = o.min ?? Infinity, hi = o.max ?? -Infinity;
  if (o.min === undefined || o.max === undefined) {
    for (let i = 0; i < o.values.length; i++) {
      const v = o.values[i];
      if (!Number.isFinite(v)) continue;
      if (o.min === undefined) lo = Math.min(lo, v);
      if (o.max === undefined) hi = Math.max(hi, v);
    }
    if (!(lo <= hi)) [lo, hi] = [0, 1];
  }
  const cmap = o.colormap ?? "viridis";
  const cw = Math.max(2, Math.min(40, Math.floor((o.plotWidth ?? 640) / cols)));
  const ch = Math.max(2, Math.min(80, Math.floor((o.plotHeight ?? 320) / rows)));
  const fs = 11, titleFs = 15, labelFs = 13;
  const rowLabels = o.rowLabels ?? Array.from({ length: rows }, (_, i) => String(i));
  const colLabels = o.colLabels ?? Array.from({ length: cols }, (_, i) => String(i));
  const rowIdx = labelIndices(rows, Math.max(2, Math.floor((rows * ch) / (fs * 1.4))));
  const colIdx = labelIndices(cols, Math.max(2, Math.floor((cols * cw) / 40)));
  const rowLabelW = Math.max(...rowIdx.map((i) => textWidth(rowLabels[i], fs)));
  const left = 10 + (o.yLabel ? labelFs * 1.6 : 0) + rowLabelW + 6;
  const top = 10 + (o.title ? titleFs * 1.6 : 0);
  const pw = cols * cw, ph = rows * ch;
  const titleW = o.title ? textWidth(o.title, titleFs, true) + 24 : 0;
  const W = Math.ceil(Math.max(left + pw + 12, titleW)),
    H = Math.ceil(top + ph + 6 + fs * 1.3 + (o.xLabel ? labelFs * 1.6 : 0) + 8);
  const f = (v: number) => v.toFixed(2);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/>`;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = o.values[r * cols + c];
      const [R, G, B] = Number.isFinite(v) ? colorAt(cmap, v, lo, hi) : [200, 200, 200];
      s += `<rect x="${f(left + c * cw)}" y="${f(top + r * ch)}" width="${cw + 0.5}" height="${ch + 0.5}" ` +
        `fill="rgb(${R},${G},${B})"/>`;
    }
  }
  s += `<rect x="${f(left)}" y="${f(top)}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`;
  for (const r of rowIdx) {
    const y = top + (r + 0.5) * ch;
    s += `<text x="${f(left - 5)}" y="${f(y + fs * 0.35)}" font-size="${fs}" text-anchor="end" fill="#333">` +
      `${escapeXml(rowLabels[r])}</text>`;
  }
  for (const c of colIdx) {
    const x = left + (c + 0.5) * cw;
    s += `<line x1="${f(x)}" y1="${f(top + ph)}" x2="${f(x)}" y2="${f(top + ph + 3)}" stroke="#444"/>` +
      `<text x="${f(x)}" y="${f(top + ph + 4 + fs)}" font-size="${fs}" text-anchor="middle" fill="#333">` +
      `${escapeXml(colLabels[c])}</text>`;
  }
  if (o.title) {
    const tx = Math.min(Math.max(left + pw / 2, titleW / 2), W - titleW / 2);
    s += `<text x="${f(tx)}" y="${f(10 + titleFs)}" font-size="${titleFs}" font-weight="bold" ` +
      `text-anchor="middle">${escapeXml(o.title)}</text>`;
  }
  if (o.xLabel) {
    s += `<text x="${f(left + pw / 2)}" y="${f(H - 8)}" font-size="${labelFs}" text-anchor="middle">` +
      `${escapeXml(o.xLabel)}</text>`;
  }
  if (o.yLabel) {
    s +=
      `<text transform="translate(${f(10 + labelFs)},${
        f(top + ph / 2)
      }) rotate(-90)" font-size="${labelFs}" ` +
      `text-anchor="middle">${escapeXml(o.yLabel)}</text>`;
  }
  const body = await renderSvg(s + `</svg>`);
  const bar = await colorbar({
    colormap: cmap,
    min: lo,
    max: hi,
    height: Math.max(60, ph),
    label: o.colorbarLabel,
  });
  return hstack([body, bar], { gap: 0, pad: 2 });
}
