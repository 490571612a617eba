/**
 * The Tensor: a strided view of reference-counted device memory, with autograd bookkeeping.
 *
 * Tensors are created by ops (see `src/ops/`); data comes back to the host only through the async
 * {@link Tensor.toArray}, which never blocks recorded work.
 */
import { recorder } from "../gpu/recorder.ts";
import { Storage } from "./storage.ts";
import { track } from "./scope.ts";
import type { Node } from "./autograd.ts";

/** Element types: f32 for compute, i32/u32 for indices. */
export type DType = "f32" | "i32" | "u32";

/** Host array type for each dtype. */
export type HostArray<D extends DType = DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** Shape of a tensor: sizes per dimension, outermost first. */
export type Shape = readonly number[];

/** Number of elements of a shape. */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides of a shape. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

let nextId = 1;

/** Hook set by the copy op: materialises a strided tensor (avoids an import cycle). */
export const hooks: {
  contiguous: ((t: Tensor) => Tensor) | null;
  backward: ((t: Tensor, g?: Tensor) => void) | null;
} = {
  contiguous: null,
  backward: null,
};

/** An n-dimensional array on the GPU. */
export class Tensor {
  /** Unique id (creation order). */
  readonly id: number = nextId++;
  /** Sizes per dimension. */
  readonly shape: Shape;
  /** Element strides per dimension. */
  readonly strides: Shape;
  /** Element offset into the storage. */
  readonly offset: number;
  /** Element type. */
  readonly dtype: DType;
  /** The memory this tensor views. */
  readonly storage: Storage;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** Accumulated gradient (leaves only), or null. */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves). */
  node: Node | null = null;
  /** Which output of `node` this tensor is (multi-output ops). */
  outputIndex = 0;
  /** Set by `keep`: scopes never dispose it. */
  kept = false;
  #disposed = false;

  /** Internal: use the creation ops (`zeros`, `fromArray`, …) instead. */
  constructor(storage: Storage, shape: Shape, dtype: DType, strides?: Shape, offset = 0, tracked = true) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    if (tracked) track(this);
  }

  /** Allocates an uninitialised contiguous tensor (internal). */
  static empty(shape: Shape, dtype: DType = "f32"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(", ")}]`);
    }
    return new Tensor(new Storage(numel(shape) * 4), shape, dtype);
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** The device buffer holding the data. */
  get buffer(): GPUBuffer {
    this.assertAlive();
    return this.storage.buffer;
  }

  /** True once disposed. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** True when the elements are laid out row-major with no gaps (offset may be non-zero). */
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** Throws if the tensor was disposed. */
  assertAlive(): void {
    if (this.#disposed) {
      throw new Error(`tensor #${this.id} [${this.shape.join(", ")}] was used after dispose()`);
    }
  }

  /**
   * Internal (an optimizer's flat arena, `src/optim/flat_group.ts`): makes this tensor a
   * contiguous view at element `offset` of `storage`, releasing its own memory. Its values must
   * already be there. Every op reads `buffer` and `offset` afresh, so holders of this tensor
   * follow it.
   */
  moveTo(storage: Storage, offset: number): void {
    this.assertAlive();
    storage.retain();
    this.storage.release();
    const self = this as unknown as { storage: Storage; offset: number; strides: Shape };
    self.storage = storage;
    self.offset = offset;
    self.strides = Object.freeze(contiguousStrides(this.shape));
  }

  /** A new handle on the same memory and layout (internal: saved tensors, views). */
  alias(
    shape: Shape = this.shape,
    strides: Shape = this.strides,
    offset = this.offset,
    tracked = false,
  ): Tensor {
    this.assertAlive();
    this.storage.retain();
    return new Tensor(this.storage, shape, this.dtype, strides, offset, tracked);
  }

  /**
   * Copies the data to the host. Several reads may be in flight; none blocks recorded work.
   *
   * @example
   * ```ts
   * import { initGpu, fromArray } from "./mod.ts";
   * await initGpu();
   * const data = await fromArray([1, 2, 3]).toArray(); // Float32Array [1, 2, 3]
   * ```
   */
  async toArray(): Promise<HostArray> {
    this.assertAlive();
    const copy = this.isContiguous ? null : hooks.contiguous!(this);
    const storage = copy ? copy.storage : this.storage;
    const offset = copy ? copy.offset : this.offset;
    const read = recorder().read(storage.buffer, offset * 4, this.size * 4);
    copy?.dispose();
    const bytes = await read;
    if (this.dtype === "f32") return new Float32Array(bytes);
    if (this.dtype === "i32") return new Int32Array(bytes);
    return new Uint32Array(bytes);
  }

  /** The single element of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs one element, got shape [${this.shape.join(", ")}]`);
    return (await this.toArray())[0];
  }

  /** Marks this leaf as needing gradients; returns it. */
  requireGrad(flag = true): this {
    if (this.node) throw new Error("requireGrad() is for leaf tensors; this one was computed by an op");
    if (flag && this.dtype !== "f32") throw new Error("only f32 tensors can require gradients");
    this.requiresGrad = flag;
    return this;
  }

  /**
   * Back-propagates from this tensor: a scalar by default, or any shape with `grad` given.
   * Gradients accumulate into the `.grad` of leaves; the graph is freed afterwards.
   */
  backward(grad?: Tensor): void {
    hooks.backward!(this, grad);
  }

  /** Frees this handle; the memory returns to the pool once no view or saved copy needs it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this.node) {
      this.node.release();
      this.node = null;
    }
  }

  /** `using t = …` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Short description for logs. */
  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}]${this.requiresGrad ? ", grad" : ""})`;
  }
}
