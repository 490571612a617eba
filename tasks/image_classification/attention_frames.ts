/**
 * Per-tick frames of one test image for `attention_<i>.gif` (the image analysis): the input
 * (de-normalised, upscaled), the mean attention over heads overlaid on it (the H′×W′ map upsampled
 * to the image), the attention of every head as small maps on a shared colour scale, the top-5
 * class probabilities with their names (the true class in green), and the certainty over ticks with
 * a cursor at the current tick.
 */
import {
  chartWithCursor,
  colorbar,
  escapeXml,
  FONT_FAMILY,
  grid,
  heatmap,
  hstack,
  overlayHeatmap,
  renderSvg,
  type RgbaImage,
  sameSize,
  textImage,
  textWidth,
  upscale,
  vstack,
} from "../../src/plot/mod.ts";
import { tickMarks } from "./analysis_plots.ts";

/** Everything the frames of one image show. */
export interface AttentionSample {
  /** Frame title prefix, e.g. `test image 3 · iteration 1000`. */
  title: string;
  /** The input image as shown (de-normalised), at its native size. */
  image: RgbaImage;
  /** The backbone's feature grid `[H′, W′]` the attention runs over (L = H′·W′). */
  grid: [number, number];
  /** Attention heads. */
  heads: number;
  /** Internal ticks T. */
  ticks: number;
  /** Attention weights `[T, heads, H′·W′]`. */
  attention: Float32Array;
  /** Logits `[C, T]`. */
  logits: ArrayLike<number>;
  /** Certainty per tick `[T]`. */
  certainty: ArrayLike<number>;
  /** Class names. */
  classes: readonly string[];
  /** True class. */
  label: number;
}

/** Options of {@link attentionFrames}. */
export interface AttentionFrameOptions {
  /** Side in pixels the input is upscaled to, by an integer factor (default 192). */
  displaySize?: number;
  /** Classes listed in the probability bars (default 5). */
  topK?: number;
}

/** `text` cut with an ellipsis to fit `width` pixels at `fs`. */
function fit(text: string, width: number, fs: number): string {
  if (textWidth(text, fs) <= width) return text;
  let s = text;
  while (s.length > 1 && textWidth(s + "…", fs) > width) s = s.slice(0, -1);
  return s + "…";
}

/** Softmax of column `t` of `[C, T]` logits. */
function softmaxAt(logits: ArrayLike<number>, C: number, T: number, t: number): Float64Array {
  const p = new Float64Array(C);
  let mx = -Infinity;
  for (let c = 0; c < C; c++) mx = Math.max(mx, logits[c * T + t]);
  let z = 0;
  for (let c = 0; c < C; c++) z += p[c] = Math.exp(logits[c * T + t] - mx);
  for (let c = 0; c < C; c++) p[c] /= z;
  return p;
}

/** Horizontal bars of the `k` most probable classes (true class green), as an image. */
export function probabilityBars(
  p: ArrayLike<number>,
  classes: readonly string[],
  label: number,
  k: number,
  title: string,
  width = 340,
): Promise<RgbaImage> {
  const order = Array.from({ length: p.length }, (_, c) => c).sort((a, b) => p[b] - p[a] || a - b);
  const top = order.slice(0, Math.min(k, p.length));
  const fs = 12, rowH = 22, head = 24;
  const nameW = 120, barX = nameW + 8, barMax = width - barX - 52;
  const rank = order.indexOf(label);
  const foot = rank >= top.length ? rowH : 0;
  const H = head + top.length * rowH + foot + 6;
  const f = (v: number) => v.toFixed(1);
  let s =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="${width / 2}" y="16" font-size="13" font-weight="bold" text-anchor="middle">` +
    `${escapeXml(title)}</text>`;
  top.forEach((c, i) => {
    const y = head + i * rowH;
    const name = fit(classes[c] ?? `class ${c}`, nameW, fs);
    const w = Math.max(1, p[c] * barMax);
    s += `<text x="${nameW}" y="${f(y + rowH * 0.65)}" font-size="${fs}" text-anchor="end"` +
      `${c === label ? ` font-weight="bold"` : ""}>${escapeXml(name)}</text>` +
      `<rect x="${barX}" y="${f(y + 3)}" width="${f(w)}" height="${rowH - 6}" ` +
      `fill="${c === label ? "#2ca02c" : "#4e79a7"}"/>` +
      `<text x="${f(barX + w + 4)}" y="${f(y + rowH * 0.65)}" font-size="${fs - 1}" fill="#333">` +
      `${(100 * p[c]).toFixed(1)}%</text>`;
  });
  if (foot) {
    const name = fit(classes[label] ?? `class ${label}`, width - 120, fs);
    s += `<text x="${width / 2}" y="${f(head + top.length * rowH + rowH * 0.7)}" font-size="${fs - 1}" ` +
      `text-anchor="middle" fill="#2ca02c">true: ${escapeXml(name)} (${(100 * p[label]).toFixed(1)}%, ` +
      `rank ${rank + 1})</text>`;
  }
  return renderSvg(s + `</svg>`);
}

/** One frame per tick of {@link AttentionSample}, all the same size, ready for `writeGif`. */
export async function attentionFrames(
  s: AttentionSample,
  opts: AttentionFrameOptions = {},
): Promise<RgbaImage[]> {
  const [gh, gw] = s.grid, L = gh * gw, T = s.ticks, nh = s.heads, C = s.classes.length;
  if (s.attention.length !== T * nh * L) {
    throw new Error(`attention of ${s.attention.length} values, expected T·heads·H′·W′ = ${T * nh * L}`);
  }
  const factor = Math.max(1, Math.round((opts.displaySize ?? 192) / Math.max(s.image.width, s.image.height)));
  const big = upscale(s.image, factor);
  const side = big.width;
  const label = (t: string, w: number) => textImage(t, w, { fontSize: 12 });
  let attMax = 0;
  for (const a of s.attention) attMax = Math.max(attMax, a);
  attMax ||= 1;
  const cell = Math.max(1, Math.floor(72 / Math.max(gh, gw)));
  const mapW = gw * cell;
  const headLabels = await Promise.all(Array.from({ length: nh }, (_, h) => label(`head ${h}`, mapW)));
  const headBar = await colorbar({ min: 0, max: attMax, height: 96, width: 10, label: "attention" });
  const perRow = Math.ceil(Math.sqrt(nh));
  const inputPanel = vstack([await label("input", side), big], { gap: 2 });
  const overlayLabel = await label("mean attention over heads (scaled per frame)", side);
  const x = Array.from({ length: T }, (_, t) => t + 1);
  const pTrue: number[] = [], right: number[] = [], wrong: number[] = [];
  const probs = x.map((_, t) => softmaxAt(s.logits, C, T, t));
  for (let t = 0; t < T; t++) {
    let pred = 0;
    for (let c = 1; c < C; c++) if (probs[t][c] > probs[t][pred]) pred = c;
    pTrue.push(probs[t][s.label]);
    right.push(pred === s.label ? s.certainty[t] : NaN);
    wrong.push(pred === s.label ? NaN : s.certainty[t]);
  }
  const chart = await chartWithCursor({
    title: "over internal ticks",
    xLabel: "internal tick",
    series: [
      { name: "certainty", x, y: Array.from(s.certainty), color: "#1f77b4" },
      { name: "P(true class)", x, y: pTrue, color: "#7f7f7f", dashed: true },
      { name: "right", x, y: right, type: "scatter", color: "#2ca02c", markerSize: 3 },
      { name: "wrong", x, y: wrong, type: "scatter", color: "#d62728", markerSize: 3 },
    ],
    xRange: [1, Math.max(2, T)],
    xTicks: tickMarks(T),
    yRange: [0, 1.02],
    legend: "best",
    width: 520,
    height: 230,
  });
  const frames: RgbaImage[] = [];
  for (let t = 0; t < T; t++) {
    const at = (h: number) => s.attention.subarray((t * nh + h) * L, (t * nh + h + 1) * L);
    const mean = new Float32Array(L);
    for (let h = 0; h < nh; h++) at(h).forEach((v, l) => (mean[l] += v / nh));
    const overlay = overlayHeatmap(big, mean, gh, gw, { colormap: "inferno", alpha: 0.6 });
    const maps = Array.from({ length: nh }, (_, h) =>
      vstack([
        headLabels[h],
        grid([heatmap(at(h), gh, gw, { cellSize: cell, min: 0, max: attMax })], 1, {
          pad: 1,
          background: [150, 150, 150, 255],
        }),
      ], { gap: 1 }));
    const heads = hstack([grid(maps, perRow, { gap: 6 }), headBar], { gap: 6 });
    const p = probs[t];
    let pred = 0;
    for (let c = 1; c < C; c++) if (p[c] > p[pred]) pred = c;
    const bars = await probabilityBars(p, s.classes, s.label, opts.topK ?? 5, `top classes at tick ${t + 1}`);
    const top = hstack([inputPanel, vstack([overlayLabel, overlay], { gap: 2 }), bars], { gap: 14 });
    const bottom = hstack([heads, chart(t + 1)], { gap: 14 });
    const body = vstack([top, bottom], { gap: 10 });
    const verdict = pred === s.label ? "right" : "wrong";
    const title = await textImage(
      `${s.title} · true: ${s.classes[s.label] ?? s.label} · tick ${t + 1}/${T} · predicted: ` +
        `${s.classes[pred] ?? pred} (${(100 * p[pred]).toFixed(1)}%, ${verdict}) · certainty ` +
        `${Number(s.certainty[t]).toFixed(2)}`,
      body.width,
      { fontSize: 14, bold: true },
    );
    frames.push(vstack([title, body], { gap: 4, pad: 6 }));
  }
  return sameSize(frames);
}
