/**
 * The on-disk side of training checkpoints: the layout of `checkpoint_{k}` in a log directory,
 * its JSON metadata, and finding, checking and pruning complete checkpoints (a checkpoint counts
 * only once its JSON exists and the recorded byte sizes of both weight files match).
 */
import type { RngState } from "../ops/random.ts";
import type { OptimizerMeta } from "../optim/optimizer.ts";
import type { SchedulerState } from "../optim/schedulers.ts";
import { basename, join } from "../util/std.ts";
import { type Histories, historyFromJson } from "./metrics.ts";

/** Marker stored in every checkpoint JSON. */
export const CHECKPOINT_FORMAT = "ctm-webgpu-checkpoint";

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

const NAME = /^checkpoint_(\d+)\.json$/;

/** The base path (no extension) of checkpoint `iteration` in `dir`. */
export function checkpointPath(dir: string, iteration: number): string {
  return join(dir, `checkpoint_${iteration}`);
}

/** Turns a directory entry, a base path or any of the three file paths into the base path. */
export function basePath(path: string): string {
  return path.replace(/(\.state)?\.safetensors$|\.json$/, "");
}

const ignoreNotFound = (e: unknown): null => {
  if (e instanceof Deno.errors.NotFound) return null;
  throw e;
};

/** The size of a file in bytes, or null when it does not exist. */
export const fileSize = (path: string): Promise<number | null> =>
  Deno.stat(path).then((s) => s.size, ignoreNotFound);

/** Deletes a file; a missing file is not an error. */
export const removeIfExists = (path: string): Promise<void | null> => Deno.remove(path).catch(ignoreNotFound);

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

/** Resolves a directory to its latest complete checkpoint; anything else to a base path. */
export async function resolveCheckpoint(path: string): Promise<string> {
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
