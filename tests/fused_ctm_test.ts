/**
 * The fused CTM recurrence (`src/ops/fused_ctm.ts`) against the op-by-op path of the same model
 * (`ctm.fused = false`, itself proven against the float64 reference in `ctm_test.ts`), on the
 * configurations `ctm_test.ts` does not run fused (see `CASES`); forward outputs, tracking and
 * every parameter gradient. Also: a repeated training step creates no new bind groups.
 */
import { assertClose, gpuTest, maxAbs, Rng } from "./helpers.ts";
import { Ctm, type CtmOptions } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { startFusedProfile, stopFusedProfile } from "../src/ops/fused_ctm.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { parityLoss } from "../src/train/losses.ts";

interface Case {
  name: string;
  cfg: CtmOptions;
  B: number;
  eval?: boolean;
}

const base: Omit<CtmOptions, "iterations" | "dModel" | "nSynchOut" | "nSynchAction" | "deepNlms"> = {
  dInput: 8,
  heads: 2,
  memoryLength: 3,
  memoryHiddenDims: 2,
  synapseDepth: 1,
  backboneType: "parity_backbone",
  positionalEmbeddingType: "custom-rotational-1d",
  outDims: 8,
  predictionReshaper: [4, 2],
};

// Three configurations (each compiles its own fused kernels, so few and small) that together
// cover: shallow and deep NLMs, the three neuron selections, memory length 1, 2 and 3, one tick,
// synchronisation sizes that are multiples of 4 (four pairs per access: 8 and 4) and not, odd
// batches (3, 67), a batch of 67 split into two NLM row chunks with a one-quad tail, heads of
// width 8, a hidden width that straddles texels (3) and one that needs two NLM-gradient blocks
// (17), eval mode with dropout configured (fused: dropout inactive), and d_input = 64 with
// d_input + d_model = 128, whose weights and keys/values go into textures by buffer copies.
const CASES: Case[] = [
  {
    name: "shallow NLM, random-pairing, odd batch, eval mode with dropout",
    cfg: {
      ...base,
      iterations: 3,
      dModel: 16,
      nSynchOut: 8,
      nSynchAction: 4,
      deepNlms: false,
      dropout: 0.3,
    },
    B: 3,
    eval: true,
  },
  {
    name: "one tick, memory length 1, first-last, 17 hidden, weights packed by copies",
    cfg: {
      ...base,
      iterations: 1,
      memoryLength: 1,
      memoryHiddenDims: 17,
      dInput: 64,
      dModel: 64,
      nSynchOut: 3,
      nSynchAction: 2,
      deepNlms: true,
      neuronSelectType: "first-last",
    },
    B: 2,
  },
  {
    name: "memory length 2, random, heads of width 8, 3 hidden, batch of 67 (two NLM row chunks)",
    cfg: {
      ...base,
      iterations: 3,
      memoryLength: 2,
      memoryHiddenDims: 3,
      dInput: 16,
      heads: 2,
      dModel: 20,
      nSynchOut: 4,
      nSynchAction: 4,
      deepNlms: true,
      neuronSelectType: "random",
    },
    B: 67,
  },
];

function input(B: number, L: number, rng: Rng): Tensor {
  return fromArray(Float32Array.from({ length: B * L }, () => (rng.next() < 0.5 ? -1 : 1)), [B, L]);
}

for (const c of CASES) {
  gpuTest(`fused CTM matches the op-by-op path: ${c.name}`, async () => {
    const rng = new Rng(7);
    const ctm = new Ctm({ ...c.cfg, rng: new Rng(11) });
    if (c.eval) ctm.eval();
    const x = input(c.B, 4, rng);
    tidy(() => void ctm.forward(x));
    // Move every float parameter off its trivial init (biases, temperatures, decays).
    const prng = new Rng(3);
    const fresh = new Map<string, Tensor>();
    for (const [k, t] of ctm.stateDict()) {
      if (t.dtype !== "f32") continue;
      const a = Float64Array.from(await t.toArray());
      const v = k.startsWith("decay_params")
        ? a.map(() => prng.uniform(0.1, 2))
        : a.map((y) => y + prng.uniform(-0.2, 0.2));
      fresh.set(k, fromArray(Float32Array.from(v), t.shape));
    }
    ctm.loadStateDict(fresh, { strict: false });
    for (const t of fresh.values()) t.dispose();
    const T = c.cfg.iterations;
    const R = fromArray(Float32Array.from({ length: c.B * c.cfg.outDims * T }, () => rng.uniform(-1, 1)), [
      c.B,
      c.cfg.outDims,
      T,
    ]);
    const run = async (fused: boolean) => {
      ctm.fused = fused;
      ctm.zeroGrad();
      const o = tidy(() => {
        const o = ctm.forward(x, { track: true });
        sum(mul(o.predictions, R)).backward();
        return o;
      });
      const out: Record<string, Float32Array> = {};
      out.predictions = await o.predictions.toArray() as Float32Array;
      out.certainties = await o.certainties.toArray() as Float32Array;
      out.syncOut = await o.syncOut.toArray() as Float32Array;
      for (const [k, t] of Object.entries(o.tracking!)) {
        if (t instanceof Tensor) out[`tracking.${k}`] = await t.toArray() as Float32Array;
      }
      for (const [k, p] of ctm.namedParameters()) {
        // With one tick the action decay is never used: the op-by-op path leaves no gradient.
        out[`grad ${k}`] = p.grad ? await p.grad.toArray() as Float32Array : new Float32Array(p.size);
      }
      for (const t of [o.predictions, o.certainties, o.syncOut, ...Object.values(o.tracking!)]) {
        if (t instanceof Tensor) t.dispose();
      }
      return out;
    };
    const ref = await run(false);
    startFusedProfile();
    const got = await run(true);
    const ran = stopFusedProfile();
    if (!ran.some(([n]) => n === "ctm nlm bwd")) throw new Error(`${c.name}: the fused path did not run`);
    for (const [k, e] of Object.entries(ref)) {
      const a = got[k];
      if (!a || a.length !== e.length) throw new Error(`${k}: length ${a?.length} != ${e.length}`);
      const scale = Math.max(maxAbs(e), 1e-3);
      assertClose(a, e, { atol: 2e-4 * scale, rtol: 2e-4, msg: `${c.name}: ${k}` });
    }
    R.dispose();
    x.dispose();
    ctm.dispose();
  });
}

gpuTest("a repeated fused CTM training step creates no new bind groups", () => {
  // The pools hand out idle buffers and textures oldest first (src/gpu/free_list.ts), so a step
  // that repeats the previous one gets the same resources and reuses every cached bind group.
  const cfg = { ...CASES[0].cfg, dropout: 0 };
  const B = 3, L = 4;
  const ctm = new Ctm({ ...cfg, rng: new Rng(11) });
  const rng = new Rng(5);
  const x = input(B, L, rng);
  const y = fromArray(Int32Array.from({ length: B * L }, () => (rng.next() < 0.5 ? 0 : 1)), [B, L]);
  tidy(() => void ctm.forward(x));
  const opt = new AdamW(ctm.parameters(), { lr: 1e-3 });
  const created: number[] = [];
  for (let s = 0; s < 4; s++) {
    const before = recorder().stats().bindGroups;
    tidy(() => {
      const out = ctm.forward(x);
      parityLoss(out.predictions, out.certainties, y).loss.backward();
      opt.step();
      opt.zeroGrad();
    });
    recorder().flush();
    created.push(recorder().stats().bindGroups - before);
  }
  if (created[0] === 0) throw new Error("the first step should have created bind groups");
  if (created[3] !== 0) throw new Error(`step 4 created ${created[3]} bind groups (per step: ${created})`);
  for (const t of [x, y]) t.dispose();
  ctm.dispose();
});
