/**
 * Batch norm and pooling on a CIFAR-ResNet-sized activation `[16, 64, 32, 32]` (1M elements):
 * batchNorm2d forward (training) and forward+backward, maxPool2d (3, s2, p1) forward and
 * forward+backward, adaptiveAvgPool2d(1), next to an elementwise add of the same size as a
 * bandwidth yardstick. `deno run -A bench/pool_bench.ts` prints ms/op (batches of ops per device
 * sync, so the host sync is amortised).
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { add } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mapN } from "../src/ops/map.ts";
import { batchNorm2d } from "../src/ops/batchnorm.ts";
import { adaptiveAvgPool2d, maxPool2d } from "../src/ops/pool.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

const ctx = await initGpu();

function rand(shape: number[], seed: number): Tensor {
  return keep(mapN(`fract(sin(f32(i) * 12.9898 + ${seed}.0) * 43758.547) * 2.0 - 1.0`, [], [], "f32", shape));
}

const shape = [16, 64, 32, 32];
const x = rand(shape, 1).requireGrad(), y = rand(shape, 2);
const g = rand(shape, 3), gp = rand([16, 64, 16, 16], 4);
const w = keep(fromArray(new Float32Array(64).fill(1))).requireGrad();
const b = keep(fromArray(new Float32Array(64))).requireGrad();
const rm = keep(fromArray(new Float32Array(64))), rv = keep(fromArray(new Float32Array(64).fill(1)));
const bnOpts = { training: true, runningMean: rm, runningVar: rv };
const pool = { kernelSize: 3, stride: 2, padding: 1 };
const clear = () => {
  for (const t of [x, w, b]) {
    t.grad?.dispose();
    t.grad = null;
  }
};

const cases: [string, () => void][] = [
  ["add (yardstick)", () => tidy(() => void add(x, y))],
  ["batchNorm2d fwd", () => tidy(() => void batchNorm2d(x, w, b, bnOpts))],
  ["batchNorm2d fwd+bwd", () => (clear(), tidy(() => batchNorm2d(x, w, b, bnOpts).backward(g)))],
  [
    "batchNorm2d+relu fwd+bwd",
    () => (clear(), tidy(() => batchNorm2d(x, w, b, { ...bnOpts, relu: true }).backward(g))),
  ],
  ["maxPool2d 3/2/1 fwd", () => tidy(() => void maxPool2d(x, pool))],
  ["maxPool2d 3/2/1 fwd+bwd", () => (clear(), tidy(() => maxPool2d(x, pool).backward(gp)))],
  ["adaptiveAvgPool2d(1) fwd", () => tidy(() => void adaptiveAvgPool2d(x, 1))],
];

async function measure(run: () => void, budgetMs = 1500): Promise<number> {
  run();
  await recorder().sync();
  let ops = 0;
  const t0 = performance.now();
  do {
    for (let i = 0; i < 4; i++) run();
    await recorder().sync();
    ops += 4;
  } while (performance.now() - t0 < budgetMs);
  return (performance.now() - t0) / ops;
}

console.log(`adapter: ${ctx.adapterName}${ctx.isFallback ? " (fallback)" : ""}; input [${shape}]`);
for (const [name, run] of cases) {
  console.log(`${name.padEnd(28)} ${(await measure(run)).toFixed(2).padStart(8)} ms`);
}
