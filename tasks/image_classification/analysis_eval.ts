/**
 * The model side of the image analysis: picks a run's checkpoint, rebuilds its config (`args.yaml`)
 * and model, loads the weights, and runs test batches (the trainer's test transform, eval mode),
 * reading predictions and certainties back to the host and, for the images to animate, their
 * inputs and per-tick attention.
 */
import { computeCertainty } from "../../src/models/certainty.ts";
import { FfBaseline } from "../../src/models/ff.ts";
import { fromArray } from "../../src/ops/creation.ts";
import { reshape, slice } from "../../src/ops/views.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { type CheckpointInfo, loadCheckpoint, scanCheckpoints } from "../../src/train/checkpoint.ts";
import { basename, exists, join, parseYaml } from "../../src/util/std.ts";
import type { ImageConfig } from "./config.ts";
import { type ImageData, openImageData } from "./data.ts";
import { buildImageModel, materialise, runImageModel } from "./models.ts";
import type { ImageEval } from "./readouts.ts";
import { resolveImageConfig } from "./train.ts";

/** A run that cannot be analysed (missing, no config, no checkpoint, no data): the message says what to do. */
export class ImageAnalysisError extends Error {
  /** An error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "ImageAnalysisError";
  }
}

/** Parses `--samples` (`"0,1,2"`, spaces allowed, empty → none); throws on anything but indices ≥ 0. */
export function parseSamples(s: string): number[] {
  const parts = s.trim().split(/[\s,]+/).filter((p) => p !== "");
  for (const p of parts) {
    if (!/^\d+$/.test(p)) throw new Error(`--samples takes non-negative integer indices, got '${p}'`);
  }
  return [...new Set(parts.map(Number))];
}

/** The run's config: `args.yaml`, else the checkpoint's copy; checked like the trainer's. */
export async function runConfig(logDir: string, checkpointConfig: unknown): Promise<ImageConfig> {
  const path = join(logDir, "args.yaml");
  let raw: unknown = checkpointConfig;
  if (await exists(path)) raw = parseYaml(await Deno.readTextFile(path));
  if (!raw || typeof raw !== "object") {
    throw new ImageAnalysisError(
      `${logDir} has no args.yaml and its checkpoint holds no config: not an image run`,
    );
  }
  try {
    return resolveImageConfig(raw as Partial<ImageConfig>);
  } catch (e) {
    throw new ImageAnalysisError(`${path}: not an image-classification config: ${(e as Error).message}`);
  }
}

/** Checkpoint `want` of the run (the newest complete one when undefined or < 0), or a clear error. */
export async function pickCheckpoint(
  logDir: string,
  want: number | undefined,
  log: (message: string) => void = () => {},
): Promise<CheckpointInfo> {
  const hint = `Train one first, e.g. \`deno task train:cifar10 --log_dir ${logDir}\`, then run ` +
    `\`deno task analyse:images --log_dir ${logDir}\`.`;
  if (!(await exists(logDir))) {
    throw new ImageAnalysisError(`run directory ${logDir} does not exist. ${hint}`);
  }
  const scan = await scanCheckpoints(logDir);
  for (const s of scan.skipped) log(`skipping ${s.path}: ${s.reason}`);
  if (!scan.complete.length) {
    const why = scan.skipped.length
      ? ` (incomplete: ${scan.skipped.map((s) => basename(s.path)).join(", ")})`
      : "";
    throw new ImageAnalysisError(`no complete checkpoint (checkpoint_{N}.json) in ${logDir}${why}. ${hint}`);
  }
  if (want === undefined || want < 0) return scan.complete.at(-1)!;
  const hit = scan.complete.find((c) => c.iteration === want);
  if (!hit) {
    const have = scan.complete.map((c) => c.iteration).join(", ");
    throw new ImageAnalysisError(`no complete checkpoint ${want} in ${logDir}; available: ${have}`);
  }
  return hit;
}

/** One image to animate: its normalised input and the model's attention over the feature grid. */
export interface TrackedImage {
  /** Index among the evaluated test images. */
  index: number;
  /** Normalised input `[channels, height, width]`. */
  image: Float32Array;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Attention `[T, heads, H′·W′]`. */
  attention: Float32Array;
}

/** What {@link evaluateTestBatches} read back. */
export interface TestEvaluation {
  /** Predictions, certainties and labels of every evaluated image. */
  eval: ImageEval;
  /** The images of `samples` (none for the FF baseline). */
  tracked: TrackedImage[];
  /** Backbone feature grid `[H′, W′]` of the attention (the model's `kvFeatureShape`; `[1, 1]` when nothing was tracked). */
  grid: [number, number];
  /** Attention heads (0 when nothing was tracked). */
  heads: number;
  /** Class names. */
  classes: readonly string[];
  /** Input channels. */
  channels: number;
  /** Whether the model is the FF baseline (one tick, no attention). */
  isFf: boolean;
}

/**
 * Rebuilds the model of `c` (its `iterations` may differ from the trained number: no weight depends
 * on it), loads the checkpoint's weights, and runs `c.n_test_batches` test batches in eval mode
 * without gradients, tracking the batches that hold a `samples` index. The FF baseline's
 * certainty is computed from its logits as the CTM's is.
 */
export async function evaluateTestBatches(
  c: ImageConfig,
  checkpoint: CheckpointInfo,
  checkpointConfig: unknown,
  samples: number[],
  log: (message: string) => void = () => {},
): Promise<TestEvaluation> {
  let data: ImageData;
  try {
    data = await openImageData(c);
  } catch (e) {
    throw new ImageAnalysisError(`${(e as Error).message}\nPoint --data_root at the run's dataset.`);
  }
  const C = data.classes.length;
  const model = buildImageModel(c, C);
  const isFf = model instanceof FfBaseline;
  const T = isFf ? 1 : c.iterations;
  const logits: Float32Array[] = [], certs: Float32Array[] = [], labels: Int32Array[] = [];
  const tracked: TrackedImage[] = [];
  let grid: [number, number] = [1, 1], heads = 0, N = 0;
  try {
    materialise(model, data.channels, data.size);
    await loadCheckpoint(checkpoint.path, { model, modelOnly: true, config: checkpointConfig });
    model.eval();
    log(
      `analysing ${checkpoint.path} (iteration ${checkpoint.iteration}): ${c.model}, ${T} ticks; ${data.describe}`,
    );
    for await (const b of data.testBatches(0)) {
      const mine = isFf ? [] : samples.filter((i) => i >= N && i < N + b.size);
      const r = tidy(() =>
        noGrad(() => {
          const x = fromArray(b.images, [b.size, b.channels, b.height, b.width]);
          if (isFf) {
            const { predictions } = runImageModel(model, x);
            const certainty = computeCertainty(reshape(predictions, [b.size, C]), [-1]);
            return { predictions, certainties: reshape(certainty, [b.size, 2, 1]), att: [] as Tensor[] };
          }
          const f = model.forward(x, { track: mine.length > 0 });
          const tr = f.tracking;
          if (tr) {
            // The backbone features were [B, C, H′, W′]: the L attention positions are that grid.
            const fs = model.kvFeatureShape, L = tr.attention.shape[tr.attention.ndim - 1];
            grid = fs?.length === 4 && fs[2] * fs[3] === L ? [fs[2], fs[3]] : [1, L];
            heads = tr.attention.shape[2];
          }
          const att = tr ? mine.map((i) => slice(tr.attention, 1, i - N, i - N + 1)) : [];
          return { predictions: f.predictions, certainties: f.certainties, att };
        })
      );
      const all = [r.predictions, r.certainties, ...r.att];
      const [pred, cert, ...att] = (await Promise.all(all.map((t) => t.toArray()))) as Float32Array[];
      for (const t of all) t.dispose();
      logits.push(pred);
      certs.push(cert);
      labels.push(b.labels);
      const per = b.channels * b.height * b.width;
      mine.forEach((i, k) => {
        const image = b.images.slice((i - N) * per, (i - N + 1) * per);
        tracked.push({ index: i, image, height: b.height, width: b.width, attention: att[k] });
      });
      N += b.size;
      log(`batch ${labels.length}: ${N} images`);
    }
  } finally {
    data.close();
    model.dispose();
  }
  if (N === 0) throw new ImageAnalysisError(`the test split of ${c.dataset} yielded no images`);
  const missing = isFf ? [] : samples.filter((i) => i >= N);
  if (missing.length) {
    throw new ImageAnalysisError(
      `--samples ${missing.join(",")}: only ${N} test images were evaluated (n_batches × batch_size_test); ` +
        `pick indices below ${N} or raise --n_batches`,
    );
  }
  const join32 = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    parts.reduce((off, p) => (out.set(p, off), off + p.length), 0);
    return out;
  };
  const lab = new Int32Array(N);
  labels.reduce((off, p) => (lab.set(p, off), off + p.length), 0);
  return {
    eval: { n: N, classes: C, ticks: T, logits: join32(logits), certainties: join32(certs), labels: lab },
    tracked,
    grid,
    heads,
    classes: data.classes,
    channels: data.channels,
    isFf,
  };
}
