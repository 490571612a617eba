/**
 * Conv2d benchmark. `deno run -A bench/conv_bench.ts [variant] [--profile]` prints GFLOP/s of
 * conv2d forward and forward+backward (data + weight gradients, 3× the forward FLOPs) for
 * x [8,64,32,32] → 64 channels, 3×3, pad 1 (plus a stride-2 case), next to a matmul with the FLOPs of one conv
 * ([8192×576]·[576×64]), from wall time (best and median of 5 timed runs) and from process CPU
 * time (steadier when other processes share the cores). `--profile` adds GPU time per kernel.
 */
import "../src/ops/setup.ts";
import { gpu, initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { conv2d, type Conv2dOptions } from "../src/ops/conv.ts";
import { randn } from "../src/ops/random.ts";
import { matmul, type MatmulVariant, matmulVariant, setMatmulVariant } from "../src/ops/matmul.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

interface Case {
  name: string;
  flop: number;
  run: () => void;
}

function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

async function time(c: Case, reps: number): Promise<{ ms: number; cpu: number }> {
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) c.run();
  await recorder().sync();
  return { ms: (performance.now() - t0) / reps, cpu: (cpuMs() - c0) / reps };
}

function convCases(B: number, C: number, HW: number, O: number, o: Conv2dOptions, tag: string): Case[] {
  const x = randn([B, C, HW, HW]).requireGrad(), w = randn([O, C, 3, 3]).requireGrad();
  const s = typeof o.stride === "number" ? o.stride : 1;
  const Ho = Math.floor((HW + 2 - 3) / s) + 1;
  const f = 2 * B * O * Ho * Ho * C * 9;
  const g = tidy(() => randn([B, O, Ho, Ho]));
  const fwd = () => tidy(() => void conv2d(x, w, null, o));
  const both = () =>
    tidy(() => {
      conv2d(x, w, null, o).backward(g);
      x.grad?.dispose();
      w.grad?.dispose();
      x.grad = null;
      w.grad = null;
    });
  return [
    { name: `conv2d fwd ${tag}`, flop: f, run: fwd },
    { name: `conv2d fwd+bwd ${tag}`, flop: 3 * f, run: both },
  ];
}

async function main(): Promise<void> {
  await initGpu();
  const v = (Deno.args.find((a) => !a.startsWith("--")) ?? "auto") as MatmulVariant;
  setMatmulVariant(v);
  const { adapterName, isFallback } = gpu();
  console.log(`adapter: ${adapterName} (fallback: ${isFallback}); variant: ${matmulVariant()}`);
  const a = randn([8192, 576]), b = randn([576, 64]);
  const cases: Case[] = [
    ...convCases(8, 64, 32, 64, { padding: 1 }, "x[8,64,32,32]→64 3×3 pad 1"),
    ...convCases(8, 64, 32, 128, { padding: 1, stride: 2 }, "x[8,64,32,32]→128 3×3 pad 1 stride 2"),
    {
      name: "matmul [8192x576]@[576x64] (same FLOPs)",
      flop: 2 * 8192 * 576 * 64,
      run: () => matmul(a, b).dispose(),
    },
  ];
  console.log("case | ms best | GFLOP/s best | GFLOP/s median | GFLOP/s from CPU time (2 cores)");
  for (const c of cases) {
    const tj = performance.now();
    await time(c, 1);
    const jit = performance.now() - tj;
    const reps = Math.max(2, Math.min(50, Math.round(3e9 / c.flop)));
    const runs = [];
    for (let r = 0; r < 5; r++) runs.push(await time(c, reps));
    const ms = runs.map((r) => r.ms).sort((p, q) => p - q);
    const cpu = Math.min(...runs.map((r) => r.cpu));
    const gf = (t: number) => (c.flop / t / 1e6).toFixed(1);
    console.log(
      `${c.name} | ${ms[0].toFixed(1)} | ${gf(ms[0])} | ${gf(ms[2])} | ${gf(cpu / 2)}   (first call ${
        jit.toFixed(0)
      } ms)`,
    );
  }
  if (Deno.args.includes("--profile")) {
    for (const c of cases) {
      if (!recorder().startTiming()) break;
      c.run();
      const rows = await recorder().stopTiming();
      const total = rows.reduce((s, r) => s + r.ms, 0);
      console.log(`\n${c.name}: GPU ${total.toFixed(1)} ms`);
      for (const r of rows.slice(0, 8)) {
        console.log(`  ${r.ms.toFixed(2)} ms  ×${r.count}  ${r.label || "regblock matmul"}`);
      }
    }
  }
  for (const t of [a, b] as Tensor[]) t.dispose();
}

await main();
