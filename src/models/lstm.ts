/**
 * The LSTM baseline of the CTM paper (reference `models/lstm.py`, used for image
 * classification, mazes and parity): the CTM's featuriser and cross-attention, with the
 * neuron-level machinery replaced by a stacked `nn.LSTM` stepped once per internal tick. The
 * attention query comes from the top layer's hidden state, and every tick yields a prediction
 * and its certainty, in the CTM's output format. Parameter names match the reference state dict.
 */
import { mul } from "../ops/arith.ts";
import { zeros } from "../ops/creation.ts";
import { concat, expand, reshape, slice, stack, unsqueeze } from "../ops/views.ts";
import { MultiheadAttention, type ProjectedKV } from "../nn/attention.ts";
import { initRng, uniformTensor } from "../nn/init.ts";
import { Sequential } from "../nn/containers.ts";
import { Linear } from "../nn/linear.ts";
import { LSTM, type LstmState } from "../nn/lstm.ts";
import { Module } from "../nn/module.ts";
import { noGrad } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { Featuriser } from "./backbones.ts";
import { computeCertainty } from "./certainty.ts";
import type { CtmTracking } from "./ctm.ts";

/** Constructor arguments of the LSTM baseline (the reference's, in camelCase). */
export interface LstmBaselineOptions {
  /** T, internal ticks (one LSTM step each). */
  iterations: number;
  /** D, hidden width of the LSTM. */
  dModel: number;
  /** Attention width. */
  dInput: number;
  /** Attention heads (> 0). */
  heads: number;
  /** Backbone name (`resnet18-1`, `shallow-wide`, `parity_backbone`, `none`, …). */
  backboneType: string;
  /** Stacked LSTM layers. */
  numLayers: number;
  /** Positional embedding name (`learnable-fourier`, `custom-rotational-1d`, `none`, …). */
  positionalEmbeddingType: string;
  /** Output width. */
  outDims: number;
  /** Shape of one prediction for the certainty (default `[-1]`). */
  predictionReshaper?: number[];
  /** Dropout in the LSTM (between layers) and on the attention weights (default 0). */
  dropout?: number;
  /** Generator for initial values. */
  rng?: Rng;
}

/**
 * What the baseline records per tick with `track: true` (all detached, tick-major): the CTM's
 * format without the synchronisations. Pre-activations are zeros, as in the reference.
 */
export type LstmTracking = Pick<CtmTracking, "preActivations" | "postActivations" | "attention">;

/** Result of an LSTM-baseline forward (the CTM's `predictions`/`certainties` layout). */
export interface LstmOutput {
  /** Logits per tick `[B, outDims, T]`. */
  predictions: Tensor;
  /** `[B, 2, T]`: normalised entropy and certainty per tick. */
  certainties: Tensor;
  /** Top-layer hidden state after the last tick `[B, D]`. */
  hidden: Tensor;
  /** Per-tick internals (with `track: true`): post-activations are the top layer's hidden states. */
  tracking?: LstmTracking;
}

/** Checks the baseline's arguments, with clear messages. */
export function verifyLstmBaselineOptions(o: LstmBaselineOptions): void {
  for (const k of ["iterations", "dModel", "dInput", "heads", "numLayers", "outDims"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.dInput % o.heads !== 0) {
    throw new Error(`d_input (${o.dInput}) must be divisible by heads (${o.heads})`);
  }
  if (o.backboneType === "none" && o.positionalEmbeddingType !== "none") {
    throw new Error("backbone_type 'none' requires positional_embedding_type 'none'");
  }
}

/**
 * The LSTM baseline with attention.
 *
 * @example
 * ```ts
 * import { initGpu, LstmBaseline, fromArray } from "./mod.ts";
 * await initGpu();
 * const m = new LstmBaseline({
 *   iterations: 4, dModel: 16, dInput: 8, heads: 2, backboneType: "parity_backbone", numLayers: 1,
 *   positionalEmbeddingType: "custom-rotational-1d", outDims: 8, predictionReshaper: [4, 2],
 * });
 * const { predictions, certainties } = m.forward(fromArray([[1, -1, -1, 1]]));
 * // predictions [1, 8, 4], certainties [1, 2, 4]
 * ```
 */
export class LstmBaseline extends Module {
  /** The options the model was built with (defaults filled in). */
  readonly options: Required<Omit<LstmBaselineOptions, "rng">>;
  readonly #features: Featuriser;
  readonly #lstm: LSTM;
  readonly #qProj: Linear;
  readonly #attention: MultiheadAttention;
  readonly #outputProjector: Sequential;

  /** Builds every submodule (registration order follows the reference's state dict). */
  constructor(opts: LstmBaselineOptions) {
    super();
    verifyLstmBaselineOptions(opts);
    const o = this.options = { predictionReshaper: [-1], dropout: 0, ...opts } as LstmBaseline["options"];
    const rng = opts.rng ?? initRng();
    const D = o.dModel;
    this.#features = new Featuriser(this, { ...o, rng });
    this.#lstm = this.registerModule(
      "lstm",
      new LSTM(o.dInput, D, { numLayers: o.numLayers, batchFirst: true, dropout: o.dropout, rng }),
    );
    this.#qProj = this.registerModule("q_proj", new Linear(o.dInput, { inFeatures: D, rng }));
    this.#attention = this.registerModule(
      "attention",
      new MultiheadAttention(o.dInput, o.heads, { dropout: o.dropout, rng }),
    );
    // A Sequential of one Linear in the reference too: its keys are `output_projector.0.*`.
    this.#outputProjector = this.registerModule(
      "output_projector",
      new Sequential(new Linear(o.outDims, { inFeatures: D, rng })),
    );
    const b = Math.sqrt(1 / D);
    this.registerParameter("start_hidden_state", uniformTensor([o.numLayers, D], -b, b, rng));
    this.registerParameter("start_cell_state", uniformTensor([o.numLayers, D], -b, b, rng));
  }

  /** The recurrent core (`lstm.*`). */
  get lstm(): LSTM {
    return this.#lstm;
  }

  /**
   * Shape of the backbone features of the last forward (`[B, C, H′, W′]` for images, `[B, C, L]`
   * for sequences), like the reference's `kv_features`: the attention weights reshape to
   * `[T, B, heads, H′, W′]` with it. Null before the first forward.
   */
  get kvFeatureShape(): readonly number[] | null {
    return this.#kvFeatureShape;
  }
  #kvFeatureShape: number[] | null = null;

  /** The learned start state broadcast to batch `B` (views of the parameters). */
  #startState(B: number): LstmState {
    const rows = (name: string) =>
      Array.from({ length: this.options.numLayers }, (_, k) => {
        const s = slice(this.getParameter(name), 0, k, k + 1);
        const e = expand(s, [B, this.options.dModel]);
        s.dispose();
        return e;
      });
    return { h: rows("start_hidden_state"), c: rows("start_cell_state") };
  }

  /**
   * Runs all ticks on input `x`: images `[B, C, H, W]`, parity sequences `[B, L]` of ±1, or
   * `[B, C, L]` with backbone `none`.
   */
  override forward(x: Tensor, opts: { track?: boolean } = {}): LstmOutput {
    const o = this.options;
    const B = x.shape[0];
    const top = o.numLayers - 1;
    const { kv, featureShape } = this.#features.featurise(x);
    this.#kvFeatureShape = featureShape;
    const kvp: ProjectedKV = this.#attention.projectKV(kv, kv);
    kv.dispose();
    let state = this.#startState(B);
    const preds: Tensor[] = [], certs: Tensor[] = [];
    const track = opts.track ? { post: [] as Tensor[], att: [] as Tensor[] } : null;
    for (let t = 0; t < o.iterations; t++) {
      const qIn = unsqueeze(state.h[top], 1);
      const q = this.#qProj.forward(qIn);
      qIn.dispose();
      const { out: attnOut, weights } = this.#attention.attend(q, kvp);
      q.dispose();
      const attn = reshape(attnOut, [B, o.dInput]);
      const next = this.#lstm.step(attn, state);
      for (const s of [...state.h, ...state.c]) s.dispose();
      state = next;
      const pred = this.#outputProjector.forward(state.h[top]);
      preds.push(pred);
      certs.push(computeCertainty(pred, o.predictionReshaper));
      if (track) {
        noGrad(() => {
          track.post.push(mul(state.h[top], 1));
          const w = mul(weights, 1);
          track.att.push(unsqueeze(w, 0));
          w.dispose();
        });
      }
      for (const tmp of [attnOut, weights, attn]) tmp.dispose();
    }
    const predictions = stack(preds, -1);
    const certainties = stack(certs, -1);
    const hidden = state.h[top];
    for (const t of [...preds, ...certs, ...state.h.slice(0, top), ...state.c, kvp.k, kvp.v]) t.dispose();
    const result: LstmOutput = { predictions, certainties, hidden };
    if (track) {
      const post = noGrad(() => stack(track.post, 0));
      track.post.forEach((t) => t.dispose());
      const attention = noGrad(() => concat(track.att, 0));
      track.att.forEach((t) => t.dispose());
      result.tracking = { preActivations: zeros(post.shape), postActivations: post, attention };
    }
    return result;
  }
}
