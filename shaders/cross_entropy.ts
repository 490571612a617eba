/**
 * WGSL for classification losses over a class axis `R` of a contiguous `[O1, R, O2]` logits view
 * with one i32 target per row `o = o1·O2 + o2`: fused cross-entropy forward (log-softmax and pick
 * in one pass), NLL forward (a gather), and one elementwise backward for both.
 *
 * Forward outputs `L[0..rows)` = per-row losses and `L[rows..2·rows)` = 1 where the target counts
 * (is not `ignore`), 0 otherwise, so a mean is `Σ L[:rows] / Σ L[rows:]`. A target outside
 * `[0, R)` that is not `ignore` gives a NaN loss.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";
import { LSE_HELPERS, ROW_WG, type RowMode, rowSpec } from "./softmax.ts";

/** Threads per workgroup of the backward kernel. */
export const CE_BWD_WG = 256;

const pickLoss = (value: string) => `
let t = T[P.ot + o];
let valid = t != bitcast<i32>(P.ign);
var loss = 0.0;
if (valid) {
  if (t < 0 || u32(t) >= P.R) { loss = bitcast<f32>(0x7fc00000u); }
  else { loss = ${value}; }
}
L[o] = loss;
L[P.rows + o] = select(0.0, 1.0, valid);`;

/**
 * Cross-entropy forward: `loss = logsumexp(x) − x[target]`. Params: rows, R, O2, ox, ot, ign
 * (i32 bits). Bindings: X, T (read), L (rw, 2·rows), LSE (rw, rows; saved for backward).
 */
export function crossEntropyForwardSpec(mode: RowMode, wg: number): KernelSpec {
  return rowSpec(
    mode,
    wg,
    false,
    ["rows", "R", "O2", "ox", "ot", "ign"],
    [
      { name: "X", type: "f32", access: "read" },
      { name: "T", type: "i32", access: "read" },
      { name: "L", type: "f32", access: "rw" },
      { name: "LSE", type: "f32", access: "rw" },
    ],
    LSE_HELPERS,
    {
      stateType: "vec2f",
      init: "vec2f(NEG_BIG, 0.0)",
      loads: { x: ["X", "ox"] },
      push: `st = lse_push(st, x);`,
      merge: "lse_merge",
      once: `let lse = st.x + log(st.y);\nLSE[o] = lse;` + pickLoss(`lse - X[P.ox + base + u32(t) * P.O2]`),
    },
  );
}

/**
 * NLL forward on log-probabilities: `loss = −x[target]`, one thread per row. Params: rows, R,
 * O2, ox, ot, ign. Bindings: X, T (read), L (rw, 2·rows). Grid: `grid1d(ceil(rows / ROW_WG))`.
 */
export function nllForwardSpec(): KernelSpec {
  return {
    params: ["rows", "R", "O2", "ox", "ot", "ign"],
    bindings: [
      { name: "X", type: "f32", access: "read" },
      { name: "T", type: "i32", access: "read" },
      { name: "L", type: "f32", access: "rw" },
    ],
    workgroup: [ROW_WG],
    body: `
let o = (wid.x + wid.y * nwg.x) * ${ROW_WG}u + lid.x;
if (o >= P.rows) { return; }
let base = (o / P.O2) * P.R * P.O2 + o % P.O2;` + pickLoss(`-X[P.ox + base + u32(t) * P.O2]`),
  };
}

/**
 * Backward, one thread per logit: `dx = (softmax(x) − onehot(t))·g[o]` for cross-entropy
 * (`softmax = exp(x − lse)`), `dx = −onehot(t)·g[o]` for NLL; 0 on ignored rows. `g[o]` is
 * `G[og + o·gs]` (gs = 0 broadcasts a scalar). Params: n, R, O2, ox, ot, og, gs, ign.
 * Bindings: [X], T, [LSE], G (read), DX (rw). Grid: `grid1d(ceil(n / CE_BWD_WG))`.
 */
export function lossBackwardSpec(kind: "ce" | "nll"): KernelSpec {
  const ce = kind === "ce";
  const bindings: KernelSpec["bindings"] = [];
  if (ce) bindings.push({ name: "X", type: "f32", access: "read" });
  bindings.push({ name: "T", type: "i32", access: "read" });
  if (ce) bindings.push({ name: "LSE", type: "f32", access: "read" });
  bindings.push({ name: "G", type: "f32", access: "read" }, { name: "DX", type: "f32", access: "rw" });
  return {
    params: ["n", "R", "O2", "ox", "ot", "og", "gs", "ign"],
    bindings,
    workgroup: [CE_BWD_WG],
    body: `
let i = (wid.x + wid.y * nwg.x) * ${CE_BWD_WG}u + lid.x;
if (i >= P.n) { return; }
let q = i / P.O2;
let c = q % P.R;
let o = (q / P.R) * P.O2 + i % P.O2;
let t = T[P.ot + o];
var d = select(0.0, -1.0, i32(c) == t);
${ce ? "d += exp(X[P.ox + i] - LSE[o]);" : ""}
DX[i] = select(0.0, d * G[P.og + o * P.gs], t != bitcast<i32>(P.ign));`,
  };
}
