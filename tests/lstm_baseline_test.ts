/**
 * The LSTM baseline (`src/models/lstm.ts`) against the independent float64 reference of
 * `lstm_reference.ts`: forward values and gradients (central finite differences of the reference)
 * of the whole baseline; state-dict names and shapes; save/load round trips; argument errors; the
 * parity parameter counts of `ctm-reference.md` §1.8 for both the baseline and the CTM; and that
 * the baseline and `LSTM.forward` free their graphs.
 */
import { assertClose, gpuTest, Rng, size } from "./helpers.ts";
import { LSTM } from "../src/nn/lstm.ts";
import { LstmBaseline, type LstmBaselineOptions, type LstmOutput } from "../src/models/lstm.ts";
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { lstmBaselineReference, type RefWeights } from "./lstm_reference.ts";
import { assertShape, close, download, maxAbs, upload } from "./lstm_fixtures.ts";

// ---------------------------------------------------------------- 1. the baseline

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
  e.set("output_projector.0.weight", [cfg.outDims, D]);
  e.set("output_projector.0.bias", [cfg.outDims]);
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

// ---------------------------------------------------------------- 2. parameter counts (§1.8)

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

// ---------------------------------------------------------------- 3. memory

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
