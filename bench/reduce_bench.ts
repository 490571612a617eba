/**
 * Bandwidth of memory-bound kernels: elementwise add (4M), sum (4M), softmax [4096, 1000] and its
 * backward, layerNorm [4096, 512] forward and backward, crossEntropy [4096, 1000].
 *
 * `deno run -A bench/reduce_bench.ts` prints ms/op and GB/s (bytes that must move at least once:
 * inputs read plus outputs written). `deno bench -A bench/reduce_bench.ts` runs the same cases as
 * `Deno.bench`es. Every measured batch records many dispatches and then waits for the device
 * with `recorder().sync()`, so the ~10 ms host sync is amortised.
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { add } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { crossEntropy } from "../src/ops/loss.ts";
import { mapN } from "../src/ops/map.ts";
import { layerNorm } from "../src/ops/norm.ts";
import { sum } from "../src/ops/reduce.ts";
import { softmax } from "../src/ops/softmax.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

const ctx = await initGpu();

/** One benchmarked op: `run` records one op (and frees its outputs); `bytes` it must move. */
interface Case {
  name: string;
  bytes: number;
  run: () => void;
}

function rand(shape: number[], seed: number): Tensor {
  return keep(mapN(`fract(sin(f32(i) * 12.9898 + ${seed}.0) * 43758.547) * 2.0 - 1.0`, [], [], "f32", shape));
}

function makeCases(): Case[] {
  const N = 4 * 1024 * 1024;
  const a = rand([N], 1), b = rand([N], 2);
  const [R, C] = [4096, 1000];
  const logits = rand([R, C], 3), gs = rand([R, C], 4);
  const [LR, LD] = [4096, 512];
  const xl = rand([LR, LD], 5).requireGrad(), gl = rand([LR, LD], 6);
  const w = keep(mapN("1.0 + 0.001 * f32(i)", [], [], "f32", [LD])).requireGrad();
  const bias = rand([LD], 7).requireGrad();
  const lg = rand([R, C], 8).requireGrad();
  const tgt = keep(fromArray(Int32Array.from({ length: R }, (_, i) => (i * 37) % C)));
  const free = (t: Tensor) => t.dispose();
  const F = 4;
  return [
    { name: "add 4M", bytes: 3 * N * F, run: () => free(add(a, b)) },
    { name: "sum 4M", bytes: N * F, run: () => free(sum(a)) },
    { name: "softmax [4096, 1000]", bytes: 2 * R * C * F, run: () => free(softmax(logits)) },
    {
      name: "softmax fwd+bwd [4096, 1000]",
      bytes: 5 * R * C * F,
      run: () => {
        lg.grad?.dispose();
        lg.grad = null;
        tidy(() => softmax(lg).backward(gs));
      },
    },
    { name: "layerNorm [4096, 512]", bytes: 2 * LR * LD * F, run: () => free(layerNorm(xl, [LD], w, bias)) },
    {
      name: "layerNorm fwd+bwd [4096, 512]",
      // fwd: x → y; bwd dx: g, x → dx; dweight/dbias: g, x
      bytes: 7 * LR * LD * F,
      run: () => {
        for (const t of [xl, w, bias]) {
          t.grad?.dispose();
          t.grad = null;
        }
        tidy(() => layerNorm(xl, [LD], w, bias).backward(gl));
      },
    },
    { name: "crossEntropy [4096, 1000]", bytes: R * C * F, run: () => free(crossEntropy(logits, tgt)) },
  ];
}

/** Average ms per op: batches of `k` ops, each batch followed by a device sync. */
async function measure(c: Case, budgetMs = 1500): Promise<{ ms: number; k: number }> {
  c.run();
  await recorder().sync();
  let t0 = performance.now();
  c.run();
  await recorder().sync();
  const one = performance.now() - t0;
  const k = Math.max(4, Math.min(200, Math.ceil(150 / Math.max(one, 0.01))));
  let ops = 0;
  t0 = performance.now();
  do {
    for (let i = 0; i < k; i++) c.run();
    await recorder().sync();
    ops += k;
  } while (performance.now() - t0 < budgetMs);
  return { ms: (performance.now() - t0) / ops, k };
}

const cases = makeCases();
if (import.meta.main) {
  console.log(`adapter: ${ctx.adapterName}${ctx.isFallback ? " (fallback)" : ""}`);
  console.log(`${"case".padEnd(32)} ${"ms/op".padStart(9)} ${"GB/s".padStart(8)}  ops/sync`);
  for (const c of cases) {
    const { ms, k } = await measure(c);
    const gbs = c.bytes / (ms * 1e6);
    console.log(`${c.name.padEnd(32)} ${ms.toFixed(3).padStart(9)} ${gbs.toFixed(2).padStart(8)}  ${k}`);
  }
} else {
  const K = ctx.isFallback ? 4 : 50;
  for (const c of cases) {
    Deno.bench({
      name: `${c.name} ×${K} + sync (${((K * c.bytes) / 1e6).toFixed(0)} MB)`,
      n: ctx.isFallback ? 5 : 50,
      warmup: 1,
      async fn() {
        for (let i = 0; i < K; i++) c.run();
        await recorder().sync();
      },
    });
  }
}
