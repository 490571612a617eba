/**
 * CPU cost of single fused CTM kernels inside the parity bench step (`ctm_step_bench.ts`
 * configuration), by repetition: each kernel named with `--kernel` is recorded `--k` extra times
 * per dispatch, and the step's process CPU time with and without the repeats (alternating, min of
 * `--pairs` pairs) gives its CPU ms per step. Steadier than `ctm_step_bench.ts --cost` for one
 * kernel because it repeats it more often.
 *
 * `deno run -A bench/fused_kernel_cost.ts --kernel "ctm nlm bwd[,ctm nlm fwd…]" [--k 12] [--pairs 3]`
 * (`--help` lists the flags).
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { _fusedInternals } from "../src/ops/fused_ctm.ts";
import { runCli } from "../src/util/cli.ts";
import { processCpuMs } from "./cpu_time.ts";
import { parityBench } from "./parity_step.ts";

const args = runCli({
  name: "deno run -A bench/fused_kernel_cost.ts",
  description: "CPU ms per bench step of single fused CTM kernels, by repetition (see the top of this file).",
  config: false,
  flags: {
    kernel: {
      type: "string",
      default: "ctm nlm bwd",
      description: "Kernel names as the step bench's --profile prints them, separated by commas.",
    },
    k: { type: "int", default: 12, min: 1, description: "Extra dispatches of the kernel per dispatch." },
    pairs: {
      type: "int",
      default: 3,
      min: 1,
      description: "Alternating pairs of measurements (min of each side).",
    },
    iterations: { type: "int", default: 32, min: 1, description: "Internal ticks T." },
  },
});

await initGpu();
const T = args.iterations, B = 64, L = 16;
const { ctm, step } = parityBench(T, B, L);
const rec = recorder();
async function measure(n: number): Promise<number> {
  await rec.sync();
  const c0 = processCpuMs();
  for (let i = 0; i < n; i++) step();
  await rec.sync();
  return (processCpuMs() - c0) / n;
}
await measure(2);
const K = args.k;
for (const name of args.kernel.split(",").map((k) => k.trim()).filter((k) => k)) {
  const base: number[] = [], more: number[] = [];
  for (let r = 0; r < args.pairs; r++) {
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
