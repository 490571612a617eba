/**
 * Layout ops: reshape, permute/transpose, slice, expand, squeeze/unsqueeze, flatten, contiguous,
 * concat and stack. Views share memory with their input; `contiguous` copies only when needed.
 */
import { record } from "../tensor/autograd.ts";
import { contiguousStrides, hooks, numel, type Shape, Tensor } from "../tensor/tensor.ts";
import { normAxis, sameShape } from "./broadcast.ts";
import { mapInto, mapN } from "./map.ts";
import { sumToShape } from "./reduce.ts";
import { INDEX_WG } from "../../shaders/gather.ts";
import { sliceGradSpec } from "../../shaders/slice.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";

/** A row-major copy of `t`, or a new handle on `t` when it already is one. */
export function contiguous(t: Tensor): Tensor {
  t.assertAlive();
  const out = t.isContiguous
    ? t.alias(t.shape, contiguousStrides(t.shape), t.offset, true)
    : mapN("x0", [t], [], t.dtype);
  return record("contiguous", [t], out, (g) => [g.alias(g.shape, g.strides, g.offset, true)]);
}
hooks.contiguous = contiguous;

function view(
  t: Tensor,
  shape: Shape,
  strides: Shape,
  offset: number,
  name: string,
  back: (g: Tensor) => Tensor,
): Tensor {
  const out = t.alias(shape, strides, offset, true);
  return record(name, [t], out, (g) => [back(g)]);
}

/**
 * Same data, new shape (one dim may be -1). A view when possible, else a copy.
 *
 * @example
 * ```ts
 * import { initGpu, arange, reshape } from "./mod.ts";
 * await initGpu();
 * const m = reshape(arange(6), [2, -1]); // [2, 3]
 * ```
 */
export function reshape(t: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new Error("reshape: only one dimension may be -1");
  const full = shape.map((d) => (d === -1 ? (known === 0 ? 0 : t.size / known) : d));
  if (numel(full) !== t.size || full.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(
      `reshape: cannot view [${t.shape.join(", ")}] (${t.size} elements) as [${shape.join(", ")}]`,
    );
  }
  const inShape = t.shape;
  if (full.length === inShape.length && full.every((d, i) => d === inShape[i])) {
    // Same shape: a view even of a strided tensor (e.g. flatten over a single dim).
    return view(t, full, t.strides, t.offset, "reshape", (g) => reshape(g, inShape));
  }
  const src = t.isContiguous ? t : contiguous(t);
  const out = view(src, full, contiguousStrides(full), src.offset, "reshape", (g) => reshape(g, inShape));
  if (src !== t) src.dispose();
  return out;
}

/** Merges dims `start…end` into one. */
export function flatten(t: Tensor, start = 0, end = -1): Tensor {
  if (t.ndim === 0) return reshape(t, [1]);
  const s = normAxis(start, t.ndim);
  const e = normAxis(end, t.ndim);
  const merged = t.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(t, [...t.shape.slice(0, s), merged, ...t.shape.slice(e + 1)]);
}

/** Reorders dims: `out.shape[i] = t.shape[dims[i]]`. A view. */
export function permute(t: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== t.ndim) throw new Error(`permute: ${dims.length} dims given for rank ${t.ndim}`);
  const d = dims.map((x) => normAxis(x, t.ndim));
  if (new Set(d).size !== d.length) throw new Error(`permute: repeated dims [${dims.join(", ")}]`);
  const inv = new Array<number>(d.length);
  d.forEach((x, i) => (inv[x] = i));
  return view(
    t,
    d.map((x) => t.shape[x]),
    d.map((x) => t.strides[x]),
    t.offset,
    "permute",
    (g) => permute(g, inv),
  );
}

/** Swaps two dims (default: the last two). A view. */
export function transpose(t: Tensor, a = -2, b = -1): Tensor {
  const dims = [...Array(t.ndim).keys()];
  const x = normAxis(a, t.ndim);
  const y = normAxis(b, t.ndim);
  [dims[x], dims[y]] = [dims[y], dims[x]];
  return permute(t, dims);
}

/**
 * Elements `start, start + step, …` below `end` along `axis` (negative indices count from the
 * end, like Python slicing). A view.
 */
export function slice(t: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const ax = normAxis(axis, t.ndim);
  const n = t.shape[ax];
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start);
  const e = clampIdx(end ?? n);
  if (step < 1 || !Number.isInteger(step)) throw new Error("slice: step must be a positive integer");
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...t.shape];
  shape[ax] = len;
  const strides = [...t.strides];
  strides[ax] *= step;
  const inShape = t.shape;
  return view(
    t,
    shape,
    strides,
    t.offset + s * t.strides[ax],
    "slice",
    (g) => sliceGrad(g, inShape, ax, s, step),
  );
}

let sliceGradKernel: KernelSpec | null = null;

/** The input-shaped gradient of a slice along `ax` (start `s`, `step`): one kernel. */
function sliceGrad(g: Tensor, inShape: Shape, ax: number, s: number, step: number): Tensor {
  const out = Tensor.empty(inShape);
  const n = out.size;
  if (n === 0) return out;
  const gc = contiguous(g);
  let inner = 1;
  for (let i = ax + 1; i < inShape.length; i++) inner *= inShape[i];
  launch(
    sliceGradKernel ??= sliceGradSpec(),
    [gc.buffer, out.buffer],
    [n, inner, inShape[ax], s, step, g.shape[ax], gc.offset],
    grid1d(Math.ceil(n / INDEX_WG)),
  );
  gc.dispose();
  return out;
}

/** Splits `t` along `axis` into pieces of the given sizes (views). */
export function split(t: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, t.ndim);
  if (sizes.reduce((a, b) => a + b, 0) !== t.shape[ax]) {
    throw new Error(`split: sizes [${sizes.join(", ")}] do not add up to ${t.shape[ax]}`);
  }
  let at = 0;
  return sizes.map((n) => slice(t, ax, at, at += n));
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a dim. */
export function expand(t: Tensor, shape: Shape): Tensor {
  const r = shape.length;
  if (r < t.ndim) throw new Error(`expand: cannot expand rank ${t.ndim} to rank ${r}`);
  const outShape = [...shape];
  const strides = new Array<number>(r).fill(0);
  for (let i = 0; i < r; i++) {
    const k = i - (r - t.ndim);
    if (k < 0) {
      if (shape[i] < 0) throw new Error("expand: -1 is not allowed for new leading dims");
      continue;
    }
    const want = shape[i] === -1 ? t.shape[k] : shape[i];
    outShape[i] = want;
    if (t.shape[k] === want) strides[i] = t.strides[k];
    else if (t.shape[k] !== 1) {
      throw new Error(`expand: cannot expand [${t.shape.join(", ")}] to [${shape.join(", ")}]`);
    }
  }
  const inShape = t.shape;
  return view(t, outShape, strides, t.offset, "expand", (g) => sumToShape(g, inShape));
}

/** Removes size-1 dims (all, or the given one). A view. */
export function squeeze(t: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(t, t.shape.filter((d) => d !== 1));
  const ax = normAxis(axis, t.ndim);
  if (t.shape[ax] !== 1) return reshape(t, t.shape);
  return reshape(t, t.shape.filter((_, i) => i !== ax));
}

/** Inserts a size-1 dim at `axis` (may be `ndim`, or negative). A view. */
export function unsqueeze(t: Tensor, axis: number): Tensor {
  const ax = axis < 0 ? axis + t.ndim + 1 : axis;
  if (ax < 0 || ax > t.ndim) throw new Error(`unsqueeze: axis ${axis} out of range for rank ${t.ndim}`);
  const shape = [...t.shape];
  shape.splice(ax, 0, 1);
  const strides = [...t.strides];
  strides.splice(ax, 0, ax < t.ndim ? t.strides[ax] * t.shape[ax] : 1);
  return view(t, shape, strides, t.offset, "unsqueeze", (g) => reshape(g, t.shape));
}

/** Joins tensors along an existing axis. */
export function concat(ts: readonly Tensor[], axis = 0): Tensor {
  if (ts.length === 0) throw new Error("concat: no tensors given");
  const ax = normAxis(axis, ts[0].ndim);
  for (const t of ts) {
    if (t.ndim !== ts[0].ndim || t.shape.some((d, i) => i !== ax && d !== ts[0].shape[i])) {
      throw new Error(
        `concat: shapes ${ts.map((x) => `[${x.shape.join(", ")}]`).join(", ")} differ off axis ${ax}`,
      );
    }
  }
  const shape = [...ts[0].shape];
  shape[ax] = ts.reduce((a, t) => a + t.shape[ax], 0);
  const out = Tensor.empty(shape, ts[0].dtype);
  let at = 0;
  const sizes: number[] = [];
  for (const t of ts) {
    const dst = out.alias(t.shape, out.strides, out.offset + at * out.strides[ax], true);
    mapInto(dst, "x0", [t]);
    dst.dispose();
    at += t.shape[ax];
    sizes.push(t.shape[ax]);
  }
  return record("concat", [...ts], out, (g) =>
    split(g, sizes, ax).map((p) => {
      const c = contiguous(p);
      p.dispose();
      return c;
    }));
}

/** Joins tensors along a new axis. */
export function stack(ts: readonly Tensor[], axis = 0): Tensor {
  if (ts.length === 0) throw new Error("stack: no tensors given");
  const ax = axis < 0 ? axis + ts[0].ndim + 1 : axis;
  for (const t of ts) {
    if (!sameShape(t.shape, ts[0].shape)) throw new Error("stack: all tensors must have the same shape");
  }
  const u = ts.map((t) => unsqueeze(t, ax));
  const r = concat(u, ax);
  u.forEach((t) => t.dispose());
  return r;
}
