/**
 * Small multiples: a grid of compact charts (e.g. one per neuron) in a single image, with a
 * shared title and one legend listing each series name once.
 */
import { prepare } from "./chart_data.ts";
import { legendEntries, type LegendEntry, swatch } from "./chart_legend.ts";
import { drawPanel } from "./chart_panel.ts";
import { COMPACT, f2, FULL, svgDoc } from "./chart_style.ts";
import type { ChartOptions, SeriesType } from "./chart_types.ts";
import type { RgbaImage } from "./image.ts";
import { escapeXml, renderSvg, textWidth } from "./render.ts";

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
