/**
 * WGSL for embedding lookups with rows of a multiple of four floats: four columns per thread as
 * one `vec4`. On lavapipe every storage access is a loop over the SIMD lanes, so the scalar
 * gather of `gather.ts` (an index load, a value load and a store per element) costs about four
 * times as much per row as these kernels.
 *
 * Indices are normalised like every other index (see `INDEX_HELPERS`).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";
import { INDEX_HELPERS, INDEX_WG, LINEAR_ID } from "./gather.ts";

/** Threads per workgroup of {@link embeddingGradSpec} (few threads, each scanning every index). */
export const EMB_GRAD_WG = 16;

/**
 * `Y[i, c] = W[Idx[i], c]` over vec4 columns. Params: `n` (rows × D4), `D4` (vec4s per row),
 * `wo` (weight offset in vec4s), `io` (index offset), `V` (rows of the weight).
 */
export function embeddingRowsSpec(idxType: "i32" | "u32"): KernelSpec {
  return {
    params: ["n", "D4", "wo", "io", "V"],
    bindings: [
      { name: "W", type: "vec4<f32>", access: "read" },
      { name: "Idx", type: idxType, access: "read" },
      { name: "Y", type: "vec4<f32>", access: "rw" },
    ],
    workgroup: [INDEX_WG],
    prelude: INDEX_HELPERS,
    body: `
  let i = ${LINEAR_ID};
  if (i >= P.n) { return; }
  let row = i / P.D4; let c = i % P.D4;
  let j = fix_index(i32(Idx[P.io + row]), P.V);
  Y[i] = W[P.wo + j * P.D4 + c];`,
  };
}

/**
 * Weight gradient of an embedding: `Out[v, c] = Σ_{k : Idx[k] = v} G[k, c]` over vec4 columns,
 * each thread scanning all `L` indices in order (the same order, so the same bits, as the scalar
 * direct scatter). Params: `n` (V × D4), `D4`, `go` (gradient offset in vec4s), `io`, `V`, `L`.
 */
export function embeddingGradSpec(idxType: "i32" | "u32"): KernelSpec {
  return {
    params: ["n", "D4", "go", "io", "V", "L"],
    bindings: [
      { name: "Idx", type: idxType, access: "read" },
      { name: "G", type: "vec4<f32>", access: "read" },
      { name: "Out", type: "vec4<f32>", access: "rw" },
    ],
    workgroup: [EMB_GRAD_WG],
    prelude: INDEX_HELPERS,
    body: `
  let i = (wid.x + wid.y * nwg.x) * ${EMB_GRAD_WG}u + lid.x;
  if (i >= P.n) { return; }
  let v = i / P.D4; let c = i % P.D4;
  var acc = vec4f(0.0);
  for (var k = 0u; k < P.L; k++) {
    if (fix_index(i32(Idx[P.io + k]), P.V) == v) { acc = acc + G[P.go + k * P.D4 + c]; }
  }
  Out[i] = acc;`,
  };
}
