/**
 * batchNorm2d and the BatchNorm2d module against a float64 reference: training and eval forward
 * and backward (gradcheck) on odd shapes, with and without affine parameters and the fused ReLU,
 * vec4 and scalar paths, running-statistics updates over two steps, a channel longer than one
 * thread's loop budget with a large mean, module state dict / modes / reset, errors, no leaks.
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
import { batchNorm2d, type BatchNormOptions } from "../src/ops/batchnorm.ts";
import { BatchNorm2d } from "../src/nn/norm2d.ts";
import { mul } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { sum } from "../src/ops/reduce.ts";
import { permute, reshape, slice } from "../src/ops/views.ts";
import { noGrad } from "../src/tensor/autograd.ts";
import {
  arrayToHost,
  decodeSafetensors,
  encodeSafetensors,
  uploadSafetensors,
} from "../src/io/safetensors.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

interface RefOpts {
  training: boolean;
  rm?: Float64Array;
  rv?: Float64Array;
  momentum?: number;
  eps?: number;
  relu?: boolean;
}

/** Float64 batch norm over [B, C, …]; updates `o.rm`/`o.rv` in place when training. */
function refBN(x: Ref, w: Ref | null, b: Ref | null, o: RefOpts): Ref {
  const [B, C] = x.shape;
  const S = size(x.shape.slice(2));
  const eps = o.eps ?? 1e-5, m = o.momentum ?? 0.1;
  const out = new Float64Array(x.data.length);
  for (let c = 0; c < C; c++) {
    let mean: number, v: number;
    if (o.training) {
      let s = 0;
      for (let i = 0; i < B; i++) for (let j = 0; j < S; j++) s += x.data[(i * C + c) * S + j];
      mean = s / (B * S);
      let q = 0;
      for (let i = 0; i < B; i++) for (let j = 0; j < S; j++) q += (x.data[(i * C + c) * S + j] - mean) ** 2;
      v = q / (B * S);
      if (o.rm && o.rv) {
        o.rm[c] = (1 - m) * o.rm[c] + m * mean;
        o.rv[c] = (1 - m) * o.rv[c] + m * (q / (B * S - 1));
      }
    } else {
      mean = o.rm![c];
      v = o.rv![c];
    }
    const rstd = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < S; j++) {
        const k = (i * C + c) * S + j;
        const y = (x.data[k] - mean) * rstd * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
        out[k] = o.relu ? Math.max(y, 0) : y;
      }
    }
  }
  return { shape: x.shape, data: out };
}

const SHAPES = [[2, 3, 4, 5], [1, 2, 3, 3], [3, 1, 1, 1], [1, 1, 2, 3], [4, 5, 1, 1], [2, 3, 7], [3, 2], [
  2,
  2,
  4,
  4,
]];

gpuTest("batchNorm2d training: forward and gradients, affine variants, fused ReLU, odd shapes", async () => {
  const rng = new Rng(11);
  for (const shape of SHAPES) {
    const C = shape[1];
    const x = randRef(rng, shape, -2, 2);
    const w = randRef(rng, [C], 0.5, 1.5);
    const b = randRef(rng, [C], -1, 1);
    const tr = { training: true };
    const opt = { atol: 1e-4, gradAtol: 2e-4 };
    await gradcheck(
      (t, ww, bb) => batchNorm2d(t, ww, bb, tr),
      (t, ww, bb) => refBN(t, ww, bb, tr),
      [x, w, b],
      opt,
    );
    await gradcheck((t) => batchNorm2d(t, null, null, tr), (t) => refBN(t, null, null, tr), [x], opt);
    await gradcheck((t, ww) => batchNorm2d(t, ww, null, tr), (t, ww) => refBN(t, ww, null, tr), [x, w], opt);
    const re = { training: true, relu: true };
    await gradcheck(
      (t, ww, bb) => batchNorm2d(t, ww, bb, re),
      (t, ww, bb) => refBN(t, ww, bb, re),
      [x, w, b],
      opt,
    );
    // Gradient for the weight and bias only (no input gradient kernel).
    await gradcheck(
      (t, ww, bb) => batchNorm2d(t, ww, bb, tr),
      (t, ww, bb) => refBN(t, ww, bb, tr),
      [x, w, b],
      {
        ...opt,
        wrt: [1, 2],
      },
    );
  }
});

gpuTest("batchNorm2d eval: running statistics, affine backward, fused ReLU", async () => {
  const rng = new Rng(12);
  for (const shape of SHAPES) {
    const C = shape[1];
    const x = randRef(rng, shape, -2, 2);
    const w = randRef(rng, [C], 0.5, 1.5);
    const b = randRef(rng, [C], -1, 1);
    const rm = rng.uniformArray(C, -0.5, 0.5);
    const rv = rng.uniformArray(C, 0.3, 2);
    for (const relu of [false, true]) {
      const o = { training: false, relu, eps: 1e-3 };
      const gpuOpts = (): BatchNormOptions => ({
        ...o,
        runningMean: fromArray(Float32Array.from(rm)),
        runningVar: fromArray(Float32Array.from(rv)),
      });
      await gradcheck(
        (t, ww, bb) => batchNorm2d(t, ww, bb, gpuOpts()),
        (t, ww, bb) => refBN(t, ww, bb, { ...o, rm, rv }),
        [x, w, b],
        { atol: 1e-4 },
      );
      await gradcheck(
        (t) => batchNorm2d(t, null, null, gpuOpts()),
        (t) => refBN(t, null, null, { ...o, rm, rv }),
        [
          x,
        ],
        { atol: 1e-4 },
      );
    }
  }
});

gpuTest(
  "batchNorm2d: running statistics over two steps, momentum, unaligned and strided inputs",
  async () => {
    const rng = new Rng(13);
    for (const [shape, momentum] of [[[2, 3, 4, 5], 0.1], [[3, 4, 3, 3], 0.3], [[5, 2, 1, 1], 1]] as const) {
      const C = shape[1];
      const rm = new Float64Array(C), rv = new Float64Array(C).fill(1);
      const rmT = fromArray(new Float32Array(C)), rvT = fromArray(new Float32Array(C).fill(1));
      const w = randRef(rng, [C], 0.5, 1.5), b = randRef(rng, [C], -1, 1);
      for (let step = 0; step < 2; step++) {
        const x = randRef(rng, [...shape], -1 + step, 2 + step);
        const o = { training: true, momentum, runningMean: rmT, runningVar: rvT };
        const y = noGrad(() => batchNorm2d(toGpu(x), toGpu(w), toGpu(b), o));
        const ref = refBN(x, w, b, { training: true, momentum, rm, rv });
        assertClose(await y.toArray(), ref.data, { atol: 1e-4, msg: `y step ${step}` });
        assertClose(await rmT.toArray(), rm, { atol: 1e-5, msg: `running mean step ${step}` });
        assertClose(await rvT.toArray(), rv, { atol: 1e-5, msg: `running var step ${step}` });
      }
      // Eval with the updated statistics.
      const x = randRef(rng, [...shape], -1, 1);
      const y = batchNorm2d(toGpu(x), toGpu(w), toGpu(b), {
        training: false,
        runningMean: rmT,
        runningVar: rvT,
      });
      assertClose(await y.toArray(), refBN(x, w, b, { training: false, rm, rv }).data, {
        atol: 1e-4,
        msg: "eval",
      });
    }
    // Input at an element offset of 1 with S % 4 = 0 (scalar path), and a permuted view.
    const off = randRef(rng, [25], -2, 2);
    const sub = (r: Ref): Ref => ({ shape: [2, 3, 2, 2], data: r.data.slice(1) });
    await gradcheck(
      (t) => batchNorm2d(reshape(slice(t, 0, 1, 25), [2, 3, 2, 2]), null, null, { training: true }),
      (t) => refBN(sub(t), null, null, { training: true }),
      [off],
      { atol: 1e-4 },
    );
    const perm = randRef(rng, [3, 2, 4, 4], -2, 2);
    const permRef = (r: Ref): Ref => {
      const out = new Float64Array(r.data.length);
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 2; j++) {
          for (let k = 0; k < 16; k++) {
            out[(j * 3 + i) * 16 + k] = r.data[(i * 2 + j) * 16 + k];
          }
        }
      }
      return { shape: [2, 3, 4, 4], data: out };
    };
    await gradcheck(
      (t) => batchNorm2d(permute(t, [1, 0, 2, 3]), null, null, { training: true }),
      (t) => refBN(permRef(t), null, null, { training: true }),
      [perm],
      { atol: 1e-4 },
    );
  },
);

gpuTest("batchNorm2d: a channel longer than one thread's loop budget, with a large mean", async () => {
  const rng = new Rng(14);
  const n = 4_300_001; // over 65,535 per thread for a 64-thread workgroup
  const x = randRef(rng, [1, 1, 1, n], 999, 1001);
  const g = randRef(rng, [1, 1, 1, n], -1, 1);
  const xt = toGpu(x, true), wt = fromArray([1.5]).requireGrad(), bt = fromArray([0.25]).requireGrad();
  const rmT = fromArray([0]), rvT = fromArray([1]);
  const y = batchNorm2d(xt, wt, bt, { training: true, runningMean: rmT, runningVar: rvT });
  tidy(() => sum(mul(y, toGpu(g))).backward());
  let mean = 0;
  for (const v of x.data) mean += v;
  mean /= n;
  let q = 0;
  for (const v of x.data) q += (v - mean) ** 2;
  const rstd = 1 / Math.sqrt(q / n + 1e-5);
  let sg = 0, sgx = 0;
  for (let i = 0; i < n; i++) {
    sg += g.data[i];
    sgx += g.data[i] * (x.data[i] - mean) * rstd;
  }
  const ya = await y.toArray(), dx = await xt.grad!.toArray();
  const yRef = new Float64Array(n), dxRef = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xh = (x.data[i] - mean) * rstd;
    yRef[i] = xh * 1.5 + 0.25;
    dxRef[i] = 1.5 * rstd * (g.data[i] - sg / n - xh * sgx / n);
  }
  assertClose(ya, yRef, { atol: 2e-3, rtol: 1e-3, msg: "y" });
  assertClose(dx, dxRef, { atol: 2e-3, rtol: 1e-2, msg: "dx" });
  assertClose(await wt.grad!.toArray(), [sgx], { atol: 2, rtol: 1e-3, msg: "dw" });
  assertClose(await bt.grad!.toArray(), [sg], { atol: 2, rtol: 1e-3, msg: "db" });
  assertClose(await rmT.toArray(), [0.1 * mean], { rtol: 1e-5, msg: "running mean" });
  assertClose(await rvT.toArray(), [0.9 + 0.1 * q / (n - 1)], { rtol: 1e-3, msg: "running var" });
  for (const t of [xt, wt, bt, rmT, rvT, y]) t.dispose();
});

async function host(t: Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

gpuTest("BatchNorm2d module: state dict, train/eval, reset, options", async () => {
  const bn = new BatchNorm2d(3);
  const names = [...bn.stateDict().keys()];
  if (names.join() !== "weight,bias,running_mean,running_var,num_batches_tracked") {
    throw new Error(`state dict names ${names}`);
  }
  assertShape(bn.numBatchesTracked!, []);
  if (bn.numBatchesTracked!.dtype !== "i32") throw new Error("num_batches_tracked should be i32");
  if (bn.parameters().length !== 2) throw new Error("two parameters expected");
  const rng = new Rng(15);
  const rm = new Float64Array(3), rv = new Float64Array(3).fill(1);
  for (let step = 0; step < 2; step++) {
    const x = randRef(rng, [2, 3, 3, 5], step, 2 + step);
    const y = bn.forward(toGpu(x));
    assertClose(await y.toArray(), refBN(x, null, null, { training: true, rm, rv }).data, { atol: 1e-4 });
  }
  assertClose(await bn.runningMean!.toArray(), rm, { atol: 1e-5 });
  assertClose(await bn.runningVar!.toArray(), rv, { atol: 1e-5 });
  if ((await host(bn.numBatchesTracked!))[0] !== 2) throw new Error("num_batches_tracked should be 2");
  bn.eval();
  const x = randRef(rng, [1, 3, 2, 2], -1, 1);
  const ye = bn.forwardRelu(toGpu(x));
  assertClose(await ye.toArray(), refBN(x, null, null, { training: false, rm, rv, relu: true }).data, {
    atol: 1e-4,
  });
  if ((await host(bn.numBatchesTracked!))[0] !== 2) throw new Error("eval mode must not count batches");
  bn.resetRunningStats();
  assertClose(await bn.runningMean!.toArray(), [0, 0, 0]);
  assertClose(await bn.runningVar!.toArray(), [1, 1, 1]);
  if ((await host(bn.numBatchesTracked!))[0] !== 0) throw new Error("reset should zero the count");
  // Without running statistics, eval mode uses the batch statistics; without affine, no parameters.
  const plain = new BatchNorm2d(3, { affine: false, trackRunningStats: false, eps: 1e-3 }).eval();
  if (plain.stateDict().size !== 0) throw new Error("no state expected");
  assertClose(
    await plain.forward(toGpu(x)).toArray(),
    refBN(x, null, null, { training: true, eps: 1e-3 }).data,
    { atol: 1e-4 },
  );
  // A safetensors round trip with PyTorch's int64 count, loaded into a fresh layer.
  bn.train().forward(toGpu(x));
  const sd = bn.stateDict();
  const arrays = await Promise.all([...sd.values()].map((t) => t.toArray()));
  const hostMap = new Map([...sd].map(([k, t], i) => [k, arrayToHost(arrays[i], t.shape, { int: "I64" })]));
  const file = decodeSafetensors(encodeSafetensors(hostMap));
  const nbt = file.tensors.get("num_batches_tracked")!;
  if (nbt.dtype !== "I64" || nbt.shape.length !== 0) {
    throw new Error(`count stored as ${nbt.dtype} [${nbt.shape}]`);
  }
  const other = new BatchNorm2d(3);
  const loaded = uploadSafetensors(file);
  other.loadStateDict(loaded);
  if ((await host(other.numBatchesTracked!))[0] !== 1) throw new Error("loaded count should be 1");
  assertClose(await other.runningVar!.toArray(), await bn.runningVar!.toArray(), { atol: 0, rtol: 0 });
  for (const t of loaded.values()) t.dispose();
  other.dispose();
  bn.dispose();
  plain.dispose();
});

gpuTest("batchNorm2d: errors name the problem, no leaks", async () => {
  const x = fromArray(new Float32Array(24), [2, 3, 2, 2]);
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (re.test(String(e))) return;
      throw new Error(`wrong error: ${e}`);
    }
    throw new Error(`expected an error matching ${re}`);
  };
  expectThrow(() => batchNorm2d(x, null, null, { training: false }), /eval mode needs runningMean/);
  expectThrow(
    () => batchNorm2d(fromArray([[1, 2, 3]]), null, null, { training: true }),
    /more than one value/,
  );
  expectThrow(() => batchNorm2d(x, fromArray([1, 2]), null, { training: true }), /weight has shape \[2\]/);
  expectThrow(() => batchNorm2d(fromArray([1, 2]), null, null, { training: true }), /\[B, C/);
  expectThrow(
    () => batchNorm2d(x, null, null, { training: true, runningMean: fromArray([0, 0, 0]) }),
    /both runningMean and runningVar/,
  );
  expectThrow(() => new BatchNorm2d(4).forward(x), /3 channels/);
  expectThrow(() => new BatchNorm2d(3).forward(reshape(x, [2, 3, 4])), /4-D/);
  const rng = new Rng(16);
  const bn = new BatchNorm2d(3);
  const xt = toGpu(randRef(rng, [2, 3, 4, 4]), true);
  const step = () => tidy(() => sum(mul(bn.forwardRelu(xt), xt)).backward());
  step();
  const before = memoryStats().liveBytes;
  step();
  step();
  if (memoryStats().liveBytes !== before) {
    throw new Error(`leak: ${before} -> ${memoryStats().liveBytes} bytes`);
  }
  const gw = await bn.weight!.grad!.toArray();
  if (!gw.every(Number.isFinite)) throw new Error("non-finite gradient");
  bn.dispose();
});

gpuTest(
  "BatchNorm2d momentum null: running statistics are the plain average since the last reset",
  async () => {
    // The plain average of k batches is the running update with momentum 1/k for the k-th batch.
    const bn = new BatchNorm2d(2, { momentum: null });
    const rng = new Rng(16);
    let rm = new Float64Array(2), rv = new Float64Array(2).fill(1), k = 0;
    const step = async (shape: number[], lo: number, hi: number) => {
      const x = randRef(rng, shape, lo, hi);
      const want = refBN(x, null, null, { training: true, rm, rv, momentum: 1 / ++k });
      assertClose(await bn.forward(toGpu(x)).toArray(), want.data, { atol: 1e-4 });
      assertClose(await bn.runningMean!.toArray(), rm, { atol: 1e-5 });
      assertClose(await bn.runningVar!.toArray(), rv, { atol: 1e-5 });
    };
    for (let i = 0; i < 3; i++) await step([2, 2, 3, 3], i, 2 + 2 * i);
    // Eval-mode forwards do not count; after a reset the average starts again.
    bn.eval().forward(toGpu(randRef(rng, [1, 2, 2, 2], 0, 1)));
    bn.train().resetRunningStats();
    [rm, rv, k] = [new Float64Array(2), new Float64Array(2).fill(1), 0];
    for (let i = 0; i < 2; i++) await step([3, 2, 2, 2], -i, 1);
    let threw = false;
    try {
      new BatchNorm2d(2, { momentum: 1.5 });
    } catch (e) {
      threw = /momentum must be in \[0, 1\] or null/.test(String(e));
    }
    if (!threw) throw new Error("momentum 1.5 should be refused");
  },
);
