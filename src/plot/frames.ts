/**
 * Helpers for sets of figure frames (e.g. one GIF frame per internal tick): a chart rendered once
 * with a vertical cursor drawn by pixels for each frame, and evenly spaced picks of frames, items or
 * checkpoints to show.
 */
import { type ChartOptions, chartSvg } from "./chart.ts";
import type { RgbaImage } from "./image.ts";
import { renderSvg } from "./render.ts";

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

/** `count` indices spread evenly over `[0, n)`, always including the first and the last. */
export function evenlySpaced(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  if (count <= 1) return [n - 1];
  return [...new Set(Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1))))];
}
