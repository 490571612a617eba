/**
 * One CTM training step on the parity bench configuration (forward, parity loss, backward, AdamW,
 * zeroGrad), timed end to end.
 *
 * `deno run -A bench/ctm_step_bench.ts [--iterations 32] [--steps 5] [--batch 64] [--profile]`
 * prints ms per step (wall clock over `steps` back-to-back steps, synced once at the end),
 * process CPU time per step (steadier than wall time when other processes share the 2 cores),
 * dispatches per step, host readbacks inside a step (must be 0) and, with `--profile`, GPU time
 * and dispatch count per kernel for one step (each dispatch in its own timed pass, so the total
 * is larger than the real step time).
 */
import "../src/ops/setup.ts";
import { parseArgs } from "node:util";
import { initGpu } from "../src/gpu/device.ts";
import { startKernelProfile, stopKernelProfile } from "../src/gpu/kernel.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { tidy } from "../src/tensor/scope.ts";
import { parityLoss } from "../src/train/losses.ts";
import { Rng } from "../src/util/rng.ts";
import { parityBatchAt } from "../tasks/parity/data.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    iterations: { type: "string", default: "32" },
    steps: { type: "string", default: "5" },
    batch: { type: "string", default: "64" },
    length: { type: "string", default: "16" },
    warmup: { type: "string", default: "2" },
    profile: { type: "boolean", default: false },
    repeat: { type: "string", default: "1" },
  },
});

await initGpu();
const T = Number(args.iterations), B = Number(args.batch), L = Number(args.length);
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
// Materialise lazy layers before building the optimizer.
tidy(() => void ctm.forward(fromArray(new Float32Array(B * L).fill(1), [B, L])));
const opt = new AdamW(ctm.parameters(), { lr: 1e-4, weightDecay: 0 });

let stepNo = 0;
function step(): void {
  const batch = parityBatchAt(0, stepNo++, B, L);
  tidy(() => {
    const x = fromArray(batch.x, [B, L]);
    const y = fromArray(batch.y, [B, L]);
    const out = ctm.forward(x);
    const { loss } = parityLoss(out.predictions, out.certainties, y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
  });
}

/** Process CPU time (all threads, lavapipe's workers included) in ms, from /proc. */
function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

const rec = recorder();
for (let i = 0; i < Number(args.warmup); i++) step();
await rec.sync();

const steps = Number(args.steps);
for (let r = 0; r < Number(args.repeat); r++) {
  const s0 = rec.stats();
  const t0 = performance.now(), c0 = cpuMs();
  for (let i = 0; i < steps; i++) step();
  const s1 = rec.stats();
  await rec.sync();
  const ms = (performance.now() - t0) / steps;
  const cpu = (cpuMs() - c0) / steps;
  console.log(
    `T=${T} B=${B}: ${ms.toFixed(1)} ms/step wall, ${cpu.toFixed(0)} ms CPU/step (÷2 cores: ${
      (cpu / 2).toFixed(1)
    }), ${((s1.dispatches - s0.dispatches) / steps).toFixed(0)} dispatches/step, ` +
      `${s1.readbacks - s0.readbacks} readbacks in ${steps} steps, ${
        ((s1.submits - s0.submits) / steps).toFixed(1)
      } submits/step`,
  );
}

if (args.profile) {
  startKernelProfile();
  if (!rec.startTiming(2048)) console.log("(no timestamp-query: dispatch counts only)");
  step();
  const timing = await rec.stopTiming();
  const counts = stopKernelProfile();
  let total = 0;
  for (const t of timing) total += t.ms;
  const n = counts.reduce((a, [, c]) => a + c, 0);
  console.log(`\nprofile of one step: ${total.toFixed(1)} ms GPU (timed passes), ${n} dispatches`);
  console.log("    ms  count  kernel");
  for (const t of timing.slice(0, 40)) {
    console.log(`${t.ms.toFixed(2).padStart(7)} ${String(t.count).padStart(6)}  ${t.label}`);
  }
}
ctm.dispose();
