/**
 * The GPU LSTM module (`src/nn/lstm.ts`) against the independent float64 references of
 * `lstm_reference.ts`: forward values and gradients (central finite differences of the reference)
 * for the module and the fused cell kernel; inter-layer dropout; state-dict names, shapes and init
 * range; and that the single-step API frees its intermediates. The LSTM baseline model is tested in
 * `lstm_baseline_test.ts`.
 */
import { assertClose, gpuTest, gradcheck, type Ref, Rng } from "./helpers.ts";
import { LSTM, lstmCellUpdate } from "../src/nn/lstm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { concat, expand, reshape, slice, transpose } from "../src/ops/views.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { refLstm, refLstmCell, type RefWeights } from "./lstm_reference.ts";
import { assertShape, close, download, maxAbs, upload } from "./lstm_fixtures.ts";

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

// ---------------------------------------------------------------- 3. memory

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
