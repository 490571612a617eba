/**
 * crossEntropy and nllLoss against float64 references: [B, C] and [B, C, d1, d2] inputs, the
 * class dim on every axis, all reductions, ignoreIndex, long class dims (both kernel modes),
 * big inputs, out-of-range targets, input validation and no leaked memory.
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
import { crossEntropy, type LossOptions, nllLoss } from "../src/ops/loss.ts";
import { logSoftmax, setRowModeOverride } from "../src/ops/softmax.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

type Reduction = "none" | "mean" | "sum";

/** Float64 loss: `ce` = logsumexp − x[t], `nll` = −x[t], per row along `axis`, then reduced. */
function refLoss(
  kind: "ce" | "nll",
  x: Ref,
  t: Int32Array,
  axis: number,
  reduction: Reduction,
  ignore = -100,
): Ref {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const R = x.shape[ax];
  const O2 = size(x.shape.slice(ax + 1));
  const rows = t.length;
  const per = new Float64Array(rows);
  let total = 0, count = 0;
  for (let o = 0; o < rows; o++) {
    if (t[o] === ignore) continue;
    const at = (r: number) => x.data[(Math.floor(o / O2) * R + r) * O2 + (o % O2)];
    let l = -at(t[o]);
    if (kind === "ce") {
      let m = -Infinity;
      for (let r = 0; r < R; r++) m = Math.max(m, at(r));
      let s = 0;
      for (let r = 0; r < R; r++) s += Math.exp(at(r) - m);
      l += m + Math.log(s);
    }
    per[o] = l;
    total += l;
    count++;
  }
  if (reduction === "none") return { shape: x.shape.filter((_, i) => i !== ax), data: per };
  return { shape: [], data: Float64Array.of(reduction === "sum" ? total : total / count) };
}

function randTargets(rng: Rng, n: number, C: number, ignoreFrac = 0): Int32Array {
  return Int32Array.from({ length: n }, () => (rng.next() < ignoreFrac ? -100 : rng.int(C)));
}

const REDUCTIONS: Reduction[] = ["none", "mean", "sum"];

gpuTest("crossEntropy / nllLoss: [B, C] and [B, C, d1, d2], every class axis, all reductions", async () => {
  const rng = new Rng(1);
  const cases: [number[], number | undefined][] = [
    [[5, 7], undefined],
    [[1, 3], undefined],
    [[6], undefined],
    [[2, 4, 3, 2], undefined],
    [[2, 4, 3, 2], 0],
    [[2, 4, 3, 2], -1],
    [[3, 1, 5], 2],
    [[3, 2, 1], 1],
  ];
  for (const [shape, axis] of cases) {
    const ax = axis ?? (shape.length === 1 ? 0 : 1);
    const C = shape.at(ax)!;
    const tShape = shape.filter((_, i) => i !== (ax < 0 ? ax + shape.length : ax));
    const tgt = randTargets(rng, size(tShape), C);
    const target = fromArray(tgt, tShape);
    const x = randRef(rng, shape, -3, 3);
    for (const reduction of REDUCTIONS) {
      const opts: LossOptions = { axis, reduction };
      await gradcheck((t) => crossEntropy(t, target, opts), (r) => refLoss("ce", r, tgt, ax, reduction), [x]);
      await gradcheck((t) => nllLoss(t, target, opts), (r) => refLoss("nll", r, tgt, ax, reduction), [x]);
    }
    target.dispose();
  }
});

gpuTest("crossEntropy: ignoreIndex, all ignored, custom ignoreIndex, out-of-range targets", async () => {
  const rng = new Rng(2);
  const x = randRef(rng, [8, 5], -2, 2);
  const tgt = randTargets(rng, 8, 5, 0.4);
  tgt[0] = -100;
  const target = fromArray(tgt);
  for (const reduction of REDUCTIONS) {
    await gradcheck(
      (t) => crossEntropy(t, target, { reduction }),
      (r) => refLoss("ce", r, tgt, 1, reduction),
      [x],
    );
  }
  const custom = Int32Array.from(tgt, (v) => (v === -100 ? 3 : v === 3 ? 0 : v));
  await gradcheck(
    (t) => crossEntropy(t, fromArray(custom), { ignoreIndex: 3 }),
    (r) => refLoss("ce", r, custom, 1, "mean", 3),
    [x],
  );
  const none = fromArray(new Int32Array(8).fill(-100));
  const m = await crossEntropy(toGpu(x), none).item();
  if (!Number.isNaN(m)) throw new Error(`mean over no targets should be NaN, got ${m}`);
  const bad = await crossEntropy(toGpu(x), fromArray(new Int32Array([0, 1, 5, 2, -1, 0, 0, 0])), {
    reduction: "none",
  }).toArray();
  if (!Number.isNaN(bad[2]) || !Number.isNaN(bad[4]) || Number.isNaN(bad[1])) {
    throw new Error(`out-of-range targets should give NaN losses: ${bad}`);
  }
});

for (const mode of ["thread", "group"] as const) {
  gpuTest(`crossEntropy (${mode} mode): long class dims`, async () => {
    setRowModeOverride(mode);
    try {
      const rng = new Rng(3);
      const x = randRef(rng, [2, 1500], -4, 4);
      const tgt = randTargets(rng, 2, 1500);
      await gradcheck((t) => crossEntropy(t, fromArray(tgt)), (r) => refLoss("ce", r, tgt, 1, "mean"), [x]);
      const y = randRef(rng, [2, 1200, 2], -4, 4);
      const ty = randTargets(rng, 4, 1200);
      await gradcheck(
        (t) => crossEntropy(t, fromArray(ty, [2, 2]), { reduction: "none" }),
        (r) => refLoss("ce", r, ty, 1, "none"),
        [y],
      );
    } finally {
      setRowModeOverride(null);
    }
  });
}

/** Checks forward and the analytic gradient `(softmax − onehot)·g` on a big input. */
async function bigCase(rng: Rng, shape: number[], axis: number, reduction: Reduction) {
  const ax = axis < 0 ? axis + shape.length : axis;
  const R = shape[ax];
  const O2 = size(shape.slice(ax + 1));
  const tShape = shape.filter((_, i) => i !== ax);
  const rows = size(tShape);
  const x = randRef(rng, shape, -8, 8);
  const tgt = randTargets(rng, rows, R, 0.1);
  const xt = toGpu(x, true);
  const tt = fromArray(tgt, tShape);
  const l = crossEntropy(xt, tt, { axis, reduction });
  const ref = refLoss("ce", x, tgt, ax, reduction);
  assertClose(await l.toArray(), ref.data, { atol: 1e-4, rtol: 1e-5, msg: `loss ${shape}` });
  const g = reduction === "none" ? randRef(rng, tShape) : { shape: [], data: Float64Array.of(0.7) };
  tidy(() => sum(mul(l, toGpu(g))).backward());
  const count = tgt.filter((v) => v !== -100).length;
  const expect = new Float64Array(x.data.length);
  for (let o = 0; o < rows; o++) {
    if (tgt[o] === -100) continue;
    const idx = (r: number) => (Math.floor(o / O2) * R + r) * O2 + (o % O2);
    let m = -Infinity, s = 0;
    for (let r = 0; r < R; r++) m = Math.max(m, x.data[idx(r)]);
    for (let r = 0; r < R; r++) s += Math.exp(x.data[idx(r)] - m);
    const go = reduction === "none" ? g.data[o] : reduction === "sum" ? 0.7 : 0.7 / count;
    for (let r = 0; r < R; r++) {
      expect[idx(r)] = (Math.exp(x.data[idx(r)] - m) / s - (r === tgt[o] ? 1 : 0)) * go;
    }
  }
  assertClose(await xt.grad!.toArray(), expect, { atol: 1e-7, rtol: 1e-3, msg: `grad ${shape}` });
  for (const t of [xt, tt, l]) t.dispose();
}

gpuTest("crossEntropy on big inputs (forward and analytic backward)", async () => {
  const rng = new Rng(4);
  await bigCase(rng, [4096, 100], 1, "mean");
  await bigCase(rng, [2, 100000], 1, "sum");
  await bigCase(rng, [4, 10, 64, 64], 1, "none");
  await bigCase(rng, [3, 70000, 2], 1, "mean");
});

gpuTest("nllLoss(logSoftmax(x)) equals crossEntropy(x)", async () => {
  const rng = new Rng(5);
  const x = randRef(rng, [3, 6, 4], -3, 3);
  const tgt = randTargets(rng, 12, 6, 0.2);
  const target = fromArray(tgt, [3, 4]);
  await gradcheck((t) => nllLoss(logSoftmax(t, 1), target), (r) => refLoss("ce", r, tgt, 1, "mean"), [x]);
});

gpuTest("loss input validation and no leaks", async () => {
  const x = fromArray(new Float32Array(12), [3, 4]);
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (re.test(String(e))) return;
      throw new Error(`wrong error: ${e}`);
    }
    throw new Error(`expected an error matching ${re}`);
  };
  expectThrow(() => crossEntropy(x, fromArray([0, 1, 2])), /i32 tensor of class indices, got f32/);
  expectThrow(() => crossEntropy(x, fromArray(new Int32Array([0, 1]))), /target shape \[2\].*expected \[3\]/);
  expectThrow(
    () => crossEntropy(x, fromArray(new Int32Array(3)), { axis: 0 }),
    /class dim 0: expected \[4\]/,
  );
  expectThrow(
    () => crossEntropy(x, fromArray(new Int32Array(3)), { reduction: "avg" as Reduction }),
    /reduction/,
  );
  expectThrow(() => crossEntropy(x, fromArray(new Int32Array(3)), { axis: 2 }), /out of range/);
  expectThrow(
    () => nllLoss(fromArray(new Int32Array(12), [3, 4]), fromArray(new Int32Array(3))),
    /input must be f32/,
  );
  assertShape(crossEntropy(x, fromArray(new Int32Array(4)), { axis: 0, reduction: "none" }), [4]);
  const rng = new Rng(6);
  const xt = toGpu(randRef(rng, [7, 9]), true);
  const tt = fromArray(randTargets(rng, 7, 9, 0.2));
  const step = () =>
    tidy(() => {
      for (const reduction of REDUCTIONS) {
        const l: Tensor = crossEntropy(xt, tt, { reduction });
        (reduction === "none" ? sum(l) : l).backward();
        sum(nllLoss(xt, tt, { reduction })).backward();
      }
    });
  step();
  const before = memoryStats().liveBytes;
  step();
  step();
  if (memoryStats().liveBytes !== before) {
    throw new Error(`leak: ${before} -> ${memoryStats().liveBytes} bytes`);
  }
  const g = await xt.grad!.toArray();
  if (!g.every(Number.isFinite)) throw new Error("non-finite gradient");
});
