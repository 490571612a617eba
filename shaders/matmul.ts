/**
 * WGSL generators for matrix multiplication.
 *
 * Two families, both computing per slice `s` (a batch entry, or a neuron for grouped matmul)
 * `C_s = act(A_s · B_s + bias_s)`:
 * - **regblock** (CPU adapters): operands first go to `rgba32float` 2-D array textures (a plain
 *   buffer→texture copy when the layout allows, else {@link packSpec}: zero padded, any strides),
 *   then {@link regblockSpec} has each thread accumulate a `TM × 4·TN4` block in named vec4
 *   variables. Lavapipe turns every storage-buffer load into a per-lane scalar loop with branches
 *   (~35 ns per vec4 per lane on the dev VM) while read-only storage-texture fetches are vectorised
 *   (~1.5 ns), which makes this 3–8× faster than the same kernel reading storage buffers.
 * - **tiled** (real GPUs): {@link tiledSpec}, a shared-memory 64×64 tile kernel reading the
 *   strided storage buffers directly, 4×4 outputs per thread.
 *
 * Slice offsets: the slice index is decomposed over up to {@link MAX_SLICE_DIMS} dims (sizes
 * `d0…`), each operand having its own strides (0 for broadcast dims).
 *
 * This module holds the tiled kernel and re-exports the regblock path (`matmul_regblock.ts`) and
 * the shared types/helpers (`matmul_common.ts`), so importers need only this file.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";
import { ACT_HELPERS, EPILOGUE_PARAMS, sliceOffset, sliceParams } from "./matmul_common.ts";

export { type Activation, ACTIVATIONS, MAX_SLICE_DIMS, type TexKernelSpec } from "./matmul_common.ts";
export {
  packSlices4Spec,
  packSpec,
  RB_WG,
  type RegblockOpts,
  regblockSpec,
  type TexForm,
} from "./matmul_regblock.ts";

/** Tile edge of the tiled kernel (outputs per workgroup per dim). */
export const TILE = 64;

/**
 * WGSL of the tiled kernels' inner product: each thread accumulates a 4×4 block `acc` from the
 * workgroup tiles `As`/`Bs` (`T` wide, `BK` deep). Shared by the matmul and conv tiled kernels.
 */
export function tileProduct(T: number, BK: number): string {
  return `    for (var kk = 0u; kk < ${BK}u; kk++) {
      let a = vec4f(As[kk * ${T}u + ty * 4u], As[kk * ${T}u + ty * 4u + 1u],
                    As[kk * ${T}u + ty * 4u + 2u], As[kk * ${T}u + ty * 4u + 3u]);
      let b = vec4f(Bs[kk * ${T}u + tx * 4u], Bs[kk * ${T}u + tx * 4u + 1u],
                    Bs[kk * ${T}u + tx * 4u + 2u], Bs[kk * ${T}u + tx * 4u + 3u]);
      acc[0] = fma(vec4f(a.x), b, acc[0]);
      acc[1] = fma(vec4f(a.y), b, acc[1]);
      acc[2] = fma(vec4f(a.z), b, acc[2]);
      acc[3] = fma(vec4f(a.w), b, acc[3]);
    }`;
}

/**
 * Shared-memory tiled matmul reading strided storage buffers (for real GPUs): 64×64 output tile
 * per 256-thread workgroup, 16-deep K steps, 4×4 outputs per thread, bounds-checked loads.
 * Same epilogue flags as {@link regblockSpec}. Grid: (ceil(N/64), ceil(M/64), slices in the chunk).
 */
export function tiledSpec(nDims: number): KernelSpec {
  const BK = 16;
  return {
    params: [
      "M",
      "N",
      "K",
      "aoff",
      "ars",
      "acs",
      "boff2",
      "brs",
      "bcs2",
      ...EPILOGUE_PARAMS,
      "act",
      ...sliceParams(["as", "bs2", "os", "bs"], nDims),
    ],
    bindings: [
      { name: "A", type: "f32", access: "read" },
      { name: "B", type: "f32", access: "read" },
      { name: "C", type: "f32", access: "rw" },
      { name: "Z", type: "f32", access: "rw" },
      { name: "Bias", type: "f32", access: "read" },
    ],
    prelude: `var<workgroup> As: array<f32, ${BK * TILE}>;
var<workgroup> Bs: array<f32, ${BK * TILE}>;
${ACT_HELPERS}`,
    workgroup: [16, 16, 1],
    body: `
  let z = wid.z;
  let s = P.zBase + z;
  ${sliceOffset("sa", "s", "as", nDims)}
  ${sliceOffset("sbb", "s", "bs2", nDims)}
  let abase = P.aoff + sa;
  let bbase2 = P.boff2 + sbb;
  let row0 = wid.y * ${TILE}u; let col0 = wid.x * ${TILE}u;
  let tx = lid.x; let ty = lid.y; let tid = ty * 16u + tx;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < P.K; k0 += ${BK}u) {
    for (var e = 0u; e < 4u; e++) {
      let li = tid + e * 256u;
      // A tile stored k-major: As[kk * 64 + m]
      let am = li / ${BK}u; let ak = li % ${BK}u;
      let gm = row0 + am; let gk = k0 + ak;
      var av = 0.0;
      if (gm < P.M && gk < P.K) { av = A[abase + gm * P.ars + gk * P.acs]; }
      As[ak * ${TILE}u + am] = av;
      let bk = li / ${TILE}u; let bn = li % ${TILE}u;
      let gk2 = k0 + bk; let gn = col0 + bn;
      var bv = 0.0;
      if (gk2 < P.K && gn < P.N) { bv = B[bbase2 + gk2 * P.brs + gn * P.bcs2]; }
      Bs[bk * ${TILE}u + bn] = bv;
    }
    workgroupBarrier();
${tileProduct(TILE, BK)}
    workgroupBarrier();
  }
  ${sliceOffset("so", "s", "os", nDims)}
  ${sliceOffset("sb", "s", "bs", nDims)}
  let c0 = col0 + tx * 4u;
  var bias = vec4f(0.0);
  if ((P.flags & 1u) != 0u) {
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < P.N) { bias[q] = Bias[P.boff + sb + (c0 + q) * P.bcs]; }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + ty * 4u + i;
    if (r >= P.M) { continue; }
    let zv = acc[i] + bias;
    let yv = mm_act(zv, P.act);
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < P.N) {
        let k = P.ooff + so + r * P.ors + (c0 + q) * P.ocs;
        C[k] = yv[q];
        if ((P.flags & 2u) != 0u) { Z[k] = zv[q]; }
      }
    }
  }`,
  };
}
