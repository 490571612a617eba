/**
 * The Continuous Thought Machine (reference `models/ctm.py`): neurons with private temporal
 * models over a FIFO of their pre-activations, synchronisation between neuron pairs as the
 * latent representation, cross-attention driven by the action synchronisation, and a prediction
 * with its certainty at every internal tick. Parameter names match the reference state dict.
 */
import { mapInto } from "../ops/map.ts";
import { concat, contiguous, expand, permute, reshape, slice, stack, unsqueeze } from "../ops/views.ts";
import { linear, matmul } from "../ops/matmul.ts";
import { type CtmDims, fusedCertainty, fusedCtmRecurrence, fusedCtmSupported } from "../ops/fused_ctm.ts";
import { mul } from "../ops/arith.ts";
import { expNeg } from "../ops/unary.ts";
import { fromArray } from "../ops/creation.ts";
import { Sequential } from "../nn/containers.ts";
import { Dropout, GLU, LayerNorm, Squeeze } from "../nn/layers.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import { initRng, uniformTensor } from "../nn/init.ts";
import { MultiheadAttention, type ProjectedKV } from "../nn/attention.ts";
import { SuperLinear } from "../nn/superlinear.ts";
import { SynapseUNET } from "../nn/synapse_unet.ts";
import { noGrad } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Featuriser } from "./backbones.ts";
import type { CtmOptions, CtmOutput } from "./ctm_options.ts";
import { verifyCtmOptions } from "./ctm_options.ts";
import { computeCertainty } from "./certainty.ts";
import {
  type NeuronSelectType,
  type PairIndices,
  pairIndices,
  selectNeurons,
  syncSize,
  type SyncState,
  syncStep,
} from "./synchronisation.ts";

export type { CtmOptions, CtmOutput, CtmTracking } from "./ctm_options.ts";
export { verifyCtmOptions } from "./ctm_options.ts";

/**
 * The Continuous Thought Machine.
 *
 * @example
 * ```ts
 * import { initGpu, Ctm, fromArray } from "./mod.ts";
 * await initGpu();
 * const ctm = new Ctm({
 *   iterations: 4, dModel: 32, dInput: 8, heads: 2, nSynchOut: 4, nSynchAction: 4, synapseDepth: 1,
 *   memoryLength: 3, deepNlms: true, memoryHiddenDims: 2, backboneType: "parity_backbone",
 *   positionalEmbeddingType: "custom-rotational-1d", outDims: 8, predictionReshaper: [4, 2],
 * });
 * const { predictions, certainties } = ctm.forward(fromArray([[1, -1, -1, 1]]));
 * // predictions [1, 8, 4], certainties [1, 2, 4]
 * ```
 */
export class Ctm extends Module {
  /** The options the model was built with (defaults filled in). */
  readonly options: Required<Omit<CtmOptions, "rng" | "dropoutNlm">> & { dropoutNlm: number };
  /** Size of the output synchronisation. */
  readonly syncOutSize: number;
  /** Size of the action synchronisation. */
  readonly syncActionSize: number;
  readonly #features: Featuriser;
  readonly #qProj: Linear;
  readonly #attention: MultiheadAttention;
  readonly #synapses: Module;
  readonly #traceProcessor: Sequential;
  readonly #outputProjector: Sequential;
  /**
   * Run the recurrence as the fused op (`src/ops/fused_ctm.ts`) when the configuration allows it
   * (default true); false forces the op-by-op path.
   */
  fused = true;

  /** Builds every submodule and draws the neuron selection. */
  constructor(opts: CtmOptions) {
    super();
    verifyCtmOptions(opts);
    const o = this.options = {
      doLayernormNlm: false,
      predictionReshaper: [-1],
      dropout: 0,
      neuronSelectType: "random-pairing" as NeuronSelectType,
      nRandomPairingSelf: 0,
      ...opts,
      dropoutNlm: opts.dropoutNlm ?? opts.dropout ?? 0,
    } as Ctm["options"];
    const rng = opts.rng ?? initRng();
    const D = o.dModel, M = o.memoryLength;
    if (o.heads <= 0) throw new Error("the base CTM needs heads > 0 (attention over the backbone features)");
    this.#features = new Featuriser(this, { ...o, rng });
    const sel = o.neuronSelectType;
    this.syncOutSize = syncSize(sel, o.nSynchOut);
    this.syncActionSize = syncSize(sel, o.nSynchAction);
    this.#qProj = this.registerModule(
      "q_proj",
      new Linear(o.dInput, { inFeatures: this.syncActionSize, rng }),
    );
    this.#attention = this.registerModule(
      "attention",
      new MultiheadAttention(o.dInput, o.heads, { dropout: o.dropout, rng }),
    );
    this.#synapses = this.registerModule(
      "synapses",
      o.synapseDepth === 1
        ? new Sequential(
          new Dropout(o.dropout),
          new Linear(2 * D, { inFeatures: o.dInput + D, rng }),
          new GLU(-1),
          new LayerNorm(D),
        )
        : new SynapseUNET(D, o.synapseDepth, { inFeatures: o.dInput + D, dropout: o.dropout }),
    );
    const H = o.memoryHiddenDims;
    const nlm = { doNorm: o.doLayernormNlm, dropout: o.dropoutNlm, rng };
    this.#traceProcessor = this.registerModule(
      "trace_processor",
      new Sequential(
        o.deepNlms
          ? new Sequential(
            new SuperLinear(M, 2 * H, D, nlm),
            new GLU(-1),
            new SuperLinear(H, 2, D, nlm),
            new GLU(-1),
            new Squeeze(-1),
          )
          : new Sequential(new SuperLinear(M, 2, D, nlm), new GLU(-1), new Squeeze(-1)),
      ),
    );
    this.registerParameter(
      "start_activated_state",
      uniformTensor([D], -Math.sqrt(1 / D), Math.sqrt(1 / D), rng),
    );
    const bt = Math.sqrt(1 / (D + M));
    this.registerParameter("start_trace", uniformTensor([D, M], -bt, bt, rng));
    for (const kind of ["out", "action"] as const) {
      const n = kind === "out" ? o.nSynchOut : o.nSynchAction;
      const { left, right } = selectNeurons(sel, D, n, kind, rng, o.nRandomPairingSelf);
      this.registerBuffer(`${kind}_neuron_indices_left`, fromArray(left));
      this.registerBuffer(`${kind}_neuron_indices_right`, fromArray(right));
    }
    this.registerParameter("decay_params_out", fromArray(new Float32Array(this.syncOutSize)));
    if (this.syncActionSize !== 0) {
      this.registerParameter("decay_params_action", fromArray(new Float32Array(this.syncActionSize)));
    }
    this.#outputProjector = this.registerModule(
      "output_projector",
      new Sequential(new Linear(o.outDims, { inFeatures: this.syncOutSize, rng })),
    );
  }

  /**
   * Shape of the backbone features of the last forward (`[B, C, H′, W′]` for images, `[B, C, L]`
   * for sequences), like the reference's `kv_features`: the attention weights `[T, B, heads, 1,
   * L]` of `track: true` reshape to `[T, B, heads, H′, W′]` for attention maps. Null before the
   * first forward.
   */
  get kvFeatureShape(): readonly number[] | null {
    return this.#kvFeatureShape;
  }
  #kvFeatureShape: number[] | null = null;

  #pairs(kind: "out" | "action"): PairIndices {
    return pairIndices(
      this.options.neuronSelectType,
      this.getBuffer(`${kind}_neuron_indices_left`),
      this.getBuffer(`${kind}_neuron_indices_right`),
    );
  }

  /** Decay rates `r = exp(−θ)` after clamping θ to [0, 15] in place (outside autograd). */
  #decay(name: string): Tensor {
    const p = this.getParameter(name);
    noGrad(() => mapInto(p, "clamp(x0, 0.0, 15.0)", [p]));
    return expNeg(p);
  }

  /**
   * Runs all ticks on input `x`: images `[B, C, H, W]` (ResNet, shallow-wide or `none`
   * backbones), parity sequences `[B, L]` of ±1, or `[B, C, L]` with backbone `none`.
   */
  override forward(x: Tensor, opts: { track?: boolean } = {}): CtmOutput {
    const o = this.options;
    const B = x.shape[0];
    const D = o.dModel, M = o.memoryLength;
    const { kv, featureShape } = this.#features.featurise(x);
    this.#kvFeatureShape = featureShape;
    const dims = this.#fusedDims(B, kv.shape[1]);
    if (dims) return this.#forwardFused(kv, dims, !!opts.track);
    const kvp: ProjectedKV = this.#attention.projectKV(kv, kv);
    kv.dispose();
    const pairsOut = this.#pairs("out"), pairsAct = this.#pairs("action");
    const rOut = this.#decay("decay_params_out");
    const rAct = this.#decay("decay_params_action");
    let trace = expand(this.getParameter("start_trace"), [B, D, M]);
    let z = expand(this.getParameter("start_activated_state"), [B, D]);
    const seed = syncStep(z, pairsOut, null, null);
    seed.sync.dispose();
    let out: SyncState = seed.state;
    let act: SyncState | null = null;
    const preds: Tensor[] = [], certs: Tensor[] = [];
    const track = opts.track
      ? {
        so: [] as Tensor[],
        sa: [] as Tensor[],
        pre: [] as Tensor[],
        post: [] as Tensor[],
        att: [] as Tensor[],
      }
      : null;
    let syncOut: Tensor | null = null;
    for (let t = 0; t < o.iterations; t++) {
      const a = syncStep(z, pairsAct, rAct, act);
      if (act) this.#free(act);
      act = a.state;
      const qIn = unsqueeze(a.sync, 1);
      const q = this.#qProj.forward(qIn);
      qIn.dispose();
      const { out: attnOut, weights } = this.#attention.attend(q, kvp);
      q.dispose();
      const attn = reshape(attnOut, [B, o.dInput]);
      const pre = concat([attn, z], -1);
      const newPre = this.#synapses.forward(pre) as Tensor;
      const shifted = slice(trace, 2, 1);
      const col = unsqueeze(newPre, -1);
      const nextTrace = concat([shifted, col], -1);
      col.dispose();
      trace.dispose();
      trace = nextTrace;
      const nz = this.#traceProcessor.forward(trace);
      z.dispose();
      z = nz;
      const so = syncStep(z, pairsOut, rOut, out);
      this.#free(out);
      out = so.state;
      const pred = this.#outputProjector.forward(so.sync);
      preds.push(pred);
      certs.push(computeCertainty(pred, o.predictionReshaper));
      if (track) {
        noGrad(() => {
          track.sa.push(mul(a.sync, 1));
          track.so.push(mul(so.sync, 1));
          track.pre.push(mul(newPre, 1));
          track.post.push(mul(z, 1));
          track.att.push(unsqueeze(mul(weights, 1), 0));
        });
      }
      syncOut?.dispose();
      syncOut = so.sync;
      for (const tmp of [a.sync, attnOut, weights, attn, pre, newPre, shifted]) tmp.dispose();
    }
    const predictions = stack(preds, -1);
    const certainties = stack(certs, -1);
    for (const t of [...preds, ...certs, trace, z, rOut, rAct, kvp.k, kvp.v]) t.dispose();
    for (const p of [pairsOut, pairsAct]) [p.left, p.right].forEach((t) => t.dispose());
    this.#free(out);
    if (act) this.#free(act);
    const result: CtmOutput = { predictions, certainties, syncOut: syncOut! };
    if (track) {
      const st = (ts: Tensor[]) => {
        const s = noGrad(() => stack(ts, 0));
        ts.forEach((t) => t.dispose());
        return s;
      };
      result.tracking = {
        syncOut: st(track.so),
        syncAction: st(track.sa),
        preActivations: st(track.pre),
        postActivations: st(track.post),
        attention: noGrad(() => {
          const c = concat(track.att, 0);
          track.att.forEach((t) => t.dispose());
          return c;
        }),
      };
    }
    return result;
  }

  /** The fused op's sizes when this configuration and mode can run fused, else null. */
  #fusedDims(B: number, L: number): CtmDims | null {
    const o = this.options;
    if (!this.fused || o.synapseDepth !== 1 || o.doLayernormNlm) return null;
    if (this.training && (o.dropout > 0 || o.dropoutNlm > 0)) return null;
    const dims: CtmDims = {
      B,
      D: o.dModel,
      d: o.dInput,
      nh: o.heads,
      L,
      M: o.memoryLength,
      H: o.memoryHiddenDims,
      deep: o.deepNlms,
      Sa: this.syncActionSize,
      So: this.syncOutSize,
      T: o.iterations,
      CB: Math.min(B, 64),
    };
    return fusedCtmSupported(dims) ? dims : null;
  }

  /**
   * The forward through the fused recurrence: out_proj is folded into the synapse weight and
   * q_proj into the attention's query projection (the same maps, computed once per forward);
   * predictions and certainties of all ticks come from one output projection.
   */
  #forwardFused(kv: Tensor, c: CtmDims, track: boolean): CtmOutput {
    const o = this.options;
    const E = o.dInput, T = o.iterations, B = c.B;
    const att = this.#attention;
    const kvp = att.projectKVPacked(kv);
    kv.dispose();
    const tmp: Tensor[] = [kvp];
    const t = <X extends Tensor>(x: X): X => (tmp.push(x), x);
    const rOut = t(this.#decay("decay_params_out"));
    const rAct = t(this.#decay("decay_params_action"));
    const inW = att.getParameter("in_proj_weight"), inB = att.getParameter("in_proj_bias");
    const wiq = t(slice(inW, 0, 0, E)), biq = t(slice(inB, 0, 0, E));
    const wq = t(matmul(this.#qProj.weight, wiq, { transA: true, transB: true }));
    const bq = t(linear(this.#qProj.bias!, wiq, biq));
    const synLin = (this.#synapses as Sequential).at(1) as Linear;
    const ln = (this.#synapses as Sequential).at(3) as LayerNorm;
    const nlm = this.#traceProcessor.at(0) as Sequential;
    const sl1 = nlm.at(0) as SuperLinear, sl2 = o.deepNlms ? nlm.at(2) as SuperLinear : null;
    const pairsOut = this.#pairs("out"), pairsAct = this.#pairs("action");
    const { sOut, tracking } = fusedCtmRecurrence(
      {
        kv: kvp,
        wq,
        bq,
        ws: synLin.weight,
        bsyn: synLin.bias!,
        wout: att.outProj.weight,
        bout: att.outProj.bias!,
        lnw: ln.weight!,
        lnb: ln.bias!,
        w1: sl1.getParameter("w1"),
        b1: sl1.getParameter("b1"),
        t1: sl1.getParameter("T"),
        w2: sl2?.getParameter("w1"),
        b2: sl2?.getParameter("b1"),
        t2: sl2?.getParameter("T"),
        startState: this.getParameter("start_activated_state"),
        startTrace: this.getParameter("start_trace"),
        rOut,
        rAct,
        outLeft: pairsOut.left,
        outRight: pairsOut.right,
        actLeft: pairsAct.left,
        actRight: pairsAct.right,
      },
      c,
      track,
    );
    for (const p of [pairsOut, pairsAct]) [p.left, p.right].forEach((x) => x.dispose());
    for (const x of tmp) x.dispose();
    const So = this.syncOutSize;
    const flat = reshape(sOut, [T * B, So]);
    const pred = this.#outputProjector.forward(flat);
    const p3 = reshape(pred, [T, B, o.outDims]);
    const perm = permute(p3, [1, 2, 0]);
    const predictions = contiguous(perm);
    const rs = o.predictionReshaper;
    const known = rs.filter((x) => x !== -1).reduce((a, x) => a * x, 1);
    const C = rs[rs.length - 1] === -1 ? o.outDims / known : rs[rs.length - 1];
    const certainties = noGrad(() => fusedCertainty(p3, C));
    const last = slice(sOut, 0, T - 1, T);
    const syncOut = reshape(last, [B, So]);
    const result: CtmOutput = { predictions, certainties, syncOut };
    if (tracking) {
      result.tracking = {
        syncOut: noGrad(() => mul(sOut, 1)),
        syncAction: tracking.syncAction,
        preActivations: tracking.preActivations,
        postActivations: tracking.postActivations,
        attention: reshape(tracking.attention, [T, B, o.heads, 1, -1]),
      };
      if (result.tracking.attention !== tracking.attention) tracking.attention.dispose();
    }
    for (const x of [flat, pred, p3, perm, last, sOut]) x.dispose();
    return result;
  }

  #free(s: SyncState): void {
    s.alpha.dispose();
    s.beta.dispose();
  }
}
