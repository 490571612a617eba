/**
 * The training loop every trainer shares: steps recorded without host reads and submitted every
 * `submitEvery` steps, loss and metrics summed on the GPU and read back every `logEvery` steps with
 * several reads in flight, a progress bar, evaluation at step 0 and every `evalEvery` steps,
 * numbered checkpoints every `saveEvery` steps and at the end, exact resumption from the latest
 * checkpoint, and a graceful stop on Ctrl-C (the current step finishes, a checkpoint is written).
 *
 * Steps are counted as in the reference: step `s` (0-based) is the `s`-th update, and the model
 * after `k` completed steps is "iteration k" — what `checkpoint_{k}` holds and where evaluations
 * are recorded. Resuming from `checkpoint_{k}` runs steps k, k+1, …; with data drawn from
 * `(seed, step)` the run then continues exactly as if it had never stopped.
 */
import { gpu } from "../gpu/device.ts";
import { idlePollFor, type IdlePollMode } from "../gpu/idle_poll.ts";
import { recorder } from "../gpu/recorder.ts";
import { clipGradNorm } from "../optim/clip.ts";
import { tidy } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module } from "../nn/module.ts";
import { Progress, type ProgressOptions } from "../util/progress.ts";
import type { Rng } from "../util/rng.ts";
import {
  loadCheckpoint,
  type LoadedCheckpoint,
  saveCheckpoint,
  scanCheckpoints,
  type StatefulClip,
  type StatefulOptimizer,
  type StatefulScheduler,
} from "./checkpoint.ts";
import {
  appendHistory,
  emptyHistories,
  GpuMetrics,
  type Histories,
  type MetricValues,
  scalarMetrics,
} from "./metrics.ts";

/** An optimizer the loop can drive and checkpoint (every `Optimizer` is one). */
export interface TrainOptimizer extends StatefulOptimizer {
  /** Applies one update. */
  step(): void;
  /** Drops the gradients. */
  zeroGrad(): void;
}

/** A scheduler the loop steps once per training step and checkpoints. */
export interface TrainScheduler extends StatefulScheduler {
  /** Advances one step. */
  step(): void;
}

/**
 * Gradient clipping between backward and the optimizer step: a max global L2 norm (values ≤ 0
 * disable it, like the reference's −1), an object with `step()` (e.g. `QuantileClip`, checkpointed
 * when it has a state dict), or a function of the parameters.
 */
export type ClipOption = number | { step(): void } | ((params: Tensor[]) => void);

/** What one training step returns: the loss, and other per-step metrics (e.g. `acc`). */
export interface StepOutput {
  /** Scalar loss; the loop back-propagates it (unless `manualUpdate`) and averages it. */
  loss: Tensor;
  /** Metric tensors (any shape, kept per name), averaged over each read window. */
  metrics?: Record<string, Tensor>;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** The model (put in training mode after each evaluation; checkpointed). */
  model: Module;
  /** The optimizer. */
  optimizer: TrainOptimizer;
  /** Optional learning-rate scheduler, stepped after every optimizer step. */
  scheduler?: TrainScheduler;
  /** Optional gradient clipping (see {@link ClipOption}). */
  clip?: ClipOption;
  /** Total steps of the run (the last iteration). */
  steps: number;
  /**
   * Records step `step` (0-based) inside `tidy`: build the batch (seeded from the step for exact
   * resumption), run the model, return the loss. No host reads here.
   */
  trainStep: (step: number) => StepOutput;
  /** Optional async work before each step (e.g. fetching a batch from disk). */
  beforeStep?: (step: number) => Promise<void> | void;
  /** When true, `trainStep` does backward, clipping, `optimizer.step()` and zeroing itself. */
  manualUpdate?: boolean;
  /** Evaluation (host values; may read the GPU). Must leave no tensors alive. */
  evaluate?: (step: number) => Promise<MetricValues> | MetricValues;
  /** Evaluate every this many steps (default 0: only at step 0 and at the end). */
  evalEvery?: number;
  /**
   * Evaluate the untrained model at step 0 (default true). The reference's parity trainer evaluates at
   * iteration 0 after its first update; its image trainer skips iteration 0.
   */
  evalAtStart?: boolean;
  /** Read the training metrics back every this many steps (default 25). */
  logEvery?: number;
  /**
   * Submit the recorded work to the GPU every this many steps (default 4; also before every
   * metrics read, evaluation and save). On lavapipe, training at the CTM bench configuration
   * took ~197 ms per step with a submission per step and ~173 with one per 4 steps (alternating
   * runs); a few steps per submission keep the device busy without running far ahead.
   */
  submitEvery?: number;
  /** Directory of the numbered checkpoints; without it nothing is saved or resumed. */
  logDir?: string;
  /** Save every this many steps (default 0: only at the end). */
  saveEvery?: number;
  /** Keep only the newest this many checkpoints (default: all). */
  keepLast?: number;
  /** Resume from the latest complete checkpoint in `logDir`: fully, or the weights only. */
  resume?: boolean | "modelOnly";
  /** With `resume`: missing/unexpected weight names are errors (default true). */
  strictReload?: boolean;
  /** First step when the caller restored a checkpoint itself (default 0). */
  startStep?: number;
  /** Histories to continue when the caller restored a checkpoint itself. */
  histories?: Histories;
  /** The run's configuration (JSON-able), stored in checkpoints. */
  config?: unknown;
  /** Trainer extras (JSON-able) stored in each checkpoint. */
  extra?: () => unknown;
  /** Called after a resume with the loaded checkpoint (e.g. to restore extras). */
  onResume?: (checkpoint: LoadedCheckpoint) => void;
  /** Host generators to checkpoint and restore, by name. */
  rngs?: Record<string, Rng>;
  /** Called after each evaluation (e.g. to plot). */
  onEval?: (step: number, values: MetricValues, histories: Histories) => void | Promise<void>;
  /** Called when a window of training metrics arrives from the GPU. */
  onLog?: (step: number, values: MetricValues, histories: Histories) => void;
  /** Show a progress bar (default true), optionally with options. */
  progress?: boolean | Omit<ProgressOptions, "total" | "start">;
  /** Where messages go (default: above the progress bar; nowhere when `progress` is false). */
  log?: (message: string) => void;
  /** Stops the run like Ctrl-C: the current step finishes and a checkpoint is written. */
  signal?: AbortSignal;
  /** Catch SIGINT to stop gracefully (default true; a second Ctrl-C exits at once). */
  handleSigint?: boolean;
  /** Stop with an error when the mean loss of a window is NaN or infinite (default true). */
  stopOnNonFinite?: boolean;
  /** Metric reads allowed in flight (default 4). */
  maxInFlight?: number;
  /**
   * Keep idle CPU cores polling during the run (`src/gpu/idle_poll.ts`; default `"off"`, `"auto"`:
   * on a CPU adapter only). Cuts the thread wake-ups between a CPU adapter's dispatches.
   */
  pollIdleCpus?: IdlePollMode;
}

/** What {@link train} returns. */
export interface TrainResult {
  /** Completed steps at the end (= `steps` unless interrupted). */
  step: number;
  /** The step the run started from. */
  startStep: number;
  /** Training and evaluation histories (including resumed ones). */
  histories: Histories;
  /** True when stopped by Ctrl-C or the abort signal. */
  interrupted: boolean;
  /** Base path of the last checkpoint written, or null. */
  checkpoint: string | null;
  /** Base path of the checkpoint resumed from, or null. */
  resumedFrom: string | null;
}

function isStatefulClip(c: unknown): c is StatefulClip {
  return typeof c === "object" && c !== null && "stateDict" in c && "loadStateDict" in c;
}

/** Every problem with the options, before anything runs. */
function checkOptions(o: TrainOptions): string[] {
  const p: string[] = [];
  const int = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) {
      p.push(`${name} must be an integer ≥ ${min}, got ${v}`);
    }
  };
  int("steps", o.steps, 0);
  int("startStep", o.startStep, 0);
  int("evalEvery", o.evalEvery, 0);
  int("logEvery", o.logEvery, 1);
  int("submitEvery", o.submitEvery, 1);
  int("saveEvery", o.saveEvery, 0);
  int("keepLast", o.keepLast, 1);
  int("maxInFlight", o.maxInFlight, 1);
  if (o.startStep !== undefined && o.startStep > o.steps) {
    p.push(`startStep (${o.startStep}) is past steps (${o.steps})`);
  }
  if (typeof o.trainStep !== "function") p.push("trainStep must be a function");
  if (typeof o.clip === "number" && !Number.isFinite(o.clip)) p.push(`clip must be finite, got ${o.clip}`);
  if (o.resume && !o.logDir) p.push("resume needs a logDir to find checkpoints in");
  if (o.resume && o.startStep !== undefined) p.push("give either resume or startStep, not both");
  if ((o.saveEvery || o.keepLast) && !o.logDir) p.push("saveEvery/keepLast need a logDir");
  return p;
}

/**
 * Runs (or resumes) a training run; see the module documentation. Bad options throw before any
 * step; a diverging loss throws after the reads drain (no checkpoint of NaN weights is written).
 *
 * @example
 * ```ts ignore
 * const result = await train({
 *   model, optimizer, steps: 1000, evalEvery: 100, saveEvery: 500, logDir: "logs/demo",
 *   trainStep: (step) => {
 *     const { x, y } = batch(seed, step);
 *     const logits = model.forward(x);
 *     return { loss: crossEntropy(logits, y), metrics: { acc: mean(eq(argmax(logits, 1), y)) } };
 *   },
 *   evaluate: async () => ({ test_acc: await testAccuracy() }),
 * });
 * ```
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const problems = checkOptions(o);
  if (problems.length) throw new Error(`train: bad options: ${problems.join("; ")}`);
  const { model, optimizer, scheduler } = o;
  const logEvery = o.logEvery ?? 25, evalEvery = o.evalEvery ?? 0, saveEvery = o.saveEvery ?? 0;
  const submitEvery = o.submitEvery ?? 4;
  const clipState = isStatefulClip(o.clip) ? o.clip : undefined;
  const targets = { model, optimizer, scheduler, clip: clipState, rngs: o.rngs };
  let start = o.startStep ?? 0;
  let histories = o.histories ?? emptyHistories();
  let resumedFrom: string | null = null;
  const showProgress = o.progress !== false;
  let bar: Progress | null = null;
  const log = o.log ?? ((m: string) => (bar ? bar.log(m) : showProgress && console.error(m)));

  if (o.logDir) await Deno.mkdir(o.logDir, { recursive: true });
  if (o.resume && o.logDir) {
    const { complete, skipped } = await scanCheckpoints(o.logDir);
    for (const s of skipped) log(`skipping ${s.path}: ${s.reason}`);
    const last = complete.at(-1);
    if (last) {
      const modelOnly = o.resume === "modelOnly";
      const ck = await loadCheckpoint(last.path, {
        ...targets,
        modelOnly,
        strict: o.strictReload ?? true,
        config: o.config,
      });
      resumedFrom = ck.path;
      if (!modelOnly) {
        if (ck.iteration > o.steps) {
          throw new Error(`train: ${ck.path} is at iteration ${ck.iteration}, past steps (${o.steps})`);
        }
        start = ck.iteration;
        histories = ck.histories;
      }
      o.onResume?.(ck);
      log(`resumed ${modelOnly ? "the weights " : ""}from ${ck.path} (iteration ${ck.iteration})`);
    }
  }
  if (showProgress) {
    const progressOpts = typeof o.progress === "object" ? o.progress : {};
    bar = new Progress({ ...progressOpts, total: o.steps, start });
  }

  const metrics = new GpuMetrics(o.maxInFlight ?? 4);
  const params = model.parameters();
  let failure: string | null = null;
  let interrupted = false;
  let checkpoint: string | null = null;
  const stop = () => (interrupted = true);
  let sigint: (() => void) | null = null;
  if (o.handleSigint ?? true) {
    sigint = () => {
      if (interrupted) Deno.exit(130);
      interrupted = true;
      log("interrupted: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)");
    };
    try {
      Deno.addSignalListener("SIGINT", sigint);
    } catch {
      sigint = null;
    }
  }
  o.signal?.addEventListener("abort", stop);
  if (o.signal?.aborted) interrupted = true;

  const readMetrics = (done: number, from: number) =>
    metrics.flush((values, n) => {
      appendHistory(histories.train, done, values);
      bar?.setMetrics(scalarMetrics(values));
      const loss = values.loss;
      if ((o.stopOnNonFinite ?? true) && typeof loss === "number" && !Number.isFinite(loss) && !failure) {
        failure = `training diverged: the mean loss of steps ${from}…${done - 1} (${n} steps) is ${loss}. ` +
          `Lower the learning rate or enable gradient clipping` +
          (checkpoint ? `, then resume from ${checkpoint}` : "");
      }
      o.onLog?.(done, values, histories);
    });
  const runEval = async (done: number) => {
    if (!o.evaluate) return;
    const values = await o.evaluate(done);
    model.train();
    appendHistory(histories.eval, done, values);
    bar?.setMetrics(scalarMetrics(values));
    await o.onEval?.(done, values, histories);
  };
  const save = async (done: number) => {
    checkpoint = await saveCheckpoint(o.logDir!, {
      ...targets,
      iteration: done,
      histories,
      config: o.config,
      extra: o.extra?.(),
      keepLast: o.keepLast,
    });
    savedAt = done;
    log(`saved ${checkpoint}`);
  };

  let done = start;
  let windowStart = start;
  let savedAt = -1;
  const pollMode = o.pollIdleCpus ?? "off";
  const idlePoll = idlePollFor(pollMode, pollMode === "auto" && gpu().isFallback);
  if (idlePoll.active) {
    log("idle CPU cores poll while training (/dev/cpu_dma_latency; --poll_idle_cpus off to stop)");
  } else if (pollMode === "on") log(`note: idle CPU cores cannot be kept polling: ${idlePoll.reason}`);
  try {
    if (start === 0 && (o.evalAtStart ?? true) && !histories.eval.iters.includes(0)) await runEval(0);
    let lastYield = performance.now();
    for (let s = start; s < o.steps && !interrupted && !failure; s++) {
      await o.beforeStep?.(s);
      tidy(() => {
        const out = o.trainStep(s);
        metrics.add({ loss: out.loss, ...out.metrics });
        if (!o.manualUpdate) {
          out.loss.backward();
          if (typeof o.clip === "number") {
            if (o.clip > 0) clipGradNorm(params, o.clip);
          } else if (typeof o.clip === "function") o.clip(params);
          else o.clip?.step();
          optimizer.step();
          optimizer.zeroGrad();
          model.zeroGrad();
        }
      });
      scheduler?.step();
      done = s + 1;
      if (done % submitEvery === 0) recorder().flush();
      const end = done === o.steps || interrupted;
      const evalNow = !!o.evaluate && (done === o.steps || (evalEvery > 0 && done % evalEvery === 0));
      const saveNow = !!o.logDir && (end || (saveEvery > 0 && done % saveEvery === 0));
      if (done % logEvery === 0 || evalNow || saveNow || end) {
        await readMetrics(done, windowStart);
        windowStart = done;
      }
      if (evalNow || saveNow) await metrics.drain();
      if (!failure && evalNow) await runEval(done);
      if (!failure && saveNow) await save(done);
      bar?.update(done);
      if (performance.now() - lastYield > 50) {
        // Let signals, timers and finished reads be handled.
        await new Promise((r) => setTimeout(r, 0));
        lastYield = performance.now();
      }
    }
    if (interrupted && !failure && o.logDir && savedAt !== done && done > start) {
      // Stopped between steps (e.g. Ctrl-C during an evaluation): save where we are.
      await readMetrics(done, windowStart);
      await metrics.drain();
      if (!failure) await save(done);
    }
    await metrics.drain();
    if (failure) throw new Error(failure);
  } finally {
    if (sigint) Deno.removeSignalListener("SIGINT", sigint);
    o.signal?.removeEventListener("abort", stop);
    metrics.dispose();
    idlePoll.release();
    bar?.done();
  }
  return { step: done, startStep: start, histories, interrupted, checkpoint, resumedFrom };
}
