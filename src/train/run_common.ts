/**
 * Pieces every task trainer shares around the training loop: the reference's learning-rate
 * schedule flags turned into a scheduler, the message sink, the resume check that reports
 * settings that differ from the checkpoint's, and the command-line entry that turns bad input
 * into one clear line and an exit code.
 */
import { NoAdapterError } from "../gpu/device.ts";
import type { LrTarget } from "../optim/optimizer.ts";
import { LinearWarmupLR, type LRScheduler, WarmupCosineLR, WarmupMultiStepLR } from "../optim/schedulers.ts";
import { CliError } from "../util/cli.ts";
import { join, stringifyYaml, writeFileAtomic } from "../util/std.ts";
import { diffConfig, latestCheckpoint, type LoadedCheckpoint } from "./checkpoint.ts";

/** The reference's schedule flags (the same names in every trainer). */
export interface ScheduleFlags {
  /** Use `scheduler_type` (off: linear warmup, then a constant rate). */
  use_scheduler: boolean;
  /** `cosine` or `multistep`. */
  scheduler_type: string;
  /** Linear warmup steps. */
  warmup_steps: number;
  /** Steps of the whole run (the cosine's end). */
  training_iterations: number;
  /** Multistep milestones, comma- or space-separated. */
  milestones: string;
  /** Multistep decay factor. */
  gamma: number;
}

/** Parses milestones ("8000,15000,20000" or "8000 15000 20000"). */
export function parseMilestones(s: string): number[] {
  const parts = String(s).trim().split(/[\s,]+/).filter((p) => p !== "");
  const out = parts.map(Number);
  const bad = parts.filter((_, i) => !Number.isInteger(out[i]) || out[i] < 0);
  if (bad.length) {
    throw new Error(`milestones must be non-negative integers separated by commas, got ${JSON.stringify(s)}`);
  }
  return out;
}

/** The scheduler the reference's trainers build from their flags (stepped once per iteration). */
export function scheduleFromFlags(c: ScheduleFlags, optimizer: LrTarget): LRScheduler {
  if (!c.use_scheduler) return new LinearWarmupLR(optimizer, c.warmup_steps);
  if (c.scheduler_type === "cosine") {
    return new WarmupCosineLR(optimizer, { warmupSteps: c.warmup_steps, maxSteps: c.training_iterations });
  }
  return new WarmupMultiStepLR(optimizer, {
    warmupSteps: c.warmup_steps,
    milestones: parseMilestones(c.milestones),
    gamma: c.gamma,
  });
}

/** Writes a message on stderr (over the progress bar's line on a terminal). */
export function defaultLog(message: string): void {
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch { /* not a terminal */ }
  console.error(tty ? `\r\x1b[K${message}` : message);
}

/**
 * What `--reload` / `--reload_model_only` ask of the training loop, as in the reference's trainers:
 * `reload` resumes the newest checkpoint, `reload_model_only` with it loads only the weights and starts
 * at step 0 (the reference's defaults are both true); here `reload_model_only` alone does that too.
 */
export function resumeMode(
  c: { reload: boolean; reload_model_only: boolean },
): true | "modelOnly" | undefined {
  return c.reload_model_only ? "modelOnly" : c.reload ? true : undefined;
}

/** Flags that change how a run is driven, not what it computes (ignored when comparing configs). */
export const DRIVING_FLAGS: ReadonlySet<string> = new Set([
  "reload",
  "reload_model_only",
  "progress",
  "log_every",
  "keep_last",
  "plot",
  "num_workers_train",
  "prefetch",
  "poll_idle_cpus",
]);

/** A resume callback that logs which settings differ from the checkpoint's. */
export function reportConfigDiff(current: unknown, log: (m: string) => void): (ck: LoadedCheckpoint) => void {
  const strip = (x: unknown) =>
    Object.fromEntries(Object.entries((x ?? {}) as object).filter(([k]) => !DRIVING_FLAGS.has(k)));
  return (ck) => {
    const diff = diffConfig(strip(ck.config), strip(current));
    if (diff.length) log(`note: settings differ from the checkpoint's: ${diff.join(", ")}`);
  };
}

/**
 * Creates the run's log directory and writes `args.yaml`; says when `--reload` finds nothing to
 * resume, and warns when a fresh run is about to overwrite earlier checkpoints.
 */
export async function prepareLogDir(
  dir: string,
  config: unknown,
  resume: boolean | "modelOnly" | undefined,
  log: (m: string) => void,
): Promise<void> {
  const existing = await latestCheckpoint(dir);
  if (resume && !existing) log(`no checkpoint in ${dir} to reload: starting a fresh run`);
  if (!resume && existing) {
    log(
      `warning: ${dir} already holds checkpoints (up to ${existing.iteration}); this fresh run ` +
        `overwrites them as it goes (use --reload to resume instead)`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, "args.yaml"), stringifyYaml(config));
}

/** Formats a fraction as a percentage with two decimals. */
export const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;

/**
 * Runs a trainer's command-line `main`: config and flag errors exit with code 2, other errors
 * (no adapter, diverged loss, unusable checkpoint, missing data) with 1 and their message only
 * (`CTM_DEBUG=1` shows the stack); an interrupted run exits with 130.
 */
export async function runCommand(
  main: () => Promise<{ interrupted: boolean; dispose(): void } | null>,
  configErrors: (abstract new (...a: never[]) => Error)[] = [],
): Promise<void> {
  // Mesa's Vulkan driver complains on stderr when XDG_RUNTIME_DIR is unset; it is not used for compute.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  try {
    const r = await main();
    r?.dispose();
    if (r?.interrupted) Deno.exit(130);
  } catch (e) {
    if (e instanceof CliError || configErrors.some((k) => e instanceof k)) {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(2);
    }
    if (e instanceof NoAdapterError || (e instanceof Error && !Deno.env.get("CTM_DEBUG"))) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
