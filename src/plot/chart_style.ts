/**
 * Internal chart styling: font sizes and spacing of full-size and compact (small multiples)
 * charts, number formatting for SVG attributes, and the SVG document wrapper.
 */
import { FONT_FAMILY } from "./render.ts";

/** Font sizes, padding and target tick spacing of a chart, in SVG pixels. */
export interface Style {
  /** Title font size. */
  title: number;
  /** Axis label font size. */
  label: number;
  /** Tick label font size. */
  tick: number;
  /** Legend font size. */
  legend: number;
  /** Padding around the chart. */
  pad: number;
  /** Target distance between x ticks. */
  xTickSpacing: number;
  /** Target distance between y ticks. */
  yTickSpacing: number;
}

/** The style of a stand-alone chart. */
export const FULL: Style = {
  title: 15,
  label: 13,
  tick: 11,
  legend: 11.5,
  pad: 10,
  xTickSpacing: 90,
  yTickSpacing: 50,
};

/** The style of a panel of small multiples. */
export const COMPACT: Style = {
  title: 11,
  label: 10,
  tick: 9,
  legend: 9.5,
  pad: 5,
  xTickSpacing: 60,
  yTickSpacing: 32,
};

/** Formats a coordinate with at most two decimals. */
export const f2 = (v: number): string => (Math.round(v * 100) / 100).toString();

/** Wraps an SVG body in a document of the given size with a white background. */
export function svgDoc(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<rect width="100%" height="100%" fill="white"/>${body}</svg>`;
}
