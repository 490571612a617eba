/**
 * Reductions (sum, mean, max, min, argmax, argmin) and variance/std against float64 references:
 * every axis subset including non-adjacent ones, keepDim, negative axes, ties, strided
 * (permuted, sliced, expanded) inputs, and big single-axis reductions (≥ 100k elements, and
 * longer than one lavapipe invocation's 65535-iteration loop limit).
 */
import {
  assertClose,
  assertShape,
  gpuTest,
  gradcheck,
  randRef,
  type Ref,
  refReduce,
  Rng,
  size,
  toGpu,
} from "./helpers.ts";
import { argmax, argmin, max, mean, min, sum } from "../src/ops/reduce.ts";
import { std, variance } from "../src/ops/stats.ts";
import { expand, permute, slice } from "../src/ops/views.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mapN } from "../src/ops/map.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

type AxesOp = (t: Tensor, axes?: number | number[], keepDim?: boolean) => Tensor;
const total = (v: number[]) => v.reduce((a, b) => a + b, 0);
const OPS: [string, AxesOp, (v: number[]) => number][] = [
  ["sum", sum, total],
  ["mean", mean, (v) => total(v) / v.length],
  ["max", max, (v) => v.reduce((a, b) => Math.max(a, b), -Infinity)],
  ["min", min, (v) => v.reduce((a, b) => Math.min(a, b), Infinity)],
];

/** Every subset of `[0, rank)`. */
function subsets(rank: number): number[][] {
  return Array.from({ length: 1 << rank }, (_, m) => [...Array(rank).keys()].filter((i) => m & (1 << i)));
}

/** Float64 permute of a reference. */
function refPermute(x: Ref, dims: number[]): Ref {
  const shape = dims.map((d) => x.shape[d]);
  const st = x.shape.map((_, i) => size(x.shape.slice(i + 1)));
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    let r = i, off = 0;
    for (let k = shape.length - 1; k >= 0; k--) {
      off += (r % shape[k]) * st[dims[k]];
      r = Math.floor(r / shape[k]);
    }
    out[i] = x.data[off];
  }
  return { shape, data: out };
}

/** Float64 argmax/argmin along one axis (first index on ties). */
function refArg(x: Ref, axis: number, better: (a: number, b: number) => boolean, keepDim: boolean): Ref {
  const R = x.shape[axis];
  const O2 = size(x.shape.slice(axis + 1));
  const O1 = size(x.shape.slice(0, axis));
  const data = new Float64Array(O1 * O2);
  for (let a = 0; a < O1; a++) {
    for (let b = 0; b < O2; b++) {
      let best = 0;
      for (let r = 1; r < R; r++) {
        if (better(x.data[(a * R + r) * O2 + b], x.data[(a * R + best) * O2 + b])) best = r;
      }
      data[a * O2 + b] = best;
    }
  }
  const shape = keepDim ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
  return { shape, data };
}

for (const [name, op, f] of OPS) {
  gpuTest(`${name}: every axis subset of rank 3 and 4, keepDim, negative axes`, async () => {
    const rng = new Rng(name.length);
    for (const shape of [[3, 4, 5], [2, 1, 3, 4]]) {
      const x = randRef(rng, shape, -2, 2);
      for (const axes of subsets(shape.length)) {
        for (const keep of [false, true]) {
          const neg = axes.map((a) => (rng.next() < 0.5 ? a - shape.length : a));
          await gradcheck((t) => op(t, neg, keep), (r) => refReduce(r, axes, f, keep), [x]);
        }
      }
      await gradcheck((t) => op(t), (r) => refReduce(r, [...shape.keys()], f), [x]);
      await gradcheck((t) => op(t, -1), (r) => refReduce(r, [shape.length - 1], f), [x]);
    }
  });
}

gpuTest("argmax / argmin: every axis, keepDim, all elements, first index on ties", async () => {
  const rng = new Rng(7);
  const shape = [4, 5, 3];
  // Few distinct values, so ties are common.
  const x: Ref = { shape, data: Float64Array.from({ length: 60 }, () => rng.int(4)) };
  const t = toGpu(x);
  for (let axis = 0; axis < 3; axis++) {
    for (const keep of [false, true]) {
      const a = argmax(t, axis - (keep ? 3 : 0), keep);
      const b = argmin(t, axis, keep);
      if (a.dtype !== "i32") throw new Error("argmax must give i32");
      const ra = refArg(x, axis, (p, q) => p > q, keep);
      const rb = refArg(x, axis, (p, q) => p < q, keep);
      assertShape(a, ra.shape);
      assertClose(await a.toArray(), ra.data, { atol: 0, rtol: 0, msg: `argmax axis ${axis}` });
      assertClose(await b.toArray(), rb.data, { atol: 0, rtol: 0, msg: `argmin axis ${axis}` });
    }
  }
  const flat = { shape: [60], data: x.data };
  assertClose([await argmax(t).item()], refArg(flat, 0, (p, q) => p > q, false).data, { atol: 0, rtol: 0 });
  assertClose([await argmin(t).item()], refArg(flat, 0, (p, q) => p < q, false).data, { atol: 0, rtol: 0 });
  // Strided input.
  const p = permute(t, [2, 0, 1]);
  assertClose(
    await argmax(p, 2).toArray(),
    refArg(refPermute(x, [2, 0, 1]), 2, (u, v) => u > v, false).data,
    { atol: 0 },
  );
});

gpuTest("reductions of strided inputs: permuted, sliced with a step, expanded", async () => {
  const rng = new Rng(8);
  const x = randRef(rng, [3, 4, 5], -2, 2);
  for (const [name, op, f] of OPS) {
    for (const dims of [[2, 0, 1], [1, 2, 0]]) {
      for (const axes of [[0], [1], [2], [0, 2], [0, 1]]) {
        await gradcheck((t) => op(permute(t, dims), axes), (r) => refReduce(refPermute(r, dims), axes, f), [
          x,
        ], {
          seed: axes.length,
        });
      }
    }
    // Every second element of the middle axis.
    const sliced = (r: Ref): Ref => {
      const data: number[] = [];
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 4; j += 2) for (let k = 0; k < 5; k++) data.push(r.data[(i * 4 + j) * 5 + k]);
      }
      return { shape: [3, 2, 5], data: Float64Array.from(data) };
    };
    await gradcheck((t) => op(slice(t, 1, 0, undefined, 2), [0, 2]), (r) => refReduce(sliced(r), [0, 2], f), [
      x,
    ]);
    if (name === "sum" || name === "mean") {
      const y = randRef(rng, [4, 1], -2, 2);
      const ex = (r: Ref): Ref => ({
        shape: [3, 4, 6],
        data: Float64Array.from({ length: 72 }, (_, i) => r.data[Math.floor(i / 6) % 4]),
      });
      await gradcheck((t) => op(expand(t, [3, 4, 6]), [0, 2]), (r) => refReduce(ex(r), [0, 2], f), [y]);
    }
  }
});

gpuTest("big single-axis reductions (≥ 100k elements, and past the loop limit)", async () => {
  const rng = new Rng(9);
  for (
    const [shape, axis] of [[[300001], 0], [[3, 200000], 1], [[200000, 3], 0], [[2, 131072, 2], 1]] as const
  ) {
    const x = randRef(rng, [...shape], -1, 1);
    const t = toGpu(x);
    for (const [name, op, f] of OPS) {
      const got = await op(t, axis).toArray();
      const rtol = name === "sum" || name === "mean" ? 1e-3 : 0;
      assertClose(got, refReduce(x, [axis], f).data, { atol: 1e-3, rtol, msg: `${name} ${shape}` });
    }
    const am = await argmax(t, axis).toArray();
    assertClose(am, refArg(x, axis, (p, q) => p > q, false).data, {
      atol: 0,
      rtol: 0,
      msg: `argmax ${shape}`,
    });
    t.dispose();
  }
  // 2^23 + 5 elements of an integer pattern: exact in f32, and each of 128 threads would loop
  // more than 65535 times (lavapipe leaves such loops early).
  const n = (1 << 23) + 5;
  const v = mapN("f32(i % 3u)", [], [], "f32", [n]);
  let expect = 0;
  for (let i = 0; i < n; i++) expect += i % 3;
  const exact = { atol: 0, rtol: 0 };
  assertClose([await sum(v).item()], [expect], exact);
  const ramp = mapN("f32(i)", [], [], "f32", [n]);
  assertClose([await max(ramp).item(), await min(ramp).item()], [n - 1, 0], exact);
  assertClose([await argmax(ramp).item(), await argmin(ramp).item()], [n - 1, 0], exact);
  // Many outputs (thread mode), long reduced axis.
  const m = mapN("f32((i * 7u) % 13u)", [], [], "f32", [3000, 2100]);
  const cols = new Float64Array(2100);
  for (let i = 0; i < 3000 * 2100; i++) cols[i % 2100] += (i * 7) % 13;
  assertClose(await sum(m, 0).toArray(), cols, exact);
  for (const u of [v, ramp, m]) u.dispose();
});

/** Float64 variance with a correction. */
const refVar = (c: number) => (v: number[]) => {
  const mu = total(v) / v.length;
  return v.reduce((a, b) => a + (b - mu) ** 2, 0) / Math.max(0, v.length - c);
};

gpuTest("variance / std: axis subsets, keepDim, corrections", async () => {
  const rng = new Rng(10);
  const x = randRef(rng, [3, 4, 5], -2, 2);
  for (const axes of subsets(3).filter((a) => a.length > 0)) {
    for (const keep of [false, true]) {
      for (const c of [0, 1]) {
        await gradcheck((t) => variance(t, axes, keep, c), (r) => refReduce(r, axes, refVar(c), keep), [x]);
      }
    }
  }
  await gradcheck((t) => variance(t), (r) => refReduce(r, [0, 1, 2], refVar(1)), [x]);
  await gradcheck((t) => variance(t, -1, false, 2), (r) => refReduce(r, [2], refVar(2)), [x]);
  await gradcheck((t) => std(t, [0, 2]), (r) => refReduce(r, [0, 2], (v) => Math.sqrt(refVar(1)(v))), [x]);
  await gradcheck(
    (t) => variance(permute(t, [2, 0, 1]), 1),
    (r) => refReduce(refPermute(r, [2, 0, 1]), [1], refVar(1)),
    [x],
  );
  // Large mean: the two-pass form stays accurate.
  const big = randRef(rng, [4, 1000], 999, 1001);
  assertClose(await variance(toGpu(big), 1).toArray(), refReduce(big, [1], refVar(1)).data, {
    atol: 1e-3,
    rtol: 1e-3,
  });
  // One element with the unbiased estimator: NaN, as in PyTorch.
  const one = await variance(fromArray([2.5])).item();
  if (!Number.isNaN(one)) throw new Error(`variance of one element should be NaN, got ${one}`);
  let threw = false;
  try {
    variance(fromArray(new Int32Array([1, 2])));
  } catch (e) {
    threw = /f32/.test(String(e));
  }
  if (!threw) throw new Error("variance of an i32 tensor should fail with a dtype message");
});
