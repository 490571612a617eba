/**
 * Benchmarks of the indexing ops and the GPU RNG at CTM-like sizes. Each bench iteration records
 * {@link REPS} ops and waits once for the device, so time per op ≈ (reported − "sync only") / REPS.
 * Run: `deno bench -A bench/indexing_bench.ts`.
 */
import "../src/ops/setup.ts";
import { initGpu } from "../src/gpu/device.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { fromArray, ones } from "../src/ops/creation.ts";
import { embedding, indexSelect, type ScatterMode, setScatterAddMode } from "../src/ops/indexing.ts";
import { dropout, rand, randn } from "../src/ops/random.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { Rng } from "../src/util/rng.ts";

/** Ops recorded per bench iteration. */
export const REPS = 50;

await initGpu();
const rng = new Rng(1);
const B = 64, D = 2048, K = 2048, V = 1000, E = 256, T = 4096;
const z = keep(fromArray(Float32Array.from(rng.uniformArray(B * D)), [B, D]).requireGrad());
const neurons = keep(fromArray(Int32Array.from({ length: K }, () => rng.int(D))));
const table = keep(fromArray(Float32Array.from(rng.uniformArray(V * E)), [V, E]).requireGrad());
const tokens = keep(fromArray(Int32Array.from({ length: T }, () => rng.int(V))));
const gSel = keep(ones([B, K]));
const gEmb = keep(ones([T, E]));

function bench(name: string, op: () => void, mode: ScatterMode = "deterministic"): void {
  Deno.bench({
    name,
    n: 8,
    warmup: 1,
    async fn(b) {
      const prev = setScatterAddMode(mode);
      tidy(op); // warm-up: pipelines compiled outside the timing
      await recorder().sync();
      b.start();
      for (let r = 0; r < REPS; r++) tidy(op);
      await recorder().sync();
      b.end();
      setScatterAddMode(prev);
    },
  });
}

function clearGrad(t: Tensor): void {
  t.grad?.dispose();
  t.grad = null;
}

bench("sync only", () => {});
bench(`indexSelect fwd [${B},${D}] → K=${K}`, () => void indexSelect(z, 1, neurons).dispose());
for (const mode of ["deterministic", "atomic"] as const) {
  bench(`indexSelect fwd+bwd K=${K} (${mode})`, () => {
    indexSelect(z, 1, neurons).backward(gSel);
    clearGrad(z);
  }, mode);
}
bench(`embedding fwd ${T} tokens × ${E}`, () => void embedding(tokens, table).dispose());
for (const mode of ["deterministic", "atomic"] as const) {
  bench(`embedding fwd+bwd ${T} tokens (${mode})`, () => {
    embedding(tokens, table).backward(gEmb);
    clearGrad(table);
  }, mode);
}
bench("rand [1M]", () => void rand([1 << 20]).dispose());
bench("randn [1M]", () => void randn([1 << 20]).dispose());
bench(`dropout fwd [${B},${D}]`, () => void dropout(z, 0.1).dispose());
