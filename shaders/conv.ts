/**
 * WGSL generators for 2-D convolution as implicit GEMMs on real GPUs (see
 * `src/ops/conv_dispatch.ts`), and the geometry parameters shared with the CPU path.
 *
 * Each of the three GEMMs of a convolution (forward, data gradient, weight gradient) reads its
 * operands through "source" functions `opA(z, m, k)` / `opB(z, k, n)` that compute NCHW addresses
 * on the fly (im2col, the zero-free transposed-conv gather, the flattened batch·pixel contraction)
 * from one shared set of geometry parameters ({@link CONV_PARAMS}), in PyTorch's k order
 * (ci, kh, kw). The sources read element `i` of their tensor through `rdA(i)` / `rdB(i)`.
 * {@link convTiledSpec} (real GPUs) is the shared-memory tiled kernel with these sources as its
 * tile loaders, reading storage buffers directly. CPU adapters use the texture gathers of
 * `shaders/conv_gather.ts` instead, which share {@link CONV_PARAMS}.
 *
 * Slice index z: forward `g·B + b`; data gradient `(g·B + b)·Hs + hi`; weight gradient `g`.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";
import { tileProduct } from "./matmul.ts";
import { EPILOGUE_PARAMS } from "./matmul_common.ts";

/** Which GEMM operand a scalar source produces (tiled kernel). */
export type ConvSource = "xcol" | "wT" | "dycol" | "wD" | "dyflat" | "xflat";

/** The GEMM of a convolution and its two sources. */
export type ConvGemm = "fwd" | "dgrad" | "wgrad";

/** Sources (A, B) of each GEMM. */
export const GEMM_SOURCES: Record<ConvGemm, [ConvSource, ConvSource]> = {
  fwd: ["xcol", "wT"],
  dgrad: ["dycol", "wD"],
  wgrad: ["dyflat", "xflat"],
};

/**
 * Geometry parameters shared by every conv kernel: sizes (`Cg`/`Og` channels per group), stride,
 * padding, dilation; the data-gradient residue class (`rh`, `rw`, taps `kh0 + j·khs` for
 * `j < nth`, likewise for w; `Hn × Wn` input pixels; `Hs` = Hn when rows are slices, else 1);
 * chunk offsets `m0 n0 k0`; element offsets `offA offB` of the two source tensors.
 */
export const CONV_PARAMS: string[] = [
  "B",
  "G",
  "Cg",
  "Og",
  "H",
  "W",
  "Ho",
  "Wo",
  "kH",
  "kW",
  "sH",
  "sW",
  "pH",
  "pW",
  "dH",
  "dW",
  "Hs",
  "rh",
  "rw",
  "kh0",
  "khs",
  "nth",
  "kw0",
  "kws",
  "ntw",
  "Hn",
  "Wn",
  "m0",
  "n0",
  "k0",
  "offA",
  "offB",
];

/** im2col of x for pixel p, column k = ci·kH·kW + kh·kW + kw (0 outside the image). */
function imcolFn(rd: string, off: string): string {
  return `fn imcol_${rd}(b: u32, g: u32, p: u32, k: u32) -> f32 {
  let T = P.kH * P.kW;
  if (k >= P.Cg * T || p >= P.Ho * P.Wo) { return 0.0; }
  let ci = k / T; let t = k - ci * T; let kh = t / P.kW; let kw = t - kh * P.kW;
  let oh = p / P.Wo; let ow = p - oh * P.Wo;
  let ih = i32(oh * P.sH + kh * P.dH) - i32(P.pH);
  let iw = i32(ow * P.sW + kw * P.dW) - i32(P.pW);
  if (ih < 0 || iw < 0 || ih >= i32(P.H) || iw >= i32(P.W)) { return 0.0; }
  return ${rd}(P.${off} + ((b * P.G + g) * P.Cg + ci) * P.H * P.W + u32(ih) * P.W + u32(iw));
}`;
}

/** Data-gradient tap of column k = o·nT + jh·ntw + jw: returns (o, kh, kw). */
const TAP_FN = `fn cv_tap(k: u32) -> vec3u {
  let nT = P.nth * P.ntw;
  let o = k / nT; let tt = k - o * nT; let jh = tt / P.ntw; let jw = tt - jh * P.ntw;
  return vec3u(o, P.kh0 + jh * P.khs, P.kw0 + jw * P.kws);
}`;

/** WGSL of one source as `fn op{role}(z, r, c) -> f32` (A: r = m, c = k; B: r = k, c = n). */
function sourceFn(src: ConvSource, role: "A" | "B"): string {
  const rd = `rd${role}`, off = `off${role}`;
  const sig = role === "A" ? "z: u32, m: u32, k: u32" : "z: u32, k: u32, n: u32";
  let body: string;
  let extra = "";
  switch (src) {
    case "xcol":
      extra = imcolFn(rd, off);
      body = `return imcol_${rd}(z % P.B, z / P.B, P.m0 + m, P.k0 + k);`;
      break;
    case "xflat":
      extra = imcolFn(rd, off);
      body = `let P1 = P.Ho * P.Wo; let j = P.k0 + k;
  if (j >= P.B * P1) { return 0.0; }
  let b = j / P1;
  return imcol_${rd}(b, z, j - b * P1, P.n0 + n);`;
      break;
    case "wT":
      body = `let kk = P.k0 + k; let o = P.n0 + n; let Kc = P.Cg * P.kH * P.kW;
  if (kk >= Kc || o >= P.Og) { return 0.0; }
  return ${rd}(P.${off} + (z / P.B * P.Og + o) * Kc + kk);`;
      break;
    case "dyflat":
      body = `let P1 = P.Ho * P.Wo; let o = P.m0 + m; let j = P.k0 + k;
  if (o >= P.Og || j >= P.B * P1) { return 0.0; }
  let b = j / P1;
  return ${rd}(P.${off} + ((b * P.G + z) * P.Og + o) * P1 + j - b * P1);`;
      break;
    case "wD":
      body = `let kk = P.k0 + k; let ci = P.n0 + n;
  if (kk >= P.Og * P.nth * P.ntw || ci >= P.Cg) { return 0.0; }
  let tp = cv_tap(kk); let g = z / (P.Hs * P.B);
  return ${rd}(P.${off} + ((g * P.Og + tp.x) * P.Cg + ci) * P.kH * P.kW + tp.y * P.kW + tp.z);`;
      break;
    case "dycol":
      body = `let kk = P.k0 + k; let mm = P.m0 + m;
  if (kk >= P.Og * P.nth * P.ntw) { return 0.0; }
  let hi = z % P.Hs; let gb = z / P.Hs; let b = gb % P.B; let g = gb / P.B;
  var i1 = hi; var j1 = mm;
  if (P.Hs == 1u) { i1 = mm / P.Wn; j1 = mm - i1 * P.Wn; }
  if (i1 >= P.Hn || j1 >= P.Wn) { return 0.0; }
  let tp = cv_tap(kk);
  let th = i32(P.rh + P.sH * i1 + P.pH) - i32(tp.y * P.dH);
  let tw = i32(P.rw + P.sW * j1 + P.pW) - i32(tp.z * P.dW);
  if (th < 0 || tw < 0) { return 0.0; }
  let oh = u32(th) / P.sH; let ow = u32(tw) / P.sW;
  if (oh * P.sH != u32(th) || ow * P.sW != u32(tw) || oh >= P.Ho || ow >= P.Wo) { return 0.0; }
  return ${rd}(P.${off} + ((b * P.G + g) * P.Og + tp.x) * P.Ho * P.Wo + oh * P.Wo + ow);`;
      break;
  }
  return `${extra}\nfn op${role}(${sig}) -> f32 {\n  ${body}\n}`;
}

function needsTap(...srcs: ConvSource[]): boolean {
  return srcs.some((s) => s === "dycol" || s === "wD");
}

/** Parameters of {@link convTiledSpec} after {@link CONV_PARAMS}. */
export const TILED_EXTRA: string[] = [
  "M",
  "N",
  "K",
  ...EPILOGUE_PARAMS,
  "d1",
  "d2",
  "os0",
  "os1",
  "os2",
  "bs0",
  "bs1",
  "bs2",
];

/** Output tile edge of {@link convTiledSpec}. */
export const CONV_TILE = 64;

/**
 * Implicit-GEMM tiled kernel for real GPUs: per slice z, `C = A·B (+ bias)` with A and B read
 * through the sources of `gemm` (64×64 output tile per 256-thread workgroup, 16-deep k steps,
 * 4×4 outputs per thread). Output element (m, n) of slice s = zBase + z at
 * `ooff + so(s) + m·ors + n·ocs`, so(s) = Σ over the slice decomposition s = (i0·d1 + i1)·d2 + i2
 * of `i·os`; flags bit 0 adds `Bias[boff + sb(s) + n·bcs]`.
 * Grid: (ceil(N / 64), ceil(M / 64), slices).
 */
export function convTiledSpec(gemm: ConvGemm): KernelSpec {
  const [sa, sb] = GEMM_SOURCES[gemm];
  const BK = 16, T = CONV_TILE;
  const sliceOff = (name: string, pre: string) =>
    `let ${name} = (s % P.d2) * P.${pre}2 + ((s / P.d2) % P.d1) * P.${pre}1 + (s / (P.d1 * P.d2)) * P.${pre}0;`;
  return {
    params: [...CONV_PARAMS, ...TILED_EXTRA],
    bindings: [
      { name: "Asrc", type: "f32", access: "read" },
      { name: "Bsrc", type: "f32", access: "read" },
      { name: "C", type: "f32", access: "rw" },
      { name: "Bias", type: "f32", access: "read" },
    ],
    prelude: `var<workgroup> As: array<f32, ${BK * T}>;
var<workgroup> Bs: array<f32, ${BK * T}>;
fn rdA(i: u32) -> f32 { return Asrc[i]; }
fn rdB(i: u32) -> f32 { return Bsrc[i]; }
${needsTap(sa, sb) ? TAP_FN : ""}
${sourceFn(sa, "A")}
${sourceFn(sb, "B")}`,
    workgroup: [16, 16, 1],
    name: `conv tiled ${gemm}`,
    body: `
  let s = P.zBase + wid.z;
  let row0 = wid.y * ${T}u; let col0 = wid.x * ${T}u;
  let tx = lid.x; let ty = lid.y; let tid = ty * 16u + tx;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < P.K; k0 += ${BK}u) {
    for (var e = 0u; e < 4u; e++) {
      let li = tid + e * 256u;
      let am = li / ${BK}u; let ak = li % ${BK}u;
      var av = 0.0;
      if (row0 + am < P.M && k0 + ak < P.K) { av = opA(s, row0 + am, k0 + ak); }
      As[ak * ${T}u + am] = av;
      let bk = li / ${T}u; let bn = li % ${T}u;
      var bv = 0.0;
      if (k0 + bk < P.K && col0 + bn < P.N) { bv = opB(s, k0 + bk, col0 + bn); }
      Bs[bk * ${T}u + bn] = bv;
    }
    workgroupBarrier();
${tileProduct(T, BK)}
    workgroupBarrier();
  }
  ${sliceOff("so", "os")}
  ${sliceOff("sbb", "bs")}
  let c0 = col0 + tx * 4u;
  var bias = vec4f(0.0);
  if ((P.flags & 1u) != 0u) {
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < P.N) { bias[q] = Bias[P.boff + sbb + (c0 + q) * P.bcs]; }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + ty * 4u + i;
    if (r >= P.M) { continue; }
    let v = acc[i] + bias;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < P.N) { C[P.ooff + so + r * P.ors + (c0 + q) * P.ocs] = v[q]; }
    }
  }`,
  };
}
