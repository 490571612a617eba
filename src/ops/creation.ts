/** Tensor creation: from host data, constants and ranges. */
import { recorder } from "../gpu/recorder.ts";
import { type DType, type Shape, Tensor } from "../tensor/tensor.ts";
import { mapN } from "./map.ts";

/** Nested arrays of numbers, as accepted by {@link fromArray}. */
export type NestedArray = number | readonly NestedArray[];

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let d: NestedArray = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0] as NestedArray;
  }
  return shape;
}

/**
 * Uploads host data as a tensor. Typed arrays need a `shape` (default: 1-D); nested arrays give
 * their own. The dtype follows the typed array (Int32Array → i32, Uint32Array → u32) or `dtype`.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray } from "./mod.ts";
 * await initGpu();
 * const x = fromArray([[1, 2], [3, 4]]);           // f32 [2, 2]
 * const i = fromArray(new Int32Array([0, 3, 1]));   // i32 [3]
 * ```
 */
export function fromArray(
  data: NestedArray | Float32Array | Float64Array | Int32Array | Uint32Array | readonly number[],
  shape?: Shape,
  dtype?: DType,
): Tensor {
  let flat: ArrayLike<number>;
  let dt: DType = dtype ?? "f32";
  if (ArrayBuffer.isView(data)) {
    flat = data as ArrayLike<number>;
    if (!dtype) dt = data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32";
    shape ??= [flat.length];
  } else {
    const inferred = inferShape(data as NestedArray);
    flat = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as number[];
    shape ??= inferred;
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== flat.length) {
    throw new Error(`fromArray: ${flat.length} values do not fill shape [${shape.join(", ")}]`);
  }
  const host = dt === "f32"
    ? Float32Array.from(flat)
    : dt === "i32"
    ? Int32Array.from(flat)
    : Uint32Array.from(flat);
  const t = Tensor.empty(shape, dt);
  recorder().upload(t.buffer, 0, host);
  return t;
}

/** A tensor filled with `value`. */
export function full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
  const expr = dtype === "f32" ? "s0" : `${dtype}(s0)`;
  return mapN(expr, [], [value], dtype, shape);
}

/** A tensor of zeros. */
export function zeros(shape: Shape, dtype: DType = "f32"): Tensor {
  return full(shape, 0, dtype);
}

/** A tensor of ones. */
export function ones(shape: Shape, dtype: DType = "f32"): Tensor {
  return full(shape, 1, dtype);
}

/** Zeros with the shape and dtype of `t`. */
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, t.dtype);
}

/** Ones with the shape and dtype of `t`. */
export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, t.dtype);
}

/**
 * `[start, start + step, …)` below `end`, like `torch.arange`. With one argument: `[0, end)`.
 *
 * @example
 * ```ts
 * import { initGpu, arange } from "./mod.ts";
 * await initGpu();
 * const idx = arange(5, undefined, 1, "i32"); // [0, 1, 2, 3, 4]
 * ```
 */
export function arange(start: number, end?: number, step = 1, dtype: DType = "f32"): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const n = Math.max(0, Math.ceil((end - start) / step));
  if (dtype === "f32") return mapN("s0 + f32(i) * s1", [], [start, step], dtype, [n]);
  return mapN(`${dtype}(s0) + ${dtype}(i) * ${dtype}(s1)`, [], [start, step], dtype, [n]);
}
