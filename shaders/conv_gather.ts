/**
 * WGSL generators for the texture side of conv2d on CPU adapters (see `shaders/conv_rb.ts`):
 * storage-buffer loads are slow on lavapipe, so tensors become textures first.
 * - A **flat** texture is a plain buffer→texture copy (element i at texel i/4 of rows of 256
 *   texels, 8192 rows per layer), read one element at a time.
 * - A **channel-packed** texture ({@link cpackSpec}) holds 4 consecutive channels of one pixel per
 *   texel; the implicit-GEMM kernel reads activations (x, dy) from it with im2col addressing.
 * - Gathers ({@link convGatherSpec}) write the small GEMM operands as regblock operand textures
 *   (four consecutive k per texel), from one shared set of geometry parameters (`CONV_PARAMS`
 *   in `shaders/conv.ts`), in the kernel's contraction order k4 = (tap, c4):
 *   - `w4`     forward B, form T: row = output channel, texel = (tap, c4) of the weight;
 *   - `wd4`    data-gradient B, form T: row = input channel, texel = (class tap, o4) of the weight;
 *   - `dyflat` weight-gradient A, form N: row = output channel, texel = 4 consecutive
 *     (image, pixel) of dy.
 */
import type { TexKernelSpec } from "./matmul.ts";
import { CONV_PARAMS } from "./conv.ts";

/** A gather source of the regblock path. */
export type GatherSource = "w4" | "wd4" | "dyflat";

/** Floats per row of a flat texture (256 texels). */
export const FLAT_ROW = 1024;
/** Rows per layer of a flat texture (the WebGPU minimum of maxTextureDimension2D). */
export const FLAT_ROWS = 8192;
/** Rows one gather thread writes (a run down one texel column). */
export const GATHER_RUN = 16;

const TEX_ADDR = (t: string) => `vec2u(${t} & 255u, (${t} >> 8u) & 8191u), ${t} >> 21u`;

/** WGSL reader `rd(i)` of element i of the flat texture `F`. */
const READERS = `fn rd(i: u32) -> f32 { let t = i >> 2u; return textureLoad(F, ${TEX_ADDR("t")})[i & 3u]; }`;

/**
 * Channel-packs an `[N, C, HW]` tensor read from a flat texture (element offset `off`): pixel
 * `px = n·HW + p` holds channels `4·c4…4·c4+3` (0 past C) in texel
 * `((px & (2^sh − 1))·C4 + c4, (px >> sh) & 8191)` of layer `px >> (sh + 13)`; pixel `Npix` (one past
 * the end) is all zeros. One thread per texel, NT = (Npix + 1)·C4; launch ceil(NT / 64)
 * workgroups (linear over x, y).
 */
export function cpackSpec(): TexKernelSpec {
  return {
    params: ["off", "C", "C4", "HW", "NT", "Npix", "sh"],
    bindings: [],
    textures: ["read", "write"],
    prelude: `@group(0) @binding(1) var F: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var Tx: texture_storage_2d_array<rgba32float, write>;
${READERS}`,
    workgroup: [64, 1, 1],
    name: "conv channel pack",
    body: `
  let t = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (t >= P.NT) { return; }
  let c4 = t % P.C4; let px = t / P.C4;
  var v = vec4f(0.0);
  if (px < P.Npix) {
    let n = px / P.HW; let p = px - n * P.HW;
    let c = c4 * 4u;
    let base = P.off + (n * P.C + c) * P.HW + p;
    v.x = rd(base);
    if (c + 1u < P.C) { v.y = rd(base + P.HW); }
    if (c + 2u < P.C) { v.z = rd(base + 2u * P.HW); }
    if (c + 3u < P.C) { v.w = rd(base + 3u * P.HW); }
  }
  textureStore(Tx, vec2u((px & ((1u << P.sh) - 1u)) * P.C4 + c4, (px >> P.sh) & 8191u), px >> (P.sh + 13u), v);`,
  };
}

/**
 * Per-source pieces of the gather loop: `pro` sets up the walk for slice `z`, global texel
 * `X` and first row `r0`; `row` sets `v` for the current row and steps to the next one.
 */
function iterator(src: GatherSource): { pro: string; row: string } {
  switch (src) {
    case "w4":
      return {
        pro: `let T = P.kH * P.kW; let Cg4 = (P.Cg + 3u) / 4u;
  let t = X / Cg4; let c = (X - t * Cg4) * 4u;
  var a = P.off + (z * P.Og + P.n0 + r0) * P.Cg * T + c * T + t;`,
        row: `if (t < T) {
      v.x = rd(a);
      if (c + 1u < P.Cg) { v.y = rd(a + T); }
      if (c + 2u < P.Cg) { v.z = rd(a + 2u * T); }
      if (c + 3u < P.Cg) { v.w = rd(a + 3u * T); }
    }
    a += P.Cg * T;`,
      };
    case "wd4":
      return {
        pro: `let T = P.kH * P.kW; let g = z; let Og4 = (P.Og + 3u) / 4u;
  let jt = X / Og4; let o4 = X - jt * Og4; let jh = jt / P.ntw; let jw = jt - jh * P.ntw;
  let o = o4 * 4u; let os = P.Cg * T;
  var a = P.off + ((g * P.Og + o) * P.Cg + P.n0 + r0) * T + (P.kh0 + jh * P.khs) * P.kW + P.kw0 + jw * P.kws;`,
        row: `if (jh < P.nth) {
      v.x = rd(a);
      if (o + 1u < P.Og) { v.y = rd(a + os); }
      if (o + 2u < P.Og) { v.z = rd(a + 2u * os); }
      if (o + 3u < P.Og) { v.w = rd(a + 3u * os); }
    }
    a += T;`,
      };
    case "dyflat": {
      // Texel X = 4 consecutive (image, pixel) indices j; rows walk output channels.
      const q4 = [0, 1, 2, 3];
      return {
        pro: `let P1 = P.Ho * P.Wo;
  ${
          q4.map((q) =>
            `let j${q} = X * 4u + ${q}u; let b${q} = j${q} / P1; let ok${q} = j${q} - P.k0 < P.C;
  var a${q} = P.off + ((b${q} * P.G + z) * P.Og + P.m0 + r0) * P1 + j${q} - b${q} * P1;`
          ).join("\n  ")
        }`,
        row: q4.map((q) => `if (ok${q}) { v.${"xyzw"[q]} = rd(a${q}); } a${q} += P1;`).join("\n    "),
      };
    }
  }
}

/**
 * Fills one regblock operand texture from a source: for area `zl` (group `zBase + zl`),
 * area row `r < TH` and texel `x < TW` go to `(x, (zl % SPL)·TH + r)` of layer `zl / SPL`, with
 * the source's meaning of rows and texels (see the file comment); rows from `R` on, and anything
 * outside the tensor, are zero. Texel x of the area is global texel `X = x + k0 / 4` (k0 a
 * multiple of 4). Each thread writes a run of {@link GATHER_RUN} rows of one
 * texel column; neighbouring threads take neighbouring columns. Threads NT = TW·NRC·slices with
 * NRC = ceil(TH / GATHER_RUN); launch ceil(NT / 64) workgroups (linear over x, y).
 */
export function convGatherSpec(src: GatherSource): TexKernelSpec {
  const it = iterator(src);
  return {
    params: [...CONV_PARAMS, "off", "R", "C", "TW", "TH", "SPL", "zBase", "NT", "NRC"],
    bindings: [],
    textures: ["read", "write"],
    prelude: `@group(0) @binding(1) var F: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var Tx: texture_storage_2d_array<rgba32float, write>;
${READERS}`,
    workgroup: [64, 1, 1],
    name: `conv gather ${src}`,
    body: `
  let tid = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (tid >= P.NT) { return; }
  let x = tid % P.TW; let rest = tid / P.TW;
  let rc = rest % P.NRC; let zl = rest / P.NRC;
  let z = P.zBase + zl;
  let r0 = rc * ${GATHER_RUN}u; let r1 = min(r0 + ${GATHER_RUN}u, P.TH); let rv = min(r1, P.R);
  let ty = (zl % P.SPL) * P.TH; let layer = zl / P.SPL;
  for (var r = rv; r < r1; r++) { textureStore(Tx, vec2u(x, ty + r), layer, vec4f(0.0)); }
  if (r0 >= rv) { return; }
  let X = x + P.k0 / 4u;
  ${it.pro}
  for (var r = r0; r < rv; r++) {
    var v = vec4f(0.0);
    ${it.row}
    textureStore(Tx, vec2u(x, ty + r), layer, v);
  }`,
  };
}
