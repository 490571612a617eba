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
import { getRngState, type RngState, setRngState } from "../ops/random.ts";
import type { OptimizerMeta, OptimizerStateDict } from "../optim/optimizer.ts";
import type { SchedulerState } from "../optim/schedulers.ts";
import { readSafetensors, saveSafetensors, uploadSafetensors } from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { basename, ensureDir, join, writeFileAtomic } from "../util/std.ts";
import { emptyHistories, type Histories, historyFromJson } from "./metrics.ts";

/** Marker stored in every checkpoint JSON. */
export const CHECKPOINT_FORMAT = "ctm-webgpu-checkpoint";

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

/** The JSON file of a checkpoint. */
export interface CheckpointMeta {
  /** Always {@link CHECKPOINT_FORMAT}. */
  format: string;
  /** Layout version (1). */
  version: number;
  /** Completed training steps. */
  iteration: number;
  /** Creation time (ISO 8601). */
  savedAt: string;
  /** Byte sizes of the two safetensors files (to detect truncation). */
  files: { model: number; state: number };
  /** Model tensor shapes by name. */
  modelShapes: Record<string, number[]>;
  /** Optimizer metadata, when an optimizer was saved. */
  optimizer: OptimizerMeta | null;
  /** Scheduler state. */
  scheduler: SchedulerState | null;
  /** Clipper metadata. */
  clip: unknown;
  /** GPU generator state and host generator states by name. */
  rng: { gpu: RngState; host: Record<string, number> };
  /** Metric histories. */
  histories: Histories;
  /** The run's configuration. */
  config: unknown;
  /** Trainer extras. */
  extra: unknown;
}

/** A complete checkpoint found in a directory. */
export interface CheckpointInfo {
  /** Path without extension (`dir/checkpoint_{k}`). */
  path: string;
  /** Its iteration. */
  iteration: number;
}

/** What {@link scanCheckpoints} found. */
export interface CheckpointScan {
  /** Complete checkpoints, lowest iteration first. */
  complete: CheckpointInfo[];
  /** Incomplete or damaged ones, with the reason. */
  skipped: { path: string; reason: string }[];
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

const NAME = /^checkpoint_(\d+)\.json$/;

/** The base path (no extension) of checkpoint `iteration` in `dir`. */
export function checkpointPath(dir: string, iteration: number): string {
  return join(dir, `checkpoint_${iteration}`);
}

/** Turns a directory entry, a base path or any of the three file paths into the base path. */
function basePath(path: string): string {
  return path.replace(/(\.state)?\.safetensors$|\.json$/, "");
}

const ignoreNotFound = (e: unknown): null => {
  if (e instanceof Deno.errors.NotFound) return null;
  throw e;
};
const fileSize = (path: string): Promise<number | null> =>
  Deno.stat(path).then((s) => s.size, ignoreNotFound);
const removeIfExists = (path: string): Promise<void | null> => Deno.remove(path).catch(ignoreNotFound);

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
 * Reads and checks a checkpoint's JSON and the sizes of its weight files; throws a clear error
 * when it is missing, unreadable, of another format, or when a weight file is missing or truncated.
 */
export async function readCheckpointMeta(path: string): Promise<CheckpointMeta> {
  const base = basePath(path);
  const json = `${base}.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(json);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${json} does not exist: the checkpoint was never completed (interrupted save?)`);
    }
    throw e;
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message;
    throw new Error(
      `${json} is not valid JSON (${why}); the file is damaged: delete it or load another checkpoint`,
    );
  }
  if (meta?.format !== CHECKPOINT_FORMAT || !Number.isInteger(meta.iteration) || !meta.files) {
    throw new Error(`${json} is not a ${CHECKPOINT_FORMAT} file (no format marker, iteration or file sizes)`);
  }
  for (const [kind, file] of [["model", `${base}.safetensors`], ["state", `${base}.state.safetensors`]]) {
    const want = meta.files[kind as "model" | "state"];
    const have = await fileSize(file);
    if (have === null) throw new Error(`${file} is missing; the checkpoint is incomplete`);
    if (have !== want) {
      throw new Error(
        `${file} has ${have} bytes but the checkpoint records ${want} (truncated or overwritten); ` +
          `delete checkpoint ${meta.iteration} or load another one`,
      );
    }
  }
  meta.histories = {
    train: historyFromJson(meta.histories?.train, `${json}: histories.train`),
    eval: historyFromJson(meta.histories?.eval, `${json}: histories.eval`),
  };
  return meta;
}

/** Finds every `checkpoint_{k}` in `dir` and sorts them into complete and skipped ones. */
export async function scanCheckpoints(dir: string): Promise<CheckpointScan> {
  const found: CheckpointInfo[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = NAME.exec(e.name);
      if (m && e.isFile) found.push({ path: join(dir, `checkpoint_${m[1]}`), iteration: Number(m[1]) });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { complete: [], skipped: [] };
    throw e;
  }
  found.sort((a, b) => a.iteration - b.iteration);
  const scan: CheckpointScan = { complete: [], skipped: [] };
  for (const c of found) {
    try {
      const meta = await readCheckpointMeta(c.path);
      if (meta.iteration !== c.iteration) {
        throw new Error(`records iteration ${meta.iteration}, its name says ${c.iteration}`);
      }
      scan.complete.push(c);
    } catch (e) {
      scan.skipped.push({ path: c.path, reason: (e as Error).message });
    }
  }
  return scan;
}

/** The complete checkpoint with the highest iteration in `dir`, or null (incomplete ones are skipped). */
export async function latestCheckpoint(dir: string): Promise<CheckpointInfo | null> {
  const { complete } = await scanCheckpoints(dir);
  return complete.at(-1) ?? null;
}

/** Deletes all but the newest `keepLast` complete checkpoints; returns the deleted base paths. */
export async function pruneCheckpoints(dir: string, keepLast: number): Promise<string[]> {
  if (!Number.isInteger(keepLast) || keepLast < 1) {
    throw new Error(`pruneCheckpoints: keepLast must be a positive integer, got ${keepLast}`);
  }
  const { complete } = await scanCheckpoints(dir);
  const old = complete.slice(0, Math.max(0, complete.length - keepLast));
  for (const c of old) {
    // JSON first: a half-deleted checkpoint is then incomplete, never mistaken for a whole one.
    for (const ext of [".json", ".safetensors", ".state.safetensors"]) await removeIfExists(c.path + ext);
  }
  return old.map((c) => c.path);
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

/** Resolves a directory to its latest complete checkpoint; anything else to a base path. */
async function resolveCheckpoint(path: string): Promise<string> {
  let isDir = false;
  try {
    isDir = (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (!isDir) return basePath(path);
  const { complete, skipped } = await scanCheckpoints(path);
  const last = complete.at(-1);
  if (last) return last.path;
  const why = skipped.length
    ? ` (skipped: ${skipped.map((s) => `${basename(s.path)}: ${s.reason}`).join("; ")})`
    : "";
  throw new Error(`no complete checkpoint in ${path}${why}; train first or pass another log dir`);
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
