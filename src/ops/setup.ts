/** Wires the ops that autograd itself needs (gradient accumulation, the scalar seed). */
import { setAutogradOps } from "../tensor/autograd.ts";
import { add } from "./arith.ts";
import { onesLike } from "./creation.ts";
import { mapN } from "./map.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Terms per gradient sum: 7 inputs and the output stay within WebGPU's default of 8 storage buffers. */
export const GRAD_SUM_TERMS = 7;

/** `ts[0] + ts[1] + …` (same shapes, left to right) in one dispatch; autograd's gradient sums. */
export function gradSum(ts: Tensor[]): Tensor {
  return mapN(ts.map((_, i) => `x${i}`).join(" + "), ts);
}

setAutogradOps(add, onesLike, gradSum, GRAD_SUM_TERMS);
