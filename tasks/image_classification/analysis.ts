/**
 * `deno task analyse:images`: figures of a trained image-classification run (the reference's
 * `analysis/run_imagenet_analysis.py`, for this port's run directories). Rebuilds the model from
 * the run's `args.yaml`, loads a checkpoint's weights, runs `--n_batches` test batches (test
 * transform, eval mode) and writes:
 * - `accuracy_vs_ticks.png`: top-1 / top-5 accuracy per tick for the "instant", "most certain",
 *   "average logits" and "certainty-weighted logits" readouts;
 * - `certainty_threshold.png`: per tick, the fractions right / wrong with certainty ≥ 0.5, 0.8, 0.9;
 * - `calibration.png`: reliability curves at a few ticks (probabilities averaged up to the tick);
 * - `attention_<i>.gif` for each `--samples` index (CTM and LSTM): per tick, the input, the mean
 *   attention over it, per-head maps, top-5 probabilities and the certainty trace;
 * - `analysis.json`: the numbers behind the figures.
 * Run with `--help` for the flags.
 */
import "../../src/ops/setup.ts";
import { initGpu, NoAdapterError } from "../../src/gpu/device.ts";
import { presetTransform } from "../../src/data/transforms.ts";
import { evenlySpaced, imageFromFloats, type RgbaImage, writeGif, writePng } from "../../src/plot/mod.ts";
import { type CheckpointInfo, readCheckpointMeta } from "../../src/train/checkpoint.ts";
import { CliError, type CliSpec, defineCli, type FlagSpecs, parseCli } from "../../src/util/cli.ts";
import { ensureDir, join, writeFileAtomic } from "../../src/util/std.ts";
import {
  evaluateTestBatches,
  ImageAnalysisError,
  parseSamples,
  pickCheckpoint,
  runConfig,
} from "./analysis_eval.ts";
import { accuracyVsTicksFigure, calibrationFigure, certaintyThresholdFigure } from "./analysis_plots.ts";
import { attentionFrames } from "./attention_frames.ts";
import type { ImageConfig } from "./config.ts";
import {
  calibrationCurves,
  certaintyAt,
  certaintyThresholds,
  type ImageEval,
  type ReadoutAccuracy,
  readoutAccuracy,
} from "./readouts.ts";

export { ImageAnalysisError, parseSamples };

/** Certainty thresholds of `certainty_threshold.png` (the reference's). */
export const CERTAINTY_THRESHOLDS: readonly number[] = [0.5, 0.8, 0.9];

/** The flags of {@link imageAnalysisCli}. */
const ANALYSIS_FLAGS = {
  log_dir: {
    type: "string",
    default: "logs/scratch",
    description: "Run directory (args.yaml, checkpoints).",
  },
  checkpoint: {
    type: "int",
    default: -1,
    min: -1,
    description: "Iteration of the checkpoint to analyse (-1: the newest complete one).",
  },
  n_batches: {
    type: "int",
    default: 4,
    min: 1,
    description: "Test batches to evaluate (from one fixed shuffle of the test split).",
  },
  samples: {
    type: "string",
    default: "0,1,2",
    description: "Indices among the evaluated test images to animate (comma-separated; empty: none).",
  },
  output_dir: {
    type: "string",
    default: "",
    description: "Output directory (empty: <log_dir>/analysis).",
  },
  inference_iterations: {
    type: "int",
    default: 0,
    min: 0,
    description: "Internal ticks at inference (0: the trained number).",
  },
  batch_size_test: { type: "int", default: 0, min: 0, description: "Test batch size (0: the run's)." },
  data_root: { type: "string", default: "", description: "Where the dataset lives (empty: the run's)." },
  calibration_ticks: {
    type: "int",
    default: 6,
    min: 1,
    description: "Ticks (evenly spaced, last included) drawn in calibration.png.",
  },
  calibration_bins: {
    type: "int",
    default: 10,
    min: 2,
    description: "Confidence bins of calibration.png.",
  },
  frame_ms: { type: "int", default: 150, min: 10, description: "GIF frame delay in milliseconds." },
} as const satisfies FlagSpecs;

/** The command's flags. */
export const imageAnalysisCli: CliSpec<typeof ANALYSIS_FLAGS> = defineCli({
  name: "deno task analyse:images",
  description:
    "Analyses a trained image-classification run (written by `deno task train:cifar10` and friends): accuracy per\n" +
    "tick for four readouts, right/wrong fractions above certainty thresholds, calibration, and per-tick\n" +
    "attention GIFs of chosen test images. Reads --log_dir's args.yaml and numbered checkpoints and the test\n" +
    "split of the run's dataset; writes PNG, GIF and JSON files to --output_dir.",
  flags: ANALYSIS_FLAGS,
  examples: [
    "deno task analyse:images --log_dir logs/cifar10_ctm",
    "deno task analyse:images --log_dir logs/cifar10_ctm --checkpoint 20000 --n_batches 8 --samples 0,5,9 " +
    "--inference_iterations 100",
  ],
  validate: (v) => {
    try {
      parseSamples(v.samples);
      return [];
    } catch (e) {
      return [(e as Error).message];
    }
  },
});

/** Options of {@link analyseImages} (the flags, camelCase, most optional). */
export interface ImageAnalysisOptions {
  /** Run directory. */
  logDir: string;
  /** Checkpoint iteration (default: the newest). */
  checkpoint?: number;
  /** Test batches (default 4). */
  nBatches?: number;
  /** Indices of the evaluated test images to animate (default [0, 1, 2]). */
  samples?: number[];
  /** Output directory (default `<logDir>/analysis`). */
  outputDir?: string;
  /** Ticks at inference (default: the trained number). */
  inferenceIterations?: number;
  /** Test batch size (default: the run's). */
  batchSizeTest?: number;
  /** Dataset location (default: the run's). */
  dataRoot?: string;
  /** Ticks in the calibration figure (default 6). */
  calibrationTicks?: number;
  /** Calibration bins (default 10). */
  calibrationBins?: number;
  /** GIF frame delay (default 150 ms). */
  frameMs?: number;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

/** What {@link analyseImages} produced. */
export interface ImageAnalysisResult {
  /** The written files. */
  files: string[];
  /** The evaluated predictions. */
  eval: ImageEval;
  /** Accuracy per readout and tick. */
  accuracy: ReadoutAccuracy;
  /** The analysed checkpoint's base path and iteration. */
  checkpoint: CheckpointInfo;
}

/**
 * Analyses a run: every figure of the module doc into the output directory. Throws
 * {@link ImageAnalysisError} for a missing run directory, config or checkpoint.
 */
export async function analyseImages(o: ImageAnalysisOptions): Promise<ImageAnalysisResult> {
  const log = o.log ?? (() => {});
  const chosen = await pickCheckpoint(o.logDir, o.checkpoint, log);
  const meta = await readCheckpointMeta(chosen.path);
  const run = await runConfig(o.logDir, meta.config);
  const c: ImageConfig = {
    ...run,
    iterations: o.inferenceIterations || run.iterations,
    batch_size_test: o.batchSizeTest || run.batch_size_test,
    data_root: o.dataRoot || run.data_root,
    n_test_batches: o.nBatches ?? 4,
  };
  const samples = o.samples ?? [0, 1, 2];
  const out = o.outputDir || join(o.logDir, "analysis");
  await initGpu();
  const r = await evaluateTestBatches(c, chosen, meta.config, samples, log);
  const ev = r.eval, T = ev.ticks, C = ev.classes, N = ev.n;
  if (!r.isFf && T !== run.iterations) log(`${T} ticks at inference (trained with ${run.iterations})`);

  await ensureDir(out);
  const files: string[] = [];
  const ctx = { run: `${c.dataset} ${c.model}, iteration ${chosen.iteration}`, images: N };
  const png = async (name: string, img: RgbaImage) => {
    const p = join(out, `${name}.png`);
    await writePng(p, img);
    files.push(p);
  };
  const k = Math.min(5, C);
  const accuracy = readoutAccuracy(ev, k);
  await png("accuracy_vs_ticks", await accuracyVsTicksFigure(accuracy, k, ctx));
  const thresholds = certaintyThresholds(ev, [...CERTAINTY_THRESHOLDS]);
  await png("certainty_threshold", await certaintyThresholdFigure(thresholds, ctx));
  const calTicks = evenlySpaced(T, o.calibrationTicks ?? 6);
  const calibration = calibrationCurves(ev, calTicks, o.calibrationBins ?? 10);
  await png("calibration", await calibrationFigure(calibration, ctx));

  if (r.isFf && samples.length) log("the FF baseline has no attention: no attention GIFs");
  const stats = presetTransform(c.dataset === "fashion" ? "fashion-mnist" : c.dataset, "test");
  for (const tr of r.tracked) {
    const n = tr.index;
    const frames = await attentionFrames({
      title: `test image ${n}`,
      image: imageFromFloats(tr.image, tr.height, tr.width, {
        channels: r.channels === 1 ? 1 : 3,
        layout: "chw",
        min: 0,
        max: 1,
        denormalize: { mean: stats.mean!, std: stats.std! },
      }),
      grid: r.grid,
      heads: r.heads,
      ticks: T,
      attention: tr.attention,
      logits: ev.logits.subarray(n * C * T, (n + 1) * C * T),
      certainty: Array.from({ length: T }, (_, t) => certaintyAt(ev, n, t)),
      classes: r.classes,
      label: ev.labels[n],
    });
    const p = join(out, `attention_${n}.gif`);
    await writeGif(p, frames, { delayMs: o.frameMs ?? 150, lastDelayMs: 1500 });
    files.push(p);
  }

  const summary = {
    checkpoint: chosen.path,
    iteration: chosen.iteration,
    model: c.model,
    dataset: c.dataset,
    images: N,
    ticks: T,
    trained_ticks: run.iterations,
    accuracy: Object.fromEntries(
      Object.entries(accuracy).map(([name, a]) => [name, { top1: a.top1, [`top${k}`]: a.topk }]),
    ),
    certainty_thresholds: thresholds,
    calibration: calibration.map((cv) => ({
      tick: cv.tick + 1,
      ece: cv.ece,
      count: cv.count,
      confidence: cv.confidence.map((v) => (Number.isFinite(v) ? v : null)),
      accuracy: cv.accuracy.map((v) => (Number.isFinite(v) ? v : null)),
    })),
  };
  const sp = join(out, "analysis.json");
  await writeFileAtomic(sp, JSON.stringify(summary, null, 1));
  files.push(sp);
  return { files, eval: ev, accuracy, checkpoint: chosen };
}

/** The command: parses `args` (`--help` prints the flags and returns null), analyses, prints where files went. */
export async function main(
  args: string[],
  opts: { log?: (message: string) => void; print?: (line: string) => void } = {},
): Promise<ImageAnalysisResult | null> {
  const parsed = parseCli(imageAnalysisCli, args);
  const print = opts.print ?? ((l: string) => console.log(l));
  if (parsed.help) {
    print(parsed.text.trimEnd());
    return null;
  }
  const v = parsed.values;
  const t0 = performance.now();
  const r = await analyseImages({
    logDir: v.log_dir,
    checkpoint: v.checkpoint,
    nBatches: v.n_batches,
    samples: parseSamples(v.samples),
    outputDir: v.output_dir,
    inferenceIterations: v.inference_iterations,
    batchSizeTest: v.batch_size_test,
    dataRoot: v.data_root,
    calibrationTicks: v.calibration_ticks,
    calibrationBins: v.calibration_bins,
    frameMs: v.frame_ms,
    log: opts.log ?? ((m) => console.error(m)),
  });
  print(`wrote ${r.files.length} files in ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
  for (const f of r.files) print(`  ${f}`);
  return r;
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    if (e instanceof CliError || e instanceof ImageAnalysisError || e instanceof NoAdapterError) {
      console.error(`error: ${e.message}`);
      Deno.exit(e instanceof CliError ? 2 : 1);
    }
    throw e;
  }
}
