/**
 * The GPU CTM against an independent float64 reference (`ctm_reference.ts`): forward outputs and
 * per-tick internals for every neuron selection, both synapse kinds, deep/linear NLMs (with and
 * without the history LayerNorm) and both backbones; decay clamping; save/load round trips;
 * state-dict names and shapes; argument errors. Gradients are tested in `ctm_grad_test.ts`.
 */
import { assertClose, gpuTest, Rng } from "./helpers.ts";
import { Ctm, type CtmOptions } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { ctmReference } from "./ctm_reference.ts";
import {
  buildModel,
  CASES,
  close,
  disposeOutput,
  expectedStateDict,
  fmtShape,
  makeInput,
  maxAbs,
  toGpuInput,
} from "./ctm_fixtures.ts";

/** Throws unless `fn` throws an error whose message matches `re`. */
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

// ---------------------------------------------------------------- 2. save → load

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

// ---------------------------------------------------------------- 3. state-dict names and shapes

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

// ---------------------------------------------------------------- 4. argument errors

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
