/**
 * WGSL for batch normalisation over `[B, C, S]` (S = the flattened spatial dims, `H·W` for 2-D):
 * a per-channel statistics kernel (one workgroup per channel: Welford per thread, Chan's merge
 * across the workgroup; also updates the running statistics in place), the eval-mode statistics
 * kernel (running statistics → per-channel scale and shift), one fused normalise/affine(/ReLU)
 * kernel, and for backward a per-channel reduction plus one elementwise kernel.
 *
 * Per-channel statistics live in a `vec4` buffer `ST[c] = (mean, rstd, scale, shift)` with
 * `scale = w·rstd`, `shift = b − mean·scale`, so the forward is `y = x·scale + shift`.
 * In `vec4` mode (S % 4 = 0, aligned offsets) the data bindings are `vec4<f32>` and `S`, `N` and
 * offsets count vec4s.
 */
import type { BindingSpec, KernelSpec, WgslType } from "../src/gpu/kernel.ts";

/** Threads per workgroup of the elementwise batch-norm kernels. */
export const BN_EW_WG = 256;

const rd = (name: string, type: WgslType = "f32"): BindingSpec => ({ name, type, access: "read" });
const rw = (name: string, type: WgslType = "f32"): BindingSpec => ({ name, type, access: "rw" });

const WELFORD = `
fn wf_merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}
fn wf_push4(st: vec3f, v: vec4f) -> vec3f {
  let m4 = ((v.x + v.y) + (v.z + v.w)) * 0.25;
  let dv = v - vec4f(m4);
  return wf_merge(st, vec3f(4.0, m4, dot(dv, dv)));
}
fn wf_push(st: vec3f, x: f32) -> vec3f {
  let n = st.x + 1.0;
  let d = x - st.y;
  let m = st.y + d / n;
  return vec3f(n, m, st.z + d * (x - m));
}`;

/** Address of element `j` (< N = B·S, in vec units) of channel `c`. */
const ADDR = `fn bn_addr(off: u32, j: u32, c: u32) -> u32 {
  let b = j / P.S;
  return off + (b * P.C + c) * P.S + (j - b * P.S);
}`;

/**
 * Training-mode statistics, one workgroup of `wg` threads per channel. Params: C, S, N (= B·S),
 * ox, ow, ob, orm, orv, eps, mom (f32 bits), cnt (element count per channel, B·H·W), onbt.
 * Bindings: X, [W], [B] (read), [RM, RV] (rw, with `track`), [NBT] (rw i32 batch counter, with
 * `count`; channel 0 adds one), ST (rw vec4). Biased variance for normalising, unbiased for the
 * running variance; `running = (1 − mom)·running + mom·batch`.
 */
export function bnStatsSpec(
  wg: number,
  vec4: boolean,
  hasW: boolean,
  hasB: boolean,
  track: boolean,
  count: boolean,
): KernelSpec {
  const bindings = [rd("X", vec4 ? "vec4<f32>" : "f32")];
  if (hasW) bindings.push(rd("W"));
  if (hasB) bindings.push(rd("B"));
  if (track) bindings.push(rw("RM"), rw("RV"));
  if (count) bindings.push(rw("NBT", "i32"));
  bindings.push(rw("ST", "vec4<f32>"));
  return {
    name: `bn_stats${vec4 ? "4" : ""}`,
    params: ["C", "S", "N", "ox", "ow", "ob", "orm", "orv", "eps", "mom", "cnt", "onbt"],
    bindings,
    workgroup: [wg],
    prelude: `${WELFORD}\n${ADDR}\nvar<workgroup> sh: array<vec3f, ${wg}>;`,
    body: `
  let c = wid.x + wid.y * nwg.x;
  let live = c < P.C;
  let n = select(0u, P.N, live);
  var st = vec3f(0.0);
  for (var j = lid.x; j < n; j += ${wg}u) {
    st = ${vec4 ? "wf_push4" : "wf_push"}(st, X[bn_addr(P.ox, j, c)]);
  }
  sh[lid.x] = st;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { sh[lid.x] = wf_merge(sh[lid.x], sh[lid.x + s]); }
    workgroupBarrier();
  }
  if (lid.x == 0u && live) {
    let t = sh[0];
    let mean = t.y;
    let rstd = inverseSqrt(t.z / f32(P.cnt) + bitcast<f32>(P.eps));
    let w = ${hasW ? "W[P.ow + c]" : "1.0"};
    let b = ${hasB ? "B[P.ob + c]" : "0.0"};
    let scale = w * rstd;
    ST[c] = vec4f(mean, rstd, scale, b - mean * scale);${
      track
        ? `
    let m = bitcast<f32>(P.mom);
    RM[P.orm + c] = (1.0 - m) * RM[P.orm + c] + m * mean;
    RV[P.orv + c] = (1.0 - m) * RV[P.orv + c] + m * (t.z / f32(P.cnt - 1u));`
        : ""
    }${count ? "\n    if (c == 0u) { NBT[P.onbt] = NBT[P.onbt] + 1; }" : ""}
  }`,
  };
}

/**
 * Eval-mode statistics from the running statistics, one thread per channel. Params: C, ow, ob,
 * orm, orv, eps. Bindings: RM, RV, [W], [B] (read), ST (rw vec4).
 */
export function bnEvalStatsSpec(hasW: boolean, hasB: boolean): KernelSpec {
  const bindings = [rd("RM"), rd("RV")];
  if (hasW) bindings.push(rd("W"));
  if (hasB) bindings.push(rd("B"));
  bindings.push(rw("ST", "vec4<f32>"));
  return {
    name: "bn_eval_stats",
    params: ["C", "ow", "ob", "orm", "orv", "eps"],
    bindings,
    workgroup: [64],
    body: `
  let c = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (c >= P.C) { return; }
  let mean = RM[P.orm + c];
  let rstd = inverseSqrt(RV[P.orv + c] + bitcast<f32>(P.eps));
  let w = ${hasW ? "W[P.ow + c]" : "1.0"};
  let b = ${hasB ? "B[P.ob + c]" : "0.0"};
  let scale = w * rstd;
  ST[c] = vec4f(mean, rstd, scale, b - mean * scale);`,
  };
}

/**
 * Normalise + affine (+ ReLU): `Y = X·scale[c] + shift[c]`. Params: n (elements or vec4s), S, C,
 * ox. Bindings: X (read), ST (read vec4), Y (rw).
 */
export function bnApplySpec(vec4: boolean, relu: boolean): KernelSpec {
  const t: WgslType = vec4 ? "vec4<f32>" : "f32";
  const y = `X[P.ox + i] * st.z + ${vec4 ? "vec4f(st.w)" : "st.w"}`;
  return {
    name: `bn_apply${vec4 ? "4" : ""}${relu ? "_relu" : ""}`,
    params: ["n", "S", "C", "ox"],
    bindings: [rd("X", t), rd("ST", "vec4<f32>"), rw("Y", t)],
    workgroup: [BN_EW_WG],
    body: `
  let i = (wid.x + wid.y * nwg.x) * ${BN_EW_WG}u + lid.x;
  if (i >= P.n) { return; }
  let st = ST[(i / P.S) % P.C];
  Y[i] = ${relu ? `max(${y}, ${vec4 ? "vec4f(0.0)" : "0.0"})` : y};`,
  };
}

/**
 * Backward reduction, one workgroup per channel: `db = Σ g'`, `dw = Σ g'·x̂` with `g'` the output
 * gradient (masked by the ReLU when fused) and `x̂ = (x − mean)·rstd`; also the coefficients of
 * `dx = A·g' + Bc·(x − mean) + D` in `GC[c] = (A, Bc, D, mean)`: training mode (batch statistics)
 * `A = scale`, `Bc = −scale·rstd·dw/cnt`, `D = −scale·db/cnt`; eval mode `A = scale`, `Bc = D = 0`.
 * Params: C, S, N, og, ox, cnt. Bindings: G, X, ST (read), GC (rw vec4), DW, DB (rw).
 */
export function bnGradReduceSpec(wg: number, vec4: boolean, train: boolean, relu: boolean): KernelSpec {
  const t: WgslType = vec4 ? "vec4<f32>" : "f32";
  const v = vec4 ? "vec4f" : "f32";
  const dot = vec4 ? (a: string, b: string) => `dot(${a}, ${b})` : (a: string, b: string) => `${a} * ${b}`;
  const one = vec4 ? "vec4f(1.0)" : "1.0";
  return {
    name: `bn_grad_reduce${vec4 ? "4" : ""}${relu ? "_relu" : ""}`,
    params: ["C", "S", "N", "og", "ox", "cnt"],
    bindings: [rd("G", t), rd("X", t), rd("ST", "vec4<f32>"), rw("GC", "vec4<f32>"), rw("DW"), rw("DB")],
    workgroup: [wg],
    prelude: `${ADDR}\nvar<workgroup> sh: array<vec2f, ${wg}>;`,
    body: `
  let c = wid.x + wid.y * nwg.x;
  let live = c < P.C;
  let n = select(0u, P.N, live);
  let st = ST[min(c, P.C - 1u)];
  var acc = vec2f(0.0);
  for (var j = lid.x; j < n; j += ${wg}u) {
    let x = X[bn_addr(P.ox, j, c)];
    var g = G[bn_addr(P.og, j, c)];
    ${relu ? `g = select(${v}(0.0), g, x * st.z + ${v}(st.w) > ${v}(0.0));` : ""}
    acc += vec2f(${dot("g", one)}, ${dot("g", `(x - ${v}(st.x))`)});
  }
  sh[lid.x] = acc;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { sh[lid.x] = sh[lid.x] + sh[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && live) {
    let db = sh[0].x;
    let dw = sh[0].y * st.y;
    DB[c] = db;
    DW[c] = dw;
    ${
      train
        ? `let k = st.z / f32(P.cnt);
    GC[c] = vec4f(st.z, -k * st.y * dw, -k * db, st.x);`
        : `GC[c] = vec4f(st.z, 0.0, 0.0, st.x);`
    }
  }`,
  };
}

/**
 * Input gradient: `DX = A·g' + Bc·(x − mean) + D` with the coefficients of
 * {@link bnGradReduceSpec}. Params: n, S, C, og, ox. Bindings: G, X, GC, [ST] (read; ST with
 * `relu`, to recompute the mask), DX (rw).
 */
export function bnGradApplySpec(vec4: boolean, relu: boolean): KernelSpec {
  const t: WgslType = vec4 ? "vec4<f32>" : "f32";
  const v = vec4 ? "vec4f" : "f32";
  const bindings = [rd("G", t), rd("X", t), rd("GC", "vec4<f32>")];
  if (relu) bindings.push(rd("ST", "vec4<f32>"));
  bindings.push(rw("DX", t));
  return {
    name: `bn_grad_apply${vec4 ? "4" : ""}${relu ? "_relu" : ""}`,
    params: ["n", "S", "C", "og", "ox"],
    bindings,
    workgroup: [BN_EW_WG],
    body: `
  let i = (wid.x + wid.y * nwg.x) * ${BN_EW_WG}u + lid.x;
  if (i >= P.n) { return; }
  let c = (i / P.S) % P.C;
  let k = GC[c];
  let x = X[P.ox + i];
  var g = G[P.og + i];
  ${relu ? `let st = ST[c];\n  g = select(${v}(0.0), g, x * st.z + ${v}(st.w) > ${v}(0.0));` : ""}
  DX[i] = k.x * g + k.y * (x - ${v}(k.w)) + ${v}(k.z);`,
  };
}
