/**
 * Matmul benchmarks. `deno run -A bench/matmul_bench.ts [variant]` prints GFLOP/s per shape (best
 * and median of several timed runs, each `reps` ops recorded back to back then one GPU sync),
 * plus a figure from process CPU time, which is steadier when other processes share the cores.
 * Under `deno bench` the same shapes are registered as `Deno.bench` cases (one op + sync each).
 */
import "../src/ops/setup.ts";
import { gpu, initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { randn } from "../src/ops/random.ts";
import {
  groupedMatmul,
  linear,
  matmul,
  type MatmulVariant,
  matmulVariant,
  setMatmulVariant,
} from "../src/ops/matmul.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

interface Case {
  name: string;
  flop: number;
  inputs: () => Tensor[];
  op: (xs: Tensor[]) => Tensor;
}

const mm = (M: number, K: number, N: number): Case => ({
  name: `matmul [${M}x${K}]@[${K}x${N}]`,
  flop: 2 * M * K * N,
  inputs: () => [randn([M, K]), randn([K, N])],
  op: ([a, b]) => matmul(a, b),
});

const cases: Case[] = [
  mm(512, 512, 512),
  mm(1024, 1024, 1024),
  mm(64, 512, 512),
  {
    name: "linear relu [64x512]·[512x512]ᵀ+b",
    flop: 2 * 64 * 512 * 512,
    inputs: () => [randn([64, 512]), randn([512, 512]), randn([512])],
    op: ([x, w, b]) => linear(x, w, b, "relu"),
  },
  ...[[64, 256, 16, 32], [64, 1024, 64, 128], [64, 2048, 32, 2]].map(([B, N, I, O]): Case => ({
    name: `groupedMatmul B=${B} N=${N} I=${I} O=${O}`,
    flop: 2 * B * N * I * O,
    inputs: () => [randn([B, N, I]), randn([I, O, N]), randn([1, N, O])],
    op: ([x, w, b]) => groupedMatmul(x, w, b),
  })),
];

function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

async function timeCase(c: Case, xs: Tensor[], reps: number): Promise<{ ms: number; cpu: number }> {
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) c.op(xs).dispose();
  await recorder().sync();
  return { ms: (performance.now() - t0) / reps, cpu: (cpuMs() - c0) / reps };
}

async function report(): Promise<void> {
  const v = (Deno.args[0] ?? "auto") as MatmulVariant;
  setMatmulVariant(v);
  const { adapterName, isFallback } = gpu();
  console.log(`adapter: ${adapterName} (fallback: ${isFallback}); variant: ${matmulVariant()} (asked: ${v})`);
  console.log("case | ms/op best | GFLOP/s best | GFLOP/s median | GFLOP/s from CPU time (2 cores)");
  for (const c of cases) {
    const xs = c.inputs();
    const tj = performance.now();
    await timeCase(c, xs, 1); // JIT + warm-up
    const jit = performance.now() - tj;
    const reps = Math.max(3, Math.min(200, Math.round(1.5e9 / c.flop)));
    const runs = [];
    for (let r = 0; r < 5; r++) runs.push(await timeCase(c, xs, reps));
    const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
    const cpu = Math.min(...runs.map((r) => r.cpu));
    const gf = (t: number) => (c.flop / t / 1e6).toFixed(1);
    console.log(
      `${c.name} | ${ms[0].toFixed(3)} | ${gf(ms[0])} | ${gf(ms[2])} | ${gf(cpu / 2)}   (first call ${
        jit.toFixed(0)
      } ms)`,
    );
    for (const x of xs) x.dispose();
  }
}

await initGpu();
if (import.meta.main) await report();
else {
  for (const c of cases) {
    const xs = c.inputs();
    await timeCase(c, xs, 1);
    Deno.bench({
      name: `${c.name} (${(c.flop / 1e6).toFixed(0)} MFLOP, ${matmulVariant()})`,
      n: Math.max(5, Math.min(200, Math.round(2e9 / c.flop))),
      warmup: 2,
      async fn() {
        c.op(xs).dispose();
        await recorder().sync();
      },
    });
  }
}
