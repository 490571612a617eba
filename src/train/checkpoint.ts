/**
 * Numbered training checkpoints in a log directory, like the reference's parity trainer
 * (`checkpoint_{iteration}`; a reload picks the highest complete one). Each checkpoint is three
 * files, each written to a temporary file and renamed:
 *
 * - `checkpoint_{k}.safetensors`: the model weights under the reference's parameter names (a
 *   plain weight file, loadable on its own);
 * - `checkpoint_{k}.state.safetensors`: optimizer state (`optimizer.state.{i}.{name}`) and
 *   gradient-clipper state (`clip.…`);
 * - `checkpoint_{k}.json`, written last: iteration, optimizer/scheduler/clip metadata, GPU and host
 *   RNG states, metric histories, the run's config, trainer extras, and the byte sizes of both
 *   weight files. A checkpoint counts only once its JSON exists and the sizes match.
 */
import { getRngState, setRngState } from "../ops/random.ts";
import type { OptimizerStateDict } from "../optim/optimizer.ts";
import type { SchedulerState } from "../optim/schedulers.ts";
import { readSafetensors, saveSafetensors, uploadSafetensors } from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { ensureDir, writeFileAtomic } from "../util/std.ts";
import { emptyHistories, type Histories } from "./metrics.ts";
import {
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
  checkpointPath,
  fileSize,
  pruneCheckpoints,
  readCheckpointMeta,
  removeIfExists,
  resolveCheckpoint,
} from "./checkpoint_files.ts";

export {
  CHECKPOINT_FORMAT,
  type CheckpointInfo,
  type CheckpointMeta,
  checkpointPath,
  type CheckpointScan,
  latestCheckpoint,
  pruneCheckpoints,
  readCheckpointMeta,
  scanCheckpoints,
} from "./checkpoint_files.ts";

/** An optimizer that can be checkpointed (every {@link Optimizer} is one). */
export interface StatefulOptimizer {
  /** Metadata and state tensors. */
  stateDict(): OptimizerStateDict;
  /** Restores {@link StatefulOptimizer.stateDict}'s output. */
  loadStateDict(sd: OptimizerStateDict): void;
}

/** A learning-rate scheduler that can be checkpointed (every `LRScheduler` is one). */
export interface StatefulScheduler {
  /** JSON state. */
  stateDict(): SchedulerState;
  /** Restores {@link StatefulScheduler.stateDict}'s output. */
  loadStateDict(s: SchedulerState): void;
}

/** A stateful gradient clipper (e.g. `QuantileClip`): JSON metadata plus named tensors. */
export interface StatefulClip {
  /** Metadata and tensors (the clipper's own). */
  stateDict(): { meta: unknown; tensors: Map<string, Tensor> };
  /** Restores {@link StatefulClip.stateDict}'s output. */
  loadStateDict(sd: { meta: unknown; tensors: Map<string, Tensor> }): void;
}

/** What a checkpoint saves and restores. */
export interface CheckpointTargets {
  /** The model (its state dict is saved under its own names). */
  model: Module;
  /** Optimizer whose state is saved. */
  optimizer?: StatefulOptimizer;
  /** Learning-rate scheduler. */
  scheduler?: StatefulScheduler;
  /** Stateful gradient clipper. */
  clip?: StatefulClip;
  /** Host generators by name (their states are saved; the GPU generator's always is). */
  rngs?: Record<string, Rng>;
}

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions extends CheckpointTargets {
  /** Completed training steps (the number in the file names). */
  iteration: number;
  /** Metric histories. */
  histories?: Histories;
  /** The run's configuration (JSON-able), compared on reload to explain mismatches. */
  config?: unknown;
  /** Anything else JSON-able the trainer wants back on resume. */
  extra?: unknown;
  /** Delete older complete checkpoints beyond the newest `keepLast` (default: keep all). */
  keepLast?: number;
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions extends CheckpointTargets {
  /** Only restore the model weights (the reference's `reload_model_only`); default false. */
  modelOnly?: boolean;
  /** Missing/unexpected weight names are errors (default true, the reference's `strict_reload`). */
  strict?: boolean;
  /** The current config: on a weight mismatch the error also lists the config keys that differ. */
  config?: unknown;
}

/** What {@link loadCheckpoint} returns (the model and the given state objects are restored). */
export interface LoadedCheckpoint {
  /** Path without extension. */
  path: string;
  /** The checkpoint's iteration. */
  iteration: number;
  /** Its metric histories. */
  histories: Histories;
  /** Its saved config. */
  config: unknown;
  /** Its trainer extras. */
  extra: unknown;
}

/** Lists top-level keys (dotted for nested objects) whose values differ between two configs. */
export function diffConfig(a: unknown, b: unknown, prefix = ""): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> =>
    x !== null && typeof x === "object" && !Array.isArray(x);
  if (!isObj(a) || !isObj(b)) {
    return JSON.stringify(a) === JSON.stringify(b)
      ? []
      : [`${prefix || "config"}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
  }
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    out.push(...diffConfig(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return out;
}

/**
 * Saves checkpoint `iteration` into `dir` (created if missing): weights, then optimizer/clip
 * tensors, then the JSON. Returns the base path. An existing checkpoint of the same number is
 * invalidated (its JSON removed) before anything is written.
 */
export async function saveCheckpoint(dir: string, opts: SaveCheckpointOptions): Promise<string> {
  if (!Number.isInteger(opts.iteration) || opts.iteration < 0) {
    throw new Error(`saveCheckpoint: iteration must be a non-negative integer, got ${opts.iteration}`);
  }
  await ensureDir(dir);
  const base = checkpointPath(dir, opts.iteration);
  await removeIfExists(`${base}.json`);
  const weights = opts.model.stateDict();
  await saveSafetensors(`${base}.safetensors`, weights, { format: "pt" });
  const state = new Map<string, Tensor>();
  const opt = opts.optimizer?.stateDict() ?? null;
  if (opt) { for (const [k, t] of opt.tensors) state.set(`optimizer.${k}`, t); }
  const clip = opts.clip?.stateDict() ?? null;
  if (clip) { for (const [k, t] of clip.tensors) state.set(`clip.${k}`, t); }
  await saveSafetensors(`${base}.state.safetensors`, state);
  const host: Record<string, number> = {};
  for (const [k, r] of Object.entries(opts.rngs ?? {})) host[k] = r.state;
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    iteration: opts.iteration,
    savedAt: new Date().toISOString(),
    files: {
      model: (await fileSize(`${base}.safetensors`))!,
      state: (await fileSize(`${base}.state.safetensors`))!,
    },
    modelShapes: Object.fromEntries([...weights].map(([k, t]) => [k, [...t.shape]])),
    optimizer: opt?.meta ?? null,
    scheduler: opts.scheduler?.stateDict() ?? null,
    clip: clip?.meta ?? null,
    rng: { gpu: getRngState(), host },
    histories: opts.histories ?? emptyHistories(),
    config: opts.config ?? null,
    extra: opts.extra ?? null,
  };
  await writeFileAtomic(`${base}.json`, JSON.stringify(meta));
  if (opts.keepLast !== undefined) await pruneCheckpoints(dir, opts.keepLast);
  return base;
}

function splitPrefix(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, t] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
  return out;
}

/**
 * Loads a checkpoint (a base path, one of its files, or a log directory, meaning its latest
 * complete checkpoint) into the given targets: model weights always; unless `modelOnly`, also the
 * optimizer, scheduler, clipper, GPU RNG and the named host RNGs. Everything is checked before
 * the model is touched where possible; a weight mismatch names every offending tensor (and the
 * config keys that differ when `config` is given).
 */
export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions): Promise<LoadedCheckpoint> {
  const base = await resolveCheckpoint(path);
  const meta = await readCheckpointMeta(base);
  const full = !opts.modelOnly;
  const where = `checkpoint ${base}`;
  const { optimizer, scheduler, clip } = opts;
  const problems: string[] = [];
  if (full && optimizer) {
    const type = optimizer.stateDict().meta.type;
    if (!meta.optimizer) problems.push("it holds no optimizer state");
    else if (meta.optimizer.type !== type) {
      problems.push(`its optimizer is ${meta.optimizer.type}, not ${type}`);
    }
  }
  if (full && scheduler) {
    const type = scheduler.stateDict().type;
    if (!meta.scheduler) problems.push("it holds no scheduler state");
    else if (meta.scheduler.type !== type) {
      problems.push(`its scheduler is ${meta.scheduler.type}, not ${type}`);
    }
  }
  if (full && clip && meta.clip === null) problems.push("it holds no gradient-clipper state");
  for (const k of full ? Object.keys(opts.rngs ?? {}) : []) {
    if (typeof meta.rng?.host?.[k] !== "number") problems.push(`it holds no state for host RNG '${k}'`);
  }
  if (problems.length) {
    throw new Error(`${where}: ${problems.join("; ")}. Reload the model only, or start a fresh run`);
  }
  // Parse both files before touching anything.
  const weightsFile = await readSafetensors(`${base}.safetensors`);
  const stateFile = full ? await readSafetensors(`${base}.state.safetensors`) : null;
  const weights = uploadSafetensors(weightsFile);
  try {
    opts.model.loadStateDict(weights, { strict: opts.strict ?? true });
  } catch (e) {
    const diff = opts.config !== undefined ? diffConfig(meta.config, opts.config) : [];
    const cfg = diff.length ? ` The config differs: ${diff.join(", ")}.` : "";
    const msg = (e as Error).message;
    throw new Error(`${where} does not fit this model (trained with another model config?): ${msg}.${cfg}`);
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  if (stateFile) {
    const state = uploadSafetensors(stateFile);
    try {
      if (optimizer && meta.optimizer) {
        optimizer.loadStateDict({ meta: meta.optimizer, tensors: splitPrefix(state, "optimizer.") });
      }
      clip?.loadStateDict({ meta: meta.clip, tensors: splitPrefix(state, "clip.") });
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    } finally {
      for (const t of state.values()) t.dispose();
    }
    if (scheduler && meta.scheduler) scheduler.loadStateDict(meta.scheduler);
    setRngState(meta.rng.gpu);
    for (const [k, r] of Object.entries(opts.rngs ?? {})) r.state = meta.rng.host[k];
  }
  return {
    path: base,
    iteration: meta.iteration,
    histories: meta.histories,
    config: meta.config,
    extra: meta.extra,
  };
}
