import { deepStrictEqual as assertEquals } from "node:assert";
import * as V from "../src/ops/views.ts";
import { add, mul } from "../src/ops/arith.ts";
import { arange, fromArray, full, ones, zeros } from "../src/ops/creation.ts";
import {
  assertClose,
  assertShape,
  expectThrow,
  gpuTest,
  gradcheck,
  randRef,
  type Ref,
  Rng,
  size,
  stridesOf,
} from "./helpers.ts";

/** Float64 permute of a reference. */
function refPermute(x: Ref, dims: number[]): Ref {
  const shape = dims.map((d) => x.shape[d]);
  const st = stridesOf(x.shape);
  const ost = stridesOf(shape);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    let r = i, off = 0;
    for (let k = 0; k < shape.length; k++) {
      const c = Math.floor(r / ost[k]);
      r -= c * ost[k];
      off += c * st[dims[k]];
    }
    out[i] = x.data[off];
  }
  return { shape, data: out };
}

/** Float64 slice along one axis. */
function refSlice(x: Ref, axis: number, s: number, e: number, step: number): Ref {
  const idx: number[] = [];
  for (let i = s; i < e; i += step) idx.push(i);
  const shape = [...x.shape];
  shape[axis] = idx.length;
  const st = stridesOf(x.shape);
  const ost = stridesOf(shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    let r = i, off = 0;
    for (let k = 0; k < shape.length; k++) {
      const c = Math.floor(r / ost[k]);
      r -= c * ost[k];
      off += (k === axis ? idx[c] : c) * st[k];
    }
    out[i] = x.data[off];
  }
  return { shape, data: out };
}

gpuTest("creation: fromArray, full, zeros, ones, arange", async () => {
  assertClose(await fromArray([[1, 2], [3, 4]]).toArray(), [1, 2, 3, 4]);
  assertShape(fromArray([[1, 2], [3, 4]]), [2, 2]);
  assertClose(await full([2, 3], 2.5).toArray(), new Array(6).fill(2.5));
  assertClose(await zeros([5]).toArray(), new Array(5).fill(0));
  assertClose(await ones([1, 1, 3], "i32").toArray(), [1, 1, 1]);
  assertClose(await arange(5).toArray(), [0, 1, 2, 3, 4]);
  assertClose(await arange(2, 9, 3).toArray(), [2, 5, 8]);
  const i = arange(4, undefined, 1, "i32");
  if (i.dtype !== "i32") throw new Error("arange dtype");
  assertClose(await i.toArray(), [0, 1, 2, 3]);
  assertClose(await fromArray(new Int32Array([-3, 7])).toArray(), [-3, 7]);
  let threw = false;
  try {
    fromArray([1, 2, 3], [2, 2]);
  } catch (e) {
    threw = String(e).includes("do not fill");
  }
  if (!threw) throw new Error("fromArray should reject a wrong shape");
});

gpuTest("permute / transpose on random shapes, forward and backward", async () => {
  const rng = new Rng(10);
  for (const dims of [[1, 0], [2, 0, 1], [0, 2, 1], [3, 1, 0, 2]]) {
    const x = randRef(rng, dims.map(() => 1 + rng.int(5)));
    await gradcheck((t) => mul(V.permute(t, dims), 1), (r: Ref) => refPermute(r, dims), [x]);
  }
  const x = randRef(rng, [3, 4, 5]);
  await gradcheck((t) => V.contiguous(V.transpose(t, 0, 2)), (r: Ref) => refPermute(r, [2, 1, 0]), [x]);
});

gpuTest("reshape, flatten, squeeze, unsqueeze, of views too", async () => {
  const rng = new Rng(11);
  const x = randRef(rng, [2, 3, 4]);
  await gradcheck((t) => V.reshape(t, [4, -1]), (r: Ref) => ({ shape: [4, 6], data: r.data }), [x]);
  await gradcheck((t) => V.flatten(t, 1), (r: Ref) => ({ shape: [2, 12], data: r.data }), [x]);
  // reshape of a permuted (non-contiguous) view must copy
  await gradcheck((t) => V.reshape(V.permute(t, [2, 0, 1]), [4, 6]), (r: Ref) => {
    const p = refPermute(r, [2, 0, 1]);
    return { shape: [4, 6], data: p.data };
  }, [x]);
  // ... but not when the shape stays the same (flatten over one dim of a permuted view)
  await gradcheck((t) => V.flatten(V.permute(t, [0, 2, 1]), 2), (r: Ref) => refPermute(r, [0, 2, 1]), [x]);
  const xt = fromArray(Float32Array.from(x.data), x.shape);
  const p = V.permute(xt, [0, 2, 1]), f = V.flatten(p, 2);
  assertEquals([f.buffer === xt.buffer, f.strides], [true, p.strides]);
  for (const t of [xt, p, f]) t.dispose();
  const y = randRef(rng, [3, 1, 2, 1]);
  await gradcheck((t) => V.squeeze(t), (r: Ref) => ({ shape: [3, 2], data: r.data }), [y]);
  await gradcheck((t) => V.squeeze(t, 1), (r: Ref) => ({ shape: [3, 2, 1], data: r.data }), [y]);
  await gradcheck((t) => V.unsqueeze(t, -1), (r: Ref) => ({ shape: [3, 1, 2, 1, 1], data: r.data }), [y]);
  await gradcheck((t) => V.unsqueeze(t, 0), (r: Ref) => ({ shape: [1, 3, 1, 2, 1], data: r.data }), [y]);
});

gpuTest("slice with steps and negative indices, split", async () => {
  const rng = new Rng(12);
  const x = randRef(rng, [5, 7, 3]);
  await gradcheck((t) => V.slice(t, 1, 1, 6, 2), (r: Ref) => refSlice(r, 1, 1, 6, 2), [x]);
  await gradcheck((t) => V.slice(t, -1, -2), (r: Ref) => refSlice(r, 2, 1, 3, 1), [x]);
  await gradcheck((t) => V.slice(t, 0, 0, 1), (r: Ref) => refSlice(r, 0, 0, 1, 1), [x]);
  await gradcheck((t) => V.slice(t, 0, 1, 5, 3), (r: Ref) => refSlice(r, 0, 1, 5, 3), [x]);
  // the gradient reaching the slice is a strided view (the permute's backward)
  await gradcheck((t) => V.permute(V.slice(t, 1, 1, 6, 2), [2, 0, 1]), (r: Ref) => {
    const s = refSlice(r, 1, 1, 6, 2);
    const [a, b, c] = s.shape;
    const data = new Float64Array(a * b * c);
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < b; j++) {
        for (let k = 0; k < c; k++) data[(k * a + i) * b + j] = s.data[(i * b + j) * c + k];
      }
    }
    return { shape: [c, a, b], data };
  }, [x]);
  // slice of a slice, then a kernel reading the strided view
  await gradcheck((t) => add(V.slice(V.slice(t, 1, 2), 0, 1, 4), 1), (r: Ref) => {
    const s = refSlice(refSlice(r, 1, 2, 7, 1), 0, 1, 4, 1);
    return { shape: s.shape, data: s.data.map((v) => v + 1) };
  }, [x]);
  const parts = V.split(arange(10), [3, 3, 4]);
  assertClose(await parts[2].toArray(), [6, 7, 8, 9]);
});

gpuTest("expand broadcasts without copying and sums gradients back", async () => {
  const rng = new Rng(13);
  const x = randRef(rng, [3, 1, 2]);
  await gradcheck((t) => V.expand(t, [4, 3, 5, 2]), (r: Ref) => {
    const out = new Float64Array(4 * 3 * 5 * 2);
    let k = 0;
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 3; b++) {
        for (let c = 0; c < 5; c++) for (let d = 0; d < 2; d++) out[k++] = r.data[b * 2 + d];
      }
    }
    return { shape: [4, 3, 5, 2], data: out };
  }, [x]);
});

gpuTest("concat and stack on every axis, with gradients to each input", async () => {
  const rng = new Rng(14);
  const a = randRef(rng, [2, 3, 4]);
  for (const axis of [0, 1, 2]) {
    const bShape = [2, 3, 4];
    bShape[axis] = 1 + rng.int(3);
    const b = randRef(rng, bShape);
    const ref = (x: Ref, y: Ref): Ref => {
      const shape = [...x.shape];
      shape[axis] += y.shape[axis];
      const out = new Float64Array(size(shape));
      const ost = stridesOf(shape);
      const xs = stridesOf(x.shape), ys = stridesOf(y.shape);
      for (let i = 0; i < out.length; i++) {
        let r = i;
        const c: number[] = [];
        for (let k = 0; k < 3; k++) {
          c.push(Math.floor(r / ost[k]));
          r -= c[k] * ost[k];
        }
        if (c[axis] < x.shape[axis]) out[i] = x.data[c[0] * xs[0] + c[1] * xs[1] + c[2] * xs[2]];
        else {
          c[axis] -= x.shape[axis];
          out[i] = y.data[c[0] * ys[0] + c[1] * ys[1] + c[2] * ys[2]];
        }
      }
      return { shape, data: out };
    };
    await gradcheck((x, y) => V.concat([x, y], axis), ref, [a, b]);
  }
  const s = V.stack([fromArray([1, 2]), fromArray([3, 4]), fromArray([5, 6])], 1);
  assertShape(s, [2, 3]);
  assertClose(await s.toArray(), [1, 3, 5, 2, 4, 6]);
});

gpuTest("shape errors are clear", () => {
  const x = zeros([2, 3]);
  expectThrow(() => V.reshape(x, [4, 2]), "cannot view");
  expectThrow(() => V.permute(x, [0, 0]), "repeated");
  expectThrow(() => add(x, zeros([4])), "do not broadcast");
  expectThrow(() => V.concat([x, zeros([3, 3])], 1), "differ");
  expectThrow(() => V.expand(x, [2, 5]), "cannot expand");
});
