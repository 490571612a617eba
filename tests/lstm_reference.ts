/**
 * Independent float64 host references for the LSTM tests, written from the equations (not from
 * the GPU code): a multi-layer LSTM (PyTorch's nn.LSTM semantics, gates i, f, g, o) and the whole
 * LSTM baseline of `ctm-reference.md` §1.6 (parity / none backbones, custom-rotational-1d / none
 * positional embeddings, kv projection, multi-head cross-attention, one LSTM step per tick,
 * output projection, certainty). Weights come as maps keyed by the reference state-dict names.
 */
import type { LstmBaselineOptions } from "../src/models/lstm.ts";
import { layerNorm, linear } from "./ctm_reference_parts.ts";

/** Weights by state-dict name, as float64. */
export type RefWeights = Map<string, Float64Array>;

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * One LSTM cell step for a batch: x [B, in], h, c [B, H] → [h', c'] with
 * a = W_ih x + b_ih + W_hh h + b_hh, split (i, f, g, o);
 * c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c').
 */
export function refLstmCell(
  x: Float64Array,
  h: Float64Array,
  c: Float64Array,
  B: number,
  inF: number,
  H: number,
  wIh: Float64Array,
  wHh: Float64Array,
  bIh: Float64Array | null,
  bHh: Float64Array | null,
): [Float64Array, Float64Array] {
  const h2 = new Float64Array(B * H), c2 = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    const pre = (row: number) => {
      let s = (bIh ? bIh[row] : 0) + (bHh ? bHh[row] : 0);
      for (let i = 0; i < inF; i++) s += wIh[row * inF + i] * x[b * inF + i];
      for (let k = 0; k < H; k++) s += wHh[row * H + k] * h[b * H + k];
      return s;
    };
    for (let j = 0; j < H; j++) {
      const ig = sigmoid(pre(j));
      const fg = sigmoid(pre(H + j));
      const gg = Math.tanh(pre(2 * H + j));
      const og = sigmoid(pre(3 * H + j));
      const cn = fg * c[b * H + j] + ig * gg;
      c2[b * H + j] = cn;
      h2[b * H + j] = og * Math.tanh(cn);
    }
  }
  return [h2, c2];
}

/**
 * A multi-layer LSTM over a batch-first sequence x [B, T, in] from h0, c0 [L, B, H] (no dropout).
 * `w` holds `weight_ih_l{k}`, `weight_hh_l{k}` and (with bias) `bias_ih_l{k}`, `bias_hh_l{k}`
 * under `prefix`. Returns output [B, T, H] and the final h, c [L, B, H].
 */
export function refLstm(
  w: RefWeights,
  x: Float64Array,
  dims: { B: number; T: number; inF: number; H: number; layers: number; bias?: boolean },
  h0: Float64Array,
  c0: Float64Array,
  prefix = "",
): { output: Float64Array; h: Float64Array; c: Float64Array } {
  const { B, T, inF, H, layers } = dims;
  const get = (n: string) => {
    const t = w.get(prefix + n);
    if (!t) throw new Error(`reference: missing weight '${prefix + n}'`);
    return t;
  };
  const hs: Float64Array[] = Array.from({ length: layers }, (_, k) => h0.slice(k * B * H, (k + 1) * B * H));
  const cs: Float64Array[] = Array.from({ length: layers }, (_, k) => c0.slice(k * B * H, (k + 1) * B * H));
  const output = new Float64Array(B * T * H);
  for (let t = 0; t < T; t++) {
    let inp: Float64Array = new Float64Array(B * inF);
    for (let b = 0; b < B; b++) inp.set(x.subarray((b * T + t) * inF, (b * T + t + 1) * inF), b * inF);
    let width = inF;
    for (let k = 0; k < layers; k++) {
      const bias = dims.bias ?? true;
      [hs[k], cs[k]] = refLstmCell(
        inp,
        hs[k],
        cs[k],
        B,
        width,
        H,
        get(`weight_ih_l${k}`),
        get(`weight_hh_l${k}`),
        bias ? get(`bias_ih_l${k}`) : null,
        bias ? get(`bias_hh_l${k}`) : null,
      );
      inp = hs[k];
      width = H;
    }
    for (let b = 0; b < B; b++) output.set(inp.subarray(b * H, (b + 1) * H), (b * T + t) * H);
  }
  const h = new Float64Array(layers * B * H), c = new Float64Array(layers * B * H);
  hs.forEach((v, k) => h.set(v, k * B * H));
  cs.forEach((v, k) => c.set(v, k * B * H));
  return { output, h, c };
}

/** Output of {@link lstmBaselineReference}. */
export interface RefBaselineOutput {
  /** `[B, out, T]`. */
  predictions: Float64Array;
  /** `[B, 2, T]`. */
  certainties: Float64Array;
  /** Top hidden state per tick `[T, B, D]`. */
  post: Float64Array;
  /** Attention weights `[T, B, heads, 1, L]`. */
  attention: Float64Array;
  /** Number of tokens. */
  L: number;
}

/** The LSTM baseline forward in float64 (eval mode). `x` is `[B, L]` (parity) or `[B, C, ...]`. */
export function lstmBaselineReference(
  cfg: LstmBaselineOptions,
  w: RefWeights,
  x: { shape: number[]; data: Float64Array },
): RefBaselineOutput {
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: missing weight '${n}'`);
    return t;
  };
  const T = cfg.iterations, D = cfg.dModel, d = cfg.dInput, heads = cfg.heads, NL = cfg.numLayers;
  const outDims = cfg.outDims, reshaper = cfg.predictionReshaper ?? [-1];
  const B = x.shape[0];

  // Features f [B, C, L] plus positions, as tokens [B, L, C].
  let C: number, L: number, f: Float64Array;
  if (cfg.backboneType === "parity_backbone") {
    C = d;
    L = x.shape[1];
    const E = get("backbone.embedding.weight");
    f = new Float64Array(B * C * L);
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        const row = x.data[b * L + l] === 1 ? 1 : 0;
        for (let c = 0; c < C; c++) f[(b * C + c) * L + l] = E[row * C + c];
      }
    }
  } else if (cfg.backboneType === "none") {
    C = x.shape[1];
    L = x.shape.slice(2).reduce((a, v) => a * v, 1);
    f = x.data;
  } else throw new Error(`reference: backbone '${cfg.backboneType}' not implemented`);
  const pos = new Float64Array(C * L);
  if (cfg.positionalEmbeddingType === "custom-rotational-1d") {
    const P = get("positional_embedding.projection.weight"), pb = get("positional_embedding.projection.bias");
    for (let l = 0; l < L; l++) {
      const ang = (L > 1 ? l / (L - 1) : 0) * Math.PI; // 0 … 180° over the sequence
      const u = -Math.sin(ang), v = Math.cos(ang); // (0, 1) rotated by ang
      for (let c = 0; c < C; c++) pos[c * L + l] = P[2 * c] * u + P[2 * c + 1] * v + pb[c];
    }
  } else if (cfg.positionalEmbeddingType !== "none") {
    throw new Error(`reference: positional embedding '${cfg.positionalEmbeddingType}' not implemented`);
  }
  const tok = new Float64Array(B * L * C);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      for (let c = 0; c < C; c++) tok[(b * L + l) * C + c] = f[(b * C + c) * L + l] + pos[c * L + l];
    }
  }
  const kv = layerNorm(
    linear(tok, B * L, C, get("kv_proj.0.weight"), get("kv_proj.0.bias")),
    d,
    get("kv_proj.1.weight"),
    get("kv_proj.1.bias"),
  );
  const Win = get("attention.in_proj_weight"), bin = get("attention.in_proj_bias");
  const K = linear(kv, B * L, d, Win.subarray(d * d, 2 * d * d), bin.subarray(d, 2 * d));
  const V = linear(kv, B * L, d, Win.subarray(2 * d * d), bin.subarray(2 * d));
  const hd = d / heads;

  // Start state [NL, B, D].
  const sh = get("start_hidden_state"), sc = get("start_cell_state");
  let h: Float64Array[] = [], c: Float64Array[] = [];
  for (let k = 0; k < NL; k++) {
    const hk = new Float64Array(B * D), ck = new Float64Array(B * D);
    for (let b = 0; b < B; b++) {
      hk.set(sh.subarray(k * D, (k + 1) * D), b * D);
      ck.set(sc.subarray(k * D, (k + 1) * D), b * D);
    }
    h.push(hk);
    c.push(ck);
  }

  const known = reshaper.filter((v) => v !== -1).reduce((a, v) => a * v, 1);
  const nCls = reshaper.map((v) => (v === -1 ? outDims / known : v)).at(-1)!;
  const nGroups = outDims / nCls;
  const predictions = new Float64Array(B * outDims * T), certainties = new Float64Array(B * 2 * T);
  const post = new Float64Array(T * B * D), attention = new Float64Array(T * B * heads * L);

  for (let t = 0; t < T; t++) {
    const q0 = linear(h[NL - 1], B, D, get("q_proj.weight"), get("q_proj.bias"));
    const Q = linear(q0, B, d, Win.subarray(0, d * d), bin.subarray(0, d));
    const cat = new Float64Array(B * d);
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < heads; hh++) {
        const p = new Float64Array(L);
        for (let l = 0; l < L; l++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += Q[b * d + hh * hd + e] * K[(b * L + l) * d + hh * hd + e];
          p[l] = s / Math.sqrt(hd);
        }
        const m = Math.max(...p);
        let z = 0;
        for (let l = 0; l < L; l++) z += p[l] = Math.exp(p[l] - m);
        for (let l = 0; l < L; l++) p[l] /= z;
        attention.set(p, ((t * B + b) * heads + hh) * L);
        for (let e = 0; e < hd; e++) {
          let s = 0;
          for (let l = 0; l < L; l++) s += p[l] * V[(b * L + l) * d + hh * hd + e];
          cat[b * d + hh * hd + e] = s;
        }
      }
    }
    let inp = linear(cat, B, d, get("attention.out_proj.weight"), get("attention.out_proj.bias"));
    let width = d;
    const nh: Float64Array[] = [], nc: Float64Array[] = [];
    for (let k = 0; k < NL; k++) {
      const [hk, ck] = refLstmCell(
        inp,
        h[k],
        c[k],
        B,
        width,
        D,
        get(`lstm.weight_ih_l${k}`),
        get(`lstm.weight_hh_l${k}`),
        get(`lstm.bias_ih_l${k}`),
        get(`lstm.bias_hh_l${k}`),
      );
      nh.push(hk);
      nc.push(ck);
      inp = hk;
      width = D;
    }
    h = nh;
    c = nc;
    post.set(h[NL - 1], t * B * D);
    const pred = linear(h[NL - 1], B, D, get("output_projector.0.weight"), get("output_projector.0.bias"));
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < outDims; o++) predictions[(b * outDims + o) * T + t] = pred[b * outDims + o];
      let ne = 0;
      for (let g = 0; g < nGroups; g++) {
        const row = Array.from({ length: nCls }, (_, k) => pred[b * outDims + g * nCls + k]);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        let ent = 0;
        for (const v of row) ent -= Math.exp(v - lse) * (v - lse);
        ne += ent / Math.log(nCls) / nGroups;
      }
      certainties[(b * 2) * T + t] = ne;
      certainties[(b * 2 + 1) * T + t] = 1 - ne;
    }
  }
  return { predictions, certainties, post, attention, L };
}
