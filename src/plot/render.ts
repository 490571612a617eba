/**
 * SVG to pixels with `@resvg/resvg-wasm` (WebAssembly, no native binaries, no system fonts): the
 * wasm module and the DejaVu Sans fonts (from the `dejavu-fonts-ttf` npm package) are loaded once,
 * on the first render. Also the small text helpers the chart layout needs.
 */
import { initWasm, Resvg } from "@resvg/resvg-wasm";
// Imported only so that Deno fetches the font package; the .ttf files are read from beside it.
import "dejavu-fonts-ttf/package.json" with { type: "json" };
import type { RgbaImage } from "./image.ts";

/** The font family every plot uses (shipped with the code, so renders look the same everywhere). */
export const FONT_FAMILY = "DejaVu Sans";

const FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];
const SYSTEM_FONT_DIR = "/usr/share/fonts/truetype/dejavu/";

let ready: Promise<Uint8Array[]> | null = null;

async function readFont(name: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(new URL(import.meta.resolve(`dejavu-fonts-ttf/ttf/${name}`)));
  } catch (e) {
    // The npm package is the source; a system copy is only a fallback (e.g. a vendored build).
    try {
      return await Deno.readFile(SYSTEM_FONT_DIR + name);
    } catch {
      throw new Error(`plot: cannot read font ${name} from the dejavu-fonts-ttf package: ${e}`);
    }
  }
}

async function load(): Promise<Uint8Array[]> {
  const wasm = await Deno.readFile(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm")));
  await initWasm(wasm);
  return await Promise.all(FONT_FILES.map(readFont));
}

/**
 * Loads the SVG renderer and fonts (once; later calls return at once). {@link renderSvg} calls it
 * itself; call it early only to move the ~0.1 s start-up out of a timed section.
 */
export function initPlot(): Promise<void> {
  ready ??= load().catch((e) => {
    ready = null;
    throw e;
  });
  return ready.then(() => {});
}

/** Options of {@link renderSvg}. */
export interface RenderOptions {
  /** Pixel density: 2 renders a 640×400 SVG to 1280×800 pixels (default 1). */
  scale?: number;
  /** Background colour behind transparent parts (CSS colour; default: transparent). */
  background?: string;
}

/** Renders an SVG document to an RGBA image, with DejaVu Sans as the only and default font. */
export async function renderSvg(svg: string, opts: RenderOptions = {}): Promise<RgbaImage> {
  await initPlot();
  const fonts = await ready!;
  const scale = opts.scale ?? 1;
  const resvg = new Resvg(svg, {
    font: { fontBuffers: fonts, defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    ...(opts.background ? { background: opts.background } : {}),
  });
  try {
    const img = resvg.render();
    try {
      // Copy out of wasm memory before the image is freed.
      return { width: img.width, height: img.height, data: new Uint8Array(img.pixels) };
    } finally {
      img.free();
    }
  } finally {
    resvg.free();
  }
}

/** Escapes text for use inside SVG text content or attribute values. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/**
 * An estimate of the width of `text` in DejaVu Sans at `fontSize` pixels (bold ~8% wider), good
 * to a few percent for Latin text and numbers; used to size margins and legend boxes.
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (ch >= "0" && ch <= "9") em += 0.636;
    else if (" .,:;'|!ijlI()[]{}".includes(ch)) em += 0.32;
    else if ("ftr-".includes(ch)) em += 0.4;
    else if ("mwMW%@".includes(ch)) em += 0.9;
    else if (ch >= "A" && ch <= "Z") em += 0.7;
    else em += 0.6;
  }
  return em * fontSize * (bold ? 1.08 : 1);
}
