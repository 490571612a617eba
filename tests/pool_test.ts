/**
 * maxPool2d and adaptiveAvgPool2d against float64 references: PyTorch's output sizes (floor and
 * ceil mode, padding, dilation, the ResNet stem rule), argmax indices with first-max ties and
 * −∞ inputs, gradients by finite differences (maxpool on inputs without ties), adaptive bins
 * that overlap, upsample and exceed one thread's loop budget, the modules, errors, no leaks.
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
import {
  adaptiveAvgPool2d,
  maxPool2d,
  type MaxPool2dOptions,
  maxPool2dWithIndices,
} from "../src/ops/pool.ts";
import { AdaptiveAvgPool2d, MaxPool2d } from "../src/nn/pool.ts";
import { mul } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { sum } from "../src/ops/reduce.ts";
import { permute } from "../src/ops/views.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";

const pair = (v: number | readonly [number, number]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

/** PyTorch's pooled length (stated independently of the engine's code). */
function outLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const eff = d * (k - 1) + 1;
  let o = ceil ? Math.ceil((n + 2 * p - eff) / s) + 1 : Math.floor((n + 2 * p - eff) / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** Float64 max pooling with −∞ padding; also the first-max flat index per output. */
function refMaxPool(x: Ref, o: MaxPool2dOptions): { y: Ref; idx: number[] } {
  const [kh, kw] = pair(o.kernelSize);
  const [sh, sw] = pair(o.stride ?? o.kernelSize);
  const [ph, pw] = pair(o.padding ?? 0);
  const [dh, dw] = pair(o.dilation ?? 1);
  const [H, W] = x.shape.slice(-2);
  const OH = outLen(H, kh, sh, ph, dh, !!o.ceilMode), OW = outLen(W, kw, sw, pw, dw, !!o.ceilMode);
  const planes = x.data.length / (H * W);
  const y = new Float64Array(planes * OH * OW);
  const idx: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) {
        let best = -Infinity, bi = -1;
        for (let a = 0; a < kh; a++) {
          for (let b = 0; b < kw; b++) {
            const h = i * sh - ph + a * dh, w = j * sw - pw + b * dw;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const v = x.data[p * H * W + h * W + w];
            if (bi < 0 || v > best) [best, bi] = [v, h * W + w];
          }
        }
        y[(p * OH + i) * OW + j] = best;
        idx.push(bi);
      }
    }
  }
  return { y: { shape: [...x.shape.slice(0, -2), OH, OW], data: y }, idx };
}

/** Float64 adaptive average pooling with PyTorch's bins. */
function refAdaptive(x: Ref, OH: number, OW: number): Ref {
  const [H, W] = x.shape.slice(-2);
  const planes = x.data.length / (H * W);
  const y = new Float64Array(planes * OH * OW);
  for (let p = 0; p < planes; p++) {
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) {
        const h0 = Math.floor((i * H) / OH), h1 = Math.ceil(((i + 1) * H) / OH);
        const w0 = Math.floor((j * W) / OW), w1 = Math.ceil(((j + 1) * W) / OW);
        let s = 0;
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += x.data[p * H * W + h * W + w];
        y[(p * OH + i) * OW + j] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
  return { shape: [...x.shape.slice(0, -2), OH, OW], data: y };
}

/** Distinct values 0.01 apart in random order: no ties, so max pooling is differentiable. */
function distinct(rng: Rng, shape: number[]): Ref {
  const n = size(shape);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [v[i], v[j]] = [v[j], v[i]];
  }
  return { shape, data: Float64Array.from(v) };
}

const MAX_CASES: [number[], MaxPool2dOptions][] = [
  [[2, 3, 8, 8], { kernelSize: 2 }],
  [[1, 1, 5, 7], { kernelSize: 2, stride: 2 }],
  [[2, 2, 7, 6], { kernelSize: 3, stride: 2, padding: 1 }],
  [[2, 2, 9, 8], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2] }],
  [[1, 2, 6, 7], { kernelSize: 3, stride: 2, ceilMode: true }],
  [[1, 1, 5, 5], { kernelSize: 2, stride: 2, padding: 1, ceilMode: true }],
  [[1, 1, 9, 9], { kernelSize: 3, dilation: 2, padding: 1 }],
  [[3, 5, 5], { kernelSize: 2 }],
  [[1, 2, 5, 6], { kernelSize: 3, stride: 1, padding: 1 }],
  [[2, 1, 1, 4], { kernelSize: [1, 3], stride: [1, 2], ceilMode: true }],
];

gpuTest("maxPool2d: PyTorch output sizes, values, indices, gradients by finite differences", async () => {
  const rng = new Rng(21);
  for (const [shape, o] of MAX_CASES) {
    const x = distinct(rng, shape);
    const ref = refMaxPool(x, o);
    await gradcheck((t) => maxPool2d(t, o), (t) => refMaxPool(t, o).y, [x], { atol: 1e-6 });
    const [y, idx] = maxPool2dWithIndices(toGpu(x), o);
    assertShape(y, ref.y.shape);
    assertClose(await idx.toArray(), ref.idx, { atol: 0, rtol: 0, msg: `indices ${JSON.stringify(o)}` });
  }
  // ResNet stem (3, stride 2, pad 1): ⌊(H − 1)/2⌋ + 1.
  for (let H = 1; H <= 12; H++) {
    const y = maxPool2d(fromArray(new Float32Array(H * (H + 3)), [1, 1, H, H + 3]), {
      kernelSize: 3,
      stride: 2,
      padding: 1,
    });
    assertShape(y, [1, 1, Math.floor((H - 1) / 2) + 1, Math.floor((H + 2) / 2) + 1], `H=${H}`);
  }
  // A permuted (strided) input.
  const xs = distinct(rng, [3, 2, 4, 5]);
  const perm = (r: Ref): Ref => {
    const out = new Float64Array(r.data.length);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 20; k++) out[(j * 3 + i) * 20 + k] = r.data[(i * 2 + j) * 20 + k];
      }
    }
    return { shape: [2, 3, 4, 5], data: out };
  };
  await gradcheck(
    (t) => maxPool2d(permute(t, [1, 0, 2, 3]), { kernelSize: 2, stride: 1 }),
    (t) => refMaxPool(perm(t), { kernelSize: 2, stride: 1 }).y,
    [xs],
  );
});

gpuTest(
  "maxPool2d: ties go to the first maximum, −∞ inputs, overlapping windows share gradients",
  async () => {
    // Ties: every window of a constant plane picks its first element.
    const c = { shape: [1, 1, 4, 5], data: new Float64Array(20).fill(0.5) };
    const o: MaxPool2dOptions = { kernelSize: 3, stride: 1, padding: 1 };
    const xt = toGpu(c, true);
    const [y, idx] = maxPool2dWithIndices(xt, o);
    assertClose(await idx.toArray(), refMaxPool(c, o).idx, { atol: 0, rtol: 0, msg: "tie indices" });
    tidy(() => sum(y).backward());
    // The gradient of each window lands on its first element: count windows per first element.
    const counts = new Float64Array(20);
    for (const i of refMaxPool(c, o).idx) counts[i]++;
    assertClose(await xt.grad!.toArray(), counts, { msg: "tie gradient" });
    // −∞ everywhere: the index is the first in-bounds element, the value −∞.
    const ninf = fromArray(new Float32Array(9).fill(-Infinity), [1, 1, 3, 3]);
    const [yi, ii] = maxPool2dWithIndices(ninf, { kernelSize: 2, stride: 2, padding: 1 });
    const yv = await yi.toArray();
    if (!yv.every((v) => v === -Infinity)) throw new Error(`expected −∞ outputs, got ${yv}`);
    assertClose(await ii.toArray(), [0, 1, 3, 4], { atol: 0, rtol: 0, msg: "−∞ indices" });
    for (const t of [xt, y, idx, ninf, yi, ii]) t.dispose();
  },
);

const ADAPTIVE_CASES: [number[], number | [number | null, number | null]][] = [
  [[2, 3, 7, 5], 1],
  [[2, 3, 7, 5], [3, 2]],
  [[1, 1, 5, 5], [5, 5]],
  [[2, 2, 4, 6], [8, 3]],
  [[3, 6, 6], 4],
  [[1, 2, 13, 1], [3, null]],
  [[1, 1, 1, 1], [2, 3]],
];

gpuTest("adaptiveAvgPool2d: PyTorch bins (overlapping, upsampling), gradients", async () => {
  const rng = new Rng(22);
  for (const [shape, os] of ADAPTIVE_CASES) {
    const [H, W] = shape.slice(-2);
    const OH = typeof os === "number" ? os : os[0] ?? H;
    const OW = typeof os === "number" ? os : os[1] ?? W;
    const x = randRef(rng, shape, -2, 2);
    await gradcheck((t) => adaptiveAvgPool2d(t, os), (t) => refAdaptive(t, OH, OW), [x]);
  }
});

gpuTest("adaptiveAvgPool2d: bins larger than one thread's loop budget (workgroup mode)", async () => {
  // 260 × 260 bins: more than 65,535 iterations for one thread.
  const rng = new Rng(23);
  const x = randRef(rng, [1, 2, 260, 520], -2, 2);
  const g = randRef(rng, [1, 2, 1, 2], -1, 1);
  const xt = toGpu(x, true);
  const y = adaptiveAvgPool2d(xt, [1, 2]);
  assertClose(await y.toArray(), refAdaptive(x, 1, 2).data, { atol: 1e-5, msg: "y" });
  tidy(() => sum(mul(y, toGpu(g))).backward());
  const dx = new Float64Array(x.data.length);
  for (let p = 0; p < 2; p++) {
    for (let h = 0; h < 260; h++) {
      for (let w = 0; w < 520; w++) {
        dx[(p * 260 + h) * 520 + w] = g.data[p * 2 + (w < 260 ? 0 : 1)] / 260 ** 2;
      }
    }
  }
  assertClose(await xt.grad!.toArray(), dx, { atol: 1e-9, rtol: 1e-4, msg: "dx" });
  xt.dispose();
  y.dispose();
});

gpuTest("pooling modules, errors, no leaks", async () => {
  const rng = new Rng(24);
  const x = distinct(rng, [2, 3, 6, 6]);
  const mp = new MaxPool2d(3, { stride: 2, padding: 1 });
  assertClose(
    await mp.forward(toGpu(x)).toArray(),
    refMaxPool(x, { kernelSize: 3, stride: 2, padding: 1 }).y.data,
  );
  const ap = new AdaptiveAvgPool2d([2, 3]);
  assertClose(await ap.forward(toGpu(x)).toArray(), refAdaptive(x, 2, 3).data, { atol: 1e-6 });
  if (mp.stateDict().size !== 0 || ap.parameters().length !== 0) throw new Error("pools have no state");
  const t = fromArray(new Float32Array(16), [1, 1, 4, 4]);
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (re.test(String(e))) return;
      throw new Error(`wrong error: ${e}`);
    }
    throw new Error(`expected an error matching ${re}`);
  };
  expectThrow(() => maxPool2d(t, { kernelSize: 2, padding: 2 }), /at most half the kernel/);
  expectThrow(() => maxPool2d(t, { kernelSize: 5 }), /too small/);
  expectThrow(() => maxPool2d(t, { kernelSize: 0 }), /kernelSize must be an integer/);
  expectThrow(() => maxPool2d(fromArray([1, 2]), { kernelSize: 1 }), /\[B, C, H, W\]/);
  expectThrow(() => adaptiveAvgPool2d(t, 0), /positive integers/);
  expectThrow(() => adaptiveAvgPool2d(fromArray(new Int32Array(16), [1, 1, 4, 4]), 1), /f32/);
  const xt = toGpu(randRef(rng, [2, 2, 7, 7]), true);
  const step = () =>
    tidy(() =>
      sum(mul(adaptiveAvgPool2d(maxPool2d(xt, { kernelSize: 3, stride: 2, padding: 1 }), 2), 2)).backward()
    );
  step();
  const before = memoryStats().liveBytes;
  step();
  step();
  if (memoryStats().liveBytes !== before) {
    throw new Error(`leak: ${before} -> ${memoryStats().liveBytes} bytes`);
  }
  xt.dispose();
});
