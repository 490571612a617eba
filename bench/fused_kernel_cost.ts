/**
 * CPU cost of single fused CTM kernels inside the parity bench step (`ctm_step_bench.ts`
 * configuration), by repetition: each kernel named with `--kernel` is recorded `--k` extra times
 * per dispatch, and the step's process CPU time with and without the repeats (alternating, min of
 * `--pairs` pairs) gives its CPU ms per step. Steadier than `ctm_step_bench.ts --cost` for one
 * kernel because it repeats it more often.
 *
 * `deno run -A bench/fused_kernel_cost.ts --kernel "ctm nlm bwd" [--k 12] [--pairs 3]`
 */
import "../src/ops/setup.ts";
import { parseArgs } from "node:util";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { _fusedInternals } from "../src/ops/fused_ctm.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { tidy } from "../src/tensor/scope.ts";
import { parityLoss } from "../src/train/losses.ts";
import { Rng } from "../src/util/rng.ts";
import { parityBatchAt } from "../tasks/parity/data.ts";
import { processCpuMs } from "./cpu_time.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    kernel: { type: "string", multiple: true, default: ["ctm nlm bwd"] },
    k: { type: "string", default: "12" },
    pairs: { type: "string", default: "3" },
    iterations: { type: "string", default: "32" },
  },
});

await initGpu();
const T = Number(args.iterations), B = 64, L = 16;
const ctm = new Ctm({
  iterations: T,
  dModel: 256,
  dInput: 64,
  heads: 4,
  nSynchOut: 32,
  nSynchAction: 32,
  synapseDepth: 1,
  memoryLength: 16,
  deepNlms: true,
  memoryHiddenDims: 16,
  backboneType: "parity_backbone",
  positionalEmbeddingType: "custom-rotational-1d",
  outDims: 2 * L,
  predictionReshaper: [L, 2],
  neuronSelectType: "random-pairing",
  rng: new Rng(1),
});
tidy(() => void ctm.forward(fromArray(new Float32Array(B * L).fill(1), [B, L])));
const opt = new AdamW(ctm.parameters(), { lr: 1e-4, weightDecay: 0 });
let stepNo = 0;
function step(): void {
  const batch = parityBatchAt(0, stepNo++, B, L);
  tidy(() => {
    const out = ctm.forward(fromArray(batch.x, [B, L]));
    parityLoss(out.predictions, out.certainties, fromArray(batch.y, [B, L])).loss.backward();
    opt.step();
    opt.zeroGrad();
  });
}
const rec = recorder();
async function measure(n: number): Promise<number> {
  await rec.sync();
  const c0 = processCpuMs();
  for (let i = 0; i < n; i++) step();
  await rec.sync();
  return (processCpuMs() - c0) / n;
}
await measure(2);
const K = Number(args.k);
for (const name of args.kernel) {
  const base: number[] = [], more: number[] = [];
  for (let r = 0; r < Number(args.pairs); r++) {
    _fusedInternals.repeat.clear();
    base.push(await measure(2));
    _fusedInternals.repeat.set(name, K);
    more.push(await measure(2));
  }
  _fusedInternals.repeat.clear();
  const per = (Math.min(...more) - Math.min(...base)) / K;
  console.log(
    `${per.toFixed(1).padStart(7)} ms CPU/step  ${name}  (step ${Math.min(...base).toFixed(0)} ms CPU)`,
  );
}
ctm.dispose();
