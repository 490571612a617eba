/**
 * WGSL for gathers along one axis: `out[c] = X[c with c[axis] → Idx[c]]`, one output element per
 * thread. The index is read through its own strides over the output shape, so the same kernel does
 * `torch.gather` (index strides as they are) and `index_select`/`embedding` (a 1-D index broadcast
 * with stride 0 on every other axis). X may be any strided view.
 *
 * Indices are normalised by {@link INDEX_HELPERS}: negative ones wrap once (`-1` is the last row)
 * and anything still out of range is clamped to `[0, N)`; GPUs cannot raise an error.
 */
import type { KernelSpec, WgslType } from "../src/gpu/kernel.ts";

/** Threads per workgroup of gather and scatter kernels. */
export const INDEX_WG = 256;

/** `fix_index(v, n)`: wraps a negative index once, then clamps into `[0, n)`. */
export const INDEX_HELPERS = `
fn fix_index(v: i32, n: u32) -> u32 {
  let m = i32(n);
  var j = v;
  if (j < 0) { j = j + m; }
  return u32(clamp(j, 0, m - 1));
}
`;

/** WGSL lines splitting the linear thread index `i` into coordinates `c0…c{rank-1}` over `P.d*`. */
export function coordLines(rank: number, linear = "i"): string[] {
  const lines = [`var r = ${linear};`];
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`let c${d} = r % P.d${d};`);
    if (d > 0) lines.push(`r = r / P.d${d};`);
  }
  return lines;
}

/** The WGSL linear thread index over a {@link grid1d} launch with {@link INDEX_WG} threads. */
export const LINEAR_ID = `(wid.x + wid.y * nwg.x) * ${INDEX_WG}u + lid.x`;

/**
 * Gather kernel for output rank `rank` along `axis`. Params: `n` (outputs), `xo`, `io` (element
 * offsets of X and Idx), `N` (size of X along `axis`), then per dim `d*` (output shape), `xs*`
 * (X strides) and `is*` (index strides over the output shape; 0 where broadcast).
 */
export function gatherSpec(rank: number, axis: number, xType: WgslType, idxType: "i32" | "u32"): KernelSpec {
  const params = ["n", "xo", "io", "N"];
  for (const p of ["d", "xs", "is"]) for (let d = 0; d < rank; d++) params.push(`${p}${d}`);
  const lines = [`let i = ${LINEAR_ID};`, `if (i >= P.n) { return; }`, ...coordLines(rank)];
  let xi = "P.xo";
  let ii = "P.io";
  for (let d = 0; d < rank; d++) {
    if (d !== axis) xi += ` + c${d} * P.xs${d}`;
    ii += ` + c${d} * P.is${d}`;
  }
  lines.push(
    `let j = fix_index(i32(Idx[${ii}]), P.N);`,
    `Y[i] = X[${xi} + j * P.xs${axis}];`,
  );
  return {
    params,
    bindings: [
      { name: "X", type: xType, access: "read" },
      { name: "Idx", type: idxType, access: "read" },
      { name: "Y", type: xType, access: "rw" },
    ],
    workgroup: [INDEX_WG],
    prelude: INDEX_HELPERS,
    body: lines.join("\n"),
  };
}
