/**
 * Gradient clipping per training step on the parameters of the parity CTM of
 * `tasks/parity/configs/quick_16.yaml` (26 tensors, 69k values): `QuantileClip` with a full
 * history (the parity trainer's clipping) and `clipGradNorm`, each timed over `--steps` steps
 * against the same steps without clipping (fresh random gradients every step).
 *
 * `deno run -A bench/clip_bench.ts [--steps 20] [--repeat 3] [--history 1000]` (`--help` lists the flags).
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { randn } from "../src/ops/random.ts";
import { clipGradNorm, QuantileClip } from "../src/optim/clip.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import { runCli } from "../src/util/cli.ts";
import { Rng } from "../src/util/rng.ts";

const args = runCli({
  name: "deno run -A bench/clip_bench.ts",
  description: "Times gradient clipping per step on the parameters of the quick_16 parity CTM.",
  config: false,
  flags: {
    steps: { type: "int", default: 20, min: 1, description: "Steps per timed repeat." },
    repeat: { type: "int", default: 3, min: 1, description: "Timed repeats, one line each." },
    history: { type: "int", default: 1000, min: 1, max: 2048, description: "QuantileClip history length." },
  },
});

await initGpu();
const L = 16, B = 64;
const ctm = new Ctm({
  iterations: 8,
  dModel: 128,
  dInput: 32,
  heads: 4,
  nSynchOut: 16,
  nSynchAction: 16,
  synapseDepth: 1,
  memoryLength: 4,
  deepNlms: true,
  memoryHiddenDims: 8,
  backboneType: "parity_backbone",
  positionalEmbeddingType: "custom-rotational-1d",
  outDims: 2 * L,
  predictionReshaper: [L, 2],
  neuronSelectType: "random",
  rng: new Rng(1),
});
tidy(() => void ctm.forward(fromArray(new Float32Array(B * L).fill(1), [B, L])));
const ps = ctm.parameters();
const H = args.history;
const clip = new QuantileClip(ps, { quantile: 0.9, historyLength: H });
// A full history, as after the first `history` steps of a run.
const rng = new Rng(2);
const hist = new Map(ps.map((_, i) => [`history.${i}`, fromArray(rng.uniformArray(H, 1, 2))]));
clip.loadStateDict({ meta: { counts: ps.map(() => 5 * H), quantile: 0.9, historyLength: H }, tensors: hist });
for (const t of hist.values()) t.dispose();

const rec = recorder();
const time = async (fn: () => void) => {
  await rec.sync();
  const d0 = rec.stats().dispatches, t0 = performance.now();
  for (let s = 0; s < args.steps; s++) {
    for (const p of ps) {
      p.grad?.dispose();
      p.grad = keep(randn(p.shape));
    }
    fn();
  }
  await rec.sync();
  return {
    ms: (performance.now() - t0) / args.steps,
    dispatches: (rec.stats().dispatches - d0) / args.steps,
  };
};
const values = ps.reduce((a, p) => a + p.size, 0);
console.log(`${ps.length} parameters, ${values} values, history ${H}`);
for (let r = 0; r < args.repeat; r++) {
  const base = await time(() => {});
  const q = await time(() => clip.step());
  const g = await time(() => clipGradNorm(ps, 1).dispose());
  const line = (name: string, x: { ms: number; dispatches: number }) =>
    `${name} ${(x.ms - base.ms).toFixed(2)} ms (${(x.dispatches - base.dispatches).toFixed(0)} dispatches)`;
  console.log(`per step: ${line("QuantileClip", q)}, ${line("clipGradNorm", g)}`);
}
clip.dispose();
ctm.dispose();
