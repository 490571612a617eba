/**
 * WGSL for the gradient of a slice: the input-shaped gradient in one pass, the incoming gradient
 * where the slice took elements and zero elsewhere (instead of a zero fill and a strided copy).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";
import { INDEX_WG, LINEAR_ID } from "./gather.ts";

/**
 * `Y[o, c, i] = G[o, (c − start) / step, i]` where c − start ≥ 0 is a multiple of `step` below
 * `len·step`, else 0; o runs over the dims before the slice axis, i over those after it. Params:
 * `n` (elements of Y), `inner` (product of the dims after the axis), `dim` (the input's size
 * along it), `start`, `step`, `len` (the slice's size along it), `go` (offset of the contiguous G).
 */
export function sliceGradSpec(): KernelSpec {
  return {
    params: ["n", "inner", "dim", "start", "step", "len", "go"],
    bindings: [
      { name: "G", type: "f32", access: "read" },
      { name: "Y", type: "f32", access: "rw" },
    ],
    workgroup: [INDEX_WG],
    body: `
  let i = ${LINEAR_ID};
  if (i >= P.n) { return; }
  let inner = i % P.inner; let rest = i / P.inner;
  let c = rest % P.dim; let outer = rest / P.dim;
  var v = 0.0;
  if (c >= P.start) {
    let k = c - P.start;
    if (k % P.step == 0u && k / P.step < P.len) {
      v = G[P.go + (outer * P.len + k / P.step) * P.inner + inner];
    }
  }
  Y[i] = v;`,
  };
}
