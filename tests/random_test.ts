/**
 * Tests of the GPU random generator and dropout: exact agreement with the host mirror of the hash,
 * determinism and state save/restore, moments and histograms on 1M samples, and dropout's mask,
 * scaling, backward and eval behaviour.
 */
import {
  bernoulli,
  dropout,
  getRngState,
  GpuGenerator,
  manualSeed,
  normal,
  rand,
  randint,
  randn,
  rngKeys,
  setRngState,
  uniform,
} from "../src/ops/random.ts";
import { rngBits } from "../shaders/rng.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { transpose } from "../src/ops/views.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { assertClose, gpuTest, Rng } from "./helpers.ts";

const M = 1 << 20;

async function read(t: Tensor): Promise<Float64Array> {
  const a = Float64Array.from(await t.toArray());
  t.dispose();
  return a;
}

function moments(a: ArrayLike<number>): { mean: number; v: number; m4: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  const mean = s / a.length;
  let v = 0, m4 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] - mean) ** 2;
    v += d;
    m4 += d * d;
  }
  return { mean, v: v / a.length, m4: m4 / a.length };
}

function corr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = moments(a), mb = moments(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i] - ma.mean) * (b[i] - mb.mean);
  return c / a.length / Math.sqrt(ma.v * mb.v);
}

/** Pearson χ² of values binned into `bins` equal cells by `cell(v)`. */
function chi2(a: ArrayLike<number>, bins: number, cell: (v: number) => number): number {
  const h = new Float64Array(bins);
  for (let i = 0; i < a.length; i++) h[cell(a[i])]++;
  const e = a.length / bins;
  return h.reduce((s, o) => s + (o - e) ** 2 / e, 0);
}

function check(ok: boolean, msg: string): void {
  if (!ok) throw new Error(msg);
}

gpuTest("rand matches the host mirror of the counter hash bit for bit", async () => {
  manualSeed(1234);
  const got = await read(rand([3, 1001]));
  const [k0, k1] = rngKeys(1234, 0);
  const want = Float64Array.from({ length: got.length }, (_, i) => (rngBits(k0, k1, i) >>> 8) / 2 ** 24);
  assertClose(got, want, { atol: 0, rtol: 0 });
  check(getRngState().counter === 1, "one draw advances the counter by one");
  // randint: lo + high word of bits · range (checks the 16-bit-limb mulhi), for a wide range.
  const lo = -2_000_000_000, range = 4_100_000_003;
  const ints = await read(randint([5003], lo, lo + range));
  const [j0, j1] = rngKeys(1234, 1);
  const wantInts = Float64Array.from(
    { length: ints.length },
    (_, i) => lo + Number((BigInt(rngBits(j0, j1, i)) * BigInt(range)) >> 32n),
  );
  assertClose(ints, wantInts, { atol: 0, rtol: 0 });
});

gpuTest("same seed gives the same numbers, later calls differ, state save/restore reproduces", async () => {
  manualSeed(7);
  const a = await read(randn([4097]));
  const b = await read(randn([4097]));
  manualSeed(7);
  const a2 = await read(randn([4097]));
  assertClose(a2, a, { atol: 0, rtol: 0 });
  check(a.some((v, i) => v !== b[i]), "two draws are identical");
  const saved = JSON.parse(JSON.stringify(getRngState()));
  const c = await read(randint([999], -5, 17));
  const u = await read(rand([333]));
  manualSeed(99);
  await read(rand([10]));
  setRngState(saved);
  assertClose(await read(randint([999], -5, 17)), c, { atol: 0, rtol: 0 });
  assertClose(await read(rand([333])), u, { atol: 0, rtol: 0 });
  manualSeed(3);
  const s3 = await read(rand([100]));
  manualSeed(2 ** 40 + 3);
  const sBig = await read(rand([100]));
  check(s3.some((v, i) => v !== sBig[i]), "high seed bits are ignored");
  // An own generator does not touch the global one.
  const before = getRngState();
  const g1 = new GpuGenerator(5), g2 = new GpuGenerator(5);
  assertClose(await read(rand([50], g1)), await read(rand([50], g2)), { atol: 0, rtol: 0 });
  check(JSON.stringify(getRngState()) === JSON.stringify(before), "own generator moved the global state");
});

gpuTest("rand and uniform: moments, histogram, independence on 1M samples", async () => {
  manualSeed(42);
  const u = await read(rand([M]));
  const v = await read(rand([M]));
  check(u.every((x) => x >= 0 && x < 1), "rand outside [0, 1)");
  const m = moments(u);
  check(Math.abs(m.mean - 0.5) < 1.5e-3, `rand mean ${m.mean}`);
  check(Math.abs(m.v - 1 / 12) < 4.5e-4, `rand variance ${m.v}`);
  const c2 = chi2(u, 256, (x) => Math.floor(x * 256));
  check(c2 < 255 + 6 * Math.sqrt(2 * 255), `rand χ² ${c2} over 256 bins`);
  const lag = corr(u.subarray(0, M - 1), u.subarray(1));
  check(Math.abs(lag) < 5e-3, `lag-1 correlation ${lag}`);
  const cross = corr(u, v);
  check(Math.abs(cross) < 5e-3, `correlation between draws ${cross}`);
  manualSeed(43);
  const s43 = await read(rand([M]));
  const seeds = corr(u, s43);
  check(Math.abs(seeds) < 5e-3, `correlation between seeds 42 and 43: ${seeds}`);
  const w = await read(uniform([M], -3, 5));
  check(w.every((x) => x >= -3 && x < 5), "uniform outside [lo, hi)");
  check(Math.abs(moments(w).mean - 1) < 0.012, `uniform mean ${moments(w).mean}`);
});

gpuTest("randn and normal: moments and tail mass on 1M samples", async () => {
  manualSeed(43);
  const z = await read(randn([M]));
  const m = moments(z);
  check(Math.abs(m.mean) < 5e-3, `randn mean ${m.mean}`);
  check(Math.abs(m.v - 1) < 7e-3, `randn variance ${m.v}`);
  check(Math.abs(m.m4 / (m.v * m.v) - 3) < 0.06, `randn kurtosis ${m.m4 / (m.v * m.v)}`);
  const inside = z.filter((x) => Math.abs(x) < 1).length / M;
  check(Math.abs(inside - 0.682689) < 2.5e-3, `P(|z| < 1) = ${inside}`);
  check(Math.abs(corr(z.subarray(0, M - 1), z.subarray(1))) < 5e-3, "randn lag-1 correlation");
  const y = moments(await read(normal([M], 2, 0.5)));
  check(
    Math.abs(y.mean - 2) < 3e-3 && Math.abs(Math.sqrt(y.v) - 0.5) < 3e-3,
    `normal(2, 0.5): ${y.mean}, ${y.v}`,
  );
});

gpuTest("randint and bernoulli", async () => {
  manualSeed(44);
  const t = randint([M], -7, 13);
  check(t.dtype === "i32", "randint dtype");
  const r = await read(t);
  check(r.every((x) => Number.isInteger(x) && x >= -7 && x < 13), "randint outside [lo, hi)");
  const c2 = chi2(r, 20, (x) => x + 7);
  check(c2 < 19 + 6 * Math.sqrt(38), `randint χ² ${c2}`);
  const big = await read(randint([4096], -(2 ** 31), 2 ** 31 - 1));
  check(big.some((x) => x < -(2 ** 30)) && big.some((x) => x > 2 ** 30), "randint full range");
  const b = await read(bernoulli(0.3, [M]));
  const frac = b.reduce((s, x) => s + x, 0) / M;
  check(b.every((x) => x === 0 || x === 1), "bernoulli not 0/1");
  check(Math.abs(frac - 0.3) < 2.5e-3, `bernoulli(0.3) mean ${frac}`);
  const p = fromArray([0, 1, 0.5]);
  const bt = await read(bernoulli(p, [4000, 3]));
  let half = 0;
  for (let i = 0; i < 4000; i++) {
    check(bt[3 * i] === 0 && bt[3 * i + 1] === 1, "bernoulli with p = 0 or 1");
    half += bt[3 * i + 2];
  }
  check(Math.abs(half / 4000 - 0.5) < 0.04, `bernoulli(0.5) column ${half / 4000}`);
  p.dispose();
});

gpuTest("dropout: keep rate, scaling, backward uses the same mask, eval and p = 0 / 1", async () => {
  manualSeed(45);
  const rng = new Rng(1);
  const n = 200_003, p = 0.3;
  const xs = Float32Array.from({ length: n }, () => 0.5 + rng.next());
  const R = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const x = fromArray(xs).requireGrad();
  const y = tidy(() => {
    const o = dropout(x, p);
    sum(mul(o, fromArray(R))).backward();
    return o;
  });
  const out = await read(y);
  const g = await x.grad!.toArray();
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (out[i] === 0) {
      check(g[i] === 0, `grad at dropped element ${i} is ${g[i]}`);
      continue;
    }
    kept++;
    check(Math.abs(out[i] - xs[i] / (1 - p)) <= 1e-6 * out[i], `kept value ${out[i]} at ${i}`);
    check(Math.abs(g[i] - R[i] / (1 - p)) <= 1e-6, `grad at kept element ${i} is ${g[i]}`);
  }
  const sd = Math.sqrt(p * (1 - p) / n);
  check(Math.abs(kept / n - (1 - p)) < 5 * sd, `kept fraction ${kept / n}`);
  // Two calls draw different masks; reseeding reproduces the first.
  manualSeed(45);
  const again = await read(dropout(x, p));
  assertClose(again, out, { atol: 0, rtol: 0 });
  const other = await read(dropout(x, p));
  check(other.some((v, i) => (v === 0) !== (out[i] === 0)), "second mask equals the first");
  // Eval mode and p = 0 are the identity and pass the gradient through.
  x.grad!.dispose();
  x.grad = null;
  tidy(() => sum(mul(dropout(x, p, false), fromArray(R))).backward());
  assertClose(await x.grad!.toArray(), R, { atol: 0, rtol: 0 });
  assertClose(await read(dropout(x, 0)), xs, { atol: 0, rtol: 0 });
  // p = 1: zeros, zero gradient.
  x.grad!.dispose();
  x.grad = null;
  const z = tidy(() => {
    const o = dropout(x, 1);
    sum(o).backward();
    return o;
  });
  check((await read(z)).every((v) => v === 0), "dropout(p = 1) is not zero");
  check((await x.grad!.toArray()).every((v) => v === 0), "dropout(p = 1) gradient is not zero");
  x.dispose();
});

gpuTest("dropout on a strided input masks by logical position", async () => {
  manualSeed(46);
  const a = fromArray(Float32Array.from({ length: 12 }, (_, i) => i + 1), [3, 4]);
  const t = transpose(a);
  const y = await read(dropout(t, 0.5));
  const ta = [1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12];
  check(y.every((v, i) => v === 0 || v === 2 * ta[i]), `strided dropout ${y}`);
  t.dispose();
  a.dispose();
});
