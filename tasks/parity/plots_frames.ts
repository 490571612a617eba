/**
 * Figures of individual test sequences of the parity analysis: per-tick frames of one sequence
 * (input, target, predicted probabilities, correctness and certainty, attention, with a certainty
 * chart whose cursor follows the tick), attention per head per tick, and neural dynamics.
 */
import {
  type ChartOptions,
  chartWithCursor,
  colorbar,
  type ColormapName,
  createImage,
  grid,
  heatmap,
  hstack,
  type RgbaImage,
  sameSize,
  type Series,
  seriesColor,
  smallMultiples,
  textImage,
  vstack,
} from "../../src/plot/mod.ts";

/** Colormap of parity values and probabilities: blue = even (0), white = undecided, red = odd (1). */
export const PARITY_COLORMAP: ColormapName = "bluered";

/** Green (right) or red (wrong) cells, faded towards white where the model is uncertain. */
export function correctnessGrid(
  correct: ArrayLike<number>,
  certainty: ArrayLike<number>,
  side: number,
  cellSize: number,
  gap = 1,
): RgbaImage {
  const img = createImage(side * cellSize + (side - 1) * gap, side * cellSize + (side - 1) * gap, [
    200,
    200,
    200,
    255,
  ]);
  for (let p = 0; p < side * side; p++) {
    const base = correct[p] ? [44, 160, 44] : [214, 39, 40];
    const c = Math.min(1, Math.max(0, certainty[p]));
    const rgb = base.map((v) => Math.round(255 + (v - 255) * (0.15 + 0.85 * c)));
    const x0 = (p % side) * (cellSize + gap), y0 = Math.floor(p / side) * (cellSize + gap);
    for (let y = y0; y < y0 + cellSize; y++) {
      for (let x = x0; x < x0 + cellSize; x++) {
        const i = (y * img.width + x) * 4;
        img.data[i] = rgb[0];
        img.data[i + 1] = rgb[1];
        img.data[i + 2] = rgb[2];
      }
    }
  }
  return img;
}

/** What {@link sequenceFrames} shows of one test sequence. */
export interface SequenceView {
  /** Sequence length L (a perfect square). */
  length: number;
  /** Internal ticks T. */
  ticks: number;
  /** The ±1 input `[L]`. */
  input: ArrayLike<number>;
  /** The cumulative-parity target `[L]`. */
  target: ArrayLike<number>;
  /** P(odd) per position at tick t `[L]`. */
  prob: (t: number) => ArrayLike<number>;
  /** 1 where the prediction at tick t is right `[L]`. */
  correct: (t: number) => ArrayLike<number>;
  /** Per-position certainty (1 − normalised entropy) at tick t `[L]`. */
  certainty: (t: number) => ArrayLike<number>;
  /** Attention over the L positions at tick t, averaged over heads `[L]`. */
  attention: (t: number) => ArrayLike<number>;
  /** The model's certainty of this sequence per tick `[T]`. */
  certaintyCurve: ArrayLike<number>;
  /** Accuracy over this sequence's positions per tick `[T]`. */
  accuracyCurve: ArrayLike<number>;
  /** Frame title prefix, e.g. `sample 0 · iteration 5000`. */
  title: string;
}

/**
 * One frame per tick: the input and target grids (√L×√L), the predicted P(odd), right/wrong
 * faded by certainty, and the mean attention at that tick, above a chart of this sequence's
 * certainty and accuracy over ticks with a cursor at the tick.
 */
export async function sequenceFrames(v: SequenceView): Promise<RgbaImage[]> {
  const side = Math.round(Math.sqrt(v.length));
  const cell = Math.max(6, Math.min(40, Math.floor(176 / side)));
  const hm = { cellSize: cell, gap: 1, gapColor: [200, 200, 200, 255] as const };
  const label = (s: string, w: number) => textImage(s, w, { fontSize: 12 });
  const gridW = side * cell + side - 1;
  const framed = (img: RgbaImage) => grid([img], 1, { pad: 1, background: [150, 150, 150, 255] });
  const labels = await Promise.all(
    [
      "input (black −1, white +1)",
      "target parity",
      "predicted P(odd)",
      "right / wrong",
      "attention (mean of heads)",
    ]
      .map((s) => label(s, gridW)),
  );
  let attMax = 0;
  for (let t = 0; t < v.ticks; t++) for (const a of Array.from(v.attention(t))) attMax = Math.max(attMax, a);
  const inputImg = framed(heatmap(v.input, side, side, { ...hm, colormap: "gray", min: -1, max: 1 }));
  const targetImg = framed(
    heatmap(v.target, side, side, { ...hm, colormap: PARITY_COLORMAP, min: 0, max: 1 }),
  );
  const probBar = await colorbar({
    colormap: PARITY_COLORMAP,
    min: 0,
    max: 1,
    height: gridW,
    width: 10,
    label: "P(odd)",
  });
  const attBar = await colorbar({ colormap: "viridis", min: 0, max: attMax || 1, height: gridW, width: 10 });
  const x = Array.from({ length: v.ticks }, (_, t) => t + 1);
  const chart = await chartWithCursor({
    title: "this sequence over internal ticks",
    xLabel: "internal tick",
    series: [
      { name: "certainty", x, y: v.certaintyCurve },
      { name: "accuracy over positions", x, y: v.accuracyCurve, dashed: true },
    ],
    xRange: [1, Math.max(2, v.ticks)],
    yRange: [0, 1.02],
    width: 640,
    height: 220,
  });
  const noteText = "blue = even (0), red = odd (1); green = right, red = wrong, pale = uncertain";
  let note: RgbaImage | null = null;
  const frames: RgbaImage[] = [];
  for (let t = 0; t < v.ticks; t++) {
    const panels = [
      vstack([labels[0], inputImg], { gap: 2 }),
      vstack([labels[1], targetImg], { gap: 2 }),
      vstack([
        labels[2],
        hstack([
          framed(heatmap(v.prob(t), side, side, { ...hm, colormap: PARITY_COLORMAP, min: 0, max: 1 })),
          probBar,
        ], { gap: 2 }),
      ], { gap: 2 }),
      vstack([labels[3], framed(correctnessGrid(v.correct(t), v.certainty(t), side, cell))], { gap: 2 }),
      vstack([
        labels[4],
        hstack([framed(heatmap(v.attention(t), side, side, { ...hm, min: 0, max: attMax || 1 })), attBar], {
          gap: 2,
        }),
      ], { gap: 2 }),
    ];
    const row = grid(panels, panels.length, { gap: 12, pad: 4 });
    note ??= await textImage(noteText, row.width, { fontSize: 11 });
    const title = await textImage(`${v.title} · tick ${t + 1}/${v.ticks}`, row.width, {
      fontSize: 15,
      bold: true,
    });
    frames.push(vstack([title, row, note, chart(t + 1)], { gap: 4, pad: 6 }));
  }
  return sameSize(frames);
}

/** One frame per tick: attention over the √L×√L positions for each head and their mean. */
export async function attentionFrames(
  perTick: (t: number) => ArrayLike<number>[],
  ticks: number,
  length: number,
  title: string,
): Promise<RgbaImage[]> {
  const side = Math.round(Math.sqrt(length));
  let max = 0;
  for (let t = 0; t < ticks; t++) {
    for (const m of perTick(t)) for (const a of Array.from(m)) max = Math.max(max, a);
  }
  max ||= 1;
  const cell = Math.max(4, Math.min(32, Math.floor(128 / side)));
  const nHeads = perTick(0).length;
  const mapW = side * cell + side - 1;
  const names = [...Array.from({ length: nHeads }, (_, h) => `head ${h}`), "mean of heads"];
  const labels = await Promise.all(names.map((n) => textImage(n, mapW, { fontSize: 12 })));
  const bar = await colorbar({ min: 0, max, height: mapW, width: 10, label: "attention" });
  const perRow = Math.min(names.length, Math.max(3, Math.ceil(Math.sqrt(names.length))));
  const hm = { cellSize: cell, gap: 1, gapColor: [200, 200, 200, 255] as const, min: 0, max };
  const frames: RgbaImage[] = [];
  let banner: RgbaImage | null = null;
  for (let t = 0; t < ticks; t++) {
    const heads = perTick(t);
    const mean = new Float64Array(length);
    for (const h of heads) for (let i = 0; i < length; i++) mean[i] += h[i] / heads.length;
    const maps = [...heads, mean].map((m, i) =>
      vstack(
        [labels[i], grid([heatmap(m, side, side, hm)], 1, { pad: 1, background: [150, 150, 150, 255] })],
        { gap: 2 },
      )
    );
    const body = hstack([grid(maps, perRow, { gap: 14 }), bar], { gap: 10, pad: 6 });
    const head = await textImage(`${title} · tick ${t + 1}/${ticks}`, body.width, {
      fontSize: 14,
      bold: true,
    });
    banner ??= await textImage(
      "attention weights over the sequence positions (√L × √L grid, row by row)",
      body.width,
      {
        fontSize: 11,
      },
    );
    frames.push(vstack([head, banner, body], { gap: 2, pad: 4 }));
  }
  return sameSize(frames);
}

/**
 * Neural dynamics: one panel per neuron with its post-activation over ticks, and its
 * pre-activation (dashed) when given (the LSTM baseline has none).
 */
export function neuralDynamics(
  neurons: number[],
  pre: ((n: number) => number[]) | null,
  post: (n: number) => number[],
  title: string,
): Promise<RgbaImage> {
  const panels: ChartOptions[] = neurons.map((n) => {
    const y = post(n);
    const x = Array.from({ length: y.length }, (_, t) => t + 1);
    const series: Series[] = [{ name: "post-activation", x, y, color: seriesColor(0) }];
    if (pre) series.unshift({ name: "pre-activation", x, y: pre(n), dashed: true, color: seriesColor(1) });
    return { title: `neuron ${n}`, xLabel: "tick", series };
  });
  return smallMultiples(panels, { title, cols: 4, panelWidth: 240, panelHeight: 160 });
}
