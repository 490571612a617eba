/**
 * Internal chart scales: data extents and margins, linear and log scales from `d3-scale`, and the
 * ticks (chosen by d3 or given explicitly) with their labels.
 */
import { scaleLinear, scaleLog } from "d3-scale";
import { ok } from "./chart_data.ts";
import type { Tick } from "./chart_types.ts";

/** The part of a d3 linear or log scale that charts use. */
export interface Scale {
  /** Maps a data value to a pixel position. */
  (v: number): number;
  /** Sets the data domain. */
  domain(d: number[]): Scale;
  /** Sets the pixel range. */
  range(r: number[]): Scale;
  /** About `n` nice tick values. */
  ticks(n: number): number[];
  /** A formatter for tick labels. */
  tickFormat(n: number, spec?: string): (v: number) => string;
}

/** The range of the drawable values (default [0, 1], or [1, 10] on a log axis, when there are none). */
export function extent(values: number[], log: boolean): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!ok(v, log)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return log ? [1, 10] : [0, 1];
  return [lo, hi];
}

/** Widens a range by a fraction of its span on each side (a fixed amount when it is a single value). */
export function widen([lo, hi]: [number, number], log: boolean, frac: number): [number, number] {
  if (log) {
    if (lo === hi) return [lo / 2, hi * 2];
    const r = Math.log10(hi / lo) * frac;
    return [lo / 10 ** r, hi * 10 ** r];
  }
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  const r = (hi - lo) * frac;
  return [lo - r, hi + r];
}

/** A linear or log scale from `domain` to the pixel `range`. */
export function makeScale(log: boolean, domain: [number, number], range: [number, number]): Scale {
  const s = (log ? scaleLog() : scaleLinear()) as unknown as Scale;
  return s.domain(domain).range(range);
}

/** The ticks of an axis with their labels: the explicit ones, or about `count` chosen by d3. */
export function tickList(
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
