/**
 * A Deno-native toolkit for Continuous Thought Machines: a WebGPU tensor engine with reverse-mode
 * autodiff, modules, optimizers and safetensors I/O.
 *
 * @example
 * ```ts
 * import { initGpu, randn, matmul, sum } from "./mod.ts";
 * await initGpu();
 * const w = randn([4, 3]).requireGrad();
 * const loss = sum(matmul(randn([2, 4]), w));
 * loss.backward();
 * console.log(await w.grad!.toArray());
 * ```
 *
 * @module
 */
import "./src/ops/setup.ts";

export {
  DeviceLostError,
  deviceLostReason,
  gpu,
  type GpuContext,
  initGpu,
  NoAdapterError,
} from "./src/gpu/device.ts";
export { Recorder, recorder, type RecorderStats } from "./src/gpu/recorder.ts";
export { ReadQueue } from "./src/gpu/readback.ts";
export { BufferPool, type PoolStats } from "./src/gpu/buffer_pool.ts";
export { type DType, type HostArray, numel, type Shape, Tensor } from "./src/tensor/tensor.ts";
export { memoryStats, Storage, trimMemory } from "./src/tensor/storage.ts";
export { type Disposable, keep, tidy } from "./src/tensor/scope.ts";
export { type BackwardFn, detach, isGradEnabled, Node, noGrad, record } from "./src/tensor/autograd.ts";
export { Rng } from "./src/util/rng.ts";
export { mapInto, mapN } from "./src/ops/map.ts";
export {
  arange,
  fromArray,
  full,
  type NestedArray,
  ones,
  onesLike,
  zeros,
  zerosLike,
} from "./src/ops/creation.ts";
export {
  add,
  div,
  eq,
  ge,
  gt,
  le,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  pow,
  sub,
  type TensorLike,
  where,
} from "./src/ops/arith.ts";
export {
  abs,
  clamp,
  cos,
  exp,
  glu,
  log,
  neg,
  relu,
  rsqrt,
  sigmoid,
  silu,
  sin,
  sqrt,
  square,
  tanh,
} from "./src/ops/unary.ts";
export { argmax, argmin, max, mean, min, sum, sumToShape } from "./src/ops/reduce.ts";
export {
  concat,
  contiguous,
  expand,
  flatten,
  permute,
  reshape,
  slice,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "./src/ops/views.ts";
