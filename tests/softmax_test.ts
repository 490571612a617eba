/**
 * Softmax, log-softmax and logsumexp against float64 references: every axis, size-1 dims, odd
 * sizes, long rows, strided inputs, both kernel modes (thread-per-row and workgroup-per-row),
 * extreme values, empty and rank-0 tensors, and no leaked memory.
 */
import {
  assertClose,
  assertShape,
  gpuTest,
  gradcheck,
  randRef,
  randShape,
  type Ref,
  Rng,
  size,
  toGpu,
} from "./helpers.ts";
import { fromArray } from "../src/ops/creation.ts";
import { logSoftmax, logsumexp, setRowModeOverride, softmax } from "../src/ops/softmax.ts";
import { permute, reshape, slice } from "../src/ops/views.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { RowMode } from "../shaders/softmax.ts";

/** Applies `f` to every row along `axis` of a float64 reference. */
function rowsMap(x: Ref, axis: number, f: (row: number[]) => number[]): Ref {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const R = x.shape[ax];
  const O2 = size(x.shape.slice(ax + 1));
  const O1 = size(x.shape.slice(0, ax));
  const out = new Float64Array(x.data.length);
  for (let a = 0; a < O1; a++) {
    for (let b = 0; b < O2; b++) {
      const idx = (r: number) => (a * R + r) * O2 + b;
      const y = f(Array.from({ length: R }, (_, r) => x.data[idx(r)]));
      y.forEach((v, r) => (out[idx(r)] = v));
    }
  }
  return { shape: x.shape, data: out };
}

/** Reduces every row along `axis` to one value. */
function rowsReduce(x: Ref, axis: number, f: (row: number[]) => number, keepDim: boolean): Ref {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const R = x.shape[ax];
  const O2 = size(x.shape.slice(ax + 1));
  const O1 = size(x.shape.slice(0, ax));
  const data = new Float64Array(O1 * O2);
  for (let a = 0; a < O1; a++) {
    for (let b = 0; b < O2; b++) {
      data[a * O2 + b] = f(Array.from({ length: R }, (_, r) => x.data[(a * R + r) * O2 + b]));
    }
  }
  const shape = keepDim ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
  return { shape, data };
}

const lse = (row: number[]) => {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
};
const refSoftmax = (row: number[]) => {
  const l = lse(row);
  return row.map((v) => Math.exp(v - l));
};
const refLogSoftmax = (row: number[]) => {
  const l = lse(row);
  return row.map((v) => v - l);
};

/** Float64 permute of a reference (out.shape[i] = x.shape[dims[i]]). */
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

/** `f(y, g, s)` per element, with `s` the keepDim row value broadcast along `axis`. */
function refMapRows(
  y: Ref,
  g: Ref,
  s: Ref,
  axis: number,
  f: (y: number, g: number, s: number) => number,
): Float64Array {
  const ax = axis < 0 ? axis + y.shape.length : axis;
  const R = y.shape[ax];
  const O2 = size(y.shape.slice(ax + 1));
  return y.data.map((v, i) => f(v, g.data[i], s.data[Math.floor(i / (R * O2)) * O2 + (i % O2)]));
}

const MODES: RowMode[] = ["thread", "group"];

async function withMode(mode: RowMode, fn: () => Promise<void>, vec4 = true): Promise<void> {
  setRowModeOverride(mode, vec4);
  try {
    await fn();
  } finally {
    setRowModeOverride(null);
  }
}

for (const mode of MODES) {
  gpuTest(`softmax / logSoftmax (${mode} mode): random shapes, every axis, vec4 and scalar`, async () => {
    const rng = new Rng(mode === "thread" ? 11 : 12);
    const shapes = [1, 2, 3, 4].map((rank) => {
      const shape = randShape(rng, rank, 6);
      if (rank >= 2) shape[rng.int(rank)] = 1;
      return shape;
    });
    shapes.push([3, 8], [2, 1, 12]);
    for (const vec4 of [true, false]) {
      await withMode(mode, async () => {
        for (const shape of shapes) {
          const x = randRef(rng, shape, -3, 3);
          for (let axis = -shape.length; axis < shape.length; axis++) {
            await gradcheck((t) => softmax(t, axis), (r) => rowsMap(r, axis, refSoftmax), [x]);
            await gradcheck((t) => logSoftmax(t, axis), (r) => rowsMap(r, axis, refLogSoftmax), [x]);
          }
        }
      }, vec4);
    }
  });

  gpuTest(`logsumexp (${mode} mode): every axis, keepDim`, async () => {
    await withMode(mode, async () => {
      const rng = new Rng(21);
      for (const shape of [[7], [3, 1, 5], [2, 9, 4], [1, 3, 2, 5]]) {
        const x = randRef(rng, shape, -4, 4);
        for (let axis = -shape.length; axis < shape.length; axis++) {
          for (const keep of [false, true]) {
            await gradcheck((t) => logsumexp(t, axis, keep), (r) => rowsReduce(r, axis, lse, keep), [x]);
          }
        }
      }
    });
  });

  gpuTest(`long rows (${mode} mode): last and middle axis`, async () => {
    await withMode(mode, async () => {
      const rng = new Rng(31);
      const a = randRef(rng, [1, 1028], -5, 5);
      await gradcheck((t) => softmax(t), (r) => rowsMap(r, -1, refSoftmax), [a], { gradAtol: 2e-4 });
      await gradcheck((t) => logSoftmax(t), (r) => rowsMap(r, -1, refLogSoftmax), [a]);
      const b = randRef(rng, [1, 1001, 2], -5, 5);
      await gradcheck((t) => logSoftmax(t, 1), (r) => rowsMap(r, 1, refLogSoftmax), [b]);
      await gradcheck((t) => logsumexp(t, 1), (r) => rowsReduce(r, 1, lse, false), [b]);
      // Bigger inputs, some longer than one thread's loop budget: forward against the reference,
      // backward against the analytic gradient (finite differences would be too slow).
      const cases = [[[5, 20000], -1], [[40, 1001], 1], [[3, 7, 2049], 2], [[1, 100000], 1], [
        [2, 70000, 2],
        1,
      ]] as const;
      for (const [shape, axis] of cases) {
        const x = randRef(rng, [...shape], -10, 10);
        const gr = randRef(rng, [...shape], -1, 1);
        const t = toGpu(x, true);
        const gt = toGpu(gr);
        const y = softmax(t, axis);
        const yr = rowsMap(x, axis, refSoftmax);
        assertClose(await y.toArray(), yr.data, { atol: 1e-6, rtol: 2e-4, msg: `${shape}` });
        y.backward(gt);
        // dx = y·(g − Σ g·y) per row.
        const gy = rowsReduce(
          { shape: x.shape, data: yr.data.map((v, i) => v * gr.data[i]) },
          axis,
          (r) => r.reduce((p, q) => p + q, 0),
          true,
        );
        const expect = refMapRows(yr, gr, gy, axis, (yv, g, s) => yv * (g - s));
        assertClose(await t.grad!.toArray(), expect, { atol: 1e-6, rtol: 1e-3, msg: `grad ${shape}` });
        const l = logsumexp(t, axis);
        assertClose(await l.toArray(), rowsReduce(x, axis, lse, false).data, { atol: 1e-5, rtol: 1e-5 });
        for (const u of [t, gt, y, l]) u.dispose();
      }
    });
  });
}

gpuTest("softmax of strided (permuted) inputs", async () => {
  const rng = new Rng(41);
  const x = randRef(rng, [3, 4, 5], -2, 2);
  for (const dims of [[1, 0, 2], [2, 1, 0], [0, 2, 1]]) {
    for (const axis of [0, 1, 2]) {
      await gradcheck(
        (t) => softmax(permute(t, dims), axis),
        (r) => rowsMap(refPermute(r, dims), axis, refSoftmax),
        [x],
      );
      await gradcheck(
        (t) => logsumexp(permute(t, dims), axis),
        (r) => rowsReduce(refPermute(r, dims), axis, lse, false),
        [x],
      );
    }
  }
});

gpuTest("softmax of views with offsets that are not multiples of 4", async () => {
  const rng = new Rng(42);
  const x = randRef(rng, [41], -2, 2);
  const view = (r: Ref): Ref => ({ shape: [5, 8], data: r.data.slice(1) });
  for (const mode of MODES) {
    await withMode(mode, async () => {
      await gradcheck(
        (t) => softmax(reshape(slice(t, 0, 1), [5, 8])),
        (r) => rowsMap(view(r), -1, refSoftmax),
        [x],
      );
      await gradcheck(
        (t) => logSoftmax(reshape(slice(t, 0, 1), [5, 8])),
        (r) => rowsMap(view(r), -1, refLogSoftmax),
        [
          x,
        ],
      );
    });
  }
});

gpuTest("softmax is stable for large, tiny and -inf logits", async () => {
  for (const mode of MODES) {
    await withMode(mode, async () => {
      const x = fromArray([[1000, 1001, 1002], [-1000, -1001, -1002], [0, -Infinity, 1], [
        88,
        89,
        -Infinity,
      ]]);
      const expect = [[0, 1, 2], [0, -1, -2], [0, -Infinity, 1], [88, 89, -Infinity]].flatMap((r) =>
        refSoftmax(r)
      );
      assertClose(await softmax(x).toArray(), expect, { atol: 1e-6, msg: mode });
      const ls = await logSoftmax(x).toArray();
      assertClose(ls.slice(0, 6), [[0, 1, 2], [0, -1, -2]].flatMap((r) => refLogSoftmax(r)), { atol: 1e-5 });
      if (ls[7] !== -Infinity) throw new Error(`logSoftmax(-inf) = ${ls[7]}`);
      assertClose(await logsumexp(x).toArray(), [1002.40760596, -999.59239403, 1.31326169, 89.31326169], {
        atol: 1e-3,
        rtol: 1e-6,
      });
    });
  }
});

gpuTest("rank-0, size-1 and empty inputs", async () => {
  const s = fromArray(3);
  assertClose(await softmax(s).toArray(), [1]);
  assertClose(await logsumexp(s).toArray(), [3]);
  const one = fromArray([[2.5], [-1]]);
  assertClose(await softmax(one).toArray(), [1, 1]);
  assertClose(await logSoftmax(one, 0).toArray(), [-0.0297505, -3.5297505], { atol: 1e-5 });
  const e = fromArray(new Float32Array(0), [0, 4]);
  assertShape(softmax(e), [0, 4]);
  const l = logsumexp(e, 0);
  assertShape(l, [4]);
  if (!(await l.toArray()).every((v) => v === -Infinity)) {
    throw new Error("logsumexp over an empty axis must be -inf");
  }
});

gpuTest("softmax errors and no leaks", async () => {
  let threw = false;
  try {
    softmax(fromArray(new Int32Array([1, 2])));
  } catch (e) {
    threw = /f32/.test(String(e));
  }
  if (!threw) throw new Error("softmax of an i32 tensor should fail with a dtype message");
  const rng = new Rng(51);
  const x = toGpu(randRef(rng, [6, 33], -2, 2), true);
  const step = () =>
    tidy(() => {
      sum(softmax(x, 0)).backward();
      sum(logSoftmax(x)).backward();
      sum(logsumexp(x, 1, true)).backward();
    });
  step();
  const before = memoryStats().liveBytes;
  step();
  step();
  if (memoryStats().liveBytes !== before) {
    throw new Error(`leak: ${before} -> ${memoryStats().liveBytes} bytes`);
  }
  const g = await x.grad!.toArray();
  if (!g.every(Number.isFinite)) throw new Error("non-finite gradient");
  x.dispose();
});
