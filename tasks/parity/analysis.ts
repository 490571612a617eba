/**
 * `deno task analyse:parity`: figures of a parity run from its log directory (the reference's
 * `tasks/parity/analysis/run.py`, for one run): training curves from the checkpoint histories;
 * the final checkpoint's accuracy per internal tick, the distribution of "thinking time" (per
 * position, the tick of lowest normalised entropy) and accuracy per sequence position; per-tick
 * GIFs of a few test sequences (input, target, predicted probabilities, correctness and
 * certainty, attention) and of the attention of every head; neural dynamics; and, across
 * checkpoints, accuracy per position as a heatmap and a GIF. Run with `--help` for the flags.
 *
 * The test batch comes from `parityBatchAt(seed, 0, batch_size_test, L)` on a stream of its own,
 * so it is the same for every checkpoint and every run of the analysis. The forward pass and the
 * statistics are in `analysis_eval.ts`, the per-sequence figures in `analysis_figures.ts` and the
 * figure builders in `plots.ts`.
 */
import "../../src/ops/setup.ts";
import { initGpu, NoAdapterError } from "../../src/gpu/device.ts";
import { fromArray } from "../../src/ops/creation.ts";
import { evenlySpaced, type RgbaImage, writeGif, writePng } from "../../src/plot/mod.ts";
import {
  type CheckpointInfo,
  diffConfig,
  loadCheckpoint,
  readCheckpointMeta,
  scanCheckpoints,
} from "../../src/train/checkpoint.ts";
import { type Histories, historyFromJson } from "../../src/train/metrics.ts";
import { defineCli, runCli } from "../../src/util/cli.ts";
import { basename, ensureDir, exists, join, writeFileAtomic } from "../../src/util/std.ts";
import { type ParityConfig, resolveParityConfig, usesMostCertain } from "./config.ts";
import { parityBatchAt } from "./data.ts";
import { buildModel, evaluate, modelOptions, parityStats } from "./analysis_eval.ts";
import { sampleFigures } from "./analysis_figures.ts";
import {
  type CheckpointAccuracy,
  checkpointFigures,
  type TickChoice,
  tickFigures,
} from "./plots_accuracy.ts";
import { historyFigures } from "./plots_curves.ts";

export { type ParityEval, type ParityStats, parityStats } from "./analysis_eval.ts";

/** Stream of `parityBatchAt` used for the analysis batch (apart from the trainer's streams). */
export const ANALYSIS_STREAM = 7;

/** The command's flags (snake_case as the trainer's; kebab-case spellings are accepted too). */
export const analysisCli = defineCli({
  name: "deno task analyse:parity",
  description:
    "Analyses a parity run: training curves, accuracy per tick and per position, thinking time, per-tick GIFs\n" +
    "of test sequences and attention, neural dynamics, and accuracy across checkpoints. Reads the numbered\n" +
    "checkpoints of --log_dir (written by `deno task train:parity`) and writes PNG and GIF files to --out.",
  flags: {
    log_dir: {
      type: "string",
      default: "logs/parity",
      description: "Log directory of the run (its checkpoints).",
    },
    out: { type: "string", default: "", description: "Output directory (default: <log_dir>/analysis)." },
    checkpoint: {
      type: "int",
      default: -1,
      min: -1,
      description: "Iteration of the checkpoint to analyse (-1: the latest complete one).",
    },
    batch_size_test: { type: "int", default: 64, min: 1, description: "Test sequences to evaluate." },
    seed: { type: "int", default: 0, min: 0, description: "Seed of the test batch." },
    n_samples: { type: "int", default: 3, min: 0, description: "Test sequences to animate (GIFs)." },
    n_neurons: { type: "int", default: 16, min: 1, description: "Neurons in the neural-dynamics figure." },
    max_checkpoints: {
      type: "int",
      default: 16,
      min: 1,
      description: "At most this many checkpoints (evenly spaced) in the across-checkpoint figures.",
    },
    frame_ms: { type: "int", default: 150, min: 10, description: "GIF frame delay in milliseconds." },
  },
  examples: [
    "deno task analyse:parity --log_dir logs/parity/quick_16",
    "deno task analyse:parity --log_dir logs/parity/run1/ctm_75_25 --checkpoint 10000 --out /tmp/parity_10000",
  ],
  validate: (
    v,
  ) => (v.batch_size_test < v.n_samples ? [`--n_samples (${v.n_samples}) exceeds --batch_size_test`] : []),
});

/** Options of {@link analyseParity} (the flags, camelCase, most optional). */
export interface ParityAnalysisOptions {
  /** Log directory of the run. */
  logDir: string;
  /** Output directory (default `<logDir>/analysis`). */
  out?: string;
  /** Checkpoint iteration (default: the latest). */
  checkpoint?: number;
  /** Test sequences (default 64). */
  batchSizeTest?: number;
  /** Seed of the test batch (default 0). */
  seed?: number;
  /** Sequences to animate (default 3). */
  nSamples?: number;
  /** Neurons to plot (default 16). */
  nNeurons?: number;
  /** Checkpoints in the across-checkpoint figures (default 16). */
  maxCheckpoints?: number;
  /** GIF frame delay (default 150 ms). */
  frameMs?: number;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

/** A clear error for a log directory without checkpoints, saying what to run first. */
export class NoCheckpointError extends Error {
  /** An error about `logDir`, with details (e.g. skipped checkpoints). */
  constructor(logDir: string, detail: string) {
    super(
      `${detail}\nTrain a model into it first (see \`deno task train:parity --help\`), e.g.\n` +
        `  deno task train:parity --config tasks/parity/configs/quick_16.yaml --log_dir ${logDir}\n` +
        `then run: deno task analyse:parity --log_dir ${logDir}`,
    );
    this.name = "NoCheckpointError";
  }
}

/**
 * The histories in the log dir's `metrics.json` (the trainer's `ctm-parity-metrics` file, or
 * plain histories), or null when there is none or it cannot be read.
 */
async function metricsJsonHistories(logDir: string): Promise<Histories | null> {
  try {
    const raw = JSON.parse(await Deno.readTextFile(join(logDir, "metrics.json")));
    if (raw?.format === "ctm-parity-metrics") {
      const toHistory = (s: Record<string, unknown[]>, prefix: string) => ({
        iters: s.iters,
        values: {
          [`${prefix}loss`]: s.loss,
          [`${prefix}acc`]: s.accuracy_most_certain,
          [`${prefix}full_acc`]: s.accuracy_full_sequence,
          [`${prefix}acc_per_tick`]: (s.accuracy_per_tick ?? []).map((
            v,
          ) => (Array.isArray(v) && v.length ? v : NaN)),
        },
      });
      return {
        train: historyFromJson(toHistory(raw.train, ""), "metrics.json train"),
        eval: historyFromJson(toHistory(raw.test, "test_"), "metrics.json test"),
      };
    }
    const h = raw?.histories ?? raw;
    return {
      train: historyFromJson(h.train, "metrics.json train"),
      eval: historyFromJson(h.eval, "metrics.json eval"),
    };
  } catch {
    return null;
  }
}

/**
 * Writes every figure of the analysis into the output directory and returns the written paths.
 * Throws {@link NoCheckpointError} when the log directory is missing or holds no complete checkpoint.
 */
export async function analyseParity(o: ParityAnalysisOptions): Promise<string[]> {
  const log = o.log ?? (() => {});
  const logDir = o.logDir;
  if (!(await exists(logDir))) throw new NoCheckpointError(logDir, `log dir ${logDir} does not exist.`);
  const scan = await scanCheckpoints(logDir);
  for (const s of scan.skipped) log(`skipping ${s.path}: ${s.reason}`);
  if (scan.complete.length === 0) {
    const why = scan.skipped.length
      ? ` (incomplete: ${scan.skipped.map((s) => basename(s.path)).join(", ")})`
      : "";
    throw new NoCheckpointError(logDir, `no complete checkpoint (checkpoint_{N}.json) in ${logDir}${why}.`);
  }
  let chosen: CheckpointInfo;
  if (o.checkpoint === undefined || o.checkpoint < 0) chosen = scan.complete.at(-1)!;
  else {
    const hit = scan.complete.find((c) => c.iteration === o.checkpoint);
    if (!hit) {
      throw new Error(
        `no complete checkpoint ${o.checkpoint} in ${logDir}; available: ` +
          scan.complete.map((c) => c.iteration).join(", "),
      );
    }
    chosen = hit;
  }
  const out = o.out || join(logDir, "analysis");
  await ensureDir(out);
  const written: string[] = [];
  const png = async (name: string, img: RgbaImage) => {
    const p = join(out, `${name}.png`);
    await writePng(p, img);
    written.push(p);
  };
  const gif = async (name: string, frames: RgbaImage[]) => {
    const p = join(out, `${name}.gif`);
    await writeGif(p, frames, { delayMs: o.frameMs ?? 150, lastDelayMs: 1500 });
    written.push(p);
  };

  const meta = await readCheckpointMeta(chosen.path);
  let config: ParityConfig;
  try {
    config = resolveParityConfig((meta.config ?? {}) as Partial<ParityConfig>);
  } catch (e) {
    throw new Error(`${chosen.path}.json: its config is not a parity config: ${(e as Error).message}`);
  }
  const L = config.parity_sequence_length;
  const isLstm = config.model_type === "lstm";
  log(
    `analysing ${chosen.path} (iteration ${chosen.iteration}, ${config.model_type}, L=${L}, T=${config.iterations})`,
  );

  // ---------------------------------------------------------------- training curves
  let histories = meta.histories;
  if (histories.train.iters.length + histories.eval.iters.length === 0) {
    histories = (await metricsJsonHistories(logDir)) ?? histories;
  }
  for (const f of await historyFigures(histories)) await png(f.name, f.image);

  // ---------------------------------------------------------------- the chosen checkpoint
  const B = o.batchSizeTest ?? 64;
  const nSamples = Math.min(o.nSamples ?? 3, B);
  const batch = parityBatchAt(o.seed ?? 0, 0, B, L, ANALYSIS_STREAM);
  const x = fromArray(batch.x, [B, L]);
  const model = buildModel(config);
  model.eval();
  try {
    await loadCheckpoint(chosen.path, { model, modelOnly: true, config: meta.config });
    const { ev, tracking } = await evaluate(model, x, batch.y, L, Math.max(1, nSamples));
    const tickChoice: TickChoice = usesMostCertain(config) ? "most certain" : "last";
    const st = parityStats(ev, tickChoice);
    const T = ev.ticks;
    const it = chosen.iteration;
    log(
      `accuracy at the ${st.tickChoice} tick ${(100 * st.accuracyAtTick).toFixed(2)}%, whole sequences ` +
        `${(100 * st.fullSequenceAtTick).toFixed(2)}%`,
    );

    for (const f of await tickFigures(st, it, B)) await png(f.name, f.image);

    // ---------------------------------------------------------------- sample sequences
    await sampleFigures({
      ev,
      st,
      tracking: tracking!,
      inputs: batch.x,
      nSamples,
      nNeurons: o.nNeurons ?? 16,
      isLstm,
      iteration: it,
    }, { png, gif });

    // ---------------------------------------------------------------- across checkpoints
    const upto = scan.complete.filter((c) => c.iteration <= it);
    const picked = evenlySpaced(upto.length, o.maxCheckpoints ?? 16).map((i) => upto[i]);
    const rows: CheckpointAccuracy[] = [];
    for (const c of picked) {
      if (c.path === chosen.path) {
        rows.push({
          iteration: c.iteration,
          perPosition: st.accuracyPerPosition,
          perTick: st.accuracyPerTick,
          accuracy: st.accuracyAtTick,
        });
        continue;
      }
      const m = await readCheckpointMeta(c.path);
      const diff = diffConfig(modelOptions(m.config), modelOptions(meta.config));
      if (diff.length) {
        log(`skipping ${c.path} in the across-checkpoint figures: its config differs (${diff.join(", ")})`);
        continue;
      }
      await loadCheckpoint(c.path, { model, modelOnly: true });
      const r = parityStats((await evaluate(model, x, batch.y, L, 0)).ev, tickChoice);
      rows.push({
        iteration: c.iteration,
        perPosition: r.accuracyPerPosition,
        perTick: r.accuracyPerTick,
        accuracy: r.accuracyAtTick,
      });
      log(`checkpoint ${c.iteration}: accuracy ${(100 * r.accuracyAtTick).toFixed(2)}%`);
    }
    const figs = await checkpointFigures(rows, tickChoice);
    for (const f of figs.images) await png(f.name, f.image);
    for (const g of figs.gifs) await gif(g.name, g.frames);
    if (rows.length < 2) log("one checkpoint only: no across-checkpoint heatmaps");

    const summary = {
      checkpoint: chosen.path,
      iteration: it,
      model_type: config.model_type,
      sequence_length: L,
      ticks: T,
      batch_size_test: B,
      seed: o.seed ?? 0,
      tick_choice: st.tickChoice,
      accuracy_at_tick: st.accuracyAtTick,
      full_sequence_accuracy_at_tick: st.fullSequenceAtTick,
      accuracy_per_tick: st.accuracyPerTick,
      full_sequence_accuracy_per_tick: st.fullSequencePerTick,
      accuracy_per_position: st.accuracyPerPosition,
      thinking_time_histogram: st.thinkingTimeHistogram,
      accuracy_by_thinking_time: st.accuracyByThinkingTime.map((v) => (Number.isFinite(v) ? v : null)),
      thinking_time_per_position: st.thinkingTimePerPosition.mean,
      checkpoints: rows.map((r) => ({
        iteration: r.iteration,
        accuracy_at_tick: r.accuracy,
        accuracy_per_position: r.perPosition,
      })),
    };
    const sp = join(out, "analysis.json");
    await writeFileAtomic(sp, JSON.stringify(summary, null, 1));
    written.push(sp);
  } finally {
    x.dispose();
    model.dispose();
  }
  return written;
}

/** `--log-dir` → `--log_dir` for this command's flags. */
function normaliseArgs(args: string[]): string[] {
  const known = new Set(Object.keys(analysisCli.flags));
  return args.map((a) => {
    const m = /^--([^=]+)(=.*)?$/.exec(a);
    if (!m) return a;
    const snake = m[1].replaceAll("-", "_");
    return !known.has(m[1]) && known.has(snake) ? `--${snake}${m[2] ?? ""}` : a;
  });
}

if (import.meta.main) {
  const v = runCli(analysisCli, normaliseArgs(Deno.args));
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  try {
    await initGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
  try {
    const t0 = performance.now();
    const files = await analyseParity({
      logDir: v.log_dir,
      out: v.out || undefined,
      checkpoint: v.checkpoint,
      batchSizeTest: v.batch_size_test,
      seed: v.seed,
      nSamples: v.n_samples,
      nNeurons: v.n_neurons,
      maxCheckpoints: v.max_checkpoints,
      frameMs: v.frame_ms,
      log: (m) => console.error(m),
    });
    console.log(`wrote ${files.length} files in ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
    for (const f of files) console.log(f);
  } catch (e) {
    if (e instanceof NoCheckpointError) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
