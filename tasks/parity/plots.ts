/**
 * Figure builders of the parity analysis (`tasks/parity/analysis.ts`): training curves from the
 * checkpoint histories, matrices with axes (checkpoint × position, iteration × tick), per-tick
 * frames of one test sequence (input, target, predicted probabilities, correctness and certainty,
 * attention, with a certainty chart whose cursor follows the tick), attention per head, neural
 * dynamics, accuracy per tick and thinking time, and accuracy across checkpoints. Everything
 * returns RGBA images built with `src/plot`.
 */
import {
  barChart,
  blit,
  type ChartOptions,
  chartSvg,
  colorAt,
  colorbar,
  type ColormapName,
  createImage,
  escapeXml,
  FONT_FAMILY,
  grid,
  heatmap,
  heatmapFrames,
  hstack,
  lineChart,
  renderSvg,
  type RgbaImage,
  type Series,
  seriesColor,
  smallMultiples,
  textImage,
  textWidth,
  vstack,
} from "../../src/plot/mod.ts";
import type { Histories, History } from "../../src/train/metrics.ts";

/** Colormap of parity values and probabilities: blue = even (0), white = undecided, red = odd (1). */
export const PARITY_COLORMAP: ColormapName = "bluered";

/** `img` centred on a white `W`×`H` canvas (frames of a GIF must all have the same size). */
export function padTo(img: RgbaImage, W: number, H: number): RgbaImage {
  if (img.width === W && img.height === H) return img;
  const out = createImage(W, H);
  blit(out, img, Math.floor((W - img.width) / 2), Math.floor((H - img.height) / 2));
  return out;
}

/** Pads every frame to the largest width and height among them. */
export function sameSize(frames: RgbaImage[]): RgbaImage[] {
  const W = Math.max(...frames.map((f) => f.width)), H = Math.max(...frames.map((f) => f.height));
  return frames.map((f) => padTo(f, W, H));
}

// ------------------------------------------------------------------ training curves

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

// ------------------------------------------------------------------ matrices with axes

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

// ------------------------------------------------------------------ a chart with a moving cursor

/**
 * Renders a line chart once and returns a function that draws a vertical cursor at any x (e.g.
 * the current tick of a GIF frame) by pixels, instead of re-rendering the chart for every frame.
 * The cursor's pixel column is found by rendering two probe rules at the ends of `xRange`.
 */
export async function chartWithCursor(
  opts: ChartOptions & { xRange: [number, number] },
): Promise<(x: number) => RgbaImage> {
  const base = await renderSvg(chartSvg(opts));
  const probe = async (x: number) => {
    const img = await renderSvg(
      chartSvg({ ...opts, rules: [...(opts.rules ?? []), { x, color: "#ff00ff", dashed: false }] }),
    );
    const counts = new Int32Array(img.width);
    for (let i = 0; i < img.data.length; i += 4) {
      if (
        img.data[i] !== base.data[i] || img.data[i + 1] !== base.data[i + 1] ||
        img.data[i + 2] !== base.data[i + 2]
      ) {
        counts[(i / 4) % img.width]++;
      }
    }
    let col = 0;
    for (let c = 1; c < counts.length; c++) if (counts[c] > counts[col]) col = c;
    let y0 = img.height, y1 = -1;
    for (let y = 0; y < img.height; y++) {
      const i = (y * img.width + col) * 4;
      if (img.data[i] !== base.data[i] || img.data[i + 1] !== base.data[i + 1]) {
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
    return { col, y0, y1 };
  };
  const [xa, xb] = opts.xRange;
  const a = await probe(xa);
  const b = xb !== xa ? await probe(xb) : a;
  const y0 = Math.min(a.y0, b.y0), y1 = Math.max(a.y1, b.y1);
  return (x: number) => {
    const img = { width: base.width, height: base.height, data: base.data.slice() };
    if (y1 < y0) return img;
    const px = Math.round(xb === xa ? a.col : a.col + ((x - xa) / (xb - xa)) * (b.col - a.col));
    for (let y = y0; y <= y1; y++) {
      for (const c of [px - 1, px]) {
        if (c < 0 || c >= img.width) continue;
        const i = (y * img.width + c) * 4;
        img.data[i] = 30;
        img.data[i + 1] = 30;
        img.data[i + 2] = 30;
      }
    }
    return img;
  };
}

// ------------------------------------------------------------------ per-sequence frames

/** Green (right) or red (wrong) cells, faded towards white where the model is uncertain. */
export function correctnessGrid(
  correct: ArrayLike<number>,
  certainty: ArrayLike<number>,
  side: number,
  cellSize: number,
  gap = 1,
): RgbaImage {
  const img = createImage(side * cellSize + (side - 1) * gap, side * cellSize + (side - 1) * gap, [
    200,
    200,
    200,
    255,
  ]);
  for (let p = 0; p < side * side; p++) {
    const base = correct[p] ? [44, 160, 44] : [214, 39, 40];
    const c = Math.min(1, Math.max(0, certainty[p]));
    const rgb = base.map((v) => Math.round(255 + (v - 255) * (0.15 + 0.85 * c)));
    const x0 = (p % side) * (cellSize + gap), y0 = Math.floor(p / side) * (cellSize + gap);
    for (let y = y0; y < y0 + cellSize; y++) {
      for (let x = x0; x < x0 + cellSize; x++) {
        const i = (y * img.width + x) * 4;
        img.data[i] = rgb[0];
        img.data[i + 1] = rgb[1];
        img.data[i + 2] = rgb[2];
      }
    }
  }
  return img;
}

/** What {@link sequenceFrames} shows of one test sequence. */
export interface SequenceView {
  /** Sequence length L (a perfect square). */
  length: number;
  /** Internal ticks T. */
  ticks: number;
  /** The ±1 input `[L]`. */
  input: ArrayLike<number>;
  /** The cumulative-parity target `[L]`. */
  target: ArrayLike<number>;
  /** P(odd) per position at tick t `[L]`. */
  prob: (t: number) => ArrayLike<number>;
  /** 1 where the prediction at tick t is right `[L]`. */
  correct: (t: number) => ArrayLike<number>;
  /** Per-position certainty (1 − normalised entropy) at tick t `[L]`. */
  certainty: (t: number) => ArrayLike<number>;
  /** Attention over the L positions at tick t, averaged over heads `[L]`. */
  attention: (t: number) => ArrayLike<number>;
  /** The model's certainty of this sequence per tick `[T]`. */
  certaintyCurve: ArrayLike<number>;
  /** Accuracy over this sequence's positions per tick `[T]`. */
  accuracyCurve: ArrayLike<number>;
  /** Frame title prefix, e.g. `sample 0 · iteration 5000`. */
  title: string;
}

/**
 * One frame per tick: the input and target grids (√L×√L), the predicted P(odd), right/wrong
 * faded by certainty, and the mean attention at that tick, above a chart of this sequence's
 * certainty and accuracy over ticks with a cursor at the tick.
 */
export async function sequenceFrames(v: SequenceView): Promise<RgbaImage[]> {
  const side = Math.round(Math.sqrt(v.length));
  const cell = Math.max(6, Math.min(40, Math.floor(176 / side)));
  const hm = { cellSize: cell, gap: 1, gapColor: [200, 200, 200, 255] as const };
  const label = (s: string, w: number) => textImage(s, w, { fontSize: 12 });
  const gridW = side * cell + side - 1;
  const framed = (img: RgbaImage) => grid([img], 1, { pad: 1, background: [150, 150, 150, 255] });
  const labels = await Promise.all(
    [
      "input (black −1, white +1)",
      "target parity",
      "predicted P(odd)",
      "right / wrong",
      "attention (mean of heads)",
    ]
      .map((s) => label(s, gridW)),
  );
  let attMax = 0;
  for (let t = 0; t < v.ticks; t++) for (const a of Array.from(v.attention(t))) attMax = Math.max(attMax, a);
  const inputImg = framed(heatmap(v.input, side, side, { ...hm, colormap: "gray", min: -1, max: 1 }));
  const targetImg = framed(
    heatmap(v.target, side, side, { ...hm, colormap: PARITY_COLORMAP, min: 0, max: 1 }),
  );
  const probBar = await colorbar({
    colormap: PARITY_COLORMAP,
    min: 0,
    max: 1,
    height: gridW,
    width: 10,
    label: "P(odd)",
  });
  const attBar = await colorbar({ colormap: "viridis", min: 0, max: attMax || 1, height: gridW, width: 10 });
  const x = Array.from({ length: v.ticks }, (_, t) => t + 1);
  const chart = await chartWithCursor({
    title: "this sequence over internal ticks",
    xLabel: "internal tick",
    series: [
      { name: "certainty", x, y: v.certaintyCurve },
      { name: "accuracy over positions", x, y: v.accuracyCurve, dashed: true },
    ],
    xRange: [1, Math.max(2, v.ticks)],
    yRange: [0, 1.02],
    width: 640,
    height: 220,
  });
  const noteText = "blue = even (0), red = odd (1); green = right, red = wrong, pale = uncertain";
  let note: RgbaImage | null = null;
  const frames: RgbaImage[] = [];
  for (let t = 0; t < v.ticks; t++) {
    const panels = [
      vstack([labels[0], inputImg], { gap: 2 }),
      vstack([labels[1], targetImg], { gap: 2 }),
      vstack([
        labels[2],
        hstack([
          framed(heatmap(v.prob(t), side, side, { ...hm, colormap: PARITY_COLORMAP, min: 0, max: 1 })),
          probBar,
        ], { gap: 2 }),
      ], { gap: 2 }),
      vstack([labels[3], framed(correctnessGrid(v.correct(t), v.certainty(t), side, cell))], { gap: 2 }),
      vstack([
        labels[4],
        hstack([framed(heatmap(v.attention(t), side, side, { ...hm, min: 0, max: attMax || 1 })), attBar], {
          gap: 2,
        }),
      ], { gap: 2 }),
    ];
    const row = grid(panels, panels.length, { gap: 12, pad: 4 });
    note ??= await textImage(noteText, row.width, { fontSize: 11 });
    const title = await textImage(`${v.title} · tick ${t + 1}/${v.ticks}`, row.width, {
      fontSize: 15,
      bold: true,
    });
    frames.push(vstack([title, row, note, chart(t + 1)], { gap: 4, pad: 6 }));
  }
  return sameSize(frames);
}

/** One frame per tick: attention over the √L×√L positions for each head and their mean. */
export async function attentionFrames(
  perTick: (t: number) => ArrayLike<number>[],
  ticks: number,
  length: number,
  title: string,
): Promise<RgbaImage[]> {
  const side = Math.round(Math.sqrt(length));
  let max = 0;
  for (let t = 0; t < ticks; t++) {
    for (const m of perTick(t)) for (const a of Array.from(m)) max = Math.max(max, a);
  }
  max ||= 1;
  const cell = Math.max(4, Math.min(32, Math.floor(128 / side)));
  const nHeads = perTick(0).length;
  const mapW = side * cell + side - 1;
  const names = [...Array.from({ length: nHeads }, (_, h) => `head ${h}`), "mean of heads"];
  const labels = await Promise.all(names.map((n) => textImage(n, mapW, { fontSize: 12 })));
  const bar = await colorbar({ min: 0, max, height: mapW, width: 10, label: "attention" });
  const perRow = Math.min(names.length, Math.max(3, Math.ceil(Math.sqrt(names.length))));
  const hm = { cellSize: cell, gap: 1, gapColor: [200, 200, 200, 255] as const, min: 0, max };
  const frames: RgbaImage[] = [];
  let banner: RgbaImage | null = null;
  for (let t = 0; t < ticks; t++) {
    const heads = perTick(t);
    const mean = new Float64Array(length);
    for (const h of heads) for (let i = 0; i < length; i++) mean[i] += h[i] / heads.length;
    const maps = [...heads, mean].map((m, i) =>
      vstack(
        [labels[i], grid([heatmap(m, side, side, hm)], 1, { pad: 1, background: [150, 150, 150, 255] })],
        { gap: 2 },
      )
    );
    const body = hstack([grid(maps, perRow, { gap: 14 }), bar], { gap: 10, pad: 6 });
    const head = await textImage(`${title} · tick ${t + 1}/${ticks}`, body.width, {
      fontSize: 14,
      bold: true,
    });
    banner ??= await textImage(
      "attention weights over the sequence positions (√L × √L grid, row by row)",
      body.width,
      {
        fontSize: 11,
      },
    );
    frames.push(vstack([head, banner, body], { gap: 2, pad: 4 }));
  }
  return sameSize(frames);
}

/**
 * Neural dynamics: one panel per neuron with its post-activation over ticks, and its
 * pre-activation (dashed) when given (the LSTM baseline has none).
 */
export function neuralDynamics(
  neurons: number[],
  pre: ((n: number) => number[]) | null,
  post: (n: number) => number[],
  title: string,
): Promise<RgbaImage> {
  const panels: ChartOptions[] = neurons.map((n) => {
    const y = post(n);
    const x = Array.from({ length: y.length }, (_, t) => t + 1);
    const series: Series[] = [{ name: "post-activation", x, y, color: seriesColor(0) }];
    if (pre) series.unshift({ name: "pre-activation", x, y: pre(n), dashed: true, color: seriesColor(1) });
    return { title: `neuron ${n}`, xLabel: "tick", series };
  });
  return smallMultiples(panels, { title, cols: 4, panelWidth: 240, panelHeight: 160 });
}

// ------------------------------------------------------------------ figure sets of the analysis

/** `count` indices spread evenly over `[0, n)`, always including the first and the last. */
export function evenlySpaced(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  if (count <= 1) return [n - 1];
  return [...new Set(Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1))))];
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
