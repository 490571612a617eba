/**
 * Flags of `deno task train:imagenet` / `train:cifar10` / `train:cifar100` / `train:fashion` (the
 * reference's `tasks/image_classification/train.py` arguments: same snake_case names and
 * defaults), their cross-checks before anything runs, and the mapping to the models' options.
 *
 * The reference's `--device`, `--use_amp` and `--do_compile` have no counterpart here (one WebGPU
 * device, f32 training, kernels compiled on first use) and are not accepted.
 */
import { sharedFlags } from "../../src/train/shared_flags.ts";
import {
  EXTRA_BACKBONE_TYPES,
  VALID_BACKBONE_TYPES,
  VALID_POSITIONAL_EMBEDDING_TYPES,
} from "../../src/models/backbones.ts";
import type { CtmOptions } from "../../src/models/ctm.ts";
import type { LstmBaselineOptions } from "../../src/models/lstm.ts";
import type { NeuronSelectType } from "../../src/models/synchronisation.ts";
import { defineCli, type FlagSpecs, type FlagValues } from "../../src/util/cli.ts";
import { ctmOptionsFromFlags, lstmOptionsFromFlags } from "../../src/train/model_flags.ts";

/** Datasets the trainer reads, with their classes. */
export const IMAGE_DATASETS = {
  cifar10: { classes: 10, what: "CIFAR-10 (binary archive cifar-10-binary.tar.gz or cifar-10-batches-bin/)" },
  cifar100: { classes: 100, what: "CIFAR-100 (binary archive cifar-100-binary.tar.gz or cifar-100-binary/)" },
  imagenet: { classes: 1000, what: "ImageNet-style folder (train/<class>/*.JPEG, val/<class>/*.JPEG)" },
  fashion: { classes: 10, what: "Fashion-MNIST IDX files (Debian dataset-fashion-mnist, or data_root)" },
  mnist: { classes: 10, what: "MNIST IDX files (train-images-idx3-ubyte.gz, …)" },
} as const;

/** A dataset name. */
export type ImageDatasetName = keyof typeof IMAGE_DATASETS;

/** Backbones for images: the ResNets, shallow-wide, and the small MNIST conv stack. */
export const IMAGE_BACKBONES: readonly string[] = [
  ...VALID_BACKBONE_TYPES.filter((b) => b !== "parity_backbone"),
  ...EXTRA_BACKBONE_TYPES,
];

/** The flags, in the order of the reference's argparse, for a trainer whose default dataset is `dataset`. */
export function imageFlags(dataset: ImageDatasetName) {
  return {
    // ------------------------------------------------------------ model
    model: { type: "string", default: "ctm", choices: ["ctm", "lstm", "ff"], description: "Model." },
    d_model: { type: "int", default: 512, min: 1, description: "D: neurons (CTM), hidden width (LSTM, FF)." },
    dropout: sharedFlags.dropout(0),
    backbone_type: {
      type: "string",
      default: "resnet18-4",
      description: "Backbone: resnet{18,34,50,101,152}-{1..4}, shallow-wide, or mnist (two conv blocks).",
    },
    d_input: sharedFlags.d_input(128),
    heads: sharedFlags.heads(4),
    iterations: sharedFlags.iterations(75),
    positional_embedding_type: {
      type: "string",
      default: "none",
      choices: ["none", "learnable-fourier", "multi-learnable-fourier", "custom-rotational"],
      description: "Positional embedding added to the backbone features.",
    },
    // ------------------------------------------------------------ CTM
    synapse_depth: sharedFlags.synapse_depth(4),
    n_synch_out: sharedFlags.n_synch_out(512),
    n_synch_action: sharedFlags.n_synch_action(512),
    neuron_select_type: sharedFlags.neuron_select_type("random-pairing"),
    n_random_pairing_self: {
      type: "int",
      default: 0,
      min: 0,
      description: "CTM self-pairs for random-pairing.",
    },
    memory_length: sharedFlags.memory_length(25),
    deep_memory: { type: "boolean", default: true, description: "CTM: two-layer neuron-level models." },
    memory_hidden_dims: { type: "int", default: 4, min: 1, description: "H: hidden width of deep NLMs." },
    dropout_nlm: {
      type: "number",
      default: -1,
      description: "Dropout in the neuron-level models (-1: the same as --dropout, the reference's None).",
    },
    do_normalisation: sharedFlags.do_normalisation(false),
    // ------------------------------------------------------------ LSTM
    num_layers: { type: "int", default: 2, min: 1, description: "LSTM layers." },
    // ------------------------------------------------------------ training
    batch_size: sharedFlags.batch_size(32),
    batch_size_test: sharedFlags.batch_size_test(32),
    lr: sharedFlags.lr(1e-3),
    training_iterations: { type: "int", default: 100001, min: 1, description: "Training steps of the run." },
    warmup_steps: sharedFlags.warmup_steps(5000),
    use_scheduler: sharedFlags.use_scheduler(true),
    scheduler_type: sharedFlags.scheduler_type("cosine"),
    milestones: sharedFlags.milestones("8000,15000,20000"),
    gamma: sharedFlags.gamma(0.1),
    weight_decay: sharedFlags.weight_decay(0),
    weight_decay_exclusion_list: {
      type: "string",
      default: "",
      nargs: "+",
      description: "Name substrings of parameters without weight decay: one or more words, comma- or " +
        "space-separated (e.g. bias norm).",
    },
    gradient_clipping: {
      type: "number",
      default: -1,
      description: "Clip the global gradient norm to this value (-1: no clipping).",
    },
    num_workers_train: {
      type: "int",
      default: 1,
      min: 0,
      description: "Data-loading workers (decoding and augmentation off the main thread; 0: in-thread).",
    },
    // ------------------------------------------------------------ housekeeping
    log_dir: { type: "string", default: "logs/scratch", description: "Checkpoints, metrics.json, plots." },
    dataset: {
      type: "string",
      default: dataset as string,
      choices: Object.keys(IMAGE_DATASETS),
      description: "Dataset.",
    },
    data_root: {
      type: "string",
      default: "data/",
      description: "Where the dataset lives (fashion falls back to /usr/share/datasets/fashion-mnist).",
    },
    save_every: { type: "int", default: 1000, min: 0, description: "Checkpoint every this many steps." },
    seed: { type: "int", default: 412, min: 0, description: "Seed of weights, data order and augmentation." },
    reload: { type: "boolean", default: false, description: "Resume from the newest checkpoint in log_dir." },
    reload_model_only: {
      type: "boolean",
      default: false,
      description: "Load only the weights of the newest checkpoint in log_dir and start at step 0.",
    },
    strict_reload: {
      type: "boolean",
      default: true,
      description: "With --reload: missing or unexpected weight names are errors.",
    },
    track_every: { type: "int", default: 1000, min: 1, description: "Evaluate every this many steps." },
    n_test_batches: {
      type: "int",
      default: 20,
      min: 0,
      description: "Batches per evaluation (0: the whole test split).",
    },
    // ------------------------------------------------------------ this port
    image_size: {
      type: "int",
      default: 0,
      min: 0,
      description: "Input side in pixels (0: the dataset's own, 224 for ImageNet).",
    },
    augment: {
      type: "boolean",
      default: true,
      description: "Training augmentation (ImageNet: random resized crop + flip; CIFAR: its policy).",
    },
    prefetch: { type: "int", default: 4, min: 1, description: "Batches decoded ahead of the device." },
    log_every: sharedFlags.log_every(25),
    keep_last: sharedFlags.keep_last(3),
    plot: {
      type: "boolean",
      default: true,
      description: "Write accuracies.png and losses.png at evaluations.",
    },
    progress: sharedFlags.progress(true),
    poll_idle_cpus: sharedFlags.poll_idle_cpus(),
  } as const satisfies FlagSpecs;
}

/** The flag specs (the same for every dataset but the default of `dataset`). */
export type ImageFlags = ReturnType<typeof imageFlags>;
/** Every setting of an image-classification run, by the reference's names. */
export type ImageConfig = FlagValues<ImageFlags>;

/** The command for a trainer whose default dataset is `dataset`. */
export function imageCli(dataset: ImageDatasetName) {
  return defineCli({
    name: `deno task train:${dataset === "fashion" ? "fashion" : dataset}`,
    description:
      "Trains a Continuous Thought Machine, the LSTM baseline or the feed-forward baseline on an\n" +
      "image-classification dataset. Flags keep the names and defaults of the reference's\n" +
      "tasks/image_classification/train.py. Writes numbered checkpoints, metrics.json, args.yaml and\n" +
      "plots to --log_dir. --config YAML files use the snake_case flag names as keys\n" +
      "(see tasks/image_classification/configs/).",
    flags: imageFlags(dataset),
    examples: [
      "deno task train:fashion --config tasks/image_classification/configs/fashion_ctm_quick.yaml",
      "deno task train:cifar10 --config tasks/image_classification/configs/train_cifar10_ctm.yaml",
      "deno task train:imagenet --config tasks/image_classification/configs/train_imagenet.yaml " +
      "--data_root /data/imagenet",
    ],
    validate: (v) => validateImageConfig(v as ImageConfig),
  });
}

/** The defaults of every flag. */
export function defaultImageConfig(dataset: ImageDatasetName = "cifar10"): ImageConfig {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(imageFlags(dataset))) out[k] = s.default;
  return out as ImageConfig;
}

/** Parses a comma- or space-separated list of names (empty → []). */
export function parseList(s: string): string[] {
  return String(s).trim().split(/[\s,]+/).filter((p) => p !== "");
}

const CTM_ONLY = [
  "synapse_depth",
  "n_synch_out",
  "n_synch_action",
  "neuron_select_type",
  "n_random_pairing_self",
  "memory_length",
  "deep_memory",
  "memory_hidden_dims",
  "dropout_nlm",
  "do_normalisation",
] as const;

/**
 * Every problem with a configuration (empty when it is fine): backbone and embedding names, the
 * CTM's selection rules, attention width, the schedule and clipping values.
 */
export function validateImageConfig(c: ImageConfig): string[] {
  const p: string[] = [];
  if (!IMAGE_BACKBONES.includes(c.backbone_type)) {
    p.push(
      c.backbone_type === "parity_backbone" || c.backbone_type === "none"
        ? `backbone_type '${c.backbone_type}' does not take images; use a resnet, shallow-wide or mnist`
        : `unknown backbone_type '${c.backbone_type}'; valid: ${IMAGE_BACKBONES.join(", ")}`,
    );
  }
  if (
    c.positional_embedding_type !== "none" &&
    !VALID_POSITIONAL_EMBEDDING_TYPES.includes(c.positional_embedding_type)
  ) p.push(`unknown positional_embedding_type '${c.positional_embedding_type}'`);
  if (c.model === "ff" && c.backbone_type === "mnist") {
    p.push("the FF baseline always builds a ResNet (as the reference's does): use a resnet backbone_type");
  }
  if (c.model !== "ff" && c.d_input % c.heads !== 0) {
    p.push(`d_input (${c.d_input}) must be divisible by heads (${c.heads})`);
  }
  if (c.model === "ctm") {
    const sel = c.neuron_select_type as NeuronSelectType;
    if (sel === "first-last" && c.d_model < c.n_synch_out + c.n_synch_action) {
      p.push(
        `neuron_select_type first-last needs d_model (${c.d_model}) >= n_synch_out + n_synch_action ` +
          `(${c.n_synch_out + c.n_synch_action})`,
      );
    }
    if (sel === "random-pairing") {
      for (const k of ["n_synch_out", "n_synch_action"] as const) {
        if (!(c[k] > c.n_random_pairing_self)) {
          p.push(`random-pairing needs ${k} (${c[k]}) > n_random_pairing_self (${c.n_random_pairing_self})`);
        }
      }
    }
    if (sel !== "random-pairing" && c.n_synch_out > c.d_model) {
      p.push(`n_synch_out (${c.n_synch_out}) cannot exceed d_model (${c.d_model})`);
    }
  } else {
    const def = defaultImageConfig(c.dataset as ImageDatasetName);
    const set = CTM_ONLY.filter((k) => c[k] !== def[k]);
    if (set.length) p.push(`${set.join(", ")}: CTM options, not used by model ${c.model}`);
  }
  if (c.dropout_nlm !== -1 && !(c.dropout_nlm >= 0 && c.dropout_nlm < 1)) {
    p.push(`dropout_nlm must be in [0, 1) or -1 (same as dropout), got ${c.dropout_nlm}`);
  }
  if (c.gradient_clipping !== -1 && !(c.gradient_clipping > 0)) {
    p.push(`gradient_clipping is a max global norm > 0, or -1 to disable it; got ${c.gradient_clipping}`);
  }
  if (c.warmup_steps >= c.training_iterations && c.use_scheduler && c.scheduler_type === "cosine") {
    p.push(`warmup_steps (${c.warmup_steps}) must be below training_iterations (${c.training_iterations})`);
  }
  for (const m of parseList(c.milestones)) {
    if (!/^\d+$/.test(m)) p.push(`milestones must be non-negative integers, got '${m}'`);
  }
  if (c.image_size !== 0 && c.image_size < 8) p.push(`image_size must be 0 (dataset's own) or ≥ 8`);
  return p;
}

/** The CTM's options for a config with `classes` outputs. */
export function ctmOptionsFor(c: ImageConfig, classes: number): CtmOptions {
  return ctmOptionsFromFlags(c, {
    outDims: classes,
    dropoutNlm: c.dropout_nlm === -1 ? null : c.dropout_nlm,
  });
}

/** The LSTM baseline's options for a config with `classes` outputs. */
export function lstmOptionsFor(c: ImageConfig, classes: number): LstmBaselineOptions {
  return lstmOptionsFromFlags(c, { outDims: classes });
}
