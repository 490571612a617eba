/**
 * Heatmaps as pixels: a grid of values coloured by a colormap (e.g. an 8×8 view of a 64-long parity
 * sequence, or one attention map per head), frames of them for GIFs, colour bars, titles, and
 * attention overlays on images.
 *
 * @example
 * ```ts
 * // One frame per internal tick, shared colour scale, written as a GIF.
 * const frames = await heatmapFrames(perTick, 8, 8, { titles: (t) => `tick ${t}`, colorbar: true });
 * await writeGif("out/attention.gif", frames, { delayMs: 120 });
 * ```
 */
import { colormapIndex, colormapLut, type ColormapName } from "./colormap.ts";
import { scaleLinear } from "d3-scale";
import {
  blend,
  createImage,
  grid,
  hstack,
  type LayoutOptions,
  resize,
  type Rgba,
  type RgbaImage,
  sameSize,
  vstack,
} from "./image.ts";
import { escapeXml, FONT_FAMILY, renderSvg, textWidth } from "./render.ts";

/** Colour scale options shared by the heatmap functions. */
export interface ColorScale {
  /** Colormap (default `viridis`). */
  colormap?: ColormapName;
  /** Value at the bottom of the colormap (default: the data's minimum). */
  min?: number;
  /** Value at the top of the colormap (default: the data's maximum). */
  max?: number;
  /** Centre the range on 0 (`[-m, m]` with `m = max |v|`), for diverging maps of signed values. */
  symmetric?: boolean;
}

/** Options of {@link heatmap}. */
export interface HeatmapOptions extends ColorScale {
  /** Pixels per cell side (default 16). */
  cellSize?: number;
  /** Pixels of `gapColor` between cells (default 0). */
  gap?: number;
  /** Colour of the gaps (default white). */
  gapColor?: Rgba;
  /** Colour of NaN cells (default mid grey). */
  nanColor?: Rgba;
}

/** The [min, max] of finite values over one or more arrays (with `symmetric`: `[-m, m]`). */
export function valueRange(arrays: ArrayLike<number>[], symmetric = false): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo > hi) return symmetric ? [-1, 1] : [0, 1];
  if (symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return [-m, m];
  }
  return [lo, hi];
}

function resolveRange(arrays: ArrayLike<number>[], s: ColorScale): [number, number] {
  if (s.min !== undefined && s.max !== undefined) return [s.min, s.max];
  const [lo, hi] = valueRange(arrays, s.symmetric);
  return [s.min ?? lo, s.max ?? hi];
}

/**
 * A heatmap of `rows`×`cols` values (row-major, row 0 at the top) as an RGBA image of
 * `cols·cellSize + (cols−1)·gap` by `rows·cellSize + (rows−1)·gap` pixels.
 */
export function heatmap(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: HeatmapOptions = {},
): RgbaImage {
  if (values.length !== rows * cols) {
    throw new Error(`heatmap: ${rows}x${cols} needs ${rows * cols} values, got ${values.length}`);
  }
  const cs = opts.cellSize ?? 16, gap = opts.gap ?? 0;
  const [lo, hi] = resolveRange([values], opts);
  const lut = colormapLut(opts.colormap ?? "viridis");
  const nan = opts.nanColor ?? [128, 128, 128, 255];
  const img = createImage(
    cols * cs + (cols - 1) * gap,
    rows * cs + (rows - 1) * gap,
    opts.gapColor ?? [255, 255, 255, 255],
  );
  const d = img.data, W = img.width;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = colormapIndex(values[r * cols + c], lo, hi);
      const rgb: Rgba = k < 0 ? nan : [lut[k * 3], lut[k * 3 + 1], lut[k * 3 + 2], 255];
      const x0 = c * (cs + gap), y0 = r * (cs + gap);
      for (let y = y0; y < y0 + cs; y++) {
        for (let x = x0; x < x0 + cs; x++) {
          const i = (y * W + x) * 4;
          d[i] = rgb[0];
          d[i + 1] = rgb[1];
          d[i + 2] = rgb[2];
          d[i + 3] = rgb[3] ?? 255;
        }
      }
    }
  }
  return img;
}

/** Options of {@link annotate}. */
export interface AnnotateOptions {
  /** Font size in pixels (default 13). */
  fontSize?: number;
  /** Bold text (default false). */
  bold?: boolean;
  /** Put the text below the image instead of above. */
  below?: boolean;
}

/** An image of one line of centred text, at least `width` wide. */
export async function textImage(text: string, width: number, opts: AnnotateOptions = {}): Promise<RgbaImage> {
  const fs = opts.fontSize ?? 13;
  const w = Math.ceil(Math.max(width, textWidth(text, fs, opts.bold) + 8)), h = Math.ceil(fs * 1.6);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/><text x="${w / 2}" y="${(fs * 1.15).toFixed(2)}" ` +
    `font-size="${fs}" text-anchor="middle"${opts.bold ? ` font-weight="bold"` : ""}>${
      escapeXml(text)
    }</text></svg>`;
  return await renderSvg(svg);
}

/** Adds a line of text (a title such as `tick 12` or `head 3`) above an image (or below). */
export async function annotate(img: RgbaImage, text: string, opts: AnnotateOptions = {}): Promise<RgbaImage> {
  const banner = await textImage(text, img.width, opts);
  return vstack(opts.below ? [img, banner] : [banner, img], { gap: 0 });
}

/** Options of {@link colorbar}. */
export interface ColorbarOptions {
  /** Colormap (default `viridis`). */
  colormap?: ColormapName;
  /** Value at the bottom. */
  min: number;
  /** Value at the top. */
  max: number;
  /** Height in pixels of the coloured bar (default 200). */
  height?: number;
  /** Width of the coloured bar (default 14). */
  width?: number;
  /** Tick label font size (default 10). */
  fontSize?: number;
  /** Label written along the bar. */
  label?: string;
}

/** A vertical colour bar with tick labels on its right, as an image. */
export async function colorbar(opts: ColorbarOptions): Promise<RgbaImage> {
  const h = opts.height ?? 200, bw = opts.width ?? 14, fs = opts.fontSize ?? 10;
  const lut = colormapLut(opts.colormap ?? "viridis");
  const pad = Math.ceil(fs * 0.7);
  const scale = scaleLinear().domain([opts.min, opts.max]).range([pad + h, pad]);
  const n = Math.max(2, Math.round(h / 40));
  const ticks: number[] = opts.max > opts.min ? scale.ticks(n) : [opts.min];
  const fmt: (v: number) => string = scale.tickFormat(n);
  const labelW = Math.max(...ticks.map((t) => textWidth(fmt(t), fs)));
  const W = Math.ceil(2 + bw + 6 + labelW + (opts.label ? fs * 1.8 : 0) + 2);
  let stops = "";
  for (let i = 0; i <= 32; i++) {
    const k = Math.round((i / 32) * 255);
    stops += `<stop offset="${(i / 32).toFixed(4)}" stop-color="rgb(${lut[k * 3]},${lut[k * 3 + 1]},${
      lut[k * 3 + 2]
    })"/>`;
  }
  let s =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${
      h + 2 * pad
    }" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<defs><linearGradient id="g" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>` +
    `<rect x="2" y="${pad}" width="${bw}" height="${h}" fill="url(#g)" stroke="#444" stroke-width="0.8"/>`;
  for (const t of ticks) {
    const y = (scale(t) as number).toFixed(2);
    s += `<line x1="${2 + bw}" y1="${y}" x2="${2 + bw + 3}" y2="${y}" stroke="#444"/>` +
      `<text x="${2 + bw + 5}" y="${(+y + fs * 0.35).toFixed(2)}" font-size="${fs}" fill="#333">${
        escapeXml(fmt(t))
      }</text>`;
  }
  if (opts.label) {
    const cx = W - fs * 0.6, cy = pad + h / 2;
    s +=
      `<text transform="translate(${
        cx.toFixed(2)
      },${cy}) rotate(-90)" font-size="${fs}" text-anchor="middle">` +
      `${escapeXml(opts.label)}</text>`;
  }
  return await renderSvg(s + `</svg>`);
}

/** Options of {@link heatmapFrames}. */
export interface HeatmapFramesOptions extends HeatmapOptions {
  /** A title per frame, e.g. `(t) => \`tick ${t}\``. */
  titles?: string[] | ((i: number) => string);
  /** Add a colour bar on the right of every frame. */
  colorbar?: boolean;
  /** Title font size (default 13). */
  fontSize?: number;
  /** White margin around each frame in pixels (default 4). */
  pad?: number;
}

/**
 * One heatmap per frame (e.g. per internal tick) on one shared colour scale, optionally titled and
 * with a colour bar; all frames have the same size, ready for {@link import("./gif.ts").writeGif}.
 */
export async function heatmapFrames(
  frames: ArrayLike<number>[],
  rows: number,
  cols: number,
  opts: HeatmapFramesOptions = {},
): Promise<RgbaImage[]> {
  const [min, max] = resolveRange(frames, opts);
  const cb = opts.colorbar
    ? await colorbar({
      colormap: opts.colormap,
      min,
      max,
      height: rows * (opts.cellSize ?? 16) + (rows - 1) * (opts.gap ?? 0),
    })
    : null;
  const out: RgbaImage[] = [];
  for (let i = 0; i < frames.length; i++) {
    let img = heatmap(frames[i], rows, cols, { ...opts, min, max });
    if (cb) img = hstack([img, cb], { gap: 4 });
    const title = typeof opts.titles === "function" ? opts.titles(i) : opts.titles?.[i];
    if (title !== undefined) img = await annotate(img, title, { fontSize: opts.fontSize });
    out.push(grid([img], 1, { pad: opts.pad ?? 4 }));
  }
  // Titles of different lengths can give different widths: pad every frame to the largest.
  return sameSize(out);
}

/** Options of {@link heatmapGrid}. */
export interface HeatmapGridOptions extends HeatmapOptions, LayoutOptions {
  /** Maps per row of the figure (default: about square). */
  perRow?: number;
  /** A title per map, e.g. `head 0`, `head 1`, … */
  titles?: string[];
  /** Figure title. */
  title?: string;
  /** Add one colour bar on the right (all maps share the colour scale). */
  colorbar?: boolean;
  /** Give each map its own colour scale instead of a shared one (then no colour bar). */
  independent?: boolean;
}

/** Several heatmaps of the same shape in a grid, e.g. one attention map per head. */
export async function heatmapGrid(
  maps: ArrayLike<number>[],
  rows: number,
  cols: number,
  opts: HeatmapGridOptions = {},
): Promise<RgbaImage> {
  if (maps.length === 0) throw new Error("heatmapGrid needs at least one map");
  const [min, max] = resolveRange(maps, opts);
  const imgs: RgbaImage[] = [];
  for (let i = 0; i < maps.length; i++) {
    let img = heatmap(maps[i], rows, cols, opts.independent ? opts : { ...opts, min, max });
    if (opts.titles?.[i] !== undefined) img = await annotate(img, opts.titles[i], { fontSize: 11 });
    imgs.push(img);
  }
  const perRow = opts.perRow ?? Math.ceil(Math.sqrt(maps.length));
  let fig = grid(imgs, perRow, { gap: opts.gap ?? 8, pad: opts.pad ?? 6, background: opts.background });
  if (opts.colorbar && !opts.independent) {
    fig = hstack([
      fig,
      await colorbar({ colormap: opts.colormap, min, max, height: Math.max(60, fig.height - 24) }),
    ], { gap: 2 });
  }
  if (opts.title) fig = await annotate(fig, opts.title, { fontSize: 14, bold: true });
  return fig;
}

/** Options of {@link overlayHeatmap}. */
export interface OverlayOptions extends ColorScale {
  /** Opacity of the heatmap over the image (default 0.5). */
  alpha?: number;
  /** Scale the opacity of each pixel by its normalised value, so low attention leaves the image visible. */
  alphaByValue?: boolean;
  /** Bilinear (default) or nearest upsampling of the value grid to the image size. */
  mode?: "bilinear" | "nearest";
}

/**
 * Colours a `rows`×`cols` grid of values (e.g. attention over image patches) with a colormap,
 * upsamples it to the image's size and blends it over the image.
 */
export function overlayHeatmap(
  image: RgbaImage,
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: OverlayOptions = {},
): RgbaImage {
  const [min, max] = resolveRange([values], opts);
  const small = heatmap(values, rows, cols, { ...opts, min, max, cellSize: 1 });
  if (opts.alphaByValue) {
    for (let i = 0; i < values.length; i++) {
      const t = max > min ? (values[i] - min) / (max - min) : 1;
      small.data[i * 4 + 3] = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)));
    }
  }
  const big = resize(small, image.width, image.height, opts.mode ?? "bilinear");
  return blend(image, big, opts.alpha ?? 0.5);
}
