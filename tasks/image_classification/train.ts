/**
 * `deno task train:imagenet` / `train:cifar10` / `train:cifar100` / `train:fashion`: trains the CTM,
 * the LSTM baseline or the FF baseline on images with the shared training loop (progress bar,
 * metrics read every `log_every` steps without stalling the device, evaluation, atomic numbered
 * checkpoints, exact resumption). Batches are decoded and augmented by worker threads ahead of the
 * device. Evaluation follows the reference: reset the BatchNorm statistics, re-estimate them on
 * `n_test_batches` training batches in training mode (the "train" metrics), then measure the test
 * split in eval mode. Metrics: loss, top-1/top-5 at the most certain tick and per tick.
 */
import "../../src/ops/setup.ts";
import { gpu, initGpu } from "../../src/gpu/device.ts";
import type { IdlePollMode } from "../../src/gpu/idle_poll.ts";
import { fromArray } from "../../src/ops/creation.ts";
import { crossEntropy } from "../../src/ops/loss.ts";
import { reshape } from "../../src/ops/views.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import { classificationAccuracy, imageClassificationLoss } from "../../src/train/losses.ts";
import { train, type TrainResult } from "../../src/train/loop.ts";
import { GpuMetrics, type Histories, type MetricValues } from "../../src/train/metrics.ts";
import {
  defaultLog,
  pct,
  prepareLogDir,
  reportConfigDiff,
  resumeMode,
  runCommand,
  scheduleFromFlags,
} from "../../src/train/run_common.ts";
import { formatValues, parseCli } from "../../src/util/cli.ts";
import { join, writeFileAtomic } from "../../src/util/std.ts";
import {
  defaultImageConfig,
  imageCli,
  type ImageConfig,
  type ImageDatasetName,
  validateImageConfig,
} from "./config.ts";
import { type HostBatch, openImageData, type TrainStream } from "./data.ts";
import {
  buildImageModel,
  type ImageModel,
  materialise,
  parameterGroups,
  resetBatchNormStats,
  runImageModel,
} from "./models.ts";
import { writeTrainingPlots } from "./plots.ts";

/** A configuration that fails its checks (thrown before anything runs). */
export class ImageConfigError extends Error {}

/** The JSON written to `metrics.json` (histories of the shared loop, plus what the plots need). */
export interface ImageMetricsFile {
  /** Always `ctm-image-metrics`. */
  format: "ctm-image-metrics";
  /** Layout version (1). */
  version: 1;
  /** `ctm`, `lstm` or `ff`. */
  model: string;
  /** Dataset name. */
  dataset: string;
  /** Class names. */
  classes: string[];
  /** Ticks per forward (1 for FF). */
  ticks: number;
  /** Completed training steps when written. */
  iteration: number;
  /** Parameters of the model. */
  parameter_count: number;
  /** The run's flags. */
  config: ImageConfig;
  /** Histories: `train` (read windows: loss, top1) and `eval` (train_* and test_* values). */
  histories: Histories;
}

/** Options of {@link runImages} beyond the config (for tests and embedding). */
export interface ImageRunOptions {
  /** Where messages go (default: stderr). */
  log?: (message: string) => void;
  /** Stops the run like Ctrl-C. */
  signal?: AbortSignal;
  /** Catch SIGINT (default true). */
  handleSigint?: boolean;
}

/** What {@link runImages} returns. */
export interface ImageRunResult {
  /** The shared loop's result. */
  train: TrainResult;
  /** The metrics written to `metrics.json`. */
  metrics: ImageMetricsFile;
  /** The trained model (call `dispose` when done). */
  model: ImageModel;
  /** Wall time in seconds. */
  seconds: number;
  /** Frees the model, the optimizer state and the data workers. */
  dispose(): void;
}

/** Fills defaults and checks a partial config; throws {@link ImageConfigError} listing every problem. */
export function resolveImageConfig(partial: Partial<ImageConfig>, dataset?: ImageDatasetName): ImageConfig {
  const ds = (partial.dataset ?? dataset ?? "cifar10") as ImageDatasetName;
  const c = { ...defaultImageConfig(ds), ...partial } as ImageConfig;
  const problems = validateImageConfig(c);
  if (problems.length) throw new ImageConfigError(`bad settings:\n  ${problems.join("\n  ")}`);
  return c;
}

/** Loss and metrics of one batch (GPU tensors, inside the caller's tidy). */
function batchMetrics(model: ImageModel, b: HostBatch) {
  const x = fromArray(b.images, [b.size, b.channels, b.height, b.width]);
  const y = fromArray(b.labels, [b.size]);
  const { predictions, certainties } = runImageModel(model, x);
  let loss, tick;
  if (certainties) ({ loss, tickIndex: tick } = imageClassificationLoss(predictions, certainties, y, true));
  else {
    loss = crossEntropy(reshape(predictions, [b.size, predictions.shape[1]]), y);
    tick = fromArray(new Int32Array(b.size), [b.size]);
  }
  const a = classificationAccuracy(predictions, y, tick);
  return {
    loss,
    metrics: { top1: a.top1, top5: a.top5, top1_per_tick: a.top1PerTick, top5_per_tick: a.top5PerTick },
  };
}

/** Trains (or resumes) one run; bad settings or missing data throw before any step. */
export async function runImages(
  partial: Partial<ImageConfig>,
  opts: ImageRunOptions = {},
): Promise<ImageRunResult> {
  const c = resolveImageConfig(partial);
  const log = opts.log ?? defaultLog;
  const t0 = performance.now();
  const data = await openImageData(c);
  await initGpu();
  const classes = data.classes.length;
  const model = buildImageModel(c, classes);
  materialise(model, data.channels, data.size);
  const optimizer = new AdamW(parameterGroups(model, c), {
    lr: c.lr,
    weightDecay: c.weight_decay,
    eps: 1e-8,
  });
  const scheduler = scheduleFromFlags(c, optimizer);
  const parameterCount = model.parameterCount();
  const ticks = c.model === "ff" ? 1 : c.iterations;
  const resume = resumeMode(c);

  log(`adapter: ${gpu().adapterName}`);
  log(
    `data: ${data.describe}; model: ${c.model.toUpperCase()} (${c.backbone_type}), ${parameterCount} parameters`,
  );
  log(`config: ${formatValues(imageCli(c.dataset as ImageDatasetName), c)}`);
  await prepareLogDir(c.log_dir, c, resume, log);
  const metricsFile = (histories: Histories, iteration: number): ImageMetricsFile => ({
    format: "ctm-image-metrics",
    version: 1,
    model: c.model,
    dataset: c.dataset,
    classes: [...data.classes],
    ticks,
    iteration,
    parameter_count: parameterCount,
    config: c,
    histories,
  });
  const writeMetrics = async (histories: Histories, iteration: number) => {
    const m = metricsFile(histories, iteration);
    await writeFileAtomic(join(c.log_dir, "metrics.json"), JSON.stringify(m));
    if (c.plot) await writeTrainingPlots(c.log_dir, m);
    return m;
  };

  let stream: TrainStream | null = null;
  let batch: HostBatch | null = null;
  const measure = async (prefix: string, batches: AsyncIterable<HostBatch>) => {
    const m = new GpuMetrics();
    let values: MetricValues = {};
    try {
      for await (const b of batches) {
        tidy(() =>
          noGrad(() => {
            const out = batchMetrics(model, b);
            m.add({ loss: out.loss, ...out.metrics });
          })
        );
      }
      await m.flush((v) => values = Object.fromEntries(Object.entries(v).map(([k, x]) => [prefix + k, x])));
      await m.drain();
    } finally {
      m.dispose();
    }
    return values;
  };
  const evaluate = async (iteration: number): Promise<MetricValues> => {
    const restore = resetBatchNormStats(model);
    model.train();
    let trainValues: MetricValues;
    try {
      trainValues = await measure("train_", data.evalTrainBatches(iteration));
    } finally {
      restore();
    }
    model.eval();
    const testValues = await measure("test_", data.testBatches(iteration));
    model.train();
    return { ...trainValues, ...testValues };
  };

  let result: TrainResult;
  try {
    result = await train({
      model,
      optimizer,
      scheduler,
      clip: c.gradient_clipping > 0 ? c.gradient_clipping : undefined,
      steps: c.training_iterations,
      beforeStep: async (step) => {
        stream ??= data.trainStream(step);
        batch = await stream.next();
      },
      trainStep: () => batchMetrics(model, batch!),
      evaluate,
      evalEvery: c.track_every,
      logEvery: c.log_every,
      logDir: c.log_dir,
      saveEvery: c.save_every,
      keepLast: c.keep_last > 0 ? c.keep_last : undefined,
      resume,
      strictReload: c.strict_reload,
      config: c,
      progress: c.progress ? { label: `${c.dataset} ${c.model}` } : false,
      pollIdleCpus: c.poll_idle_cpus as IdlePollMode,
      log,
      signal: opts.signal,
      handleSigint: opts.handleSigint ?? true,
      onResume: reportConfigDiff(c, log),
      onEval: async (iteration, v, histories) => {
        log(
          `iter ${iteration}: train loss ${(v.train_loss as number).toFixed(4)} top-1 ${
            pct(v.train_top1 as number)
          }; ` +
            `test loss ${(v.test_loss as number).toFixed(4)} top-1 ${pct(v.test_top1 as number)} ` +
            `top-5 ${pct(v.test_top5 as number)}`,
        );
        await writeMetrics(histories, iteration);
      },
    });
  } catch (e) {
    (stream as TrainStream | null)?.close();
    data.close();
    model.dispose();
    throw e;
  }
  (stream as TrainStream | null)?.close();
  const metrics = await writeMetrics(result.histories, result.step);
  const seconds = (performance.now() - t0) / 1000;
  log(
    `${result.interrupted ? "stopped" : "finished"} at iteration ${result.step} in ${seconds.toFixed(1)} s` +
      (result.checkpoint ? `; last checkpoint ${result.checkpoint}` : ""),
  );
  const dispose = () => {
    data.close();
    model.dispose();
    optimizer.zeroGrad();
    for (const st of optimizer.stateDict().tensors.values()) st.dispose();
  };
  return { train: result, metrics, model, seconds, dispose };
}

/** The command: parses `args` (flags, `--config`, `--help`) for a trainer of `dataset`, then trains. */
export async function main(
  args: string[],
  dataset: ImageDatasetName,
  opts: ImageRunOptions = {},
): Promise<ImageRunResult | null> {
  const parsed = parseCli(imageCli(dataset), args);
  if (parsed.help) {
    console.log(parsed.text.trimEnd());
    return null;
  }
  return await runImages(parsed.values as ImageConfig, opts);
}

/** Entry of the per-dataset task scripts. */
export async function command(dataset: ImageDatasetName): Promise<void> {
  await runCommand(async () => {
    const r = await main(Deno.args, dataset);
    return r && { interrupted: r.train.interrupted, dispose: r.dispose };
  }, [ImageConfigError]);
}

if (import.meta.main) await command("cifar10");
