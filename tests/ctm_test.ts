/**
 * The GPU CTM against an independent float64 reference (`ctm_reference.ts`): forward outputs and
 * per-tick internals for every neuron selection, both synapse kinds, deep/linear NLMs (with and
 * without the history LayerNorm) and both backbones; gradients of every parameter against
 * central finite differences of the reference; save/load round trips; state-dict names and shapes;
 * argument errors.
 */
import { assertClose, gpuTest, Rng } from "./helpers.ts";
import { Ctm, type CtmOptions, type CtmOutput } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { ctmReference, type RefInput, refSyncSize, refUnetWidths, type RefWeights } from "./ctm_reference.ts";

interface Case {
  name: string;
  cfg: CtmOptions;
  /** Batch size. */
  B: number;
  /** Input shape after the batch dim: `[L]` (parity) or `[C, ...]` (backbone none). */
  inShape: number[];
}

const base = {
  dInput: 8,
  heads: 2,
  memoryLength: 3,
  memoryHiddenDims: 2,
} as const;

const CASES: Case[] = [
  {
    name: "first-last, synapse depth 1, deep NLM, parity backbone + rotational-1d",
    cfg: {
      ...base,
      iterations: 4,
      dModel: 16,
      nSynchOut: 4,
      nSynchAction: 3,
      synapseDepth: 1,
      deepNlms: true,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      outDims: 8,
      predictionReshaper: [4, 2],
      neuronSelectType: "first-last",
    },
    B: 2,
    inShape: [4],
  },
  {
    name: "random, U-Net synapse depth 3, linear NLM with LayerNorm, parity backbone",
    cfg: {
      ...base,
      iterations: 3,
      dModel: 32,
      nSynchOut: 4,
      nSynchAction: 3,
      synapseDepth: 3,
      deepNlms: false,
      doLayernormNlm: true,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      outDims: 8,
      predictionReshaper: [4, 2],
      neuronSelectType: "random",
    },
    B: 2,
    inShape: [4],
  },
  {
    name: "random-pairing (1 self pair), synapse depth 1, deep NLM, backbone none [C, L]",
    cfg: {
      ...base,
      iterations: 5,
      dModel: 20,
      nSynchOut: 4,
      nSynchAction: 4,
      synapseDepth: 1,
      deepNlms: true,
      backboneType: "none",
      positionalEmbeddingType: "none",
      outDims: 5,
      neuronSelectType: "random-pairing",
      nRandomPairingSelf: 1,
    },
    B: 2,
    inShape: [5, 6],
  },
  {
    name: "first-last, U-Net depth 2, deep NLM with LayerNorm, backbone none [C, H, W]",
    cfg: {
      ...base,
      iterations: 3,
      dModel: 24,
      nSynchOut: 3,
      nSynchAction: 4,
      synapseDepth: 2,
      deepNlms: true,
      doLayernormNlm: true,
      backboneType: "none",
      positionalEmbeddingType: "none",
      outDims: 6,
      predictionReshaper: [-1, 3],
      neuronSelectType: "first-last",
    },
    B: 2,
    inShape: [3, 2, 2],
  },
];

// ---------------------------------------------------------------- helpers

function makeInput(c: Case, rng: Rng): RefInput {
  const shape = [c.B, ...c.inShape];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = c.cfg.backboneType === "parity_backbone"
    ? Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1))
    : rng.uniformArray(n, -1, 1);
  return { shape, data };
}

const toGpuInput = (x: RefInput) => fromArray(Float32Array.from(x.data), x.shape);

/** Downloads a model's state dict as float64 (f32) / Int32Array (index buffers). */
async function download(ctm: Ctm): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const [k, t] of ctm.stateDict()) {
    const a = await t.toArray();
    w.set(k, t.dtype === "i32" ? Int32Array.from(a) : Float64Array.from(a));
  }
  return w;
}

/**
 * Builds a model, runs it once (materialising lazy layers), then perturbs every float parameter
 * (so biases, LayerNorm affines and the NLM temperatures are not at their trivial init) and sets
 * the decay parameters to U(0.1, 2); returns the model and the weights it now holds.
 */
async function buildModel(c: Case, seed: number, x: RefInput): Promise<{ ctm: Ctm; w: RefWeights }> {
  const ctm = new Ctm({ ...c.cfg, rng: new Rng(seed) });
  tidy(() => void ctm.forward(toGpuInput(x)));
  const rng = new Rng(seed + 1000);
  const fresh = new Map<string, Tensor>();
  for (const [k, t] of ctm.stateDict()) {
    if (t.dtype !== "f32") continue;
    const a = Float64Array.from(await t.toArray());
    const v = k.startsWith("decay_params")
      ? a.map(() => rng.uniform(0.1, 2))
      : a.map((x) => x + rng.uniform(-0.2, 0.2));
    fresh.set(k, fromArray(Float32Array.from(v), t.shape));
  }
  ctm.loadStateDict(fresh, { strict: false });
  for (const t of fresh.values()) t.dispose();
  return { ctm, w: await download(ctm) };
}

function disposeOutput(o: CtmOutput): void {
  o.predictions.dispose();
  o.certainties.dispose();
  o.syncOut.dispose();
  if (o.tracking) { for (const t of Object.values(o.tracking)) t.dispose(); }
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** float32-level agreement: |a − e| ≤ tol·max(1, max|e|) + tol·|e|. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, msg: string, tol = 1e-4): void {
  assertClose(actual, expected, { atol: tol * Math.max(1, maxAbs(expected)), rtol: tol, msg });
}

function expectThrow(fn: () => unknown, re: RegExp, what: string): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`${what}: expected an error matching ${re}, got none`);
  const m = err instanceof Error ? err.message : String(err);
  if (!re.test(m)) throw new Error(`${what}: error '${m}' does not match ${re}`);
}

/** The reference's state dict (names → shape, dtype) computed from the configuration alone. */
function expectedStateDict(
  cfg: CtmOptions,
  dBackbone: number,
): Map<string, { shape: number[]; dtype: string }> {
  const e = new Map<string, { shape: number[]; dtype: string }>();
  const f = (k: string, ...shape: number[]) => e.set(k, { shape, dtype: "f32" });
  const D = cfg.dModel, d = cfg.dInput, M = cfg.memoryLength, H = cfg.memoryHiddenDims;
  const sel = cfg.neuronSelectType ?? "random-pairing";
  const Sout = refSyncSize(sel, cfg.nSynchOut), Sact = refSyncSize(sel, cfg.nSynchAction);
  f("start_activated_state", D);
  f("start_trace", D, M);
  f("decay_params_out", Sout);
  f("decay_params_action", Sact);
  for (const s of ["out", "action"]) {
    const n = s === "out" ? cfg.nSynchOut : cfg.nSynchAction;
    for (const lr of ["left", "right"]) e.set(`${s}_neuron_indices_${lr}`, { shape: [n], dtype: "i32" });
  }
  if (cfg.backboneType === "parity_backbone") f("backbone.embedding.weight", 2, d);
  if (cfg.positionalEmbeddingType === "custom-rotational-1d") {
    f("positional_embedding.projection.weight", dBackbone, 2);
    f("positional_embedding.projection.bias", dBackbone);
  }
  f("kv_proj.0.weight", d, dBackbone);
  f("kv_proj.0.bias", d);
  f("kv_proj.1.weight", d);
  f("kv_proj.1.bias", d);
  f("q_proj.weight", d, Sact);
  f("q_proj.bias", d);
  f("attention.in_proj_weight", 3 * d, d);
  f("attention.in_proj_bias", 3 * d);
  f("attention.out_proj.weight", d, d);
  f("attention.out_proj.bias", d);
  if (cfg.synapseDepth === 1) {
    f("synapses.1.weight", 2 * D, d + D);
    f("synapses.1.bias", 2 * D);
    f("synapses.3.weight", D);
    f("synapses.3.bias", D);
  } else {
    const w = refUnetWidths(D, cfg.synapseDepth);
    f("synapses.first_projection.0.weight", w[0], d + D);
    f("synapses.first_projection.0.bias", w[0]);
    f("synapses.first_projection.1.weight", w[0]);
    f("synapses.first_projection.1.bias", w[0]);
    for (let i = 0; i < w.length - 1; i++) {
      f(`synapses.down_projections.${i}.1.weight`, w[i + 1], w[i]);
      f(`synapses.down_projections.${i}.1.bias`, w[i + 1]);
      f(`synapses.down_projections.${i}.2.weight`, w[i + 1]);
      f(`synapses.down_projections.${i}.2.bias`, w[i + 1]);
      f(`synapses.up_projections.${i}.1.weight`, w[i], w[i + 1]);
      f(`synapses.up_projections.${i}.1.bias`, w[i]);
      f(`synapses.up_projections.${i}.2.weight`, w[i]);
      f(`synapses.up_projections.${i}.2.bias`, w[i]);
      f(`synapses.skip_lns.${i}.weight`, w[i]);
      f(`synapses.skip_lns.${i}.bias`, w[i]);
    }
  }
  const superLinear = (p: string, inF: number, outF: number) => {
    f(`${p}.w1`, inF, outF, D);
    f(`${p}.b1`, 1, D, outF);
    f(`${p}.T`, 1);
    if (cfg.doLayernormNlm) {
      f(`${p}.layernorm.weight`, inF);
      f(`${p}.layernorm.bias`, inF);
    }
  };
  if (cfg.deepNlms) {
    superLinear("trace_processor.0.0", M, 2 * H);
    superLinear("trace_processor.0.2", H, 2);
  } else {
    superLinear("trace_processor.0.0", M, 2);
  }
  f("output_projector.0.weight", cfg.outDims, Sout);
  f("output_projector.0.bias", cfg.outDims);
  return e;
}

const fmtShape = (s: readonly number[]) => `[${s.join(",")}]`;

// ---------------------------------------------------------------- 1. forward + tracking

for (const [ci, c] of CASES.entries()) {
  gpuTest(`ctm forward matches float64 reference: ${c.name}`, async () => {
    const rng = new Rng(10 + ci);
    const x = makeInput(c, rng);
    const { ctm, w } = await buildModel(c, 1 + ci, x);
    // Index buffers follow the selection rules.
    const sel = c.cfg.neuronSelectType!;
    for (const s of ["out", "action"] as const) {
      const n = s === "out" ? c.cfg.nSynchOut : c.cfg.nSynchAction;
      const L = w.get(`${s}_neuron_indices_left`) as Int32Array;
      const R = w.get(`${s}_neuron_indices_right`) as Int32Array;
      for (const a of [L, R]) {
        if (a.length !== n || a.some((v) => v < 0 || v >= c.cfg.dModel)) throw new Error(`${s} indices ${a}`);
      }
      if (sel === "first-last") {
        const start = s === "out" ? 0 : c.cfg.dModel - n;
        close(L, Array.from({ length: n }, (_, i) => start + i), `${s} left`, 0);
        close(R, Array.from({ length: n }, (_, i) => start + i), `${s} right`, 0);
      }
      if (sel === "random-pairing") {
        const k = c.cfg.nRandomPairingSelf ?? 0;
        close(R.subarray(0, k), L.subarray(0, k), `${s} self pairs`, 0);
      }
    }
    const ref = ctmReference(c.cfg, w, x, { track: true });
    const tr = ref.tracking!;
    const o = tidy(() => ctm.forward(toGpuInput(x), { track: true }));
    const T = c.cfg.iterations, B = c.B, D = c.cfg.dModel;
    const check = async (t: Tensor, shape: number[], exp: Float64Array, what: string) => {
      if (fmtShape(t.shape) !== fmtShape(shape)) {
        throw new Error(`${what} shape ${fmtShape(t.shape)} != ${fmtShape(shape)}`);
      }
      close(await t.toArray(), exp, what);
    };
    await check(o.predictions, [B, c.cfg.outDims, T], ref.predictions, "predictions");
    await check(o.certainties, [B, 2, T], ref.certainties, "certainties");
    await check(o.syncOut, [B, ctm.syncOutSize], ref.syncOut, "final syncOut");
    const g = o.tracking!;
    await check(g.syncOut, [T, B, ctm.syncOutSize], tr.syncOut, "tracking.syncOut");
    await check(g.syncAction, [T, B, ctm.syncActionSize], tr.syncAction, "tracking.syncAction");
    await check(g.preActivations, [T, B, D], tr.preActivations, "tracking.preActivations");
    await check(g.postActivations, [T, B, D], tr.postActivations, "tracking.postActivations");
    await check(g.attention, [T, B, c.cfg.heads, 1, ref.L], tr.attention, "tracking.attention");
    // Sanity: the reference is not trivially constant over ticks.
    if (maxAbs(ref.predictions.map((v, i) => (i % T ? v - ref.predictions[i - 1] : 0))) < 1e-6) {
      throw new Error("predictions do not change over ticks: the test would be weak");
    }
    disposeOutput(o);
    ctm.dispose();
  });
}

gpuTest("ctm clamps decay params to [0, 15] in place", async () => {
  const c = CASES[0];
  const x = makeInput(c, new Rng(5));
  const { ctm, w } = await buildModel(c, 7, x);
  const dOut = w.get("decay_params_out") as Float64Array;
  dOut[0] = -0.7;
  dOut[1] = 22;
  const t = fromArray(Float32Array.from(dOut));
  ctm.loadStateDict(new Map([["decay_params_out", t]]), { strict: false });
  t.dispose();
  const ref = ctmReference(c.cfg, w, x);
  const pred = tidy(() => ctm.forward(toGpuInput(x)).predictions);
  close(await pred.toArray(), ref.predictions, "predictions with out-of-range decay");
  const after = await ctm.stateDict().get("decay_params_out")!.toArray();
  if (after[0] !== 0 || after[1] !== 15) {
    throw new Error(`decay not clamped in place: ${after[0]}, ${after[1]}`);
  }
  pred.dispose();
  ctm.dispose();
});

// ---------------------------------------------------------------- 2. gradients

for (const [ci, c] of CASES.entries()) {
  gpuTest(`ctm gradients match finite differences of the reference: ${c.name}`, async () => {
    const rng = new Rng(100 + ci);
    const x = makeInput(c, rng);
    const { ctm, w } = await buildModel(c, 50 + ci, x);
    const T = c.cfg.iterations;
    const R = rng.uniformArray(c.B * c.cfg.outDims * T, -1, 1);
    ctm.zeroGrad();
    tidy(() => {
      const o = ctm.forward(toGpuInput(x));
      sum(mul(o.predictions, fromArray(Float32Array.from(R), o.predictions.shape))).backward();
    });
    const objective = (ww: RefWeights) => {
      const p = ctmReference(c.cfg, ww, x).predictions;
      let s = 0;
      for (let i = 0; i < p.length; i++) s += p[i] * R[i];
      return s;
    };
    const params = ctm.namedParameters();
    const expectedParams = [...expectedStateDict(c.cfg, 0).entries()].filter(([, v]) => v.dtype === "f32")
      .map(([k]) => k).sort();
    if ([...params.keys()].sort().join() !== expectedParams.join()) {
      throw new Error(`parameters ${[...params.keys()].sort()} != ${expectedParams}`);
    }
    const results: { name: string; gpu: number[]; fd: number[] }[] = [];
    for (const [name, p] of params) {
      if (!p.grad) throw new Error(`${name} got no gradient`);
      const g = await p.grad.toArray();
      const n = p.size;
      const idx = n <= 12
        ? Array.from({ length: n }, (_, i) => i)
        : Array.from({ length: 10 }, () => rng.int(n));
      const base = w.get(name) as Float64Array;
      const fd: number[] = [];
      for (const j of idx) {
        const eps = 1e-6;
        const plus = base.slice(), minus = base.slice();
        plus[j] += eps;
        minus[j] -= eps;
        const wp = new Map(w), wm = new Map(w);
        wp.set(name, plus);
        wm.set(name, minus);
        fd.push((objective(wp) - objective(wm)) / (2 * eps));
      }
      results.push({ name, gpu: idx.map((j) => g[j]), fd });
    }
    const globalMax = Math.max(...results.map((r) => maxAbs(r.fd)));
    if (!(globalMax > 1e-3)) throw new Error(`gradients vanish (max ${globalMax}): the test would be weak`);
    for (const r of results) {
      const scale = Math.max(maxAbs(r.fd), 1e-2 * globalMax);
      assertClose(r.gpu, r.fd, {
        atol: 1e-3 * scale,
        rtol: 1e-3,
        msg: `grad ${r.name} (scale ${scale.toExponential(2)})`,
      });
    }
    ctm.dispose();
  });
}

// ---------------------------------------------------------------- 3. save → load

gpuTest("ctm stateDict → new model (other seed) → loadStateDict gives identical outputs", async () => {
  for (const ci of [1, 2]) {
    const c = CASES[ci];
    const x = makeInput(c, new Rng(200 + ci));
    const { ctm: a } = await buildModel(c, 300 + ci, x);
    const b = new Ctm({ ...c.cfg, rng: new Rng(999 + ci) });
    const pa = tidy(() => a.forward(toGpuInput(x), { track: true }));
    const before = tidy(() => b.forward(toGpuInput(x)).predictions);
    const ia = await a.stateDict().get("out_neuron_indices_left")!.toArray();
    const ib = await b.stateDict().get("out_neuron_indices_left")!.toArray();
    const pA = await pa.predictions.toArray();
    const diffBefore = maxAbs((await before.toArray()).map((v, i) => v - pA[i]));
    if (diffBefore < 1e-4) throw new Error("a differently seeded model gave the same predictions");
    if (c.cfg.neuronSelectType !== "first-last" && ia.every((v, i) => v === ib[i])) {
      throw new Error("a differently seeded model drew the same neuron indices");
    }
    b.loadStateDict(a.stateDict());
    const pb = tidy(() => b.forward(toGpuInput(x), { track: true }));
    assertClose(await pb.predictions.toArray(), pA, { atol: 0, rtol: 0, msg: "predictions after load" });
    // A model that never ran (lazy layers still unmaterialised) loads too.
    const fresh = new Ctm({ ...c.cfg, rng: new Rng(4321 + ci) });
    fresh.loadStateDict(a.stateDict());
    const pf = tidy(() => fresh.forward(toGpuInput(x)).predictions);
    assertClose(await pf.toArray(), pA, {
      atol: 0,
      rtol: 0,
      msg: "predictions after load into a fresh model",
    });
    pf.dispose();
    fresh.dispose();
    assertClose(await pb.certainties.toArray(), await pa.certainties.toArray(), {
      atol: 0,
      rtol: 0,
      msg: "certainties",
    });
    assertClose(await pb.tracking!.attention.toArray(), await pa.tracking!.attention.toArray(), {
      atol: 0,
      rtol: 0,
      msg: "attention",
    });
    for (const [k, t] of a.stateDict()) {
      assertClose(await b.stateDict().get(k)!.toArray(), await t.toArray(), { atol: 0, rtol: 0, msg: k });
    }
    before.dispose();
    disposeOutput(pa);
    disposeOutput(pb);
    a.dispose();
    b.dispose();
  }
});

// ---------------------------------------------------------------- 4. state-dict names and shapes

gpuTest("ctm state-dict names, shapes and dtypes match the reference's", () => {
  for (const c of CASES) {
    const ctm = new Ctm({ ...c.cfg, rng: new Rng(3) });
    const x = makeInput(c, new Rng(4));
    tidy(() => void ctm.forward(toGpuInput(x))); // materialise lazy layers
    const dBackbone = c.cfg.backboneType === "parity_backbone" ? c.cfg.dInput : c.inShape[0];
    const exp = expectedStateDict(c.cfg, dBackbone);
    const got = ctm.stateDict();
    const missing = [...exp.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !exp.has(k));
    if (missing.length || extra.length) {
      throw new Error(`${c.name}: missing [${missing.join(", ")}], unexpected [${extra.join(", ")}]`);
    }
    for (const [k, v] of exp) {
      const t = got.get(k)!;
      if (fmtShape(t.shape) !== fmtShape(v.shape) || t.dtype !== v.dtype) {
        throw new Error(
          `${c.name}: ${k} is ${fmtShape(t.shape)} ${t.dtype}, expected ${fmtShape(v.shape)} ${v.dtype}`,
        );
      }
    }
    const params = [...ctm.namedParameters().keys()].sort().join();
    const expParams = [...exp.entries()].filter(([, v]) => v.dtype === "f32").map(([k]) => k).sort().join();
    if (params !== expParams) throw new Error(`${c.name}: parameters ${params} != ${expParams}`);
    ctm.dispose();
  }
});

// ---------------------------------------------------------------- 5. argument errors

gpuTest("ctm rejects invalid arguments with clear errors", () => {
  const ok = CASES[0].cfg;
  expectThrow(
    () => new Ctm({ ...ok, neuronSelectType: "bogus" as CtmOptions["neuronSelectType"] }),
    /neuron_select_type/,
    "invalid neuron_select_type",
  );
  expectThrow(
    () => new Ctm({ ...ok, neuronSelectType: "first-last", dModel: 6, nSynchOut: 4, nSynchAction: 3 }),
    /first-last.*d_model|d_model.*n_synch/,
    "first-last with d_model < n_out + n_act",
  );
  expectThrow(
    () => new Ctm({ ...ok, backboneType: "none", positionalEmbeddingType: "custom-rotational-1d" }),
    /none.*positional|positional.*none/,
    "backbone none with a positional embedding",
  );
  expectThrow(() => new Ctm({ ...ok, backboneType: "resnet99-7" }), /backbone/, "unknown backbone");
  expectThrow(
    () => new Ctm({ ...ok, positionalEmbeddingType: "bogus" }),
    /positional/,
    "unknown positional embedding",
  );
  // random-pairing needs more pairs than self pairs (reference assert)
  expectThrow(
    () => new Ctm({ ...ok, neuronSelectType: "random-pairing", nRandomPairingSelf: 4, nSynchOut: 4 }),
    /random.pairing|self/,
    "random-pairing with n_synch <= n_random_pairing_self",
  );
});
