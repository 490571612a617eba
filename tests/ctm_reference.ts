/**
 * An independent float64 host implementation of the CTM forward pass (reference `models/ctm.py`,
 * written from the maths in `ctm-reference.md` §1.2–1.3, not from the GPU model): parity / `none`
 * backbones, `custom-rotational-1d` / `none` positional embeddings, kv projection, standard
 * multi-head cross-attention, depth-1 and U-Net synapses, deep and linear neuron-level models
 * (optional history LayerNorm), recurrent decayed synchronisation for all three neuron selections,
 * output projection and certainty. Weights come as a map keyed by the reference's state-dict names.
 * This file holds the recurrence; the stateless pieces (kernels, synapses, neuron-level models) are in
 * `ctm_reference_parts.ts`.
 */
import type { CtmOptions } from "../src/models/ctm.ts";
import { layerNorm, linear, refNlm, refSynapses, refSyncSize } from "./ctm_reference_parts.ts";

export { refSyncSize, refUnetWidths } from "./ctm_reference_parts.ts";

/** Weights by reference state-dict name (f32 tensors as float64, index buffers as i32). */
export type RefWeights = Map<string, Float64Array | Int32Array>;

/** A float64 input: `[B, L]` of ±1 for the parity backbone, `[B, C, ...]` for backbone `none`. */
export interface RefInput {
  shape: number[];
  data: Float64Array;
}

/** Per-tick internals (tick-major, row-major, like the GPU model's tracking). */
export interface RefTracking {
  /** `[T, B, S_out]`. */
  syncOut: Float64Array;
  /** `[T, B, S_act]`. */
  syncAction: Float64Array;
  /** `[T, B, D]` (the newest pre-activation, i.e. `state_trace[:, :, -1]`). */
  preActivations: Float64Array;
  /** `[T, B, D]`. */
  postActivations: Float64Array;
  /** `[T, B, heads, 1, L]`. */
  attention: Float64Array;
}

/** Result of the reference forward. */
export interface RefOutput {
  /** `[B, outDims, T]`. */
  predictions: Float64Array;
  /** `[B, 2, T]`: normalised entropy, certainty. */
  certainties: Float64Array;
  /** Output synchronisation after the last tick `[B, S_out]`. */
  syncOut: Float64Array;
  /** Number of key/value tokens. */
  L: number;
  /** With `track`. */
  tracking?: RefTracking;
}

// ---------------------------------------------------------------- the model

/**
 * The CTM forward in float64. `cfg` uses the GPU model's option names (defaults as in the
 * reference); `w` must hold every tensor of the state dict (index buffers are only read for
 * `random` / `random-pairing`; first-last uses the fixed ranges).
 */
export function ctmReference(
  cfg: CtmOptions,
  w: RefWeights,
  x: RefInput,
  opts: { track?: boolean } = {},
): RefOutput {
  const get = (name: string): Float64Array => {
    const t = w.get(name);
    if (!t) throw new Error(`reference: missing weight '${name}'`);
    return t instanceof Float64Array ? t : Float64Array.from(t);
  };
  const getIdx = (name: string): Int32Array => {
    const t = w.get(name);
    if (!t) throw new Error(`reference: missing buffer '${name}'`);
    return t instanceof Int32Array ? t : Int32Array.from(t);
  };
  const T = cfg.iterations, D = cfg.dModel, d = cfg.dInput, heads = cfg.heads, M = cfg.memoryLength;
  const sel = cfg.neuronSelectType ?? "random-pairing";
  const nOut = cfg.nSynchOut, nAct = cfg.nSynchAction;
  const Sout = refSyncSize(sel, nOut), Sact = refSyncSize(sel, nAct);
  const reshaper = cfg.predictionReshaper ?? [-1];
  const outDims = cfg.outDims;
  const B = x.shape[0];
  if (heads <= 0) throw new Error("reference: the base CTM needs heads > 0");

  // 1. Featurise: f (B, C, L), positional embedding pe (C, L), kv (B, L, d).
  let C: number, L: number;
  let f: Float64Array;
  if (cfg.backboneType === "parity_backbone") {
    C = d;
    L = x.shape[1];
    const E = get("backbone.embedding.weight"); // [2, C]
    f = new Float64Array(B * C * L);
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        const tok = x.data[b * L + l] === 1 ? 1 : 0;
        for (let c = 0; c < C; c++) f[(b * C + c) * L + l] = E[tok * C + c];
      }
    }
  } else if (cfg.backboneType === "none") {
    C = x.shape[1];
    L = x.shape.slice(2).reduce((a, v) => a * v, 1);
    f = x.data;
  } else {
    throw new Error(`reference: backbone '${cfg.backboneType}' not implemented`);
  }
  const pe = new Float64Array(C * L);
  if (cfg.positionalEmbeddingType === "custom-rotational-1d") {
    const P = get("positional_embedding.projection.weight"); // [C, 2]
    const pb = get("positional_embedding.projection.bias");
    for (let l = 0; l < L; l++) {
      const deg = L > 1 ? (180 * l) / (L - 1) : 0;
      const th = (deg * Math.PI) / 180;
      const v0 = -Math.sin(th), v1 = Math.cos(th); // [0, 1] rotated by θ
      for (let c = 0; c < C; c++) pe[c * L + l] = P[c * 2] * v0 + P[c * 2 + 1] * v1 + pb[c];
    }
  } else if (cfg.positionalEmbeddingType !== "none") {
    throw new Error(`reference: positional embedding '${cfg.positionalEmbeddingType}' not implemented`);
  }
  const kvIn = new Float64Array(B * L * C);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      for (let c = 0; c < C; c++) kvIn[(b * L + l) * C + c] = f[(b * C + c) * L + l] + pe[c * L + l];
    }
  }
  const kv = layerNorm(
    linear(kvIn, B * L, C, get("kv_proj.0.weight"), get("kv_proj.0.bias")),
    d,
    get("kv_proj.1.weight"),
    get("kv_proj.1.bias"),
  );
  // Attention in-projection split into q, k, v rows.
  const inW = get("attention.in_proj_weight"), inB = get("attention.in_proj_bias");
  const Wq = inW.subarray(0, d * d), Wk = inW.subarray(d * d, 2 * d * d), Wv = inW.subarray(2 * d * d);
  const bq = inB.subarray(0, d), bk = inB.subarray(d, 2 * d), bv = inB.subarray(2 * d);
  const K = linear(kv, B * L, d, Wk, bk);
  const V = linear(kv, B * L, d, Wv, bv);
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);

  // 2. Initial state.
  const startTrace = get("start_trace"); // [D, M]
  const trace = new Float64Array(B * D * M);
  for (let b = 0; b < B; b++) trace.set(startTrace, b * D * M);
  const startZ = get("start_activated_state");
  let z: Float64Array = new Float64Array(B * D);
  for (let b = 0; b < B; b++) z.set(startZ, b * D);

  // 3. Decay rates (θ clamped to [0, 15]).
  const rOf = (theta: Float64Array) => theta.map((t) => Math.exp(-Math.min(15, Math.max(0, t))));
  const rOut = rOf(get("decay_params_out"));
  const rAct = rOf(get("decay_params_action"));

  // Pairwise products.
  const pairProducts = (zz: Float64Array, kind: "out" | "action"): Float64Array => {
    const n = kind === "out" ? nOut : nAct;
    const S = refSyncSize(sel, n);
    const pp = new Float64Array(B * S);
    let left: ArrayLike<number>, right: ArrayLike<number>;
    if (sel === "first-last") {
      const start = kind === "out" ? 0 : D - n;
      left = right = Array.from({ length: n }, (_, i) => start + i);
    } else {
      left = getIdx(`${kind}_neuron_indices_left`);
      right = getIdx(`${kind}_neuron_indices_right`);
    }
    for (let b = 0; b < B; b++) {
      const zb = (i: number) => zz[b * D + i];
      if (sel === "random-pairing") {
        for (let k = 0; k < n; k++) pp[b * S + k] = zb(left[k]) * zb(right[k]);
      } else {
        let k = 0;
        for (let i = 0; i < n; i++) {
          for (let j = i; j < n; j++) pp[b * S + k++] = zb(left[i]) * zb(right[j]);
        }
      }
    }
    return pp;
  };

  // Certainty: 1 − normalised entropy, averaged over the reshaped positions.
  const known = reshaper.filter((v) => v !== -1).reduce((a, v) => a * v, 1);
  const rs = reshaper.map((v) => (v === -1 ? outDims / known : v));
  const nCls = rs[rs.length - 1];
  const nGroups = outDims / nCls;
  const certainty = (pred: Float64Array, b: number): number => {
    let ne = 0;
    for (let g = 0; g < nGroups; g++) {
      const o = b * outDims + g * nCls;
      let mx = -Infinity;
      for (let k = 0; k < nCls; k++) mx = Math.max(mx, pred[o + k]);
      let se = 0;
      for (let k = 0; k < nCls; k++) se += Math.exp(pred[o + k] - mx);
      const lse = mx + Math.log(se);
      let ent = 0;
      for (let k = 0; k < nCls; k++) {
        const lp = pred[o + k] - lse;
        ent -= Math.exp(lp) * lp;
      }
      ne += ent / Math.log(nCls);
    }
    return ne / nGroups;
  };

  const predictions = new Float64Array(B * outDims * T);
  const certainties = new Float64Array(B * 2 * T);
  const tr: RefTracking | undefined = opts.track
    ? {
      syncOut: new Float64Array(T * B * Sout),
      syncAction: new Float64Array(T * B * Sact),
      preActivations: new Float64Array(T * B * D),
      postActivations: new Float64Array(T * B * D),
      attention: new Float64Array(T * B * heads * L),
    }
    : undefined;

  // 4. Seed the output synchronisation with z0.
  const aOut = pairProducts(z, "out");
  const bOut = new Float64Array(B * Sout).fill(1);
  let aAct: Float64Array | null = null;
  let bAct: Float64Array | null = null;
  let syncOut = new Float64Array(B * Sout);

  for (let t = 0; t < T; t++) {
    // 5.1 action synchronisation
    const ppA = pairProducts(z, "action");
    if (aAct === null || bAct === null) {
      aAct = ppA;
      bAct = new Float64Array(B * Sact).fill(1);
    } else {
      for (let i = 0; i < B * Sact; i++) {
        const r = rAct[i % Sact];
        aAct[i] = r * aAct[i] + ppA[i];
        bAct[i] = r * bAct[i] + 1;
      }
    }
    const syncAct = aAct.map((a, i) => a / Math.sqrt(bAct![i]));
    // 5.2–5.3 query and attention
    const qIn = linear(syncAct, B, Sact, get("q_proj.weight"), get("q_proj.bias"));
    const Q = linear(qIn, B, d, Wq, bq);
    const attnCat = new Float64Array(B * d);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < heads; h++) {
        const sc = new Float64Array(L);
        let mx = -Infinity;
        for (let l = 0; l < L; l++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += Q[b * d + h * hd + e] * K[(b * L + l) * d + h * hd + e];
          sc[l] = s * scale;
          mx = Math.max(mx, sc[l]);
        }
        let den = 0;
        for (let l = 0; l < L; l++) den += sc[l] = Math.exp(sc[l] - mx);
        for (let l = 0; l < L; l++) sc[l] /= den;
        if (tr) tr.attention.set(sc, ((t * B + b) * heads + h) * L);
        for (let e = 0; e < hd; e++) {
          let s = 0;
          for (let l = 0; l < L; l++) s += sc[l] * V[(b * L + l) * d + h * hd + e];
          attnCat[b * d + h * hd + e] = s;
        }
      }
    }
    const attnOut = linear(attnCat, B, d, get("attention.out_proj.weight"), get("attention.out_proj.bias"));
    // 5.4 pre-synapse input: [attention output, z]
    const pre = new Float64Array(B * (d + D));
    for (let b = 0; b < B; b++) {
      pre.set(attnOut.subarray(b * d, (b + 1) * d), b * (d + D));
      pre.set(z.subarray(b * D, (b + 1) * D), b * (d + D) + d);
    }
    // 5.5–5.6 synapses, FIFO
    const a = refSynapses(cfg, get, B, pre);
    for (let b = 0; b < B; b++) {
      for (let n = 0; n < D; n++) {
        const o = (b * D + n) * M;
        for (let m = 0; m < M - 1; m++) trace[o + m] = trace[o + m + 1];
        trace[o + M - 1] = a[b * D + n];
      }
    }
    // 5.7 neuron-level models
    z = refNlm(cfg, get, B, trace);
    // 5.8 output synchronisation
    const ppO = pairProducts(z, "out");
    for (let i = 0; i < B * Sout; i++) {
      const r = rOut[i % Sout];
      aOut[i] = r * aOut[i] + ppO[i];
      bOut[i] = r * bOut[i] + 1;
    }
    syncOut = aOut.map((v, i) => v / Math.sqrt(bOut[i]));
    // 5.9–5.11 prediction and certainty
    const pred = linear(syncOut, B, Sout, get("output_projector.0.weight"), get("output_projector.0.bias"));
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < outDims; o++) predictions[(b * outDims + o) * T + t] = pred[b * outDims + o];
      const ne = certainty(pred, b);
      certainties[(b * 2) * T + t] = ne;
      certainties[(b * 2 + 1) * T + t] = 1 - ne;
    }
    if (tr) {
      tr.syncOut.set(syncOut, t * B * Sout);
      tr.syncAction.set(syncAct, t * B * Sact);
      tr.preActivations.set(a, t * B * D);
      tr.postActivations.set(z, t * B * D);
    }
  }
  return { predictions, certainties, syncOut, L, tracking: tr };
}
