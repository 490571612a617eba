/**
 * Flag specs shared by the trainers (`tasks/parity`, `tasks/image_classification`): the same
 * reference name, meaning and help text in every task, with the task's own default. Flags whose
 * meaning differs between tasks (gradient clipping, test batches, …) stay in the task's table.
 */
import { IDLE_POLL_MODES } from "../gpu/idle_poll.ts";
import { NEURON_SELECT_TYPES, type NeuronSelectType } from "../models/synchronisation.ts";

const int = (def: number, description: string, min = 1) =>
  ({ type: "int", default: def, min, description }) as const;
const num = (def: number, description: string) =>
  ({ type: "number", default: def, min: 0, description }) as const;
const bool = (def: boolean, description: string) => ({ type: "boolean", default: def, description }) as const;

/**
 * Builders of the shared flags, by the reference's snake_case name.
 *
 * @example
 * ```ts
 * const flags = { d_input: sharedFlags.d_input(512), heads: sharedFlags.heads(8) };
 * ```
 */
export const sharedFlags = {
  // ------------------------------------------------------------ model
  /** `--d_input`. */
  d_input: (def: number) => int(def, "Attention width (divisible by heads)."),
  /** `--heads`. */
  heads: (def: number) => int(def, "Attention heads."),
  /** `--iterations`. */
  iterations: (def: number) => int(def, "T: internal ticks."),
  /** `--dropout`. */
  dropout: (def: number) =>
    ({ type: "number", default: def, min: 0, max: 0.999, description: "Dropout probability." }) as const,
  /** `--synapse_depth`. */
  synapse_depth: (def: number) =>
    int(def, "CTM synapses: 1 = Linear+GLU+LayerNorm, > 1 = U-Net of this depth."),
  /** `--n_synch_out`. */
  n_synch_out: (def: number) => int(def, "CTM neurons in the output synchronisation."),
  /** `--n_synch_action`. */
  n_synch_action: (def: number) => int(def, "CTM neurons in the action synchronisation."),
  /** `--neuron_select_type`. */
  neuron_select_type: (def: NeuronSelectType) =>
    ({
      type: "string",
      default: def as string,
      choices: NEURON_SELECT_TYPES,
      description: "CTM neuron pairing for synchronisation.",
    }) as const,
  /** `--memory_length`. */
  memory_length: (def: number) => int(def, "M: CTM pre-activation history length."),
  /** `--do_normalisation`. */
  do_normalisation: (def: boolean) => bool(def, "CTM: LayerNorm the history inside the neuron-level models."),
  // ------------------------------------------------------------ training
  /** `--batch_size`. */
  batch_size: (def: number) => int(def, "Training batch size."),
  /** `--batch_size_test`. */
  batch_size_test: (def: number) => int(def, "Evaluation batch size."),
  /** `--lr`. */
  lr: (def: number) => num(def, "AdamW learning rate."),
  /** `--warmup_steps`. */
  warmup_steps: (def: number) => int(def, "Linear learning-rate warmup steps.", 0),
  /** `--use_scheduler`. */
  use_scheduler: (def: boolean) => bool(def, "Use --scheduler_type (off: warmup, then a constant rate)."),
  /** `--scheduler_type`. */
  scheduler_type: (def: "multistep" | "cosine") =>
    ({
      type: "string",
      default: def as string,
      choices: ["multistep", "cosine"],
      description: "Learning-rate schedule after the warmup.",
    }) as const,
  /** `--milestones`. */
  milestones: (def: string) =>
    ({
      type: "string",
      default: def,
      nargs: "+",
      description: "Multistep milestones (steps): one or more words, comma- or space-separated.",
    }) as const,
  /** `--gamma`. */
  gamma: (def: number) => num(def, "Multistep decay factor."),
  /** `--weight_decay`. */
  weight_decay: (def: number) => num(def, "AdamW decoupled weight decay."),
  // ------------------------------------------------------------ this port
  /** `--log_every`. */
  log_every: (def: number) => int(def, "Read the training metrics back from the GPU every this many steps."),
  /** `--keep_last`. */
  keep_last: (def: number) => int(def, "Keep only the newest this many checkpoints (0: keep all).", 0),
  /** `--progress`. */
  progress: (def: boolean) => bool(def, "Show a progress bar."),
  /** `--poll_idle_cpus`. */
  poll_idle_cpus: () =>
    ({
      type: "string",
      default: "auto",
      choices: IDLE_POLL_MODES,
      description: "Keep idle CPU cores polling while training (Linux /dev/cpu_dma_latency, needs root; " +
        "auto: on a CPU adapter only): fewer thread wake-ups between dispatches, more power.",
    }) as const,
};
