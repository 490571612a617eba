/**
 * Plots for the analysis scripts, written as PNG and GIF files: line, scatter and bar charts with
 * axes and legends, small multiples, heatmaps with colormaps and colour bars, matrices with axes,
 * attention overlays on images, and animated GIFs of per-tick frames (with a chart cursor that
 * follows the tick).
 *
 * Charts are SVG rasterised by `@resvg/resvg-wasm` with the DejaVu Sans font from the
 * `dejavu-fonts-ttf` package (no system fonts or native binaries); PNGs are encoded by `fast-png`,
 * GIFs by `gifenc`, colormaps come from `d3-scale-chromatic` and ticks from `d3-scale`.
 *
 * @example
 * ```ts
 * import { heatmapFrames, lineChart, writeGif, writePng } from "./src/plot/mod.ts";
 * await writePng("out/loss.png", await lineChart({ title: "loss", series: [{ name: "train", y: losses }] }));
 * await writeGif("out/ticks.gif", await heatmapFrames(perTick, 8, 8, { titles: (t) => `tick ${t}` }));
 * ```
 *
 * @module
 */
export * from "./image.ts";
export * from "./colormap.ts";
export * from "./png.ts";
export * from "./gif.ts";
export * from "./render.ts";
export * from "./chart.ts";
export * from "./heatmap.ts";
export * from "./matrix.ts";
export * from "./frames.ts";
