/**
 * The register-blocked implicit-GEMM conv kernel for CPU adapters: the regblock matmul's scheme
 * (`regblockSpec` in `shaders/matmul.ts`: each thread accumulates a `TM × 4·TN4` block in named
 * vec4 variables over `rgba32float` texture operands; same epilogue) with one operand read
 * straight from a channel-packed activation texture through im2col addressing, so no im2col
 * matrix is ever written (texture stores cost ~10 ns per texel on lavapipe, loads ~1 ns).
 *
 * The contraction runs over k4 = (tap, c4): taps outer (their pixel addresses are computed once
 * per tap and row), 4-channel texels inner. Per GEMM:
 * - `fwd`:   A (rows = output pixels) implicit from x; B = gathered weights, form T (rows = out
 *            channels), one area per group.
 * - `dgrad`: A (rows = input pixels of a residue class) implicit from dy; B = gathered weights,
 *            form T (rows = in channels), one area per group.
 * - `wgrad`: A = gathered dy, form N (rows = out channels, texels = 4 pixels), one area per group;
 *            B (rows = pixels, texels = (tap, c4)) implicit from x.
 *
 * Channel-packed textures (see `cpackSpec`): pixel `px` holds its C4 texels at
 * `((px & (2^sh − 1))·C4 + c4, (px >> sh) & 8191)`, layer `px >> (sh + 13)`; pixel `zeroPix` is
 * all zeros and stands in for padding.
 */
import { CONV_PARAMS, type ConvGemm } from "./conv.ts";
import type { TexKernelSpec } from "./matmul.ts";

/** Workgroup width (one 8-lane SIMD batch in lavapipe), as the regblock matmul. */
export const CONV_RB_WG = 8;

/** Parameters of {@link convRbSpec} after `CONV_PARAMS`. */
export const CONV_RB_PARAMS: string[] = [
  "K4",
  "nCB",
  "nRB",
  "NT",
  "M",
  "N",
  "SPL",
  "sy",
  "grpDiv",
  "gBase",
  "zBase",
  "ooff",
  "ors",
  "ocs",
  "boff",
  "bcs",
  "flags",
  "d1",
  "d2",
  "os0",
  "os1",
  "os2",
  "bs0",
  "bs1",
  "bs2",
  "Cp4",
  "sh",
  "zeroPix",
  "tp0",
  "tp1",
  "Ktot",
];

const XYZW = "xyzw";
const rows = (n: number, f: (i: number) => string) => [...Array(n).keys()].map(f).join("\n    ");

/** WGSL of the texel coordinates of channel-packed pixel `px` (x without the c4 term). */
const pixAddr = (px: string, suffix: string) =>
  `let ax${suffix} = (${px} & ((1u << P.sh) - 1u)) * P.Cp4; let ay${suffix} = (${px} >> P.sh) & 8191u;` +
  ` let al${suffix} = ${px} >> (P.sh + 13u);`;

/**
 * The implicit-GEMM kernel of `gemm` with a `TM × 4·TN4` register block (see the file comment);
 * `vecOut` stores vec4s (column stride 1, 4-aligned offsets and strides, N % 4 = 0).
 * Thread t: column block t % nCB, row block (t / nCB) % nRB, chunk slice t / (nCB·nRB); global
 * slice s = zBase + z decomposes as (i0·d1 + i1)·d2 + i2 for the output/bias offsets. The
 * gathered operand's area is `s / grpDiv − gBase`, at rows `(area % SPL)·sy` of layer
 * `area / SPL`. Launch ceil(NT / 8) workgroups (linear over x, y).
 */
export function convRbSpec(gemm: ConvGemm, TM: number, TN4: number, vecOut: boolean): TexKernelSpec {
  const decl: string[] = [];
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN4; j++) decl.push(`var c${i}_${j} = vec4f(0.0);`);
  const fmas: string[] = [];
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN4; j++) {
      let e = `c${i}_${j}`;
      for (let q = 0; q < 4; q++) e = `fma(vec4f(a${i}.${XYZW[q]}), b${q}_${j}, ${e})`;
      fmas.push(`c${i}_${j} = ${e};`);
    }
  }
  // B in form T (rows n, texels along k): transpose 4 texels per column block.
  const bLoadsT = (k4: string) => {
    const l: string[] = [];
    for (let j = 0; j < TN4; j++) {
      for (let c = 0; c < 4; c++) {
        l.push(`let t${j}_${c} = textureLoad(Bt, vec2u(${k4}, by + ${j * 4 + c}u), bl);`);
      }
      for (let q = 0; q < 4; q++) {
        l.push(`let b${q}_${j} = vec4f(${[0, 1, 2, 3].map((c) => `t${j}_${c}.${XYZW[q]}`).join(", ")});`);
      }
    }
    return l.join("\n      ");
  };
  let setup: string, loop: string;
  if (gemm === "fwd" || gemm === "dgrad") {
    const fwd = gemm === "fwd";
    // Per row i: base coordinates (output pixel · stride − pad, or the class's oh/ow at tap 0).
    const rowInit = fwd
      ? `let b = s % P.B; let g = s / P.B; let sb = (b * P.G + g) * P.H * P.W;
  ${
        rows(TM, (i) =>
          `var hb${i} = -1073741824; var wb${i} = 0;
    if (y0 + ${i}u < P.M) { let p = P.m0 + y0 + ${i}u; let oh = p / P.Wo; let ow = p - oh * P.Wo;
      hb${i} = i32(oh * P.sH) - i32(P.pH); wb${i} = i32(ow * P.sW) - i32(P.pW); }`)
      }`
      : `let hi = s % P.Hs; let gb = s / P.Hs; let b = gb % P.B; let g = gb / P.B;
  let sb = (b * P.G + g) * P.Ho * P.Wo;
  let oh0 = (i32(P.rh + P.pH) - i32(P.kh0 * P.dH)) / i32(P.sH);
  let ow0 = (i32(P.rw + P.pW) - i32(P.kw0 * P.dW)) / i32(P.sW);
  let ohs = i32(P.khs * P.dH / P.sH); let ows = i32(P.kws * P.dW / P.sW);
  ${
        rows(TM, (i) =>
          `var hb${i} = -1073741824; var wb${i} = 0;
    if (y0 + ${i}u < P.M) { let mm = P.m0 + y0 + ${i}u; var i1 = hi; var j1 = mm;
      if (P.Hs == 1u) { i1 = mm / P.Wn; j1 = mm - i1 * P.Wn; }
      hb${i} = oh0 + i32(i1); wb${i} = ow0 + i32(j1); }`)
      }`;
    const tapOff = fwd
      ? `let kh = tp / P.kW; let kw = tp - kh * P.kW;
    let dh = i32(kh * P.dH); let dw = i32(kw * P.dW); let H = P.H; let W = P.W;`
      : `let jh = tp / P.ntw; let jw = tp - jh * P.ntw;
    let dh = -i32(jh) * ohs; let dw = -i32(jw) * ows; let H = P.Ho; let W = P.Wo;`;
    setup = `${rowInit}
  let area = s / P.grpDiv - P.gBase;
  let by = (area % P.SPL) * P.sy + xb * 4u; let bl = area / P.SPL;`;
    loop = `for (var tp = P.tp0; tp < P.tp1; tp++) {
    ${tapOff}
    let kb = (tp - P.tp0) * P.Cp4;
    ${
      rows(TM, (i) =>
        `let ih${i} = hb${i} + dh; let iw${i} = wb${i} + dw; var px${i} = P.zeroPix;
    if (ih${i} >= 0 && iw${i} >= 0 && ih${i} < i32(H) && iw${i} < i32(W)) { px${i} = sb + u32(ih${i}) * W + u32(iw${i}); }
    ${pixAddr(`px${i}`, `${i}`)}`)
    }
    for (var c4 = 0u; c4 < P.Cp4; c4++) {
      ${rows(TM, (i) => `let a${i} = textureLoad(At, vec2u(ax${i} + c4, ay${i}), al${i});`)}
      ${bLoadsT("kb + c4")}
      ${fmas.join("\n      ")}
    }
  }`;
  } else {
    // wgrad: per column texel j a fixed (tap, c4) of x; the contraction walks pixels 4 at a time.
    setup = `let g = s; let HW = P.H * P.W;
  let area = s / P.grpDiv - P.gBase;
  let ay = (area % P.SPL) * P.sy + y0; let al = area / P.SPL;
  let T = P.kH * P.kW;
  ${
      rows(TN4, (j) =>
        `let n4${j} = P.n0 / 4u + xb + ${j}u; let tp${j} = n4${j} / P.Cp4; let c4${j} = n4${j} - tp${j} * P.Cp4;
    let kh${j} = tp${j} / P.kW; let dh${j} = i32(kh${j} * P.dH) - i32(P.pH);
    let dw${j} = i32((tp${j} - kh${j} * P.kW) * P.dW) - i32(P.pW); let live${j} = tp${j} < T;`)
    }
  let P1 = P.Ho * P.Wo;
  var b = P.k0 / P1; let p0 = P.k0 - b * P1; var oh = p0 / P.Wo; var ow = p0 - oh * P.Wo;
  var jj = P.k0;`;
    const pixel = (q: number) =>
      `let ok${q} = jj < P.Ktot; let ohs${q} = i32(oh * P.sH); let ows${q} = i32(ow * P.sW);
      let pb${q} = (b * P.G + g) * HW;
      ${
        rows(TN4, (j) =>
          `{ let ih = ohs${q} + dh${j}; let iw = ows${q} + dw${j}; var px = P.zeroPix;
        if (ok${q} && live${j} && ih >= 0 && iw >= 0 && ih < i32(P.H) && iw < i32(P.W)) { px = pb${q} + u32(ih) * P.W + u32(iw); }
        ${pixAddr("px", "p")}
        b${q}_${j} = textureLoad(Bt, vec2u(axp + c4${j}, ayp), alp); }`)
      }
      jj++; ow++; if (ow == P.Wo) { ow = 0u; oh++; if (oh == P.Ho) { oh = 0u; b++; } }`;
    loop = `for (var k4 = 0u; k4 < P.K4; k4++) {
      ${rows(TM, (i) => `let a${i} = textureLoad(At, vec2u(k4, ay + ${i}u), al);`)}
      ${rows(4 * TN4, (v) => `var b${v % 4}_${Math.floor(v / 4)}: vec4f;`)}
      ${[0, 1, 2, 3].map((q) => `{ ${pixel(q)} }`).join("\n      ")}
      ${fmas.join("\n      ")}
  }`;
  }
  return {
    params: [...CONV_PARAMS, ...CONV_RB_PARAMS],
    bindings: [
      { name: "C", type: vecOut ? "vec4<f32>" : "f32", access: "rw" },
      { name: "Bias", type: "f32", access: "read" },
    ],
    textures: ["read", "read"],
    prelude: `@group(0) @binding(3) var At: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(4) var Bt: texture_storage_2d_array<rgba32float, read>;`,
    workgroup: [CONV_RB_WG, 1, 1],
    name: `conv regblock ${gemm}`,
    body: `
  let t = (wid.x + wid.y * nwg.x) * ${CONV_RB_WG}u + lid.x;
  if (t >= P.NT) { return; }
  let cbk = t % P.nCB; let rest = t / P.nCB;
  let y0 = (rest % P.nRB) * ${TM}u; let z = rest / P.nRB;
  let s = P.zBase + z;
  let xb = cbk * ${TN4}u;
  ${decl.join("\n  ")}
  ${setup}
  ${loop}
  ${epilogue(TM, TN4, vecOut)}`,
  };
}

/** Bias, slice offsets and stores, as in the regblock matmul (a runtime row loop with a switch). */
function epilogue(TM: number, TN4: number, vecOut: boolean): string {
  const slice = (name: string, pre: string) =>
    `let ${name} = (s % P.d2) * P.${pre}2 + ((s / P.d2) % P.d1) * P.${pre}1 + (s / (P.d1 * P.d2)) * P.${pre}0;`;
  const e: string[] = [slice("so", "os"), slice("sb2", "bs")];
  for (let j = 0; j < TN4; j++) {
    e.push(`var bias${j} = vec4f(0.0);`, `let col${j} = (xb + ${j}u) * 4u;`);
    e.push(`if ((P.flags & 1u) != 0u) {`, `  let bb = P.boff + sb2 + col${j} * P.bcs;`);
    for (let q = 0; q < 4; q++) {
      e.push(`  if (col${j} + ${q}u < P.N) { bias${j}.${XYZW[q]} = Bias[bb + ${q}u * P.bcs]; }`);
    }
    e.push(`}`);
  }
  e.push(`let iEnd = min(${TM}u, P.M - y0);`, `for (var i = 0u; i < iEnd; i++) {`);
  e.push("  " + [...Array(TN4).keys()].map((j) => `var r${j}: vec4f;`).join(" "));
  e.push(`  switch i {`);
  for (let i = 0; i < TM; i++) {
    e.push(`    case ${i}u: { ${[...Array(TN4).keys()].map((j) => `r${j} = c${i}_${j};`).join(" ")} }`);
  }
  e.push(`    default: {}`, `  }`, `  let rb = P.ooff + so + (y0 + i) * P.ors;`);
  for (let j = 0; j < TN4; j++) {
    e.push(`  { let yv = r${j} + bias${j}; let col = col${j};`);
    if (vecOut) e.push(`    if (col < P.N) { C[(rb + col) / 4u] = yv; } }`);
    else {
      for (let q = 0; q < 4; q++) {
        e.push(`    if (col + ${q}u < P.N) { C[rb + (col + ${q}u) * P.ocs] = yv.${XYZW[q]}; }`);
      }
      e.push(`  }`);
    }
  }
  e.push(`}`);
  return e.join("\n  ");
}
