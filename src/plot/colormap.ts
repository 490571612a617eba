/**
 * Colormaps for heatmaps and the colour cycle for chart series, sampled from `d3-scale-chromatic`
 * into 256-entry lookup tables.
 */
import * as chromatic from "d3-scale-chromatic";

/** An RGB colour, each channel 0–255. */
export type Rgb = [number, number, number];

/** A colormap function of `t ∈ [0, 1]`, returning a CSS colour string. */
type Interpolator = (t: number) => string;

const d3 = chromatic as unknown as Record<string, Interpolator | readonly string[]>;

/**
 * Names of the built-in colormaps: perceptually uniform sequential maps (`viridis`, `magma`,
 * `inferno`, `plasma`, `cividis`), `turbo`, the diverging `bluered` (blue low, red high:
 * matplotlib's `RdBu_r`, for signed activations), `rdbu` (red low, blue high), `spectral`,
 * single-hue `blues`, `reds`, `greys` (white to black), and `gray` (linear black to white).
 */
export type ColormapName =
  | "viridis"
  | "magma"
  | "inferno"
  | "plasma"
  | "cividis"
  | "turbo"
  | "bluered"
  | "rdbu"
  | "spectral"
  | "blues"
  | "reds"
  | "greys"
  | "gray";

/** Where each map comes from: a d3 interpolator (`:reversed` flips it); `""` is computed here. */
const SOURCES: Record<ColormapName, string> = {
  viridis: "interpolateViridis",
  magma: "interpolateMagma",
  inferno: "interpolateInferno",
  plasma: "interpolatePlasma",
  cividis: "interpolateCividis",
  turbo: "interpolateTurbo",
  bluered: "interpolateRdBu:reversed",
  rdbu: "interpolateRdBu",
  spectral: "interpolateSpectral",
  blues: "interpolateBlues",
  reds: "interpolateReds",
  greys: "interpolateGreys",
  gray: "",
};

/** All colormap names, for validating command-line flags. */
export const COLORMAPS: readonly ColormapName[] = Object.keys(SOURCES) as ColormapName[];

/** Parses `#rrggbb` or `rgb(r, g, b)` (what d3 returns) into an RGB triple. */
export function parseColor(css: string): Rgb {
  const s = css.trim();
  if (/^#[0-9a-f]{6}$/i.test(s)) {
    return [parseInt(s.slice(1, 3), 16), parseInt(s.slice(3, 5), 16), parseInt(s.slice(5, 7), 16)];
  }
  const m = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/i.exec(s);
  if (m) return [Math.round(+m[1]), Math.round(+m[2]), Math.round(+m[3])];
  throw new Error(`cannot parse colour ${JSON.stringify(css)}`);
}

/** `#rrggbb` for an RGB triple. */
export function toHex([r, g, b]: Rgb): string {
  return "#" + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
}

const LUTS = new Map<ColormapName, Uint8Array>();

/**
 * The 256-entry lookup table of a colormap: `lut[3*i .. 3*i+2]` is the RGB colour of
 * `t = i / 255`. Tables are built once and cached; do not modify the result.
 */
export function colormapLut(name: ColormapName): Uint8Array {
  let lut = LUTS.get(name);
  if (lut) return lut;
  const src = SOURCES[name];
  if (src === undefined) {
    throw new Error(`unknown colormap ${JSON.stringify(name)} (known: ${COLORMAPS.join(", ")})`);
  }
  lut = new Uint8Array(256 * 3);
  const [fnName, reversed] = src.split(":");
  const fn = fnName ? d3[fnName] as Interpolator : null;
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    const rgb: Rgb = fn ? parseColor(fn(reversed ? 1 - t : t)) : [i, i, i];
    lut.set(rgb, i * 3);
  }
  LUTS.set(name, lut);
  return lut;
}

/** The LUT index (0–255) of `v` on the scale [min, max], clamped; NaN maps to -1. */
export function colormapIndex(v: number, min: number, max: number): number {
  if (Number.isNaN(v)) return -1;
  const t = max > min ? (v - min) / (max - min) : 0.5;
  return t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
}

/** The colour of `v` on the scale [min, max] (default [0, 1]) in colormap `name`, clamped. NaN gives grey. */
export function colorAt(name: ColormapName, v: number, min = 0, max = 1): Rgb {
  const i = colormapIndex(v, min, max);
  if (i < 0) return [128, 128, 128];
  const lut = colormapLut(name);
  return [lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2]];
}

/** Tableau's ten categorical colours, the default cycle of chart series. */
export const SERIES_COLORS: readonly string[] = [...(d3.schemeTableau10 as readonly string[])];

/** The `i`-th colour of the series cycle, as `#rrggbb`. */
export function seriesColor(i: number): string {
  return SERIES_COLORS[((i % SERIES_COLORS.length) + SERIES_COLORS.length) % SERIES_COLORS.length];
}
