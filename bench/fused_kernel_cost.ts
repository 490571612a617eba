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
import { _fusedInternals } from "../src/ops/fused_ctm.ts";
import { processCpuMs } from "./cpu_time.ts";
import { parityBench } from "./parity_step.ts";

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
