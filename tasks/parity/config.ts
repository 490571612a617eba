/**
 * Flags of `deno task train:parity` (the reference's `tasks/parity/train.py` arguments, same
 * snake_case names and defaults), their cross-checks, and the mapping to the model options. The
 * flag table itself lives in `flags.ts` and is re-exported here.
 *
 * Flags are given as on the reference's command line (`--parity_sequence_length 16`,
 * `--no-deep_memory`); the kebab-case forms (`--parity-sequence-length`) are accepted too. A YAML
 * file given with `--config` uses the same snake_case names as keys.
 */
import type { CtmOptions } from "../../src/models/ctm.ts";
import type { LstmBaselineOptions } from "../../src/models/lstm.ts";
import { VALID_BACKBONE_TYPES, VALID_POSITIONAL_EMBEDDING_TYPES } from "../../src/models/backbones.ts";
import type { NeuronSelectType } from "../../src/models/synchronisation.ts";
import { defineCli, type FlagValues } from "../../src/util/cli.ts";
import { parseMilestones } from "../../src/train/run_common.ts";
import { ctmOptionsFromFlags, lstmOptionsFromFlags } from "../../src/train/model_flags.ts";
import { checkParityLength } from "./data.ts";
import {
  PARITY_BACKBONES,
  PARITY_FLAGS,
  PARITY_POSITIONAL_EMBEDDINGS,
  REFERENCE_TEST_SET_SIZE,
} from "./flags.ts";

export { PARITY_BACKBONES, PARITY_FLAGS, PARITY_POSITIONAL_EMBEDDINGS, REFERENCE_TEST_SET_SIZE };

/** The command (for `--help` and parsing). */
export const parityCli = defineCli({
  name: "deno task train:parity",
  description:
    "Trains a Continuous Thought Machine (or the LSTM baseline) on cumulative parity: each position of a\n" +
    "random ±1 sequence is classified by the parity of the number of −1 up to it. Flags keep the names\n" +
    "and defaults of the reference's tasks/parity/train.py (kebab-case spellings are accepted too).\n" +
    "Writes numbered checkpoints, metrics.json (training and test histories) and args.yaml to --log_dir.\n" +
    "--config YAML files use the snake_case flag names as keys (see tasks/parity/configs/).",
  flags: PARITY_FLAGS,
  examples: [
    "deno task train:parity --config tasks/parity/configs/quick_16.yaml",
    "deno task train:parity --config tasks/parity/configs/quick_16.yaml --reload",
    "deno task train:parity --config tasks/parity/configs/train_ctm_75_25.yaml",
    "deno task train:parity --parity_sequence_length 16 --d_model 128 --d_input 32 --heads 4 --iterations 16",
  ],
  validate: (v) => validateParityConfig(v),
});

/** Every setting of a parity run, by the reference's names. */
export type ParityConfig = FlagValues<typeof PARITY_FLAGS>;

/** The defaults of every flag. */
export function defaultParityConfig(): ParityConfig {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(PARITY_FLAGS)) out[k] = s.default;
  return out as ParityConfig;
}

export { parseMilestones };

/** Flags only the CTM uses, and only the LSTM uses (a non-default value on the other model is an error). */
const CTM_ONLY = [
  "synapse_depth",
  "n_synch_out",
  "n_synch_action",
  "neuron_select_type",
  "n_random_pairing_self",
  "memory_length",
  "deep_memory",
  "memory_hidden_dims",
  "do_normalisation",
] as const;
const LSTM_ONLY = ["num_layers", "use_most_certain_with_lstm"] as const;

/**
 * Every problem with a configuration (empty when it is fine). Checks the sequence length, the
 * backbone and positional embedding, the CTM's rules (heads, first-last sizes, random-pairing),
 * options that belong to the other model, the schedule, and the clipping quantile.
 */
export function validateParityConfig(c: ParityConfig): string[] {
  const p: string[] = [];
  const def = defaultParityConfig();
  try {
    checkParityLength(c.parity_sequence_length);
  } catch (e) {
    p.push(`parity_sequence_length: ${(e as Error).message}`);
  }
  if (!(PARITY_BACKBONES as readonly string[]).includes(c.backbone_type)) {
    const known = c.backbone_type === "none" || VALID_BACKBONE_TYPES.includes(c.backbone_type);
    p.push(
      known
        ? `backbone_type '${c.backbone_type}' does not fit the parity task (its input is a ±1 sequence): ` +
          `use 'parity_backbone'`
        : `unknown backbone_type '${c.backbone_type}'; the parity task uses 'parity_backbone'`,
    );
  }
  if (!(PARITY_POSITIONAL_EMBEDDINGS as readonly string[]).includes(c.positional_embedding_type)) {
    const known = VALID_POSITIONAL_EMBEDDING_TYPES.includes(c.positional_embedding_type);
    p.push(
      known
        ? `positional_embedding_type '${c.positional_embedding_type}' is for images; parity uses ` +
          `${PARITY_POSITIONAL_EMBEDDINGS.join(" or ")}`
        : `unknown positional_embedding_type '${c.positional_embedding_type}'; valid: ` +
          PARITY_POSITIONAL_EMBEDDINGS.join(", "),
    );
  }
  if (c.d_input % c.heads !== 0) {
    p.push(`d_input (${c.d_input}) must be divisible by heads (${c.heads})`);
  }
  if (c.model_type === "ctm") {
    for (const k of LSTM_ONLY) {
      if (c[k] !== def[k]) {
        p.push(`${k} is an LSTM option; it cannot be set with model_type ctm (got ${c[k]})`);
      }
    }
    const sel = c.neuron_select_type as NeuronSelectType;
    if (sel === "first-last" && c.d_model < c.n_synch_out + c.n_synch_action) {
      p.push(
        `neuron_select_type first-last needs d_model (${c.d_model}) >= n_synch_out + n_synch_action ` +
          `(${c.n_synch_out} + ${c.n_synch_action} = ${c.n_synch_out + c.n_synch_action})`,
      );
    }
    if (sel === "random-pairing") {
      for (const k of ["n_synch_out", "n_synch_action"] as const) {
        if (!(c[k] > c.n_random_pairing_self)) {
          p.push(
            `neuron_select_type random-pairing needs ${k} (${c[k]}) > n_random_pairing_self ` +
              `(${c.n_random_pairing_self})`,
          );
        }
      }
    }
  } else {
    for (const k of CTM_ONLY) {
      if (c[k] !== def[k]) {
        p.push(
          `${k} is a CTM option; it cannot be set with model_type lstm (got ${c[k]}, default ${def[k]})`,
        );
      }
    }
  }
  if (c.gradient_clipping !== -1 && !(c.gradient_clipping >= 0 && c.gradient_clipping <= 1)) {
    p.push(
      `gradient_clipping is a quantile in [0, 1], or -1 to disable clipping; got ${c.gradient_clipping}`,
    );
  }
  let milestones: number[] | null = null;
  try {
    milestones = parseMilestones(c.milestones);
  } catch (e) {
    p.push((e as Error).message);
  }
  if (c.use_scheduler && c.scheduler_type === "multistep" && milestones?.length === 0) {
    p.push("scheduler_type multistep needs at least one milestone");
  }
  if (c.use_scheduler && c.scheduler_type === "cosine" && !(c.training_iterations > c.warmup_steps)) {
    p.push(
      `scheduler_type cosine needs training_iterations (${c.training_iterations}) > warmup_steps ` +
        `(${c.warmup_steps})`,
    );
  }
  return p;
}

/** An invalid configuration: lists every problem. */
export class ParityConfigError extends Error {
  /** The problems. */
  readonly problems: string[];

  /** An error listing `problems`. */
  constructor(problems: string[]) {
    super(
      `bad parity config: ${problems.length === 1 ? problems[0] : `\n  ${problems.join("\n  ")}`}`,
    );
    this.name = "ParityConfigError";
    this.problems = problems;
  }
}

/** Fills in defaults for a partial config and validates it; throws {@link ParityConfigError}. */
export function resolveParityConfig(partial: Partial<ParityConfig> = {}): ParityConfig {
  const c = { ...defaultParityConfig(), ...partial } as ParityConfig;
  const problems: string[] = [];
  for (const k of Object.keys(partial)) {
    if (!(k in PARITY_FLAGS)) problems.push(`unknown setting '${k}'`);
  }
  for (const [k, s] of Object.entries(PARITY_FLAGS)) {
    const v = (c as Record<string, unknown>)[k];
    const want = s.type === "int" || s.type === "number" ? "number" : s.type;
    if (typeof v !== want || (s.type === "int" && !Number.isInteger(v))) {
      problems.push(
        `${k} must be ${s.type === "int" ? "an integer" : `a ${want}`}, got ${JSON.stringify(v)}`,
      );
      continue;
    }
    if (s.type === "int" || s.type === "number") {
      const n = v as number;
      if ("min" in s && s.min !== undefined && n < s.min) problems.push(`${k} must be ≥ ${s.min}, got ${n}`);
      if ("max" in s && s.max !== undefined && n > s.max) problems.push(`${k} must be ≤ ${s.max}, got ${n}`);
    }
    if (s.type === "string" && "choices" in s && !(s.choices as readonly string[]).includes(v as string)) {
      problems.push(`${k} must be one of ${s.choices.join(", ")}, got ${JSON.stringify(v)}`);
    }
  }
  if (problems.length === 0) problems.push(...validateParityConfig(c));
  if (problems.length) throw new ParityConfigError(problems);
  return c;
}

/** The CTM's constructor options for a parity config: out_dims 2L, prediction_reshaper [L, 2]. */
export function ctmOptionsFor(c: ParityConfig): CtmOptions {
  const L = c.parity_sequence_length;
  return ctmOptionsFromFlags(c, { outDims: 2 * L, predictionReshaper: [L, 2] });
}

/** The LSTM baseline's options for a parity config. */
export function lstmOptionsFor(c: ParityConfig): LstmBaselineOptions {
  const L = c.parity_sequence_length;
  return lstmOptionsFromFlags(c, { outDims: 2 * L, predictionReshaper: [L, 2] });
}

/** Whether the loss picks the most certain tick (always for the CTM; LSTM only with the flag). */
export function usesMostCertain(c: ParityConfig): boolean {
  return c.model_type === "ctm" || c.use_most_certain_with_lstm;
}

/** Test batches per evaluation (`n_test_batches`, or the reference's test-set size with `full_eval`). */
export function testBatches(c: ParityConfig): number {
  return c.full_eval ? Math.ceil(REFERENCE_TEST_SET_SIZE / c.batch_size_test) : c.n_test_batches;
}

/**
 * Rewrites kebab-case flags to the snake_case names (`--d-model 8` → `--d_model 8`,
 * `--no-deep-memory` → `--no-deep_memory`); other arguments pass through.
 */
export function normaliseParityArgs(args: string[]): string[] {
  const known = new Set(Object.keys(PARITY_FLAGS));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const m = /^--(no-)?([^=]+)(=.*)?$/.exec(a);
    if (m) {
      const snake = m[2].replaceAll("-", "_");
      if (!known.has(m[2]) && known.has(snake)) {
        out.push(`--${m[1] ?? ""}${snake}${m[3] ?? ""}`);
        continue;
      }
    }
    out.push(a);
  }
  return out;
}
