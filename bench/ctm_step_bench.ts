/**
 * One CTM training step on the parity bench configuration (forward, parity loss, backward, AdamW,
 * zeroGrad), timed end to end.
 *
 * `deno run -A bench/ctm_step_bench.ts [--iterations 32] [--steps 5] [--batch 64] [--repeat 3]
 * [--profile] [--cost] [--unfused] [--poll-idle-cpus auto]` prints, per repeat, ms per step (wall
 * clock over `steps` back-to-back steps, synced once at the end), process CPU time per step
 * (steadier than wall time when other processes share the 2 cores), dispatches per step, host
 * readbacks inside the timed steps (must be 0) and bind groups created per step (0 once the pools
 * have settled); then the median and the best of the repeats.
 *
 * - `--profile`: dispatch count and GPU timestamp time per kernel for one step (each dispatch in
 *   its own timed pass). On lavapipe the timestamps of the fused texture kernels come out far
 *   too small; use `--cost` for them.
 * - `--cost`: CPU ms per step of each fused kernel, measured by recording it `k` extra times
 *   (step CPU time with and without the repeats, divided by `k`); slow, noisy to ±10 ms.
 * - `--unfused`: the op-by-op path (`ctm.fused = false`) for comparison.
 * - `--poll-idle-cpus auto|on|off` (default auto: on for a CPU adapter): hold the Linux PM QoS
 *   request that keeps idle cores polling (`src/gpu/idle_poll.ts`), as the trainers do; the
 *   first line says whether it is held.
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { IDLE_POLL_MODES, idlePollFor, type IdlePollMode } from "../src/gpu/idle_poll.ts";
import { startKernelProfile, stopKernelProfile } from "../src/gpu/kernel.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { _fusedInternals, startFusedProfile, stopFusedProfile } from "../src/ops/fused_ctm.ts";
import { runCli } from "../src/util/cli.ts";
import { processCpuMs } from "./cpu_time.ts";
import { parityBench } from "./parity_step.ts";

const args = runCli({
  name: "deno run -A bench/ctm_step_bench.ts",
  description: "Times one CTM training step on the parity bench configuration (see the top of this file).",
  config: false,
  flags: {
    iterations: { type: "int", default: 32, min: 1, description: "Internal ticks T." },
    steps: {
      type: "int",
      default: 5,
      min: 1,
      description: "Steps per timed repeat (recorded, then synced once).",
    },
    batch: { type: "int", default: 64, min: 1, description: "Batch size." },
    length: { type: "int", default: 16, min: 1, description: "Parity sequence length." },
    warmup: { type: "int", default: 2, min: 0, description: "Untimed steps first (compiles the kernels)." },
    repeat: {
      type: "int",
      default: 3,
      min: 1,
      description: "Timed repeats, one line each, then their median and best.",
    },
    profile: {
      type: "boolean",
      default: false,
      description: "Also print dispatches and GPU time per kernel.",
    },
    cost: { type: "boolean", default: false, description: "Also print each fused kernel's CPU ms per step." },
    unfused: { type: "boolean", default: false, description: "Time the op-by-op path (ctm.fused = false)." },
    pollIdleCpus: {
      type: "string",
      default: "auto",
      choices: IDLE_POLL_MODES,
      description: "Keep idle CPU cores polling (src/gpu/idle_poll.ts; auto: on a CPU adapter only), " +
        "as the trainers' --poll_idle_cpus does.",
    },
  },
});

const { isFallback } = await initGpu();
const idlePoll = idlePollFor(args.pollIdleCpus as IdlePollMode, isFallback);
const pollWhy = idlePoll.active || args.pollIdleCpus === "off" ? "" : ` (${idlePoll.reason})`;
console.log(`idle CPU polling: ${idlePoll.active ? "on" : "off"}${pollWhy}`);
const T = args.iterations, B = args.batch, L = args.length;
const { ctm, step } = parityBench(T, B, L, !args.unfused);

const rec = recorder();
for (let i = 0; i < args.warmup; i++) step();
await rec.sync();

const steps = args.steps;
const walls: number[] = [];
for (let r = 0; r < args.repeat; r++) {
  const s0 = rec.stats();
  const t0 = performance.now(), c0 = processCpuMs();
  for (let i = 0; i < steps; i++) step();
  const s1 = rec.stats();
  await rec.sync();
  const ms = (performance.now() - t0) / steps;
  const cpu = (processCpuMs() - c0) / steps;
  walls.push(ms);
  console.log(
    `T=${T} B=${B}: ${ms.toFixed(1)} ms/step wall, ${cpu.toFixed(0)} ms CPU/step (÷2 cores: ${
      (cpu / 2).toFixed(1)
    }), ${((s1.dispatches - s0.dispatches) / steps).toFixed(0)} dispatches/step, ` +
      `${s1.readbacks - s0.readbacks} readbacks in ${steps} steps, ${
        ((s1.submits - s0.submits) / steps).toFixed(1)
      } submits/step, ${((s1.bindGroups - s0.bindGroups) / steps).toFixed(0)} new bind groups/step`,
  );
}

if (walls.length > 1) {
  const w = walls.slice().sort((a, b) => a - b);
  const mid = w.length >> 1;
  const median = w.length % 2 ? w[mid] : (w[mid - 1] + w[mid]) / 2;
  console.log(`median ${median.toFixed(1)} ms/step, best ${w[0].toFixed(1)} over ${w.length} repeats`);
}

if (args.profile) {
  startKernelProfile();
  startFusedProfile();
  const s0 = rec.stats();
  if (!rec.startTiming(2048)) console.log("(no timestamp-query: dispatch counts only)");
  step();
  const timing = await rec.stopTiming();
  const n = rec.stats().dispatches - s0.dispatches;
  stopKernelProfile();
  stopFusedProfile();
  let total = 0;
  for (const t of timing) total += t.ms;
  console.log(`\nprofile of one step: ${total.toFixed(1)} ms GPU (timed passes), ${n} dispatches`);
  console.log("    ms  count  kernel");
  for (const t of timing.slice(0, 50)) {
    console.log(`${t.ms.toFixed(2).padStart(7)} ${String(t.count).padStart(6)}  ${t.label || "(matmul)"}`);
  }
}

if (args.cost) {
  startFusedProfile();
  step();
  await rec.sync();
  const names = stopFusedProfile();
  const measure = async (k: number) => {
    await rec.sync();
    const c0 = processCpuMs();
    for (let i = 0; i < k; i++) step();
    await rec.sync();
    return (processCpuMs() - c0) / k;
  };
  const K = 6;
  console.log(`\nfused kernels: CPU ms per step (${K} extra dispatches each, min of 2 A/B pairs)`);
  const rows: [string, number, number][] = [];
  for (const [name, count] of names) {
    const base: number[] = [], more: number[] = [];
    for (let r = 0; r < 2; r++) {
      _fusedInternals.repeat.clear();
      base.push(await measure(2));
      _fusedInternals.repeat.set(name, K);
      more.push(await measure(2));
    }
    _fusedInternals.repeat.clear();
    rows.push([name, count, (Math.min(...more) - Math.min(...base)) / K]);
  }
  rows.sort((a, b) => b[2] - a[2]);
  for (const [name, count, ms] of rows) {
    console.log(`${ms.toFixed(1).padStart(7)} ${String(count).padStart(6)}  ${name}`);
  }
}
ctm.dispose();
idlePoll.release();
