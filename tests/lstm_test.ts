/**
 * The GPU LSTM (`src/nn/lstm.ts`) and the LSTM baseline (`src/models/lstm.ts`) against the
 * independent float64 references of `lstm_reference.ts`: forward values and gradients (central
 * finite differences of the reference) for the module, the fused cell kernel and the whole
 * baseline; inter-layer dropout; state-dict names and shapes; save/load round trips; and the
 * parity parameter counts of `ctm-reference.md` §1.8 for both the baseline and the CTM.
 */
import { assertClose, gpuTest, gradcheck, type Ref, Rng, size } from "./helpers.ts";
import { LSTM, lstmCellUpdate } from "../src/nn/lstm.ts";
import { LstmBaseline, type LstmBaselineOptions, type LstmOutput } from "../src/models/lstm.ts";
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { concat, expand, reshape, slice, transpose } from "../src/ops/views.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { lstmBaselineReference, refLstm, refLstmCell, type RefWeights } from "./lstm_reference.ts";

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** float32-level agreement: |a − e| ≤ tol·max(1, max|e|) + tol·|e|. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, msg: string, tol = 1e-4): void {
  assertClose(actual, expected, { atol: tol * Math.max(1, maxAbs(expected)), rtol: tol, msg });
}

const fmt = (s: readonly number[]) => `[${s.join(",")}]`;

function assertShape(t: Tensor, shape: number[], what: string): void {
  if (fmt(t.shape) !== fmt(shape)) throw new Error(`${what}: shape ${fmt(t.shape)} != ${fmt(shape)}`);
}

async function download(m: { stateDict(): Map<string, Tensor> }): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const [k, t] of m.stateDict()) w.set(k, Float64Array.from(await t.toArray()));
  return w;
}

/** Loads `w` (float64) into the module. */
function upload(m: { loadStateDict(s: Map<string, Tensor>): unknown }, w: RefWeights): void {
  const ts = new Map<string, Tensor>();
  for (const [k, v] of w) ts.set(k, fromArray(Float32Array.from(v)));
  // Shapes come from the module: reshape through its own state dict.
  const own = (m as unknown as { stateDict(): Map<string, Tensor> }).stateDict();
  const shaped = new Map<string, Tensor>();
  for (const [k, t] of ts) {
    shaped.set(k, reshape(t, own.get(k)!.shape));
    t.dispose();
  }
  m.loadStateDict(shaped);
  for (const t of shaped.values()) t.dispose();
}

// ---------------------------------------------------------------- 1. the fused cell

gpuTest("lstmCellUpdate matches the float64 cell (h only, c only, both; strided c)", async () => {
  const rng = new Rng(1);
  const B = 3, H = 5;
  // Gates as a = gx + gh with identity projections: use refLstmCell with W = [I; 0].
  const cellRef = (gx: Ref, gh: Ref, c: Ref) => {
    const a = gx.data.map((v, i) => v + gh.data[i]);
    const eye = new Float64Array(4 * H * 4 * H);
    for (let i = 0; i < 4 * H; i++) eye[i * 4 * H + i] = 1;
    const zero = new Float64Array(4 * H * H);
    return refLstmCell(a, new Float64Array(B * H), c.data, B, 4 * H, H, eye, zero, null, null);
  };
  const gx = { shape: [B, 4 * H], data: rng.uniformArray(B * 4 * H, -2, 2) };
  const gh = { shape: [B, 4 * H], data: rng.uniformArray(B * 4 * H, -2, 2) };
  const c = { shape: [B, H], data: rng.uniformArray(B * H, -1.5, 1.5) };
  for (const which of ["h", "c", "both"] as const) {
    await gradcheck(
      (a, b, cc) => {
        const [h2, c2] = lstmCellUpdate(a, b, cc);
        if (which === "h") return h2;
        if (which === "c") return c2;
        return concat([h2, c2], 1);
      },
      (a, b, cc) => {
        const [h2, c2] = cellRef(a, b, cc);
        if (which === "h") return { shape: [B, H], data: h2 };
        if (which === "c") return { shape: [B, H], data: c2 };
        const out = new Float64Array(B * 2 * H);
        for (let r = 0; r < B; r++) {
          out.set(h2.subarray(r * H, (r + 1) * H), r * 2 * H);
          out.set(c2.subarray(r * H, (r + 1) * H), r * 2 * H + H);
        }
        return { shape: [B, 2 * H], data: out };
      },
      [gx, gh, c],
    );
  }
  // A broadcast (stride-0) cell state and strided gate rows, as the baseline's first tick has.
  const c1 = { shape: [1, H], data: rng.uniformArray(H, -1, 1) };
  const wide = { shape: [B, 8 * H], data: rng.uniformArray(B * 8 * H, -2, 2) };
  await gradcheck(
    (a, b, cc) => {
      const g = slice(a, 1, 2 * H, 6 * H);
      const e = expand(cc, [B, H]);
      const [h2, c2] = lstmCellUpdate(g, b, e);
      return concat([h2, c2], 1);
    },
    (a, b, cc) => {
      const g = new Float64Array(B * 4 * H);
      for (let r = 0; r < B; r++) g.set(a.data.subarray(r * 8 * H + 2 * H, r * 8 * H + 6 * H), r * 4 * H);
      const ce = new Float64Array(B * H);
      for (let r = 0; r < B; r++) ce.set(cc.data, r * H);
      const [h2, c2] = cellRef({ shape: [B, 4 * H], data: g }, b, { shape: [B, H], data: ce });
      const out = new Float64Array(B * 2 * H);
      for (let r = 0; r < B; r++) {
        out.set(h2.subarray(r * H, (r + 1) * H), r * 2 * H);
        out.set(c2.subarray(r * H, (r + 1) * H), r * 2 * H + H);
      }
      return { shape: [B, 2 * H], data: out };
    },
    [wide, gh, c1],
  );
});

// ---------------------------------------------------------------- 2. nn.LSTM vs the reference

interface LstmCase {
  name: string;
  B: number;
  T: number;
  inF: number;
  H: number;
  layers: number;
  batchFirst: boolean;
  bias: boolean;
}

const LSTM_CASES: LstmCase[] = [
  { name: "1 layer, batch first", B: 2, T: 3, inF: 3, H: 4, layers: 1, batchFirst: true, bias: true },
  { name: "2 layers, time first", B: 3, T: 4, inF: 5, H: 3, layers: 2, batchFirst: false, bias: true },
  {
    name: "2 layers, no bias, batch first",
    B: 2,
    T: 2,
    inF: 2,
    H: 5,
    layers: 2,
    batchFirst: true,
    bias: false,
  },
];

/** [T, B, F] ↔ [B, T, F] on host data. */
function swap01(a: Float64Array, d0: number, d1: number, f: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < d0; i++) {
    for (let j = 0; j < d1; j++) {
      out.set(a.subarray((i * d1 + j) * f, (i * d1 + j + 1) * f), (j * d0 + i) * f);
    }
  }
  return out;
}

for (const [ci, c] of LSTM_CASES.entries()) {
  gpuTest(`LSTM forward and gradients match the float64 reference: ${c.name}`, async () => {
    const rng = new Rng(20 + ci);
    const lstm = new LSTM(c.inF, c.H, {
      numLayers: c.layers,
      batchFirst: c.batchFirst,
      bias: c.bias,
      rng: new Rng(ci),
    });
    // Larger-than-init weights so the gates are not all near 0.5.
    const w0 = await download(lstm);
    const w: RefWeights = new Map([...w0].map(([k, v]) => [k, v.map(() => rng.uniform(-0.8, 0.8))]));
    upload(lstm, w);
    const { B, T, inF, H, layers } = c;
    const xBT = rng.uniformArray(B * T * inF, -1.5, 1.5);
    const h0 = rng.uniformArray(layers * B * H, -1, 1), c0 = rng.uniformArray(layers * B * H, -1, 1);
    const dims = { B, T, inF, H, layers, bias: c.bias };
    const ref = refLstm(w, xBT, dims, h0, c0);
    const R1 = rng.uniformArray(B * T * H), R2 = rng.uniformArray(layers * B * H);
    const R3 = rng.uniformArray(layers * B * H);
    const xIn = c.batchFirst ? xBT : swap01(xBT, B, T, inF);
    const xs = fromArray(Float32Array.from(xIn), c.batchFirst ? [B, T, inF] : [T, B, inF]).requireGrad();
    const hs = fromArray(Float32Array.from(h0), [layers, B, H]).requireGrad();
    const cs = fromArray(Float32Array.from(c0), [layers, B, H]).requireGrad();
    lstm.zeroGrad();
    const out = tidy(() => {
      const r = lstm.forward(xs, { h: hs, c: cs });
      const outBT = c.batchFirst ? r.output : transpose(r.output, 0, 1);
      const loss = sum(
        concat([
          reshape(mul(outBT, fromArray(Float32Array.from(R1), [B, T, H])), [-1]),
          reshape(mul(r.h, fromArray(Float32Array.from(R2), [layers, B, H])), [-1]),
          reshape(mul(r.c, fromArray(Float32Array.from(R3), [layers, B, H])), [-1]),
        ]),
      );
      loss.backward();
      return r;
    });
    assertShape(out.output, c.batchFirst ? [B, T, H] : [T, B, H], "output");
    assertShape(out.h, [layers, B, H], "h");
    const gotOut = Float64Array.from(await out.output.toArray());
    close(c.batchFirst ? gotOut : swap01(gotOut, T, B, H), ref.output, "output");
    close(await out.h.toArray(), ref.h, "h_n");
    close(await out.c.toArray(), ref.c, "c_n");
    // The single-step API from a zero state gives the same as forward from zeros.
    const zeroRef = refLstm(w, xBT, dims, new Float64Array(layers * B * H), new Float64Array(layers * B * H));
    const stepTop = tidy(() => {
      let s = lstm.zeroState(B);
      for (let t = 0; t < T; t++) {
        const xt = reshape(slice(xs, c.batchFirst ? 1 : 0, t, t + 1), [B, inF]);
        s = lstm.step(xt, s);
      }
      return s.h[layers - 1];
    });
    const lastRef = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      lastRef.set(zeroRef.output.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
    }
    close(await stepTop.toArray(), lastRef, "step() from zeroState");
    stepTop.dispose();

    const objective = (ww: RefWeights, x: Float64Array, hh: Float64Array, cc: Float64Array) => {
      const r = refLstm(ww, x, dims, hh, cc);
      let s = 0;
      r.output.forEach((v, i) => (s += v * R1[i]));
      r.h.forEach((v, i) => (s += v * R2[i]));
      r.c.forEach((v, i) => (s += v * R3[i]));
      return s;
    };
    const eps = 1e-6;
    const fdOf = (data: Float64Array, f: (d: Float64Array) => number) =>
      Array.from(data, (_, j) => {
        const p = data.slice(), m = data.slice();
        p[j] += eps;
        m[j] -= eps;
        return (f(p) - f(m)) / (2 * eps);
      });
    const checks: { name: string; got: ArrayLike<number>; fd: number[] }[] = [];
    for (const [name, p] of lstm.namedParameters()) {
      const fd = fdOf(w.get(name)!, (d) => objective(new Map(w).set(name, d), xBT, h0, c0));
      checks.push({ name, got: await p.grad!.toArray(), fd });
    }
    const gx = Float64Array.from(await xs.grad!.toArray());
    checks.push({
      name: "x",
      got: c.batchFirst ? gx : swap01(gx, T, B, inF),
      fd: fdOf(xBT, (d) => objective(w, d, h0, c0)),
    });
    checks.push({ name: "h0", got: await hs.grad!.toArray(), fd: fdOf(h0, (d) => objective(w, xBT, d, c0)) });
    checks.push({ name: "c0", got: await cs.grad!.toArray(), fd: fdOf(c0, (d) => objective(w, xBT, h0, d)) });
    const scale = Math.max(...checks.map((k) => maxAbs(k.fd)));
    for (const k of checks) {
      assertClose(k.got, k.fd, { atol: 2e-4 * scale, rtol: 1e-3, msg: `grad ${k.name}` });
    }
    for (const t of [out.output, out.h, out.c, xs, hs, cs]) t.dispose();
    lstm.dispose();
  });
}

gpuTest("LSTM: names, shapes, init range; inter-layer dropout only in training", async () => {
  const lstm = new LSTM(3, 4, { numLayers: 2, batchFirst: true, dropout: 1, rng: new Rng(5) });
  const exp: [string, number[]][] = [
    ["weight_ih_l0", [16, 3]],
    ["weight_hh_l0", [16, 4]],
    ["bias_ih_l0", [16]],
    ["bias_hh_l0", [16]],
    ["weight_ih_l1", [16, 4]],
    ["weight_hh_l1", [16, 4]],
    ["bias_ih_l1", [16]],
    ["bias_hh_l1", [16]],
  ];
  const sd = lstm.stateDict();
  if ([...sd.keys()].join() !== exp.map((e) => e[0]).join()) throw new Error(`names ${[...sd.keys()]}`);
  for (const [k, s] of exp) {
    assertShape(sd.get(k)!, s, k);
    const a = await sd.get(k)!.toArray();
    if (maxAbs(a) > 0.5 || maxAbs(a) < 0.3) throw new Error(`${k}: init not U(±1/√4): max ${maxAbs(a)}`);
  }
  const noBias = new LSTM(3, 4, { bias: false });
  if ([...noBias.stateDict().keys()].join() !== "weight_ih_l0,weight_hh_l0") throw new Error("bias: false");
  noBias.dispose();
  const w = await download(lstm);
  const rng = new Rng(6);
  const B = 2, T = 3;
  const x = rng.uniformArray(B * T * 3, -1, 1);
  const zeros = new Float64Array(2 * B * 4);
  // Eval: no dropout, the plain reference.
  lstm.eval();
  const ev = tidy(() => lstm.forward(fromArray(Float32Array.from(x), [B, T, 3])).output);
  close(await ev.toArray(), refLstm(w, x, { B, T, inF: 3, H: 4, layers: 2 }, zeros, zeros).output, "eval");
  // Training with p = 1: layer 1 sees zeros, so the output is a 1-layer LSTM (layer 1's weights)
  // over a zero input.
  lstm.train();
  const tr = tidy(() => lstm.forward(fromArray(Float32Array.from(x), [B, T, 3])).output);
  const w1: RefWeights = new Map();
  for (const n of ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]) w1.set(`${n}_l0`, w.get(`${n}_l1`)!);
  const ref1 = refLstm(w1, new Float64Array(B * T * 4), { B, T, inF: 4, H: 4, layers: 1 }, zeros, zeros);
  close(await tr.toArray(), ref1.output, "training, dropout 1");
  ev.dispose();
  tr.dispose();
  lstm.dispose();
});

// ---------------------------------------------------------------- 3. the baseline

const BASE: LstmBaselineOptions = {
  iterations: 4,
  dModel: 6,
  dInput: 8,
  heads: 2,
  backboneType: "parity_backbone",
  numLayers: 1,
  positionalEmbeddingType: "custom-rotational-1d",
  outDims: 8,
  predictionReshaper: [4, 2],
};
const BASE_CASES: { name: string; cfg: LstmBaselineOptions; B: number; inShape: number[] }[] = [
  { name: "parity, 1 layer", cfg: BASE, B: 2, inShape: [4] },
  { name: "parity, 2 layers", cfg: { ...BASE, numLayers: 2, iterations: 3, dModel: 5 }, B: 2, inShape: [4] },
  {
    name: "backbone none [C, H, W], 1 layer",
    cfg: {
      ...BASE,
      backboneType: "none",
      positionalEmbeddingType: "none",
      outDims: 6,
      predictionReshaper: [-1],
      iterations: 3,
    },
    B: 2,
    inShape: [3, 2, 2],
  },
];

function makeInput(cfg: LstmBaselineOptions, shape: number[], rng: Rng) {
  const n = size(shape);
  const data = cfg.backboneType === "parity_backbone"
    ? Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1))
    : rng.uniformArray(n, -1, 1);
  return { shape, data };
}

const gpuIn = (x: { shape: number[]; data: Float64Array }) => fromArray(Float32Array.from(x.data), x.shape);

/** Builds a baseline and perturbs every parameter (biases, LayerNorm affines off their init). */
async function buildBaseline(
  cfg: LstmBaselineOptions,
  seed: number,
  x: { shape: number[]; data: Float64Array },
) {
  const m = new LstmBaseline({ ...cfg, rng: new Rng(seed) });
  tidy(() => void m.forward(gpuIn(x))); // materialises a lazy kv projection (backbone none)
  const rng = new Rng(seed + 1000);
  const w0 = await download(m);
  const w: RefWeights = new Map(
    [...w0].map(([k, v]) => [k, v.map((x) => x + rng.uniform(k.startsWith("lstm.") ? -0.5 : -0.2, 0.5))]),
  );
  upload(m, w);
  return { m, w };
}

function disposeOut(o: LstmOutput): void {
  for (const t of [o.predictions, o.certainties, o.hidden]) t.dispose();
  if (o.tracking) { for (const t of Object.values(o.tracking)) t.dispose(); }
}

for (const [ci, c] of BASE_CASES.entries()) {
  gpuTest(`LstmBaseline forward matches the float64 reference: ${c.name}`, async () => {
    const rng = new Rng(40 + ci);
    const x = makeInput(c.cfg, [c.B, ...c.inShape], rng);
    const { m, w } = await buildBaseline(c.cfg, 3 + ci, x);
    m.eval();
    const ref = lstmBaselineReference(c.cfg, w, x);
    const o = tidy(() => m.forward(gpuIn(x), { track: true }));
    const { B } = c, T = c.cfg.iterations, D = c.cfg.dModel;
    assertShape(o.predictions, [B, c.cfg.outDims, T], "predictions");
    assertShape(o.certainties, [B, 2, T], "certainties");
    assertShape(o.hidden, [B, D], "hidden");
    assertShape(o.tracking!.preActivations, [T, B, D], "pre");
    assertShape(o.tracking!.postActivations, [T, B, D], "post");
    assertShape(o.tracking!.attention, [T, B, c.cfg.heads, 1, ref.L], "attention");
    close(await o.predictions.toArray(), ref.predictions, "predictions");
    close(await o.certainties.toArray(), ref.certainties, "certainties");
    close(await o.tracking!.postActivations.toArray(), ref.post, "post-activations");
    close(await o.tracking!.attention.toArray(), ref.attention, "attention");
    close(await o.hidden.toArray(), ref.post.subarray((T - 1) * B * D), "final hidden");
    if (maxAbs(await o.tracking!.preActivations.toArray()) !== 0) throw new Error("pre-activations not zero");
    const p = ref.predictions;
    if (maxAbs(p.map((v, i) => (i % T ? v - p[i - 1] : 0))) < 1e-4) throw new Error("ticks do not differ");
    disposeOut(o);
    m.dispose();
  });
}

for (const ci of [0, 1]) {
  const c = BASE_CASES[ci];
  gpuTest(`LstmBaseline gradients match finite differences of the reference: ${c.name}`, async () => {
    const rng = new Rng(60 + ci);
    const x = makeInput(c.cfg, [c.B, ...c.inShape], rng);
    const { m, w } = await buildBaseline(c.cfg, 70 + ci, x);
    const T = c.cfg.iterations;
    const R = rng.uniformArray(c.B * c.cfg.outDims * T, -1, 1);
    m.zeroGrad();
    tidy(() => {
      const o = m.forward(gpuIn(x));
      sum(mul(o.predictions, fromArray(Float32Array.from(R), o.predictions.shape))).backward();
    });
    const objective = (ww: RefWeights) => {
      const p = lstmBaselineReference(c.cfg, ww, x).predictions;
      let s = 0;
      for (let i = 0; i < p.length; i++) s += p[i] * R[i];
      return s;
    };
    const results: { name: string; gpu: number[]; fd: number[] }[] = [];
    for (const [name, p] of m.namedParameters()) {
      if (!p.grad) throw new Error(`${name} got no gradient`);
      const g = await p.grad.toArray();
      const n = p.size;
      const idx = n <= 12
        ? Array.from({ length: n }, (_, i) => i)
        : Array.from({ length: 10 }, () => rng.int(n));
      const base = w.get(name)!;
      const fd = idx.map((j) => {
        const plus = base.slice(), minus = base.slice();
        plus[j] += 1e-6;
        minus[j] -= 1e-6;
        return (objective(new Map(w).set(name, plus)) - objective(new Map(w).set(name, minus))) / 2e-6;
      });
      results.push({ name, gpu: idx.map((j) => g[j]), fd });
    }
    const globalMax = Math.max(...results.map((r) => maxAbs(r.fd)));
    if (!(globalMax > 1e-3)) throw new Error(`gradients vanish (max ${globalMax})`);
    for (const r of results) {
      const scale = Math.max(maxAbs(r.fd), 1e-2 * globalMax);
      assertClose(r.gpu, r.fd, {
        atol: 1e-3 * scale,
        rtol: 1e-3,
        msg: `grad ${r.name} (scale ${scale.toExponential(2)})`,
      });
    }
    m.dispose();
  });
}

/** The reference's state dict for the baseline, from the configuration alone. */
function expectedBaselineStateDict(cfg: LstmBaselineOptions, dBackbone: number): Map<string, number[]> {
  const e = new Map<string, number[]>();
  const D = cfg.dModel, d = cfg.dInput;
  e.set("start_hidden_state", [cfg.numLayers, D]);
  e.set("start_cell_state", [cfg.numLayers, D]);
  if (cfg.backboneType === "parity_backbone") e.set("backbone.embedding.weight", [2, d]);
  if (cfg.positionalEmbeddingType === "custom-rotational-1d") {
    e.set("positional_embedding.projection.weight", [dBackbone, 2]);
    e.set("positional_embedding.projection.bias", [dBackbone]);
  }
  e.set("kv_proj.0.weight", [d, dBackbone]);
  e.set("kv_proj.0.bias", [d]);
  e.set("kv_proj.1.weight", [d]);
  e.set("kv_proj.1.bias", [d]);
  for (let k = 0; k < cfg.numLayers; k++) {
    e.set(`lstm.weight_ih_l${k}`, [4 * D, k === 0 ? d : D]);
    e.set(`lstm.weight_hh_l${k}`, [4 * D, D]);
    e.set(`lstm.bias_ih_l${k}`, [4 * D]);
    e.set(`lstm.bias_hh_l${k}`, [4 * D]);
  }
  e.set("q_proj.weight", [d, D]);
  e.set("q_proj.bias", [d]);
  e.set("attention.in_proj_weight", [3 * d, d]);
  e.set("attention.in_proj_bias", [3 * d]);
  e.set("attention.out_proj.weight", [d, d]);
  e.set("attention.out_proj.bias", [d]);
  e.set("output_projector.weight", [cfg.outDims, D]);
  e.set("output_projector.bias", [cfg.outDims]);
  return e;
}

gpuTest("LstmBaseline state-dict names and shapes match the reference's", () => {
  for (const c of BASE_CASES) {
    const m = new LstmBaseline({ ...c.cfg, rng: new Rng(1) });
    tidy(() => void m.forward(gpuIn(makeInput(c.cfg, [c.B, ...c.inShape], new Rng(2))))); // materialise
    const exp = expectedBaselineStateDict(c.cfg, c.cfg.backboneType === "none" ? c.inShape[0] : c.cfg.dInput);
    const got = m.stateDict();
    const missing = [...exp.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !exp.has(k));
    if (missing.length || extra.length) {
      throw new Error(`${c.name}: missing [${missing}], unexpected [${extra}]`);
    }
    for (const [k, s] of exp) assertShape(got.get(k)!, s, `${c.name}: ${k}`);
    if ([...m.namedParameters().keys()].sort().join() !== [...exp.keys()].sort().join()) {
      throw new Error(`${c.name}: parameters differ from the state dict`);
    }
    m.dispose();
  }
});

gpuTest("LstmBaseline stateDict → other-seed model → loadStateDict gives identical outputs", async () => {
  for (const c of [BASE_CASES[1], BASE_CASES[2]]) {
    const x = makeInput(c.cfg, [c.B, ...c.inShape], new Rng(80));
    const { m: a } = await buildBaseline(c.cfg, 81, x);
    const b = new LstmBaseline({ ...c.cfg, rng: new Rng(82) });
    const pa = tidy(() => a.forward(gpuIn(x), { track: true }));
    const before = tidy(() => b.forward(gpuIn(x)).predictions);
    const A = await pa.predictions.toArray();
    if (maxAbs((await before.toArray()).map((v, i) => v - A[i])) < 1e-4) {
      throw new Error("seeds gave same model");
    }
    b.loadStateDict(a.stateDict());
    const pb = tidy(() => b.forward(gpuIn(x), { track: true }));
    for (const k of ["predictions", "certainties", "hidden"] as const) {
      assertClose(await pb[k].toArray(), await pa[k].toArray(), { atol: 0, rtol: 0, msg: k });
    }
    for (const k of ["postActivations", "attention"] as const) {
      assertClose(await pb.tracking![k].toArray(), await pa.tracking![k].toArray(), {
        atol: 0,
        rtol: 0,
        msg: k,
      });
    }
    before.dispose();
    disposeOut(pa);
    disposeOut(pb);
    a.dispose();
    b.dispose();
  }
});

gpuTest("LstmBaseline rejects invalid arguments", () => {
  const bad: [Partial<LstmBaselineOptions>, RegExp][] = [
    [{ heads: 3 }, /divisible/],
    [{ numLayers: 0 }, /numLayers/],
    [{ backboneType: "none" }, /none.*positional/],
    [{ backboneType: "resnet99-1" }, /backbone/],
  ];
  for (const [o, re] of bad) {
    let msg = "";
    try {
      new LstmBaseline({ ...BASE, ...o }).dispose();
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!re.test(msg)) throw new Error(`${JSON.stringify(o)}: error '${msg}' does not match ${re}`);
  }
});

// ---------------------------------------------------------------- 4. parameter counts (§1.8)

const PARITY = { dInput: 512, heads: 8, outDims: 128, predictionReshaper: [64, 2] };

gpuTest("parity parameter counts match ctm-reference.md §1.8 (LSTM baseline and CTM)", () => {
  const lstmRows: [number, number][] = [[669, 4912710], [686, 5050716], [706, 5216036], [765, 5722374], [
    857,
    6567486,
  ]];
  const errors: string[] = [];
  for (const [d, want] of lstmRows) {
    const m = new LstmBaseline({
      ...PARITY,
      iterations: 1,
      dModel: d,
      numLayers: 1,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      rng: new Rng(0),
    });
    const got = m.parameterCount();
    if (got !== want) errors.push(`LSTM d=${d}: ${got} != ${want} (${got - want})`);
    m.dispose();
  }
  const ctmRows: [number, number, number][] = [[1, 1, 4908706], [10, 5, 5043874], [25, 10, 5212834], [
    75,
    25,
    5719714,
  ], [100, 50, 6564514]];
  for (const [iters, M, want] of ctmRows) {
    const m = new Ctm({
      ...PARITY,
      iterations: iters,
      dModel: 1024,
      nSynchOut: 32,
      nSynchAction: 32,
      synapseDepth: 1,
      memoryLength: M,
      deepNlms: true,
      memoryHiddenDims: 16,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      neuronSelectType: "random",
      rng: new Rng(0),
    });
    const got = m.parameterCount();
    if (got !== want) errors.push(`CTM ${iters}/${M}: ${got} != ${want} (${got - want})`);
    m.dispose();
  }
  if (errors.length) throw new Error(errors.join("; "));
});

gpuTest("LSTM.step and the fused cell free every intermediate (no scope, with backward)", () => {
  const lstm = new LSTM(3, 4, { numLayers: 2, dropout: 0.5, rng: new Rng(10) });
  const x = fromArray(new Float32Array(2 * 3).fill(0.5), [2, 3]);
  const c0 = fromArray(new Float32Array(4).fill(0.1), [1, 4]).requireGrad();
  const run = () => {
    const ce = expand(c0, [2, 4]);
    let s = lstm.zeroState(2);
    s.c[0].dispose();
    s.c[0] = ce;
    for (let t = 0; t < 3; t++) {
      const n = lstm.step(x, s);
      for (const u of [...s.h, ...s.c]) u.dispose();
      s = n;
    }
    const l = sum(s.h[1]);
    l.backward();
    for (const u of [l, ...s.h, ...s.c]) u.dispose();
    lstm.zeroGrad();
    c0.grad?.dispose();
    c0.grad = null;
  };
  run();
  const live = memoryStats().liveBytes;
  run();
  run();
  if (memoryStats().liveBytes !== live) throw new Error(`leaked ${memoryStats().liveBytes - live} bytes`);
  for (const t of [x, c0]) t.dispose();
  lstm.dispose();
});

gpuTest("LstmBaseline and LSTM.forward free their graphs and saved tensors (inside tidy)", () => {
  const cfg = { ...BASE_CASES[1].cfg, dropout: 0.3 };
  const m = new LstmBaseline({ ...cfg, rng: new Rng(9) });
  const lstm = new LSTM(3, 4, { numLayers: 2, dropout: 0.5, rng: new Rng(10) });
  const x = gpuIn(makeInput(cfg, [2, 4], new Rng(11)));
  const xs = fromArray(new Float32Array(2 * 3 * 3).fill(0.5), [3, 2, 3]);
  const run = (track: boolean) => {
    tidy(() => {
      sum(m.forward(x, { track }).predictions).backward();
      sum(lstm.forward(xs).output).backward();
      m.forward(x, { track }); // a graph that is never back-propagated
    });
    m.zeroGrad();
    lstm.zeroGrad();
  };
  run(true);
  const live = memoryStats().liveBytes;
  run(false);
  run(true);
  if (memoryStats().liveBytes !== live) throw new Error(`leaked ${memoryStats().liveBytes - live} bytes`);
  x.dispose();
  xs.dispose();
  m.dispose();
  lstm.dispose();
});
