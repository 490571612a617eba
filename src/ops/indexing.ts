/**
 * Indexing ops with autograd: `indexSelect`, `gather`, `scatterAdd`, `embedding`, `oneHot`.
 *
 * Indices are i32 (or u32) tensors on the GPU. A negative index wraps once (`-1` is the last
 * entry); anything still out of range is clamped into the axis, since a kernel cannot throw. Use
 * {@link checkIndexRange} (one readback) when indices come from untrusted data.
 *
 * Scatter-add (and so every backward here) is deterministic by default: the index is bucket-sorted
 * on the GPU and each destination sums its entries in index order (see `shaders/scatter.ts`).
 * {@link setScatterAddMode} switches to a compare-and-swap float add, which is as correct and
 * linear even when one row receives thousands of entries, but may differ in the last bits
 * between runs.
 */
import { EMB_GRAD_WG, embeddingGradSpec, embeddingRowsSpec } from "../../shaders/embedding.ts";
import { gatherSpec, INDEX_WG } from "../../shaders/gather.ts";
import {
  atomicSpec,
  countSpec,
  DIRECT_WG,
  directSpec,
  placeSpec,
  scanSpec,
  sortSpec,
  sumSpec,
} from "../../shaders/scatter.ts";
import { grid1d, type KernelSpec, launch, type WgslType } from "../gpu/kernel.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { contiguousStrides, numel, type Shape, Tensor } from "../tensor/tensor.ts";
import { normAxis, sameShape } from "./broadcast.ts";
import { zeros } from "./creation.ts";
import { mapInto, mapN } from "./map.ts";
import { contiguous } from "./views.ts";

/**
 * How {@link scatterAdd} and the backward of the gathers accumulate repeated indices:
 * `deterministic` (default) sorts the index into buckets and sums each destination in a fixed
 * order; `atomic` adds with a compare-and-swap loop on the float bits (linear work even when one
 * destination gets very many entries, but the last bits may vary between runs).
 */
export type ScatterMode = "deterministic" | "atomic";

let scatterMode: ScatterMode = "deterministic";

/**
 * Internals (for tests): the deterministic mode sums directly, without sorting, while destination
 * size × index entries per line is at most `directBudget` (0 forces the sort).
 */
export const _scatterInternals: { directBudget: number } = { directBudget: 1 << 18 };

/** Sets the scatter-add strategy (see {@link ScatterMode}); returns the previous one. */
export function setScatterAddMode(mode: ScatterMode): ScatterMode {
  const prev = scatterMode;
  scatterMode = mode;
  return prev;
}

const specs = new Map<string, KernelSpec>();

function spec(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

function needRank(x: Tensor, op: string): void {
  if (x.ndim === 0) throw new Error(`${op}: needs a tensor of rank ≥ 1, got a scalar`);
}

function idxType(t: Tensor, op: string): "i32" | "u32" {
  if (t.dtype === "f32") throw new Error(`${op}: indices must be an i32 or u32 tensor, got f32`);
  return t.dtype;
}

function groups(n: number): [number, number] {
  return grid1d(Math.ceil(n / INDEX_WG));
}

/** Gathers `x` along `axis` into a new contiguous tensor of `outShape`; `ist`: index strides over it. */
function gatherRaw(x: Tensor, axis: number, idx: Tensor, ist: readonly number[], outShape: Shape): Tensor {
  const out = Tensor.empty(outShape, x.dtype);
  const n = out.size;
  if (n === 0) return out;
  const N = x.shape[axis];
  if (N === 0) throw new Error(`cannot index into an empty axis (size 0 along axis ${axis})`);
  const r = outShape.length;
  const it = idxType(idx, "gather");
  const s = spec(`g${r}|${axis}|${x.dtype}|${it}`, () => gatherSpec(r, axis, x.dtype as WgslType, it));
  const p = [n, x.offset, idx.offset, N, ...outShape, ...x.strides, ...ist];
  launch(s, [x.buffer, idx.buffer, out.buffer], p, groups(n));
  return out;
}

/**
 * `base` (or zeros of `destShape` when null) plus `src` scattered along `axis` over the iteration
 * shape `iter`. The index has a compact shape `ishape` (1 on dims where it is broadcast over
 * `iter`, otherwise equal to `iter`) and strides `ist`; `base` and `src` are read through their
 * strides. Returns a new contiguous tensor. No autograd.
 */
function scatterRaw(
  base: Tensor | null,
  destShape: Shape,
  axis: number,
  idx: Tensor,
  ishape: Shape,
  ist: readonly number[],
  src: Tensor,
  iter: Shape,
): Tensor {
  const n = numel(iter);
  if (n === 0 || numel(destShape) === 0) return base ? mapN("x0", [base], [], "f32") : zeros(destShape);
  const N = destShape[axis];
  if (N === 0) throw new Error(`scatterAdd: cannot scatter into an empty axis (size 0 along axis ${axis})`);
  const r = iter.length;
  const it = idxType(idx, "scatterAdd");
  const bcast = (d: number) => ishape[d] === 1 && iter[d] !== 1;
  if (scatterMode === "atomic") {
    const out = base ? mapN("x0", [base], [], "f32") : zeros(destShape);
    const s = spec(`a${r}|${axis}|${it}`, () => atomicSpec(r, axis, it));
    const is = ist.map((x, d) => (bcast(d) ? 0 : x));
    const p = [n, idx.offset, src.offset, N, ...iter, ...is, ...src.strides, ...contiguousStrides(destShape)];
    launch(s, [idx.buffer, src.buffer, out.buffer], p, groups(n));
    return out;
  }
  const L = ishape[axis];
  // Per-dim params of the destination-driven kernels: shape, iteration bounds, the index's
  // (line) strides `xs` (0 on broadcast dims), base and source strides.
  const destDims = (xs: readonly number[]) => [
    ...destShape,
    ...iter.map((x, d) => (d === axis ? destShape[d] : x)),
    ...xs.map((x, d) => (bcast(d) ? 0 : x)),
    ...(base ? base.strides : new Array<number>(r).fill(0)),
    ...src.strides,
  ];
  if (numel(destShape) * L <= _scatterInternals.directBudget) {
    // Deterministic, few entries per line: each destination scans its line (one pass).
    const out = Tensor.empty(destShape);
    const p = [out.size, base?.offset ?? 0, src.offset, idx.offset, N, L, ...destDims(ist)];
    const bufs = [idx.buffer, ...(base ? [base.buffer] : []), src.buffer, out.buffer];
    launch(
      spec(`d${r}|${axis}|${!!base}|${it}`, () => directSpec(r, axis, !!base, it)),
      bufs,
      p,
      grid1d(Math.ceil(out.size / DIRECT_WG)),
    );
    return out;
  }
  // Deterministic: bucket the index entries per (line, destination row), sort buckets, sum.
  const ni = numel(ishape);
  const lines = ni / L;
  const ls = new Array<number>(r).fill(0);
  for (let d = r - 1, acc = 1; d >= 0; d--) {
    if (d === axis) continue;
    ls[d] = acc;
    acc *= ishape[d];
  }
  const cnt = zeros([lines * N], "u32");
  const pos = Tensor.empty([lines * N], "u32");
  const tmp = Tensor.empty([ni], "u32");
  const sorted = Tensor.empty([ni], "u32");
  const ep = [ni, idx.offset, N, ...ishape, ...ist, ...ls];
  const g = groups(ni);
  launch(spec(`k${r}|${axis}|${it}`, () => countSpec(r, axis, it)), [idx.buffer, cnt.buffer], ep, g);
  launch(spec("scan", scanSpec), [cnt.buffer, pos.buffer], [lines, N, L], grid1d(lines));
  launch(
    spec(`p${r}|${axis}|${it}`, () => placeSpec(r, axis, it)),
    [idx.buffer, pos.buffer, tmp.buffer],
    ep,
    g,
  );
  const ss = spec(`s${r}|${axis}|${it}`, () => sortSpec(r, axis, it));
  launch(ss, [idx.buffer, cnt.buffer, pos.buffer, tmp.buffer, sorted.buffer], ep, g);
  const out = Tensor.empty(destShape);
  const sp = [out.size, base?.offset ?? 0, src.offset, N, ...destDims(ls)];
  const bufs = [
    cnt.buffer,
    pos.buffer,
    sorted.buffer,
    ...(base ? [base.buffer] : []),
    src.buffer,
    out.buffer,
  ];
  launch(spec(`u${r}|${axis}|${!!base}`, () => sumSpec(r, axis, !!base)), bufs, sp, groups(out.size));
  for (const t of [cnt, pos, tmp, sorted]) t.dispose();
  return out;
}

/**
 * Rows (or columns, …) of `x` picked along `axis` by a 1-D index, like `torch.index_select`.
 * Indices may repeat; their gradients accumulate.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, indexSelect } from "./mod.ts";
 * await initGpu();
 * const x = fromArray([[1, 2], [3, 4], [5, 6]]);
 * const y = indexSelect(x, 0, fromArray(new Int32Array([2, 0, 2]))); // [[5, 6], [1, 2], [5, 6]]
 * ```
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  if (index.ndim !== 1) {
    throw new Error(`indexSelect: the index must be 1-D, got shape [${index.shape.join(", ")}]`);
  }
  idxType(index, "indexSelect");
  needRank(x, "indexSelect");
  const ax = normAxis(axis, x.ndim);
  const K = index.shape[0];
  const outShape = x.shape.map((d, i) => (i === ax ? K : d));
  const ishape = x.shape.map((_, i) => (i === ax ? K : 1));
  const ist = x.shape.map((_, i) => (i === ax ? index.strides[0] : 0));
  const out = gatherRaw(x, ax, index, ist, outShape);
  const saved = [index.alias()];
  const xShape = x.shape;
  return record(
    "indexSelect",
    [x],
    out,
    (g) => [scatterRaw(null, xShape, ax, saved[0], ishape, ist, g, g.shape)],
    saved,
  );
}

/**
 * `out[c] = x[c with c[axis] replaced by index[c]]`, like `torch.gather`: `index` has the rank of
 * `x`, and `index.shape[d] ≤ x.shape[d]` off `axis`. The output has the index's shape.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  idxType(index, "gather");
  needRank(x, "gather");
  const ax = normAxis(axis, x.ndim);
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== ax && d > x.shape[i])) {
    throw new Error(
      `gather: index [${index.shape.join(", ")}] must have the rank of x [${x.shape.join(", ")}] ` +
        `and no larger size off axis ${ax}`,
    );
  }
  const out = gatherRaw(x, ax, index, index.strides, index.shape);
  const saved = [index.alias()];
  const xShape = x.shape;
  return record("gather", [x], out, (g) => {
    const ix = saved[0];
    return [scatterRaw(null, xShape, ax, ix, ix.shape, ix.strides, g, g.shape)];
  }, saved);
}

/**
 * Out-of-place `torch.scatter_add`: a copy of `base` where, for every position `c` of `index`,
 * `out[c with c[axis] → index[c]] += src[c]`. `index` has the rank of `base` and `src`, with
 * `index.shape[d] ≤ src.shape[d]` everywhere and `≤ base.shape[d]` off `axis`; only the part of
 * `src` covered by `index` is used. Repeated indices accumulate. Gradients: `base` gets the
 * output gradient, `src` its gather by `index`.
 */
export function scatterAdd(base: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  idxType(index, "scatterAdd");
  if (base.dtype !== "f32" || src.dtype !== "f32") throw new Error("scatterAdd: base and src must be f32");
  needRank(base, "scatterAdd");
  const ax = normAxis(axis, base.ndim);
  const r = base.ndim;
  if (
    index.ndim !== r || src.ndim !== r ||
    index.shape.some((d, i) => d > src.shape[i] || (i !== ax && d > base.shape[i]))
  ) {
    const f = (t: Tensor) => `[${t.shape.join(", ")}]`;
    throw new Error(
      `scatterAdd: index ${f(index)} must have the rank of base ${f(base)} and src ${f(src)}, ` +
        `be no larger than src, and no larger than base off axis ${ax}`,
    );
  }
  const out = scatterRaw(base, base.shape, ax, index, index.shape, index.strides, src, index.shape);
  const saved = [index.alias()];
  const srcShape = src.shape;
  const wantBase = base.requiresGrad;
  const wantSrc = src.requiresGrad;
  return record("scatterAdd", [base, src], out, (g) => {
    const ix = saved[0];
    const gb = wantBase ? g.alias(g.shape, g.strides, g.offset, true) : null;
    if (!wantSrc) return [gb, null];
    const gi = gatherRaw(g, ax, ix, ix.strides, ix.shape);
    if (sameShape(ix.shape, srcShape)) return [gb, gi];
    const gs = zeros(srcShape);
    const dst = gs.alias(ix.shape, gs.strides, 0, true);
    mapInto(dst, "x0", [gi]);
    dst.dispose();
    gi.dispose();
    return [gb, gs];
  }, saved);
}

/** Whether rows of `t` (contiguous, `D` columns) can be read as vec4s. */
function vec4Rows(t: Tensor, D: number): boolean {
  return D % 4 === 0 && t.isContiguous && t.offset % 4 === 0 && t.buffer.size % 16 === 0;
}

/** `weight[idx[i]]` for the `n` indices of contiguous `idx`, four columns per thread. */
function embeddingRows(weight: Tensor, idx: Tensor, n: number): Tensor {
  const [V, D] = weight.shape;
  const out = Tensor.empty([n, D]);
  if (out.size === 0) return out;
  const it = idxType(idx, "embedding");
  const D4 = D / 4;
  launch(spec(`er|${it}`, () => embeddingRowsSpec(it)), [weight.buffer, idx.buffer, out.buffer], [
    n * D4,
    D4,
    weight.offset / 4,
    idx.offset,
    V,
  ], groups(n * D4));
  return out;
}

/** Embedding weight gradient `[V, D]` from `g` (`[n, D]`, contiguous) by the direct vec4 scan. */
function embeddingGrad(wShape: Shape, idx: Tensor, g: Tensor): Tensor {
  const [V, D] = wShape;
  const out = Tensor.empty(wShape);
  const it = idxType(idx, "embedding");
  const D4 = D / 4, n = V * D4;
  const params = [n, D4, g.offset / 4, idx.offset, V, g.shape[0]];
  const s = spec(`eg|${it}`, () => embeddingGradSpec(it));
  launch(s, [idx.buffer, g.buffer, out.buffer], params, grid1d(Math.ceil(n / EMB_GRAD_WG)));
  return out;
}

/**
 * Embedding lookup: rows of `weight` ([V, D]) for indices of any shape S, giving [...S, D].
 * The gradient of `weight` accumulates over repeated indices.
 */
export function embedding(indices: Tensor, weight: Tensor): Tensor {
  idxType(indices, "embedding");
  if (weight.ndim !== 2) {
    throw new Error(`embedding: weight must be [V, D], got [${weight.shape.join(", ")}]`);
  }
  const D = weight.shape[1];
  const n = indices.size;
  const flat = noGrad(() => contiguous(indices));
  const outShape = [...indices.shape, D];
  const vec = vec4Rows(weight, D);
  const rows = vec ? embeddingRows(weight, flat, n) : gatherRaw(weight, 0, flat, [1, 0], [n, D]);
  const out = rows.alias(outShape, contiguousStrides(outShape), 0, true);
  rows.dispose();
  const wShape = weight.shape;
  const saved = [flat.alias([n, 1], [1, 0], flat.offset)];
  flat.dispose();
  return record("embedding", [weight], out, (g) => {
    const gc = contiguous(g);
    const g2 = gc.alias([n, D], [D, 1], gc.offset);
    gc.dispose();
    const direct = scatterMode === "deterministic" && numel(wShape) * n <= _scatterInternals.directBudget;
    const gw = vec && direct && vec4Rows(g2, D)
      ? embeddingGrad(wShape, saved[0], g2)
      : scatterRaw(null, wShape, 0, saved[0], [n, 1], [1, 0], g2, [n, D]);
    g2.dispose();
    return [gw];
  }, saved);
}

/**
 * One-hot encoding: f32 `[...S, numClasses]` with 1 at each index (after wrapping negatives once);
 * rows of out-of-range indices are all zero. Not differentiable.
 */
export function oneHot(indices: Tensor, numClasses: number): Tensor {
  idxType(indices, "oneHot");
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`oneHot: bad numClasses ${numClasses}`);
  }
  const col = indices.alias([...indices.shape, 1], [...indices.strides, 1], indices.offset);
  const expr = "b2f(select(i32(x0), i32(x0) + i32(s0), i32(x0) < 0) == i32(i % u32(s0)))";
  const out = mapN(expr, [col], [numClasses], "f32", [...indices.shape, numClasses]);
  col.dispose();
  return out;
}

/**
 * Reads `index` back and throws a clear error if any entry is outside `[-n, n)`. Costs one host
 * sync; meant for validating indices that come from data, not for hot loops.
 */
export async function checkIndexRange(index: Tensor, n: number, what = "index"): Promise<void> {
  idxType(index, "checkIndexRange");
  const data = await index.toArray();
  for (let i = 0; i < data.length; i++) {
    const v = index.dtype === "u32" ? data[i] >>> 0 : data[i];
    if (v < -n || v >= n) throw new Error(`${what}: entry ${i} is ${v}, outside [${-n}, ${n})`);
  }
}
