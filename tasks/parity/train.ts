/**
 * `deno task train:parity`: trains a Continuous Thought Machine (or the LSTM baseline) on
 * cumulative parity, like the reference's `tasks/parity/train.py`. Run with `--help` for the flags;
 * `tasks/parity/configs/*.yaml` reproduce the reference's scripts.
 *
 * Every batch is drawn from `(seed, step)` (`parityBatchAt`), so a run resumed with `--reload`
 * continues exactly as if it had never stopped. Training goes through the shared loop
 * (`src/train/loop.ts`): metrics stay on the GPU and are read back in windows, evaluation runs at
 * step 0 and every `--track_every` steps on fresh test batches from a separate stream, numbered
 * checkpoints are written atomically every `--save_every` steps, Ctrl-C saves and stops.
 *
 * Outputs in `--log_dir`: `checkpoint_{k}.{json,safetensors,state.safetensors}`, `metrics.json`
 * (rewritten at every evaluation and at the end; see {@link ParityMetricsFile}) and `args.yaml`
 * (the effective flags, usable with `--config`).
 */
import "../../src/ops/setup.ts";
import { gpu, initGpu } from "../../src/gpu/device.ts";
import type { IdlePollMode } from "../../src/gpu/idle_poll.ts";
import { Ctm } from "../../src/models/ctm.ts";
import { LstmBaseline } from "../../src/models/lstm.ts";
import { seedInit } from "../../src/nn/init.ts";
import type { Module } from "../../src/nn/module.ts";
import { fromArray } from "../../src/ops/creation.ts";
import { manualSeed } from "../../src/ops/random.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { QuantileClip } from "../../src/optim/clip.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import { parityAccuracy, parityLoss } from "../../src/train/losses.ts";
import { train, type TrainResult } from "../../src/train/loop.ts";
import { GpuMetrics, type Histories, type History, type MetricValues } from "../../src/train/metrics.ts";
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
  ctmOptionsFor,
  lstmOptionsFor,
  normaliseParityArgs,
  parityCli,
  type ParityConfig,
  ParityConfigError,
  resolveParityConfig,
  testBatches,
  usesMostCertain,
} from "./config.ts";
import { parityBatchAt } from "./data.ts";

/** Stream of `parityBatchAt` used for test batches (training uses stream 0). */
export const TEST_STREAM = 1;

/** History length of the reference's QuantileClip (`history_length=1000`). */
const CLIP_HISTORY = 1000;

/** The models of the parity task (both give `{ predictions, certainties }`). */
type ParityModel = Ctm | LstmBaseline;

/** One series of `metrics.json` (every array aligned with `iters`; NaN is written as null). */
export interface ParitySeries {
  /** Completed training steps of each record. */
  iters: number[];
  /** Mean loss (the reference's combined min-loss / most-certain tick loss). */
  loss: number[];
  /** Per-position accuracy at the tick the loss picks (most certain; last tick for the plain LSTM). */
  accuracy_most_certain: number[];
  /** Fraction of sequences with every position right at that tick ("full input" accuracy). */
  accuracy_full_sequence: number[];
  /** Per-position accuracy at each tick, `[records][T]`. */
  accuracy_per_tick: number[][];
}

/** The JSON written to `metrics.json` for the analysis scripts. */
export interface ParityMetricsFile {
  /** Always `ctm-parity-metrics`. */
  format: "ctm-parity-metrics";
  /** Layout version (1). */
  version: 1;
  /** `ctm` or `lstm`. */
  model_type: string;
  /** L. */
  sequence_length: number;
  /** T (internal ticks; the length of each per-tick array). */
  iterations: number;
  /** Completed training steps when written. */
  iteration: number;
  /** Parameters of the model. */
  parameter_count: number;
  /** The run's effective flags. */
  config: ParityConfig;
  /**
   * Training metrics: means over the steps of each read window (`log_every` steps, and windows
   * ending at every evaluation and checkpoint), recorded at the window's last step.
   */
  train: ParitySeries;
  /** Test metrics at step 0 and every `track_every` steps (and at the end). */
  test: ParitySeries;
}

/** Options of {@link runParity} beyond the config (for tests and embedding). */
export interface ParityRunOptions {
  /** Where messages go (default: stderr; pass `() => {}` for silence). */
  log?: (message: string) => void;
  /** Stops the run like Ctrl-C (the current step finishes, a checkpoint is written). */
  signal?: AbortSignal;
  /** Stop like Ctrl-C once this many steps are completed (to test interruption and resumption). */
  stopAfter?: number;
  /** Catch SIGINT (default true). */
  handleSigint?: boolean;
}

/** What {@link runParity} returns. */
export interface ParityRunResult {
  /** The shared loop's result (steps, histories, interruption, checkpoint paths). */
  train: TrainResult;
  /** The metrics written to `metrics.json`. */
  metrics: ParityMetricsFile;
  /** Path of `metrics.json`. */
  metricsPath: string;
  /** The trained model (call {@link ParityRunResult.dispose} when done). */
  model: Module;
  /** Wall time of this call in seconds. */
  seconds: number;
  /** Frees the model, optimizer state and clipper histories. */
  dispose(): void;
}

function series(h: History, prefix: string): ParitySeries {
  const get = (k: string) => h.values[prefix + k] ?? h.iters.map(() => NaN);
  return {
    iters: [...h.iters],
    loss: get("loss") as number[],
    accuracy_most_certain: get("acc") as number[],
    accuracy_full_sequence: get("full_acc") as number[],
    accuracy_per_tick: (get("acc_per_tick") as (number | number[])[]).map((v) => (Array.isArray(v) ? v : [])),
  };
}

/** Builds the `metrics.json` object from the loop's histories. */
export function parityMetricsFile(
  config: ParityConfig,
  histories: Histories,
  iteration: number,
  parameterCount: number,
): ParityMetricsFile {
  return {
    format: "ctm-parity-metrics",
    version: 1,
    model_type: config.model_type,
    sequence_length: config.parity_sequence_length,
    iterations: config.iterations,
    iteration,
    parameter_count: parameterCount,
    config,
    train: series(histories.train, ""),
    test: series(histories.eval, "test_"),
  };
}

function buildModel(c: ParityConfig): ParityModel {
  seedInit(c.seed);
  manualSeed(c.seed);
  return c.model_type === "ctm" ? new Ctm(ctmOptionsFor(c)) : new LstmBaseline(lstmOptionsFor(c));
}

/**
 * Trains (or resumes) one parity run with the given settings (missing ones take the defaults);
 * throws {@link ParityConfigError} before anything runs when the settings are bad.
 */
export async function runParity(
  partial: Partial<ParityConfig>,
  opts: ParityRunOptions = {},
): Promise<ParityRunResult> {
  const c = resolveParityConfig(partial);
  const log = opts.log ?? defaultLog;
  const t0 = performance.now();
  await initGpu();
  const L = c.parity_sequence_length, B = c.batch_size, Bt = c.batch_size_test;
  const mostCertain = usesMostCertain(c);
  const nTest = testBatches(c);
  const resume = resumeMode(c);

  const model = buildModel(c);
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr: c.lr, weightDecay: c.weight_decay, eps: 1e-8 });
  const scheduler = scheduleFromFlags(c, optimizer);
  const clip = c.gradient_clipping !== -1
    ? new QuantileClip(params, { quantile: c.gradient_clipping, historyLength: CLIP_HISTORY })
    : undefined;
  const parameterCount = model.parameterCount();
  const dispose = () => {
    model.dispose();
    optimizer.zeroGrad();
    for (const st of optimizer.stateDict().tensors.values()) st.dispose();
    clip?.dispose();
  };

  log(`adapter: ${gpu().adapterName}`);
  log(
    `model: ${c.model_type === "ctm" ? "CTM" : "LSTM baseline"}, ${parameterCount} parameters; ` +
      `L=${L}, T=${c.iterations}, D=${c.d_model}` + (c.model_type === "ctm" ? `, M=${c.memory_length}` : ""),
  );
  log(`config: ${formatValues(parityCli, c)}`);

  await prepareLogDir(c.log_dir, c, resume, log);
  const metricsPath = join(c.log_dir, "metrics.json");
  const writeMetrics = async (histories: Histories, iteration: number) => {
    const m = parityMetricsFile(c, histories, iteration, parameterCount);
    await writeFileAtomic(metricsPath, JSON.stringify(m));
    return m;
  };

  /** One batch through the model: loss and accuracies (GPU tensors, inside the caller's tidy). */
  const forward = (seedStep: number, batch: number, stream: number) => {
    const b = parityBatchAt(c.seed, seedStep, batch, L, stream);
    const x = fromArray(b.x, [batch, L]);
    const y = fromArray(b.y, [batch, L]);
    const { predictions, certainties } = model.forward(x);
    const { loss, tickIndex } = parityLoss(predictions, certainties, y, mostCertain);
    const acc = parityAccuracy(predictions, y, tickIndex);
    return { loss, metrics: { acc: acc.atTick, full_acc: acc.fullSequence, acc_per_tick: acc.perTick } };
  };

  const evaluate = async (iteration: number): Promise<MetricValues> => {
    model.eval();
    const m = new GpuMetrics();
    let values: MetricValues = {};
    try {
      for (let j = 0; j < nTest; j++) {
        tidy(() =>
          noGrad(() => {
            const out = forward(iteration * nTest + j, Bt, TEST_STREAM);
            m.add({ loss: out.loss, ...out.metrics });
          })
        );
      }
      await m.flush((v) => {
        values = Object.fromEntries(Object.entries(v).map(([k, x]) => [`test_${k}`, x]));
      });
      await m.drain();
    } finally {
      m.dispose();
    }
    return values;
  };

  let stopper: AbortController | null = null;
  if (opts.stopAfter !== undefined) {
    stopper = new AbortController();
    opts.signal?.addEventListener("abort", () => stopper!.abort());
  }

  let result: TrainResult;
  try {
    result = await train({
      model,
      optimizer,
      scheduler,
      clip,
      steps: c.training_iterations,
      trainStep: (step) => forward(step, B, 0),
      beforeStep: stopper ? (step) => void (step + 1 >= opts.stopAfter! && stopper!.abort()) : undefined,
      evaluate,
      evalEvery: c.track_every,
      logEvery: c.log_every,
      logDir: c.log_dir,
      saveEvery: c.save_every,
      keepLast: c.keep_last > 0 ? c.keep_last : undefined,
      resume,
      config: c,
      progress: c.progress ? { label: `parity ${c.model_type}` } : false,
      pollIdleCpus: c.poll_idle_cpus as IdlePollMode,
      log,
      signal: stopper?.signal ?? opts.signal,
      handleSigint: opts.handleSigint ?? true,
      onResume: reportConfigDiff(c, log),
      onEval: async (iteration, v, histories) => {
        log(
          `iter ${iteration}: test loss ${(v.test_loss as number).toFixed(4)}, ` +
            `acc ${pct(v.test_acc as number)} (most certain tick), ` +
            `full-sequence ${pct(v.test_full_acc as number)}`,
        );
        await writeMetrics(histories, iteration);
      },
    });
  } catch (e) {
    dispose();
    throw e;
  }
  const metrics = await writeMetrics(result.histories, result.step);
  const seconds = (performance.now() - t0) / 1000;
  log(
    `${result.interrupted ? "stopped" : "finished"} at iteration ${result.step} in ${seconds.toFixed(1)} s` +
      (result.checkpoint ? `; last checkpoint ${result.checkpoint}` : "") + `; metrics in ${metricsPath}`,
  );
  return { train: result, metrics, metricsPath, model, seconds, dispose };
}

/**
 * The command: parses `args` (flags, `--config`, `--help`), then trains. Returns null after
 * printing `--help`. Bad flags or settings throw `CliError` / {@link ParityConfigError}
 * before anything runs.
 */
export async function main(args: string[], opts: ParityRunOptions = {}): Promise<ParityRunResult | null> {
  const parsed = parseCli(parityCli, normaliseParityArgs(args));
  if (parsed.help) {
    console.log(parsed.text.trimEnd());
    return null;
  }
  return await runParity(parsed.values, opts);
}

if (import.meta.main) {
  await runCommand(async () => {
    const r = await main(Deno.args);
    return r && { interrupted: r.train.interrupted, dispose: r.dispose };
  }, [ParityConfigError]);
}
