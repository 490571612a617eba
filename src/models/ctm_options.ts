/**
 * Options, outputs and option checks of the CTM (`ctm.ts`): the reference's constructor
 * arguments in camelCase, the per-tick tracking record and the `verify_args` rules.
 */
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { NEURON_SELECT_TYPES, type NeuronSelectType } from "./synchronisation.ts";

/** Constructor arguments of the CTM (the reference's, in camelCase). */
export interface CtmOptions {
  /** T, internal ticks. */
  iterations: number;
  /** D, number of neurons. */
  dModel: number;
  /** Attention width. */
  dInput: number;
  /** Attention heads (> 0 for the base model). */
  heads: number;
  /** Neurons in the output synchronisation. */
  nSynchOut: number;
  /** Neurons in the action synchronisation. */
  nSynchAction: number;
  /** 1: Linear+GLU+LayerNorm synapse; > 1: U-Net synapse. */
  synapseDepth: number;
  /** M, history length of each neuron-level model. */
  memoryLength: number;
  /** Two-layer (true) or one-layer neuron-level models. */
  deepNlms: boolean;
  /** H, hidden width of deep neuron-level models. */
  memoryHiddenDims: number;
  /** LayerNorm the history inside the neuron-level models (unused in the paper). */
  doLayernormNlm?: boolean;
  /** Backbone name (`resnet18-1`, `shallow-wide`, `parity_backbone`, `none`, …). */
  backboneType: string;
  /** Positional embedding name (`learnable-fourier`, `custom-rotational-1d`, `none`, …). */
  positionalEmbeddingType: string;
  /** Output width. */
  outDims: number;
  /** Shape of one prediction for the certainty (default `[-1]`). */
  predictionReshaper?: number[];
  /** Dropout in synapses and attention (default 0). */
  dropout?: number;
  /** Dropout in the neuron-level models (default: `dropout`). */
  dropoutNlm?: number | null;
  /** Pair selection (default `random-pairing`). */
  neuronSelectType?: NeuronSelectType;
  /** Self-pairs for random-pairing (default 0). */
  nRandomPairingSelf?: number;
  /** Generator for initial values and neuron selection. */
  rng?: Rng;
}

/** What the CTM records per tick with `track: true` (all detached, tick-major). */
export interface CtmTracking {
  /** Output synchronisation `[T, B, S_out]`. */
  syncOut: Tensor;
  /** Action synchronisation `[T, B, S_act]`. */
  syncAction: Tensor;
  /** Pre-activations `[T, B, D]`. */
  preActivations: Tensor;
  /** Post-activations `[T, B, D]`. */
  postActivations: Tensor;
  /** Attention weights `[T, B, heads, 1, L]`. */
  attention: Tensor;
}

/** Result of a CTM forward. */
export interface CtmOutput {
  /** Logits per tick `[B, outDims, T]`. */
  predictions: Tensor;
  /** `[B, 2, T]`: normalised entropy and certainty per tick. */
  certainties: Tensor;
  /** Output synchronisation after the last tick `[B, S_out]`. */
  syncOut: Tensor;
  /** Per-tick internals (with `track: true`). */
  tracking?: CtmTracking;
}

/** Checks the reference's `verify_args` rules, with clear messages. */
export function verifyCtmOptions(o: CtmOptions): void {
  const sel = o.neuronSelectType ?? "random-pairing";
  if (!NEURON_SELECT_TYPES.includes(sel)) {
    throw new Error(`invalid neuron_select_type '${sel}'; valid: ${NEURON_SELECT_TYPES.join(", ")}`);
  }
  if (sel === "first-last" && o.dModel < o.nSynchOut + o.nSynchAction) {
    throw new Error(
      `first-last needs d_model (${o.dModel}) >= n_synch_out + n_synch_action (${
        o.nSynchOut + o.nSynchAction
      })`,
    );
  }
  if (o.backboneType === "none" && o.positionalEmbeddingType !== "none") {
    throw new Error("backbone_type 'none' requires positional_embedding_type 'none'");
  }
  for (const k of ["iterations", "dModel", "dInput", "memoryLength", "outDims", "synapseDepth"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.heads > 0 && o.dInput % o.heads !== 0) {
    throw new Error(`d_input (${o.dInput}) must be divisible by heads (${o.heads})`);
  }
}
