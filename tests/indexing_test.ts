/**
 * Tests of the indexing ops (indexSelect, gather, scatterAdd, embedding, oneHot): forward against
 * float64 references on odd shapes and every axis, backward against finite differences, repeated
 * indices, the three scatter-add strategies (direct, sorted, atomic), and memory hygiene.
 */
import { deepStrictEqual as assertEquals } from "node:assert";
import {
  _scatterInternals,
  checkIndexRange,
  embedding,
  gather,
  indexSelect,
  oneHot,
  scatterAdd,
  type ScatterMode,
  setScatterAddMode,
} from "../src/ops/indexing.ts";
import { fromArray } from "../src/ops/creation.ts";
import { add, mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { slice, transpose } from "../src/ops/views.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
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
  stridesOf,
} from "./helpers.ts";

const wrap = (v: number, n: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n - 1);

function coords(i: number, shape: number[]): number[] {
  const st = stridesOf(shape);
  return shape.map((_, d) => Math.floor(i / st[d]) % shape[d]);
}

function offsetOf(c: number[], shape: number[]): number {
  const st = stridesOf(shape);
  return c.reduce((a, x, d) => a + x * st[d], 0);
}

/** float64 index_select. */
function refIndexSelect(x: Ref, axis: number, idx: number[]): Ref {
  const shape = x.shape.map((d, i) => (i === axis ? idx.length : d));
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, shape);
    c[axis] = wrap(idx[c[axis]], x.shape[axis]);
    data[i] = x.data[offsetOf(c, x.shape)];
  }
  return { shape, data };
}

/** float64 torch.gather. */
function refGather(x: Ref, axis: number, idx: Int32Array, ishape: number[]): Ref {
  const data = new Float64Array(size(ishape));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, ishape);
    c[axis] = wrap(idx[i], x.shape[axis]);
    data[i] = x.data[offsetOf(c, x.shape)];
  }
  return { shape: ishape, data };
}

/** float64 torch.scatter_add (out of place). */
function refScatterAdd(base: Ref, axis: number, idx: Int32Array, ishape: number[], src: Ref): Ref {
  const data = base.data.slice();
  for (let i = 0; i < idx.length; i++) {
    const c = coords(i, ishape);
    const v = src.data[offsetOf(c, src.shape)];
    c[axis] = wrap(idx[i], base.shape[axis]);
    data[offsetOf(c, base.shape)] += v;
  }
  return { shape: base.shape, data };
}

function randIdx(rng: Rng, n: number, count: number, negatives = false): Int32Array {
  return Int32Array.from({ length: count }, () => rng.int(n) - (negatives && rng.next() < 0.3 ? n : 0));
}

/** Modes under test: `sorted` is the deterministic mode with its direct path turned off. */
const MODES = ["deterministic", "sorted", "atomic"] as const;

async function withMode(mode: ScatterMode | "sorted", fn: () => Promise<void>): Promise<void> {
  const prev = setScatterAddMode(mode === "sorted" ? "deterministic" : mode);
  const budget = _scatterInternals.directBudget;
  if (mode === "sorted") _scatterInternals.directBudget = 0;
  try {
    await fn();
  } finally {
    setScatterAddMode(prev);
    _scatterInternals.directBudget = budget;
  }
}

gpuTest("indexSelect: every axis, odd shapes, repeated and negative indices, backward", async () => {
  const rng = new Rng(11);
  for (const mode of MODES) {
    await withMode(mode, async () => {
      for (let rank = 1; rank <= 4; rank++) {
        for (let axis = 0; axis < rank; axis++) {
          const shape = randShape(rng, rank, 5);
          const x = randRef(rng, shape);
          const K = 1 + rng.int(7);
          const idx = randIdx(rng, shape[axis], K, true);
          if (K > 1) idx[K - 1] = idx[0]; // guarantee a repeat
          const it = fromArray(idx);
          await gradcheck((t) => indexSelect(t, axis, it), (r: Ref) => refIndexSelect(r, axis, [...idx]), [
            x,
          ]);
          it.dispose();
        }
      }
    });
  }
});

gpuTest("indexSelect: strided input and strided index, negative axis", async () => {
  const rng = new Rng(12);
  const x = randRef(rng, [5, 6]);
  const full = Int32Array.from([4, 0, 2, 9, 1, 3, 1, 7]);
  const idx = [4, 2, 1, 1];
  const refT = (r: Ref): Ref => {
    const t = new Float64Array(30);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 6; j++) t[j * 5 + i] = r.data[i * 6 + j];
    return refIndexSelect({ shape: [6, 5], data: t }, 1, idx);
  };
  const fi = fromArray(full);
  const it = slice(fi, 0, 0, 8, 2);
  await gradcheck((t) => indexSelect(transpose(t), -1, it), refT, [x]);
  it.dispose();
  fi.dispose();
});

gpuTest("gather: every axis, index smaller than x off axis, repeats, backward", async () => {
  const rng = new Rng(13);
  for (const mode of MODES) {
    await withMode(mode, async () => {
      for (let rank = 1; rank <= 4; rank++) {
        for (let axis = 0; axis < rank; axis++) {
          const shape = randShape(rng, rank, 5);
          const ishape = shape.map((d, i) => (i === axis ? 1 + rng.int(6) : 1 + rng.int(d)));
          const x = randRef(rng, shape);
          const idx = randIdx(rng, shape[axis], size(ishape), true);
          const it = fromArray(idx, ishape);
          await gradcheck((t) => gather(t, axis, it), (r: Ref) => refGather(r, axis, idx, ishape), [x]);
          it.dispose();
        }
      }
    });
  }
});

gpuTest("scatterAdd: forward and gradients for base and src, every axis", async () => {
  const rng = new Rng(14);
  for (const mode of MODES) {
    await withMode(mode, async () => {
      for (let rank = 1; rank <= 3; rank++) {
        for (let axis = 0; axis < rank; axis++) {
          const bshape = randShape(rng, rank, 5);
          const sshape = bshape.map((d, i) => (i === axis ? 1 + rng.int(8) : d + rng.int(2)));
          const ishape = sshape.map((d, i) => (i === axis ? d : Math.min(d, bshape[i]) - rng.int(2) || 1));
          const idx = randIdx(rng, bshape[axis], size(ishape), true);
          const it = fromArray(idx, ishape);
          await gradcheck(
            (b, s) => scatterAdd(b, axis, it, s),
            (b: Ref, s: Ref) => refScatterAdd(b, axis, idx, ishape, s),
            [randRef(rng, bshape), randRef(rng, sshape)],
          );
          it.dispose();
        }
      }
    });
  }
});

gpuTest("scatterAdd: strided base and src, u32 indices, index smaller than base", async () => {
  const rng = new Rng(19);
  const bT = randRef(rng, [6, 4]); // base is its transpose [4, 6]
  const sT = randRef(rng, [5, 3]); // src is its transpose [3, 5]
  const idx = Uint32Array.from([5, 0, 5, 2, 5, 1, 1, 0, 3]);
  const ishape = [3, 3];
  const tr = (r: Ref): Ref => {
    const [a, b] = r.shape;
    const data = new Float64Array(a * b);
    for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) data[j * a + i] = r.data[i * b + j];
    return { shape: [b, a], data };
  };
  for (const mode of MODES) {
    await withMode(mode, async () => {
      const it = fromArray(idx, ishape);
      await gradcheck(
        (b, s) => scatterAdd(transpose(b), 1, it, transpose(s)),
        (b: Ref, s: Ref) => refScatterAdd(tr(b), 1, Int32Array.from(idx), ishape, tr(s)),
        [bT, sT],
      );
      it.dispose();
    });
  }
});

gpuTest(
  "scatterAdd: 1000 entries into 3 rows, both strategies, deterministic is bitwise stable",
  async () => {
    const rng = new Rng(15);
    const n = 1000, D = 5;
    const idx = Int32Array.from({ length: n * D }, () => rng.int(3));
    const src = randRef(rng, [n, D]);
    const base = randRef(rng, [3, D]);
    const ref = refScatterAdd(base, 0, idx, [n, D], src);
    const it = fromArray(idx, [n, D]);
    const results: Float32Array[] = [];
    for (const mode of ["deterministic", "deterministic", "atomic"] as const) {
      await withMode(mode, async () => {
        const out = tidy(() =>
          scatterAdd(
            fromArray(Float32Array.from(base.data), [3, D]),
            0,
            it,
            fromArray(Float32Array.from(src.data), [n, D]),
          )
        );
        const got = (await out.toArray()) as Float32Array;
        assertClose(got, ref.data, { atol: 2e-5, rtol: 1e-5, msg: mode });
        results.push(got);
        out.dispose();
      });
    }
    // The deterministic kernel adds in increasing index position: an f32 host sum in that order
    // must agree bit for bit.
    const ordered = Float32Array.from(base.data);
    for (let k = 0; k < n; k++) {
      for (let d = 0; d < D; d++) {
        const o = idx[k * D + d] * D + d;
        ordered[o] = Math.fround(ordered[o] + Math.fround(src.data[k * D + d]));
      }
    }
    assertClose(results[0], ordered, { atol: 0, rtol: 0, msg: "ordered f32 sum" });
    if (results[0].some((v, i) => v !== results[1][i])) {
      throw new Error(
        "deterministic scatter-add differs between runs",
      );
    }
    it.dispose();
  },
);

gpuTest("indexSelect backward: 20000 indices into 50 rows, both strategies", async () => {
  const rng = new Rng(16);
  const V = 50, D = 3, K = 20000;
  const idx = Int32Array.from({ length: K }, () => rng.int(V));
  const w = randRef(rng, [V, D]);
  const gr = randRef(rng, [K, D]);
  const want = new Float64Array(V * D);
  for (let k = 0; k < K; k++) for (let d = 0; d < D; d++) want[idx[k] * D + d] += gr.data[k * D + d];
  const it = fromArray(idx);
  for (const mode of MODES) {
    await withMode(mode, async () => {
      const wt = fromArray(Float32Array.from(w.data), [V, D]).requireGrad();
      tidy(() => {
        const y = indexSelect(wt, 0, it);
        sum(mul(y, fromArray(Float32Array.from(gr.data), [K, D]))).backward();
      });
      assertClose(await wt.grad!.toArray(), want, { atol: 1e-3, rtol: 1e-5, msg: mode });
      wt.dispose();
    });
  }
  it.dispose();
});

gpuTest("embedding: any-shape indices with repeats, backward to the weight", async () => {
  const rng = new Rng(17);
  for (const mode of MODES) {
    await withMode(mode, async () => {
      // Widths that are multiples of 4 take the vec4 kernels (shaders/embedding.ts).
      for (
        const [ishape, D] of [[[7], 4], [[2, 3, 4], 1 + rng.int(5)], [[1, 5], 8], [[], 3]] as [
          number[],
          number,
        ][]
      ) {
        const V = 6;
        const idx = randIdx(rng, V, size(ishape));
        const it = fromArray(idx, ishape);
        const ref = (w: Ref): Ref => {
          const r = refIndexSelect(w, 0, [...idx]);
          return { shape: [...ishape, D], data: r.data };
        };
        await gradcheck((w) => embedding(it, w), ref, [randRef(rng, [V, D])]);
        it.dispose();
      }
    });
  }
});

gpuTest("scatterAdd: the direct and sorted deterministic paths give the same bits", async () => {
  const rng = new Rng(23);
  for (const [bshape, sshape, axis] of [[[5, 7], [40, 7], 0], [[3, 6, 4], [3, 9, 4], 1]] as const) {
    const idx = randIdx(rng, bshape[axis], size([...sshape]), true);
    const it = fromArray(idx, [...sshape]);
    const b = fromArray(Float32Array.from({ length: size([...bshape]) }, () => rng.uniform(-1, 1)), [
      ...bshape,
    ]);
    const s = fromArray(Float32Array.from({ length: size([...sshape]) }, () => rng.uniform(-1e3, 1e3)), [
      ...sshape,
    ]);
    const outs: Float32Array[] = [];
    for (const mode of ["deterministic", "sorted"] as const) {
      await withMode(mode, async () => {
        const y = scatterAdd(b, axis, it, s);
        outs.push(await y.toArray() as Float32Array);
        y.dispose();
      });
    }
    assertEquals(new Uint32Array(outs[0].buffer), new Uint32Array(outs[1].buffer));
    for (const t of [it, b, s]) t.dispose();
  }
});

gpuTest("embedding: the vec4 weight gradient gives the bits of the sorted scatter", async () => {
  const rng = new Rng(29);
  const V = 5, D = 12, n = 300;
  const it = fromArray(randIdx(rng, V, n, true), [n]);
  const w = fromArray(Float32Array.from({ length: V * D }, () => rng.uniform(-1, 1)), [V, D]).requireGrad();
  const g = fromArray(Float32Array.from({ length: n * D }, () => rng.uniform(-1e3, 1e3)), [n, D]);
  const outs: Float32Array[] = [];
  for (const mode of ["deterministic", "sorted"] as const) {
    await withMode(mode, async () => {
      tidy(() => sum(mul(embedding(it, w), g)).backward());
      outs.push(await w.grad!.toArray() as Float32Array);
      w.grad!.dispose();
      w.grad = null;
    });
  }
  assertEquals(new Uint32Array(outs[0].buffer), new Uint32Array(outs[1].buffer));
  for (const t of [it, w, g]) t.dispose();
});

gpuTest("oneHot: classes, negative wrap, out-of-range rows are zero", async () => {
  const idx = fromArray(Int32Array.from([0, 2, -1, 5, 1, 3]), [2, 3]);
  const y = oneHot(idx, 4);
  assertShape(y, [2, 3, 4]);
  const want = [
    [1, 0, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
    [0, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 0, 1],
  ].flat();
  assertClose(await y.toArray(), want);
  y.dispose();
  idx.dispose();
});

gpuTest("out-of-range indices are clamped; checkIndexRange reports them", async () => {
  const x = fromArray([[1, 2], [3, 4], [5, 6]]);
  const idx = fromArray(Int32Array.from([7, -1, -9]));
  const y = indexSelect(x, 0, idx);
  assertClose(await y.toArray(), [5, 6, 5, 6, 1, 2]);
  let msg = "";
  try {
    await checkIndexRange(idx, 3, "tokens");
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("tokens: entry 0 is 7")) throw new Error(`expected a range error, got '${msg}'`);
  await checkIndexRange(fromArray(Int32Array.from([0, 2, -3])), 3);
  let threw = false;
  try {
    gather(x, 0, fromArray(Int32Array.from([0, 1])));
  } catch {
    threw = true;
  }
  if (!threw) throw new Error("gather with a rank mismatch should throw");
  for (const t of [x, idx, y]) t.dispose();
});

gpuTest("indexing ops leak no device memory", async () => {
  const rng = new Rng(18);
  const idx = fromArray(Int32Array.from([1, 1, 0, 2]));
  const w = fromArray(Float32Array.from(rng.uniformArray(12)), [3, 4]).requireGrad();
  const run = () =>
    tidy(() => {
      const a = indexSelect(w, 0, idx);
      const b = embedding(idx, w);
      const g = gather(w, 1, fromArray(Int32Array.from([0, 3, 3, 1, 2, 0]), [3, 2]));
      const s = scatterAdd(w, 0, fromArray(Int32Array.from([2, 2, 0, 1]), [1, 4]), a);
      add(add(sum(mul(a, b)), sum(g)), sum(s)).backward();
    });
  run();
  await (w.grad as Tensor).toArray();
  const before = memoryStats().liveBytes;
  run();
  await (w.grad as Tensor).toArray();
  const after = memoryStats().liveBytes;
  if (after !== before) throw new Error(`live bytes ${before} → ${after}`);
  w.dispose();
  idx.dispose();
});
