/**
 * The reference's model flags (snake_case, as every trainer's argparse names them) turned into the
 * constructor options of the CTM and the LSTM baseline, so each task only adds its output shape.
 */
import type { CtmOptions } from "../models/ctm.ts";
import type { LstmBaselineOptions } from "../models/lstm.ts";
import type { NeuronSelectType } from "../models/synchronisation.ts";

/** The flags the CTM is built from. */
export interface CtmFlags {
  /** T. */
  iterations: number;
  /** D. */
  d_model: number;
  /** Attention width. */
  d_input: number;
  /** Attention heads. */
  heads: number;
  /** Output synchronisation neurons. */
  n_synch_out: number;
  /** Action synchronisation neurons. */
  n_synch_action: number;
  /** Synapse depth. */
  synapse_depth: number;
  /** M. */
  memory_length: number;
  /** Deep neuron-level models. */
  deep_memory: boolean;
  /** H. */
  memory_hidden_dims: number;
  /** LayerNorm inside the neuron-level models. */
  do_normalisation: boolean;
  /** Backbone name. */
  backbone_type: string;
  /** Positional embedding name. */
  positional_embedding_type: string;
  /** Dropout. */
  dropout: number;
  /** Neuron selection. */
  neuron_select_type: string;
  /** Self-pairs for random-pairing. */
  n_random_pairing_self: number;
}

/** The flags the LSTM baseline is built from. */
export type LstmFlags =
  & Pick<
    CtmFlags,
    "iterations" | "d_model" | "d_input" | "heads" | "backbone_type" | "positional_embedding_type" | "dropout"
  >
  & {
    /** LSTM layers. */
    num_layers: number;
  };

/** What the task decides: the output width, the certainty's reshaper, NLM dropout. */
export interface OutputShape {
  /** Output width. */
  outDims: number;
  /** Shape of one prediction for the certainty (default `[-1]`). */
  predictionReshaper?: number[];
  /** Dropout in the neuron-level models (default: the same as `dropout`). */
  dropoutNlm?: number | null;
}

/** The CTM's constructor options from the flags and the task's output shape. */
export function ctmOptionsFromFlags(c: CtmFlags, out: OutputShape): CtmOptions {
  return {
    iterations: c.iterations,
    dModel: c.d_model,
    dInput: c.d_input,
    heads: c.heads,
    nSynchOut: c.n_synch_out,
    nSynchAction: c.n_synch_action,
    synapseDepth: c.synapse_depth,
    memoryLength: c.memory_length,
    deepNlms: c.deep_memory,
    memoryHiddenDims: c.memory_hidden_dims,
    doLayernormNlm: c.do_normalisation,
    backboneType: c.backbone_type,
    positionalEmbeddingType: c.positional_embedding_type,
    dropout: c.dropout,
    neuronSelectType: c.neuron_select_type as NeuronSelectType,
    nRandomPairingSelf: c.n_random_pairing_self,
    ...out,
  };
}

/** The LSTM baseline's constructor options from the flags and the task's output shape. */
export function lstmOptionsFromFlags(
  c: LstmFlags,
  out: Omit<OutputShape, "dropoutNlm">,
): LstmBaselineOptions {
  return {
    iterations: c.iterations,
    dModel: c.d_model,
    dInput: c.d_input,
    heads: c.heads,
    backboneType: c.backbone_type,
    numLayers: c.num_layers,
    positionalEmbeddingType: c.positional_embedding_type,
    dropout: c.dropout,
    ...out,
  };
}
