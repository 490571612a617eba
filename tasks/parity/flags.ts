/**
 * The flag table of `deno task train:parity`: every flag of the reference's
 * `tasks/parity/train.py`, with the same snake_case name, default and a help text, plus the
 * backbones and positional embeddings the parity task accepts.
 */
import { sharedFlags } from "../../src/train/shared_flags.ts";

/** Backbones the parity task can use (the input is a ±1 sequence, embedded per position). */
export const PARITY_BACKBONES = ["parity_backbone"] as const;
/** Positional embeddings available for parity (others are recognised but belong to images). */
export const PARITY_POSITIONAL_EMBEDDINGS = ["custom-rotational-1d", "none"] as const;
/** Size of the reference's test set (`ParityDataset(length=10000)`); used by `--full_eval`. */
export const REFERENCE_TEST_SET_SIZE = 10000;

/** The flags, in the order of the reference's argparse. */
export const PARITY_FLAGS = {
  // ------------------------------------------------------------ model
  model_type: {
    type: "string",
    default: "ctm",
    choices: ["ctm", "lstm"],
    description: "Model: the CTM, or the LSTM baseline.",
  },
  parity_sequence_length: {
    type: "int",
    default: 64,
    min: 1,
    description: "Sequence length L (a perfect square: 4, 16, 64, …).",
  },
  d_model: { type: "int", default: 1024, min: 1, description: "D: neurons (CTM) or LSTM hidden width." },
  d_input: sharedFlags.d_input(512),
  synapse_depth: sharedFlags.synapse_depth(1),
  heads: sharedFlags.heads(8),
  n_synch_out: sharedFlags.n_synch_out(32),
  n_synch_action: sharedFlags.n_synch_action(32),
  neuron_select_type: sharedFlags.neuron_select_type("random"),
  n_random_pairing_self: {
    type: "int",
    default: 256,
    min: 0,
    description: "CTM self-pairs for random-pairing (unused by the other selections).",
  },
  iterations: sharedFlags.iterations(75),
  memory_length: sharedFlags.memory_length(25),
  deep_memory: {
    type: "boolean",
    default: true,
    description: "CTM: two-layer neuron-level models (off: one layer).",
  },
  memory_hidden_dims: {
    type: "int",
    default: 16,
    min: 1,
    description: "H: hidden width of the deep neuron-level models.",
  },
  dropout: sharedFlags.dropout(0),
  do_normalisation: sharedFlags.do_normalisation(false),
  positional_embedding_type: {
    type: "string",
    default: "custom-rotational-1d",
    description: `Positional embedding (${PARITY_POSITIONAL_EMBEDDINGS.join(", ")}).`,
  },
  backbone_type: {
    type: "string",
    default: "parity_backbone",
    description: "Backbone (parity needs parity_backbone: an embedding of ±1).",
  },
  // ------------------------------------------------------------ LSTM
  num_layers: { type: "int", default: 1, min: 1, description: "LSTM layers (LSTM only)." },
  // ------------------------------------------------------------ training
  batch_size: sharedFlags.batch_size(64),
  batch_size_test: sharedFlags.batch_size_test(256),
  lr: sharedFlags.lr(1e-4),
  training_iterations: {
    type: "int",
    default: 50001,
    min: 1,
    description: "Training steps (iterations) of the whole run.",
  },
  warmup_steps: sharedFlags.warmup_steps(0),
  use_scheduler: sharedFlags.use_scheduler(true),
  scheduler_type: sharedFlags.scheduler_type("multistep"),
  milestones: sharedFlags.milestones("8000,15000,20000"),
  gamma: sharedFlags.gamma(0.1),
  weight_decay: sharedFlags.weight_decay(0),
  gradient_clipping: {
    type: "number",
    default: -1,
    description: "Per-parameter quantile clipping (autoclip QuantileClip, history 1000) at this " +
      "quantile in [0, 1]; -1 disables it.",
  },
  use_most_certain_with_lstm: {
    type: "boolean",
    default: false,
    description: "LSTM: use the most certain tick in the loss (the CTM always does).",
  },
  // ------------------------------------------------------------ housekeeping
  log_dir: {
    type: "string",
    default: "logs/parity",
    description: "Directory of the checkpoints, metrics.json and args.yaml.",
  },
  dataset: { type: "string", default: "parity", choices: ["parity"], description: "Dataset (parity only)." },
  save_every: {
    type: "int",
    default: 1000,
    min: 0,
    description: "Save a numbered checkpoint every this many steps (0: only at the end).",
  },
  seed: {
    type: "int",
    default: 42,
    min: 0,
    description: "Seed of the weights, the data and the test batches.",
  },
  reload: {
    type: "boolean",
    default: false,
    description: "Resume from the highest complete checkpoint in log_dir (weights, optimizer, " +
      "scheduler, clipper, RNG, histories).",
  },
  reload_model_only: {
    type: "boolean",
    default: false,
    description: "Load only the weights of the highest checkpoint in log_dir and start at step 0.",
  },
  track_every: {
    type: "int",
    default: 1000,
    min: 1,
    description: "Evaluate on fresh test batches every this many steps (and at 0).",
  },
  n_test_batches: { type: "int", default: 20, min: 1, description: "Test batches per evaluation." },
  full_eval: {
    type: "boolean",
    default: false,
    description: `Evaluate on ${REFERENCE_TEST_SET_SIZE} test sequences (the reference's test set size) ` +
      "instead of n_test_batches batches.",
  },
  // ------------------------------------------------------------ this port
  log_every: sharedFlags.log_every(25),
  keep_last: sharedFlags.keep_last(0),
  progress: sharedFlags.progress(true),
  poll_idle_cpus: sharedFlags.poll_idle_cpus(),
} as const;
