/**
 * WGSL of the CTM's tick selection loss (ref `utils/losses.py`): from a per-tick loss `ℓ[b, t]`,
 * each sample's minimum-loss tick and its most certain tick (or the last one), and the loss
 * `½·mean_b(ℓ[b, t_min] + ℓ[b, t*])`, in one dispatch instead of an argmin, an argmax, two
 * gathers, two means and their backward passes.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads of the one workgroup of {@link tickSelectSpec}. */
export const TICK_WG = 64;

/**
 * Forward. Params: `B`, `T`, `lo` (offset of `L`, `[B, T]` contiguous), `co`, `cb`, `ct` (offset
 * and batch / tick strides of the certainty row `C[b, 1, t]`), `last` (1: use the last tick
 * instead of the most certain). Writes `Idx[b] = t_min`, `Idx[B + b] = t*` (first index on
 * ties, like `torch.argmin`/`argmax`) and `Loss[0]`. Rows are summed per thread in order, then
 * the 64 partial sums in order: the result does not depend on scheduling.
 */
export function tickSelectSpec(): KernelSpec {
  return {
    params: ["B", "T", "lo", "co", "cb", "ct", "last"],
    bindings: [
      { name: "L", type: "f32", access: "read" },
      { name: "C", type: "f32", access: "read" },
      { name: "Idx", type: "i32", access: "rw" },
      { name: "Loss", type: "f32", access: "rw" },
    ],
    workgroup: [TICK_WG],
    prelude: `var<workgroup> part: array<f32, ${TICK_WG}>;`,
    body: `
  var acc = 0.0;
  for (var b = lid.x; b < P.B; b += ${TICK_WG}u) {
    let row = P.lo + b * P.T;
    var lmin = L[row]; var imin = 0u;
    var cmax = C[P.co + b * P.cb]; var imax = 0u;
    for (var t = 1u; t < P.T; t++) {
      let v = L[row + t];
      if (v < lmin) { lmin = v; imin = t; }
      let c = C[P.co + b * P.cb + t * P.ct];
      if (c > cmax) { cmax = c; imax = t; }
    }
    if (P.last != 0u) { imax = P.T - 1u; }
    Idx[b] = i32(imin);
    Idx[P.B + b] = i32(imax);
    acc += lmin + L[row + imax];
  }
  part[lid.x] = acc;
  workgroupBarrier();
  if (lid.x == 0u) {
    var s = 0.0;
    for (var k = 0u; k < ${TICK_WG}u; k++) { s += part[k]; }
    Loss[0] = 0.5 * s / f32(P.B);
  }`,
  };
}

/**
 * Backward: `dL[b, t] = g·½/B·([t = t_min] + [t = t*])`. Params: `B`, `T`, `go` (offset of the
 * scalar upstream gradient `G`). One thread per element of `dL` (`[B, T]`).
 */
export function tickSelectGradSpec(): KernelSpec {
  return {
    params: ["B", "T", "go"],
    bindings: [
      { name: "Idx", type: "i32", access: "read" },
      { name: "G", type: "f32", access: "read" },
      { name: "DL", type: "f32", access: "rw" },
    ],
    workgroup: [TICK_WG],
    body: `
  let i = (wid.x + wid.y * nwg.x) * ${TICK_WG}u + lid.x;
  if (i >= P.B * P.T) { return; }
  let b = i / P.T; let t = i32(i % P.T);
  let hits = select(0.0, 1.0, Idx[b] == t) + select(0.0, 1.0, Idx[P.B + b] == t);
  DL[i] = hits * (0.5 * G[P.go] / f32(P.B));`,
  };
}
