/** Plots: PNG/GIF round trips, colormaps, heatmap pixels, charts with text, image helpers. */
import assert from "node:assert/strict";
import omggif from "omggif";
import {
  barChart,
  blend,
  chartWithCursor,
  colorAt,
  colormapLut,
  COLORMAPS,
  createImage,
  decodePng,
  encodeGif,
  encodePng,
  evenlySpaced,
  getPixel,
  grid,
  heatmap,
  heatmapFrames,
  heatmapGrid,
  imageFromFloats,
  lineChart,
  matrixChart,
  overlayHeatmap,
  padTo,
  readPng,
  renderSvg,
  resize,
  type RgbaImage,
  sameSize,
  scatterChart,
  smallMultiples,
  textWidth,
  upscale,
  writeGif,
  writePng,
} from "../src/plot/mod.ts";

interface GifReader {
  width: number;
  height: number;
  numFrames(): number;
  loopCount(): number | null;
  frameInfo(i: number): { delay: number };
  decodeAndBlitFrameRGBA(i: number, out: Uint8Array): void;
}
const GifReaderCtor = (omggif as unknown as { GifReader: new (b: Uint8Array) => GifReader }).GifReader;

function rgb(img: RgbaImage, x: number, y: number): number[] {
  return getPixel(img, x, y).slice(0, 3);
}

/** Pixels in a rectangle that are clearly not white. */
function inked(img: RgbaImage, x0 = 0, y0 = 0, x1 = img.width, y1 = img.height): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const [r, g, b] = getPixel(img, x, y);
      if (r + g + b < 600) n++;
    }
  }
  return n;
}

/** Pixels within `tol` of an RGB colour. */
function countColor(img: RgbaImage, c: readonly number[], tol = 12): number {
  let n = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    if (
      Math.abs(img.data[i] - c[0]) <= tol && Math.abs(img.data[i + 1] - c[1]) <= tol &&
      Math.abs(img.data[i + 2] - c[2]) <= tol
    ) n++;
  }
  return n;
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "plot_test_" });
}

Deno.test("plot: PNG encodes and decodes back to the same pixels; writes are atomic", async () => {
  const img = createImage(7, 5, [10, 20, 30, 255]);
  img.data.set([255, 0, 0, 128], (2 * 7 + 3) * 4);
  const back = decodePng(encodePng(img));
  assert.equal(back.width, 7);
  assert.equal(back.height, 5);
  assert.deepEqual(back.data, img.data);
  const dir = await tempDir();
  try {
    await writePng(`${dir}/sub/a.png`, img);
    const read = await readPng(`${dir}/sub/a.png`);
    assert.deepEqual(read.data, img.data);
    const names = [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name);
    assert.deepEqual(names, ["a.png"], "no temporary file is left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plot: colormaps have their known endpoints", () => {
  assert.deepEqual(colorAt("viridis", 0), [0x44, 0x01, 0x54]);
  assert.deepEqual(colorAt("viridis", 1), [0xfd, 0xe7, 0x25]);
  assert.deepEqual(colorAt("gray", 0.5, 0, 1), [128, 128, 128]);
  assert.deepEqual(colorAt("viridis", 5, 0, 1), colorAt("viridis", 1), "clamped above");
  const [r0, , b0] = colorAt("bluered", -1, -1, 1), [r1, , b1] = colorAt("bluered", 1, -1, 1);
  assert.ok(b0 > r0 && r1 > b1, "bluered: blue for low, red for high");
  for (const name of COLORMAPS) assert.equal(colormapLut(name).length, 768);
});

Deno.test("plot: heatmap cells have the colormap's colours", () => {
  const cs = 5, gap = 1;
  const img = heatmap([0, 0.25, 0.5, 1, NaN, -3], 2, 3, {
    cellSize: cs,
    gap,
    min: 0,
    max: 1,
    colormap: "magma",
  });
  assert.equal(img.width, 3 * cs + 2 * gap);
  assert.equal(img.height, 2 * cs + gap);
  const centre = (r: number, c: number) => rgb(img, c * (cs + gap) + 2, r * (cs + gap) + 2);
  assert.deepEqual(centre(0, 0), colorAt("magma", 0));
  assert.deepEqual(centre(0, 1), colorAt("magma", 0.25));
  assert.deepEqual(centre(0, 2), colorAt("magma", 0.5));
  assert.deepEqual(centre(1, 0), colorAt("magma", 1));
  assert.deepEqual(centre(1, 1), [128, 128, 128], "NaN is grey");
  assert.deepEqual(centre(1, 2), colorAt("magma", 0), "clamped below");
  assert.deepEqual(rgb(img, cs, 0), [255, 255, 255], "gap");
  // Default range: the data's own min and max.
  const auto = heatmap([2, 4], 1, 2, { cellSize: 1 });
  assert.deepEqual(rgb(auto, 0, 0), colorAt("viridis", 0));
  assert.deepEqual(rgb(auto, 1, 0), colorAt("viridis", 1));
});

Deno.test("plot: GIF has one frame per tick and exact heatmap colours", async () => {
  const ticks = Array.from(
    { length: 6 },
    (_, t) => Float32Array.from({ length: 64 }, (_, i) => Math.sin(i + t)),
  );
  const frames = await heatmapFrames(ticks, 8, 8, {
    cellSize: 4,
    symmetric: true,
    colormap: "bluered",
    pad: 0,
  });
  const bytes = encodeGif(frames, { delayMs: 50, lastDelayMs: 500 });
  const gif = new GifReaderCtor(bytes);
  assert.equal(gif.numFrames(), 6);
  assert.equal(gif.width, 32);
  assert.equal(gif.height, 32);
  assert.equal(gif.loopCount(), 0, "loops forever");
  assert.equal(gif.frameInfo(0).delay, 5);
  assert.equal(gif.frameInfo(5).delay, 50);
  const px = new Uint8Array(32 * 32 * 4);
  gif.decodeAndBlitFrameRGBA(3, px);
  assert.deepEqual(px, frames[3].data, "≤256 colours are kept exactly");
  // The value at cell (2, 5) of tick 3, on the shared symmetric scale.
  assert.deepEqual(
    [...px.subarray((2 * 4 * 32 + 5 * 4) * 4, (2 * 4 * 32 + 5 * 4) * 4 + 3)],
    colorAt("bluered", Math.sin(21 + 3), -1, 1),
  );
});

Deno.test("plot: GIF with many colours is quantised, titled frames, file written", async () => {
  const frames: RgbaImage[] = [];
  for (let f = 0; f < 3; f++) {
    const img = createImage(40, 30);
    for (let i = 0; i < 40 * 30; i++) {
      img.data.set([(i * 7 + f * 40) % 256, (i * 3) % 256, (i * 11) % 256], i * 4);
    }
    frames.push(img);
  }
  const dir = await tempDir();
  try {
    await writeGif(`${dir}/q.gif`, frames, { loop: false });
    const gif = new GifReaderCtor(await Deno.readFile(`${dir}/q.gif`));
    assert.equal(gif.numFrames(), 3);
    assert.equal(gif.loopCount(), null, "plays once");
    const px = new Uint8Array(40 * 30 * 4);
    gif.decodeAndBlitFrameRGBA(1, px);
    let err = 0;
    for (let i = 0; i < px.length; i += 4) {
      for (let k = 0; k < 3; k++) err += Math.abs(px[i + k] - frames[1].data[i + k]);
    }
    assert.ok(err / (40 * 30 * 3) < 24, `mean colour error ${err / (40 * 30 * 3)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const titled = await heatmapFrames([[0, 1], [1, 0]], 1, 2, {
    titles: (t) => `tick ${t}`,
    colorbar: true,
    cellSize: 30,
  });
  assert.equal(titled[0].width, titled[1].width);
  assert.ok(titled[0].height > 30 + 8 + 16, "title and margin add height");
  assert.ok(inked(titled[0], 0, 0, titled[0].width, 22) > 10, "title text is drawn");
  assert.throws(() => encodeGif([createImage(2, 2), createImage(3, 2)]), /frame 1/);
});

Deno.test("plot: line chart renders axes, title, legend and series", async () => {
  const x = Array.from({ length: 50 }, (_, i) => i * 100);
  const img = await lineChart({
    title: "Accuracy",
    xLabel: "iteration",
    yLabel: "accuracy",
    series: [
      { name: "train", x, y: x.map((v) => 1 - Math.exp(-v / 1000)) },
      { name: "test", x, y: x.map((v) => 0.9 - Math.exp(-v / 1000)), dashed: true, color: "#d62728" },
    ],
    rules: [{ y: 0.5, name: "chance" }],
  });
  assert.equal(img.width, 640);
  assert.equal(img.height, 400);
  const back = decodePng(encodePng(img));
  assert.equal(back.width, 640);
  assert.ok(inked(img) > 3000, "not blank");
  assert.ok(inked(img, 220, 0, 420, 28) > 40, "title text in the top band");
  assert.ok(inked(img, 200, 375, 440, 400) > 30, "x label text at the bottom");
  assert.ok(inked(img, 0, 120, 25, 280) > 30, "rotated y label on the left");
  assert.ok(countColor(img, [0x4e, 0x79, 0xa7]) > 200, "first series in the first cycle colour");
  assert.ok(countColor(img, [0xd6, 0x27, 0x28]) > 100, "second series in its own colour");
  const big = await lineChart({ series: [{ y: [1, 3, 2] }], width: 300, height: 200, scale: 2 });
  assert.equal(big.width, 600);
  assert.equal(big.height, 400);
  assert.throws(() => lineChart({ series: [{ x: [1, 2], y: [1] }] }), /x has 2 values/);
});

Deno.test("plot: scatter, bars, log axes, bands and small multiples render", async () => {
  const s = await scatterChart({
    series: [{ name: "a", x: [1, 2, 3], y: [3, 1, 2] }],
    xLabel: "ticks",
    yLog: true,
  });
  assert.ok(countColor(s, [0x4e, 0x79, 0xa7]) > 50);
  const bins = [0.05, 0.15, 0.25, 0.35];
  const b = await barChart({
    title: "Reliability",
    series: [{ name: "acc", x: bins, y: [0.1, 0.2, 0.2, 0.4] }, {
      name: "ideal",
      type: "line",
      x: [0, 1],
      y: [0, 1],
    }],
    xRange: [0, 0.4],
    yRange: [0, 0.5],
  });
  assert.ok(countColor(b, [0x6b, 0x8f, 0xb6], 20) > 2000, "bars filled (85% opaque blue on white)");
  const band = await lineChart({
    series: [{ y: [1, 2, 3], band: { lo: [0, 1, 2], hi: [2, 3, 4] }, markers: true }],
    yRange: [0, 3],
  });
  assert.ok(inked(band) > 1000);
  const panels = Array.from({ length: 6 }, (_, n) => ({
    title: `neuron ${n}`,
    series: [
      { name: "pre", y: Array.from({ length: 20 }, (_, t) => Math.sin(t / 3 + n)), dashed: true },
      { name: "post", y: Array.from({ length: 20 }, (_, t) => Math.tanh(Math.sin(t / 3 + n))) },
    ],
  }));
  const sm = await smallMultiples(panels, { cols: 3, panelWidth: 160, panelHeight: 110, title: "Dynamics" });
  assert.equal(sm.width, 480);
  assert.ok(sm.height >= 220 && sm.height < 300, `height ${sm.height}`);
  assert.ok(inked(sm, 180, 0, 300, 25) > 20, "figure title");
});

Deno.test("plot: text width estimate is close to the rendered width", async () => {
  for (const text of ["training iteration", "0.125", "Accuracy vs thinking time"]) {
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><rect width="100%" height="100%" ` +
      `fill="white"/><text x="10" y="28" font-size="20">${text}</text></svg>`;
    const img = await renderSvg(svg);
    let x0 = Infinity, x1 = -Infinity;
    for (let x = 0; x < img.width; x++) {
      if (inked(img, x, 0, x + 1, img.height) > 0) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
      }
    }
    const est = textWidth(text, 20), real = x1 - x0 + 1;
    assert.ok(Math.abs(est - real) / real < 0.12, `${text}: estimated ${est.toFixed(0)}, rendered ${real}`);
  }
});

Deno.test("plot: image helpers resize, lay out, blend and convert floats", async () => {
  const a = createImage(2, 1, [0, 0, 0, 255]);
  a.data.set([200, 100, 0, 255], 4);
  const n = resize(a, 4, 2);
  assert.deepEqual(rgb(n, 1, 1), [0, 0, 0]);
  assert.deepEqual(rgb(n, 2, 0), [200, 100, 0]);
  const bl = resize(a, 4, 1, "bilinear");
  assert.deepEqual(rgb(bl, 0, 0), [0, 0, 0]);
  assert.deepEqual(rgb(bl, 1, 0), [50, 25, 0]);
  assert.equal(upscale(a, 3).width, 6);
  const g = grid([createImage(3, 2), createImage(5, 4), createImage(1, 1)], 2, { gap: 2 });
  assert.deepEqual([g.width, g.height], [3 + 2 + 5, 4 + 2 + 1]);
  const half = blend(createImage(2, 2, [0, 0, 0, 255]), createImage(2, 2, [200, 100, 50, 255]), 0.5);
  assert.deepEqual(rgb(half, 1, 1), [100, 50, 25]);
  // CHW floats: red channel ramps, green and blue 0.
  const chw = new Float32Array(3 * 2 * 2);
  chw.set([0, 0.5, 1, 1]);
  const im = imageFromFloats(chw, 2, 2, { layout: "chw", min: 0, max: 1 });
  assert.deepEqual(rgb(im, 1, 0), [128, 0, 0]);
  assert.deepEqual(rgb(im, 0, 1), [255, 0, 0]);
  const ov = overlayHeatmap(createImage(8, 8, [0, 0, 0, 255]), [0, 1, 0, 0], 2, 2, {
    alpha: 1,
    mode: "nearest",
  });
  assert.deepEqual(rgb(ov, 6, 1), colorAt("viridis", 1));
  assert.deepEqual(rgb(ov, 1, 6), colorAt("viridis", 0));
  const heads = await heatmapGrid([[0, 1, 2, 3], [3, 2, 1, 0]], 2, 2, {
    titles: ["head 0", "head 1"],
    colorbar: true,
  });
  assert.ok(heads.width > 2 * 32 && inked(heads) > 100);
});

Deno.test("plot: frames are padded to one size, centred on white", () => {
  const a = createImage(2, 2, [0, 0, 0, 255]), b = createImage(5, 3, [10, 20, 30, 255]);
  assert.equal(padTo(b, 5, 3), b, "already that size: the image itself");
  const p = padTo(a, 6, 4);
  assert.deepEqual([p.width, p.height], [6, 4]);
  assert.deepEqual(rgb(p, 2, 1), [0, 0, 0]);
  assert.deepEqual(rgb(p, 3, 2), [0, 0, 0]);
  assert.deepEqual(rgb(p, 1, 1), [255, 255, 255]);
  assert.deepEqual(rgb(p, 4, 2), [255, 255, 255]);
  const [sa, sb] = sameSize([a, b]);
  assert.deepEqual([sa.width, sa.height, sb.width, sb.height], [5, 3, 5, 3]);
  assert.deepEqual(rgb(sa, 1, 0), [0, 0, 0]);
  assert.deepEqual(rgb(sa, 0, 0), [255, 255, 255]);
  assert.equal(sb, b);
});

Deno.test("plot: evenly spaced picks keep the first and the last", () => {
  assert.deepEqual(evenlySpaced(10, 4), [0, 3, 6, 9]);
  assert.deepEqual(evenlySpaced(7, 3), [0, 3, 6]);
  assert.deepEqual(evenlySpaced(3, 16), [0, 1, 2]);
  assert.deepEqual(evenlySpaced(5, 1), [4]);
  assert.deepEqual(evenlySpaced(4, 3), [0, 2, 3]);
});

Deno.test("plot: a chart's cursor moves right with x and leaves the chart intact", async () => {
  const chart = await chartWithCursor({
    series: [{ y: [0.2, 0.5, 0.9, 0.4, 0.6], x: [1, 2, 3, 4, 5] }],
    xRange: [1, 5],
    yRange: [0, 1],
    width: 320,
    height: 200,
  });
  const cursorCol = (img: RgbaImage) => {
    // The cursor is a 2-pixel column of rgb(30,30,30) spanning the plot: the column with most such pixels.
    let best = -1, bestN = 0;
    for (let x = 0; x < img.width; x++) {
      let n = 0;
      for (let y = 0; y < img.height; y++) if (rgb(img, x, y).every((v) => v === 30)) n++;
      if (n > bestN) [best, bestN] = [x, n];
    }
    return { col: best, n: bestN };
  };
  const at1 = cursorCol(chart(1)), at3 = cursorCol(chart(3)), at5 = cursorCol(chart(5));
  assert.ok(at1.n > 100 && at5.n > 100, `cursor spans the plot (${at1.n}, ${at5.n} px)`);
  assert.ok(at1.col < at3.col && at3.col < at5.col, `cursor at ${at1.col}, ${at3.col}, ${at5.col}`);
  assert.ok(Math.abs(at3.col - (at1.col + at5.col) / 2) <= 1, "linear in x");
  const a = chart(2), b = chart(2);
  assert.notEqual(a.data, b.data, "each frame is a new image");
  assert.deepEqual([a.width, a.height], [320, 200]);
});

Deno.test("plot: matrix chart draws its cells with the colormap and checks its size", async () => {
  const img = await matrixChart({
    values: [0, 1, 1, 0, 0.5, 0.5],
    rows: 2,
    cols: 3,
    rowLabels: ["100", "200"],
    title: "accuracy",
    xLabel: "position",
    yLabel: "iteration",
    colorbarLabel: "accuracy",
    min: 0,
    max: 1,
  });
  assert.ok(countColor(img, colorAt("viridis", 1), 2) > 2 * 30 * 30, "two cells at the top of the scale");
  assert.ok(countColor(img, colorAt("viridis", 0), 2) > 2 * 30 * 30, "two cells at the bottom of the scale");
  assert.ok(countColor(img, colorAt("viridis", 0.5), 2) > 2 * 30 * 30, "two cells in the middle");
  assert.ok(inked(img) > 6 * 30 * 30);
  await assert.rejects(() => matrixChart({ values: [1, 2, 3], rows: 2, cols: 2 }), /2x2 needs 4 values/);
});
