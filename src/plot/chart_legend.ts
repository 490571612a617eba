/**
 * Internal chart legends: the entries of the named series and rules, their swatches, and the
 * legend box stacked inside or beside a chart.
 */
import type { Prepared } from "./chart_data.ts";
import { f2, type Style } from "./chart_style.ts";
import type { Rule } from "./chart_types.ts";
import { escapeXml, textWidth } from "./render.ts";

/** One row of a legend. */
export interface LegendEntry {
  /** The label. */
  name: string;
  /** The swatch colour. */
  color: string;
  /** How the swatch is drawn. */
  kind: "line" | "scatter" | "bar";
  /** Dashed line swatch. */
  dashed: boolean;
  /** Line swatch with a dot. */
  markers: boolean;
}

/** The legend entries of the named series, then of the named rules. */
export function legendEntries(prep: Prepared[], rules: Rule[]): LegendEntry[] {
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

/** The swatch of an entry, `w` wide, starting at x and centred vertically on y. */
export function swatch(e: LegendEntry, x: number, y: number, w: number): string {
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
export function legendSvg(entries: LegendEntry[], x: number, y: number, st: Style): string {
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

/** The width of the legend box of these entries. */
export function legendWidth(entries: LegendEntry[], st: Style): number {
  return Math.max(...entries.map((e) => textWidth(e.name, st.legend))) + st.legend * 2 + 20;
}
