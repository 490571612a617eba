/**
 * WGSL for layer normalisation over contiguous rows of length `R` (the flattened normalised dims):
 * a fused forward (Welford mean/variance, normalise, affine; saves mean and rstd), a fused
 * backward for the input, and a column-sum kernel for the weight and bias gradients.
 */
import type { BindingSpec, KernelSpec } from "../src/gpu/kernel.ts";
import { LSE_HELPERS, type RowMode, rowSpec } from "./softmax.ts";

/** Threads per workgroup of the weight/bias gradient kernel. */
export const LN_PARAM_WG = 128;

const WELFORD = `
fn wf_merge(a: vec3f, b: vec3f) -> vec3f {
  let n = a.x + b.x;
  if (b.x == 0.0) { return a; }
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}
fn wf_push4(st: vec3f, v: vec4f) -> vec3f {
  let m4 = ((v.x + v.y) + (v.z + v.w)) * 0.25;
  let dv = v - vec4f(m4);
  let n = st.x + 4.0;
  let d = m4 - st.y;
  let f = 4.0 / n;
  return vec3f(n, st.y + d * f, st.z + dot(dv, dv) + d * d * st.x * f);
}`;

const read = (name: string): BindingSpec => ({ name, type: "f32", access: "read" });
const rw = (name: string): BindingSpec => ({ name, type: "f32", access: "rw" });

/**
 * Forward. Params: rows, R, O2 (= 1), ox, ow, ob, eps (f32 bits). Bindings: X, [W], [B] (read),
 * Y, MEAN, RSTD (rw). Welford per thread (four-element chunks merged with Chan's formula in vec4
 * mode), Chan's merge across a workgroup; biased variance.
 * `vec4`: see {@link rowSpec}.
 */
export function layerNormForwardSpec(
  mode: RowMode,
  wg: number,
  vec4: boolean,
  hasW: boolean,
  hasB: boolean,
): KernelSpec {
  const bindings = [read("X")];
  if (hasW) bindings.push(read("W"));
  if (hasB) bindings.push(read("B"));
  bindings.push(rw("Y"), rw("MEAN"), rw("RSTD"));
  let y = `(x - mean) * rstd`;
  if (hasW) y += ` * w`;
  if (hasB) y += ` + b`;
  const cols: Record<string, [string, string]> = {};
  if (hasW) cols.w = ["W", "ow"];
  if (hasB) cols.b = ["B", "ob"];
  return rowSpec(mode, wg, vec4, ["rows", "R", "O2", "ox", "ow", "ob", "eps"], bindings, WELFORD, {
    stateType: "vec3f",
    init: "vec3f(0.0)",
    loads: { x: ["X", "ox"] },
    cols,
    push: `let n = st.x + 1.0;
  let d = x - st.y;
  let m = st.y + d / n;
  st = vec3f(n, m, st.z + d * (x - m));`,
    push4: `st = wf_push4(st, x_4);`,
    merge: "wf_merge",
    setup: `let mean = st.y;
let rstd = inverseSqrt(st.z / f32(P.R) + bitcast<f32>(P.eps));`,
    write: { out: "Y", value: y },
    once: `MEAN[o] = mean;\nRSTD[o] = rstd;`,
  });
}

/**
 * Input gradient: with `x̂ = (x − mean)·rstd` and `ĝ = g·w`,
 * `dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`. Params: rows, R, O2 (= 1), og, ox, ow.
 * Bindings: G, X, MEAN, RSTD, [W] (read), DX (rw).
 */
export function layerNormBackwardSpec(mode: RowMode, wg: number, vec4: boolean, hasW: boolean): KernelSpec {
  const bindings = [read("G"), read("X"), read("MEAN"), read("RSTD")];
  if (hasW) bindings.push(read("W"));
  bindings.push(rw("DX"));
  const load = `let gy = g${hasW ? " * w" : ""};
  let xh = (x - mean) * rstd;`;
  return rowSpec(mode, wg, vec4, ["rows", "R", "O2", "og", "ox", "ow"], bindings, LSE_HELPERS, {
    stateType: "vec2f",
    init: "vec2f(0.0)",
    loads: { g: ["G", "og"], x: ["X", "ox"] },
    cols: hasW ? { w: ["W", "ow"] } : {},
    pre: `let mean = MEAN[o];\nlet rstd = RSTD[o];`,
    push: `${load}\n  st += vec2f(gy, gy * xh);`,
    merge: "add2",
    setup: `let a = st.x / f32(P.R);\nlet b = st.y / f32(P.R);`,
    write: { out: "DX", stmts: load, value: `rstd * (gy - a - xh * b)` },
  });
}

/**
 * Weight/bias gradient partial sums: thread `(k, c)` sums rows `[k·CH, (k+1)·CH)` of column `c`
 * into `DW[k·R + c] = Σ g·x̂` and `DB[k·R + c] = Σ g`. Params: rows, R, CH, nch, og, ox.
 * Bindings: G, X, MEAN, RSTD (read), [DW], [DB] (rw). Grid: `grid1d(ceil(nch·R / LN_PARAM_WG))`.
 */
export function layerNormParamGradSpec(gw: boolean, gb: boolean): KernelSpec {
  const bindings = [read("G"), read("X"), read("MEAN"), read("RSTD")];
  if (gw) bindings.push(rw("DW"));
  if (gb) bindings.push(rw("DB"));
  return {
    params: ["rows", "R", "CH", "nch", "og", "ox"],
    bindings,
    workgroup: [LN_PARAM_WG],
    body: `
  let idx = (wid.x + wid.y * nwg.x) * ${LN_PARAM_WG}u + lid.x;
  if (idx >= P.nch * P.R) { return; }
  let c = idx % P.R;
  let r0 = (idx / P.R) * P.CH;
  let r1 = min(r0 + P.CH, P.rows);
  var aw = 0.0;
  var ab = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = G[P.og + r * P.R + c];
    ${gw ? "aw += g * (X[P.ox + r * P.R + c] - MEAN[r]) * RSTD[r];" : ""}
    ab += g;
  }
  ${gw ? "DW[idx] = aw;" : ""}
  ${gb ? "DB[idx] = ab;" : ""}`,
  };
}
