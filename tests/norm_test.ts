/**
 * layerNorm against a float64 reference: with and without affine parameters, one or several
 * normalised dims, size-1 dims, both kernel modes, long rows, many rows (chunked weight/bias
 * gradients), strided inputs, large means, shape errors, and no leaked memory.
 */
import {
  assertClose,
  assertShape,
  gpuTest,
  gradcheck,
  randRef,
  type Ref,
  Rng,
  size,
  toGpu,
} from "./helpers.ts";
import { layerNorm } from "../src/ops/norm.ts";
import { setRowModeOverride } from "../src/ops/softmax.ts";
import { permute, slice } from "../src/ops/views.ts";
import { mul } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { RowMode } from "../shaders/softmax.ts";

/** Float64 layer norm over the trailing `k` dims; weight/bias optional (null). */
function refLayerNorm(x: Ref, k: number, w: Ref | null, b: Ref | null, eps = 1e-5): Ref {
  const D = size(x.shape.slice(x.shape.length - k));
  const out = new Float64Array(x.data.length);
  for (let r = 0; r * D < x.data.length; r++) {
    const row = x.data.subarray(r * D, (r + 1) * D);
    const mean = row.reduce((p, v) => p + v, 0) / D;
    const v = row.reduce((p, q) => p + (q - mean) ** 2, 0) / D;
    const rstd = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < D; c++) {
      out[r * D + c] = (row[c] - mean) * rstd * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
    }
  }
  return { shape: x.shape, data: out };
}

const MODES: RowMode[] = ["thread", "group"];

for (const [mode, vec4] of MODES.flatMap((m) => [[m, true], [m, false]] as const)) {
  gpuTest(`layerNorm (${mode} mode, vec4 ${vec4}): affine variants, 1 and 2 normalised dims`, async () => {
    setRowModeOverride(mode, vec4);
    try {
      const rng = new Rng(mode === "thread" ? 1 : 2);
      const cases: [number[], number][] = [
        [[4, 7], 1],
        [[2, 3, 5], 2],
        [[3, 1, 6], 1],
        [[3, 8], 1],
        [[5, 1], 1],
        [[9], 1],
        [
          [2, 2, 3, 4],
          2,
        ],
      ];
      for (const [shape, k] of cases) {
        const ns = shape.slice(shape.length - k);
        const x = randRef(rng, shape, -2, 2);
        const w = randRef(rng, ns, 0.5, 1.5);
        const b = randRef(rng, ns, -1, 1);
        await gradcheck((t, ww, bb) => layerNorm(t, ns, ww, bb), (t, ww, bb) => refLayerNorm(t, k, ww, bb), [
          x,
          w,
          b,
        ], {
          atol: 1e-4,
        });
        await gradcheck((t) => layerNorm(t, ns), (t) => refLayerNorm(t, k, null, null), [x], { atol: 1e-4 });
        await gradcheck((t, ww) => layerNorm(t, ns, ww), (t, ww) => refLayerNorm(t, k, ww, null), [x, w], {
          atol: 1e-4,
        });
        await gradcheck((t, bb) => layerNorm(t, ns, null, bb), (t, bb) => refLayerNorm(t, k, null, bb), [
          x,
          b,
        ], {
          atol: 1e-4,
        });
      }
      // Long rows.
      const x = randRef(rng, [2, 1100], -2, 2);
      const w = randRef(rng, [1100], 0.5, 1.5);
      const b = randRef(rng, [1100], -1, 1);
      await gradcheck(
        (t, ww, bb) => layerNorm(t, [1100], ww, bb, 1e-3),
        (t, ww, bb) => refLayerNorm(t, 1, ww, bb, 1e-3),
        [
          x,
          w,
          b,
        ],
        { atol: 1e-4 },
      );
    } finally {
      setRowModeOverride(null);
    }
  });
}

/** Analytic gradients of `sum(layerNorm(x)·G)` for checking big inputs. */
function refGrads(x: Ref, D: number, w: Ref, g: Ref, eps = 1e-5) {
  const dx = new Float64Array(x.data.length);
  const dw = new Float64Array(D);
  const db = new Float64Array(D);
  for (let r = 0; r * D < x.data.length; r++) {
    const row = x.data.subarray(r * D, (r + 1) * D);
    const mean = row.reduce((p, v) => p + v, 0) / D;
    const rstd = 1 / Math.sqrt(row.reduce((p, q) => p + (q - mean) ** 2, 0) / D + eps);
    let s1 = 0, s2 = 0;
    for (let c = 0; c < D; c++) {
      const xh = (row[c] - mean) * rstd;
      const gy = g.data[r * D + c] * w.data[c];
      s1 += gy;
      s2 += gy * xh;
      dw[c] += g.data[r * D + c] * xh;
      db[c] += g.data[r * D + c];
    }
    for (let c = 0; c < D; c++) {
      const xh = (row[c] - mean) * rstd;
      dx[r * D + c] = rstd * (g.data[r * D + c] * w.data[c] - s1 / D - xh * s2 / D);
    }
  }
  return { dx, dw, db };
}

gpuTest("layerNorm on big inputs: long rows, many rows (chunked weight/bias sums)", async () => {
  const rng = new Rng(3);
  for (const [rows, D] of [[4, 70000], [70000, 3], [3000, 33], [64, 4096]]) {
    const x = randRef(rng, [rows, D], -3, 3);
    const w = randRef(rng, [D], 0.5, 1.5);
    const b = randRef(rng, [D], -1, 1);
    const g = randRef(rng, [rows, D], -1, 1);
    const [xt, wt, bt] = [toGpu(x, true), toGpu(w, true), toGpu(b, true)];
    const gt = toGpu(g);
    const y = layerNorm(xt, [D], wt, bt);
    assertClose(await y.toArray(), refLayerNorm(x, 1, w, b).data, {
      atol: 1e-4,
      rtol: 1e-4,
      msg: `y ${rows}x${D}`,
    });
    tidy(() => sum(mul(y, gt)).backward());
    const r = refGrads(x, D, w, g);
    assertClose(await xt.grad!.toArray(), r.dx, { atol: 1e-4, rtol: 1e-3, msg: `dx ${rows}x${D}` });
    const scale = Math.sqrt(rows);
    assertClose(await wt.grad!.toArray(), r.dw, { atol: 1e-5 * scale, rtol: 1e-3, msg: `dw ${rows}x${D}` });
    assertClose(await bt.grad!.toArray(), r.db, { atol: 1e-5 * scale, rtol: 1e-3, msg: `db ${rows}x${D}` });
    for (const t of [xt, wt, bt, gt, y]) t.dispose();
  }
});

gpuTest("layerNorm on strided inputs and rows with a large mean", async () => {
  const rng = new Rng(4);
  const x = randRef(rng, [3, 4, 5], -2, 2);
  const perm = (r: Ref): Ref => {
    // permute [3, 4, 5] -> [4, 3, 5]
    const out = new Float64Array(r.data.length);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) {
        for (let k = 0; k < 5; k++) out[(j * 3 + i) * 5 + k] = r.data[(i * 4 + j) * 5 + k];
      }
    }
    return { shape: [4, 3, 5], data: out };
  };
  await gradcheck((t) => layerNorm(permute(t, [1, 0, 2]), [5]), (t) => refLayerNorm(perm(t), 1, null, null), [
    x,
  ], { atol: 1e-4 });
  await gradcheck(
    (t) => layerNorm(permute(t, [1, 0, 2]), [3, 5]),
    (t) => refLayerNorm(perm(t), 2, null, null),
    [x],
    { atol: 1e-4 },
  );
  // Weight and bias views at offsets that are not multiples of 4 (no vec4 access for them).
  const x8 = randRef(rng, [3, 8], -2, 2);
  const wb = randRef(rng, [10], 0.5, 1.5);
  const part = (r: Ref, at: number): Ref => ({ shape: [8], data: r.data.slice(at, at + 8) });
  await gradcheck(
    (t, u) => layerNorm(t, [8], slice(u, 0, 1, 9), slice(u, 0, 2, 10)),
    (t, u) => refLayerNorm(t, 1, part(u, 1), part(u, 2)),
    [x8, wb],
    { atol: 1e-4 },
  );
  // Mean 1000, spread 1: Welford keeps the variance accurate where E[x²] − E[x]² would not.
  const big = randRef(rng, [6, 300], 999, 1001);
  const y = layerNorm(toGpu(big), [300]);
  assertClose(await y.toArray(), refLayerNorm(big, 1, null, null).data, { atol: 2e-3, rtol: 1e-3 });
});

gpuTest("layerNorm: shape and dtype errors, no leaks", async () => {
  const x = fromArray(new Float32Array(24), [2, 3, 4]);
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (re.test(String(e))) return;
      throw new Error(`wrong error: ${e}`);
    }
    throw new Error(`expected an error matching ${re}`);
  };
  expectThrow(() => layerNorm(x, [3]), /trailing dims/);
  expectThrow(() => layerNorm(x, [2, 3, 4, 5]), /trailing dims/);
  expectThrow(() => layerNorm(x, [4], fromArray(new Float32Array(3))), /weight has shape \[3\]/);
  expectThrow(() => layerNorm(x, [4], null, fromArray(new Float32Array(8), [2, 4])), /bias has shape/);
  expectThrow(() => layerNorm(fromArray(new Int32Array(4)), [4]), /f32/);
  assertShape(layerNorm(x, []), [2, 3, 4]);
  const rng = new Rng(5);
  const xt = toGpu(randRef(rng, [5, 40]), true);
  const wt = toGpu(randRef(rng, [40]), true);
  const step = () => tidy(() => sum(layerNorm(xt, [40], wt, null)).backward());
  step();
  const before = memoryStats().liveBytes;
  step();
  step();
  if (memoryStats().liveBytes !== before) {
    throw new Error(`leak: ${before} -> ${memoryStats().liveBytes} bytes`);
  }
  const g = await wt.grad!.toArray();
  if (!g.every(Number.isFinite)) throw new Error("non-finite gradient");
});
