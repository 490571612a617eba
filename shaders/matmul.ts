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
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** A kernel spec plus the texture bindings that follow its storage bindings. */
export interface TexKernelSpec extends KernelSpec {
  /**
   * Texture bindings after the storage ones, all `rgba32float` 2-D arrays: `read` (read-only
   * storage: lavapipe fetches these ~2.5× faster than sampled textures) or `write`.
   */
  textures: ("read" | "write")[];
}

/** Most slice (batch) dims a kernel decomposes. */
export const MAX_SLICE_DIMS = 4;

/** Name of an activation fused into a matmul's store. */
export type Activation = "none" | "relu" | "silu" | "sigmoid" | "tanh";

/** Runtime codes of the epilogue activations (the kernels' `act` parameter). */
export const ACTIVATIONS: Record<Activation, number> = { none: 0, relu: 1, silu: 2, sigmoid: 3, tanh: 4 };

/** Workgroup width of the regblock kernel (one 8-lane SIMD batch in lavapipe). */
export const RB_WG = 8;

/** Tile edge of the tiled kernel (outputs per workgroup per dim). */
export const TILE = 64;

const ACT_HELPERS = `
fn mm_act(v: vec4f, code: u32) -> vec4f {
  switch code {
    case 1u: { return max(v, vec4f(0.0)); }
    case 2u: { return v / (vec4f(1.0) + exp(-v)); }
    case 3u: { return vec4f(1.0) / (vec4f(1.0) + exp(-v)); }
    case 4u: { let e = exp(-2.0 * abs(v)); return sign(v) * (vec4f(1.0) - e) / (vec4f(1.0) + e); }
    default: { return v; }
  }
}`;

/** WGSL computing `name = Σ_d ((s / (d_{d+1}·…)) % d_d) * strideName_d` for a slice index `s`. */
function sliceOffset(name: string, s: string, strides: string, nDims: number): string {
  if (nDims === 0) return `let ${name} = 0u;`;
  const lines = [`var ${name} = 0u;`, `{ var r = ${s};`];
  for (let d = nDims - 1; d >= 0; d--) {
    lines.push(`${name} += (r % P.d${d}) * P.${strides}${d};`);
    if (d > 0) lines.push(`r = r / P.d${d};`);
  }
  lines.push("}");
  return lines.join("\n");
}

function sliceParams(prefixes: string[], nDims: number): string[] {
  const p: string[] = [];
  for (let d = 0; d < nDims; d++) p.push(`d${d}`);
  for (const pre of prefixes) for (let d = 0; d < nDims; d++) p.push(`${pre}${d}`);
  return p;
}

/**
 * Packs a strided operand view into an `rgba32float` 2-D array texture. For chunk slice `z`
 * (global slice `zBase + z`), texture row `r < R` and texel `x` hold
 * `X[off + sliceOff + r·rs + (4x + q)·cs]` for `4x + q < C` (zero elsewhere inside the `W × H`
 * area), placed at texel `((z % SPL)·sx + x, (z % SPL)·sy + r)` of layer `z / SPL`.
 * `vec` reads whole texels as vec4 (needs cs = 1, C % 4 = 0 and 4-aligned offsets/strides).
 * One thread per texel; launch ceil(T / 64) workgroups (linear over x, y).
 */
export function packSpec(nDims: number, vec: boolean): TexKernelSpec {
  const params = [
    "off",
    "rs",
    "cs",
    "R",
    "C",
    "W",
    "H",
    "SPL",
    "sx",
    "sy",
    "zBase",
    "T",
    ...sliceParams(["t"], nDims),
  ];
  const read = vec ? `if (r < P.R && c0 < P.C) { v = X[(base + r * P.rs) / 4u + x]; }` : `if (r < P.R) {
    let rb = base + r * P.rs;
    if (c0 < P.C) { v.x = X[rb + c0 * P.cs]; }
    if (c0 + 1u < P.C) { v.y = X[rb + (c0 + 1u) * P.cs]; }
    if (c0 + 2u < P.C) { v.z = X[rb + (c0 + 2u) * P.cs]; }
    if (c0 + 3u < P.C) { v.w = X[rb + (c0 + 3u) * P.cs]; }
  }`;
  return {
    params,
    bindings: [{ name: "X", type: vec ? "vec4<f32>" : "f32", access: "read" }],
    textures: ["write"],
    prelude: `@group(0) @binding(2) var T: texture_storage_2d_array<rgba32float, write>;`,
    workgroup: [64, 1, 1],
    body: `
  let t = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (t >= P.T) { return; }
  let x = t % P.W; let rest = t / P.W;
  let r = rest % P.H; let z = rest / P.H;
  ${sliceOffset("so", "P.zBase + z", "t", nDims)}
  let base = P.off + so;
  let c0 = x * 4u;
  var v = vec4f(0.0);
  ${read}
  let w = z % P.SPL;
  textureStore(T, vec2u(w * P.sx + x, w * P.sy + r), z / P.SPL, v);`,
  };
}

/**
 * Like {@link packSpec} for an operand whose single slice dim is contiguous (slice stride 1, e.g.
 * the neuron dim of a `[I, O, N]` weight): each thread reads 4 vec4s spanning 4 slices and writes
 * one texel to each of them. Needs 4-aligned offset, rs, cs, zBase and slice count.
 * Launch ceil(T / 64) workgroups, T = W·H·ceil(nz / 4).
 */
export function packSlices4Spec(): TexKernelSpec {
  return {
    params: ["off", "rs", "cs", "R", "C", "W", "H", "SPL", "sx", "sy", "zBase", "T", "nz"],
    bindings: [{ name: "X", type: "vec4<f32>", access: "read" }],
    textures: ["write"],
    prelude: `@group(0) @binding(2) var T: texture_storage_2d_array<rgba32float, write>;`,
    workgroup: [64, 1, 1],
    body: `
  let t = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (t >= P.T) { return; }
  let x = t % P.W; let rest = t / P.W;
  let r = rest % P.H; let z = (rest / P.H) * 4u;
  let c0 = x * 4u;
  var v: array<vec4f, 4>;
  if (r < P.R) {
    let base = P.off + P.zBase + z + r * P.rs;
    for (var q = 0u; q < 4u; q++) {
      if (c0 + q < P.C) { v[q] = X[(base + (c0 + q) * P.cs) / 4u]; }
    }
  }
  for (var s = 0u; s < 4u; s++) {
    if (z + s >= P.nz) { break; }
    let w = (z + s) % P.SPL;
    textureStore(T, vec2u(w * P.sx + x, w * P.sy + r), (z + s) / P.SPL, vec4f(v[0][s], v[1][s], v[2][s], v[3][s]));
  }`,
  };
}

/** How an operand sits in its texture: `N` rows are the matrix rows, `T` rows are its columns. */
export type TexForm = "N" | "T";

/** Options of the regblock kernel. */
export interface RegblockOpts {
  /** Rows per thread (a multiple of 4). */
  TM: number;
  /** Column texels per thread (4·TN4 columns). */
  TN4: number;
  /** A's texture: `N` = rows m, texels along k; `T` = rows k, texels along m. */
  formA: TexForm;
  /** B's texture: `N` = rows k, texels along n; `T` = rows n, texels along k. */
  formB: TexForm;
  /** Store vec4s (row stride, offsets and slice strides 4-aligned, N % 4 = 0, column stride 1). */
  vecOut: boolean;
  /** Slice dims decomposed for the output/bias offsets. */
  nDims: number;
}

const XYZW = "xyzw";

/**
 * Register-blocked matmul over packed textures `At` and `Bt` (see {@link RegblockOpts} for their
 * forms). Linear thread `t` computes column texels `(t % nCB)·TN4…`, rows `((t / nCB) % nRB)·TM…`
 * of chunk slice `t / (nCB·nRB)`; operand slice `z·step` lives at texel origin
 * `((w % SPL)·sx, (w % SPL)·sy)` of layer `w / SPL` (step 0: one slice shared by all).
 * Runtime flags: bit 0 adds `Bias[boff + sliceOff + c·bcs]`, bit 1 also stores the
 * pre-activation into `Z` (same layout as `C`); `act` selects the activation.
 * Launch ceil(T / 8) workgroups (linear over x, y).
 */
export function regblockSpec(o: RegblockOpts): TexKernelSpec {
  const { TM, TN4, formA, formB, vecOut, nDims } = o;
  const decl: string[] = [];
  const loads: string[] = [];
  const fmas: string[] = [];
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN4; j++) decl.push(`var c${i}_${j} = vec4f(0.0);`);
  // a(i, q): A[row i][k4·4 + q] as an f32 expression.
  let a: (i: number, q: number) => string;
  if (formA === "N") {
    for (let i = 0; i < TM; i++) loads.push(`let a${i} = textureLoad(At, vec2u(ax + k4, ay + ${i}u), al);`);
    a = (i, q) => `a${i}.${XYZW[q]}`;
  } else {
    for (let q = 0; q < 4; q++) {
      for (let i4 = 0; i4 < TM / 4; i4++) {
        loads.push(`let a${q}_${i4} = textureLoad(At, vec2u(ax + ${i4}u, ay + k4 * 4u + ${q}u), al);`);
      }
    }
    a = (i, q) => `a${q}_${i >> 2}.${XYZW[i & 3]}`;
  }
  // b(q, j): B[k4·4 + q][(xb + j)·4 … +3] as a vec4 expression.
  let b: (q: number, j: number) => string;
  if (formB === "N") {
    for (let q = 0; q < 4; q++) {
      for (let j = 0; j < TN4; j++) {
        loads.push(`let b${q}_${j} = textureLoad(Bt, vec2u(bx + ${j}u, by + k4 * 4u + ${q}u), bl);`);
      }
    }
    b = (q, j) => `b${q}_${j}`;
  } else {
    for (let j = 0; j < TN4; j++) {
      for (let c = 0; c < 4; c++) {
        loads.push(`let t${j}_${c} = textureLoad(Bt, vec2u(bx + k4, by + ${j * 4 + c}u), bl);`);
      }
      for (let q = 0; q < 4; q++) {
        const comps = [0, 1, 2, 3].map((c) => `t${j}_${c}.${XYZW[q]}`).join(", ");
        loads.push(`let b${q}_${j} = vec4f(${comps});`);
      }
    }
    b = (q, j) => `b${q}_${j}`;
  }
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN4; j++) {
      let e = `c${i}_${j}`;
      for (let q = 0; q < 4; q++) e = `fma(vec4f(${a(i, q)}), ${b(q, j)}, ${e})`;
      fmas.push(`c${i}_${j} = ${e};`);
    }
  }
  // Epilogue: a runtime-bounded loop over rows whose switch picks the row's named accumulators.
  // (Unrolled stores or a dynamically indexed array make lavapipe's JIT take seconds to minutes.)
  const epi: string[] = [];
  for (let j = 0; j < TN4; j++) {
    epi.push(`var bias${j} = vec4f(0.0);`, `let col${j} = (xb + ${j}u) * 4u;`);
    epi.push(`if ((P.flags & 1u) != 0u) {`, `  let bb = P.boff + sb + col${j} * P.bcs;`);
    for (let q = 0; q < 4; q++) {
      epi.push(`  if (col${j} + ${q}u < P.N) { bias${j}.${XYZW[q]} = Bias[bb + ${q}u * P.bcs]; }`);
    }
    epi.push(`}`);
  }
  epi.push(`let iEnd = min(${TM}u, P.M - y0);`, `for (var i = 0u; i < iEnd; i++) {`);
  epi.push("  " + [...Array(TN4).keys()].map((j) => `var r${j}: vec4f;`).join(" "));
  epi.push(`  switch i {`);
  for (let i = 0; i < TM; i++) {
    epi.push(`    case ${i}u: { ${[...Array(TN4).keys()].map((j) => `r${j} = c${i}_${j};`).join(" ")} }`);
  }
  epi.push(`    default: {}`, `  }`, `  let rb = P.ooff + so + (y0 + i) * P.ors;`);
  for (let j = 0; j < TN4; j++) {
    epi.push(`  { let zv = r${j} + bias${j}; let yv = mm_act(zv, P.act); let col = col${j};`);
    if (vecOut) {
      epi.push(
        `    if (col < P.N) { let k = (rb + col) / 4u; C[k] = yv; if ((P.flags & 2u) != 0u) { Z[k] = zv; } } }`,
      );
    } else {
      for (let q = 0; q < 4; q++) {
        epi.push(
          `    if (col + ${q}u < P.N) { let k = rb + (col + ${q}u) * P.ocs; C[k] = yv.${XYZW[q]};` +
            ` if ((P.flags & 2u) != 0u) { Z[k] = zv.${XYZW[q]}; } }`,
        );
      }
      epi.push(`  }`);
    }
  }
  epi.push(`}`);
  const t = vecOut ? "vec4<f32>" : "f32";
  // Texture origins of this thread's A rows / B columns.
  const aOrigin = formA === "N" ? ["wa * P.asx", "wa * P.asy + y0"] : ["wa * P.asx + y0 / 4u", "wa * P.asy"];
  const bOrigin = formB === "N" ? ["wb * P.bsx + xb", "wb * P.bsy"] : ["wb * P.bsx", "wb * P.bsy + xb * 4u"];
  return {
    params: [
      "K4",
      "nCB",
      "nRB",
      "T",
      "M",
      "N",
      "aSPL",
      "asx",
      "asy",
      "aStep",
      "bSPL",
      "bsx",
      "bsy",
      "bStep",
      "zBase",
      "ooff",
      "ors",
      "ocs",
      "boff",
      "bcs",
      "flags",
      "act",
      ...sliceParams(["os", "bs"], nDims),
    ],
    bindings: [
      { name: "C", type: t, access: "rw" },
      { name: "Z", type: t, access: "rw" },
      { name: "Bias", type: "f32", access: "read" },
    ],
    textures: ["read", "read"],
    prelude: `@group(0) @binding(4) var At: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(5) var Bt: texture_storage_2d_array<rgba32float, read>;
${ACT_HELPERS}`,
    workgroup: [RB_WG, 1, 1],
    body: `
  let t = (wid.x + wid.y * nwg.x) * ${RB_WG}u + lid.x;
  if (t >= P.T) { return; }
  let cbk = t % P.nCB; let rest = t / P.nCB;
  let y0 = (rest % P.nRB) * ${TM}u; let z = rest / P.nRB;
  let xb = cbk * ${TN4}u;
  let za = z * P.aStep; let wa = za % P.aSPL; let al = za / P.aSPL;
  let zb = z * P.bStep; let wb = zb % P.bSPL; let bl = zb / P.bSPL;
  let ax = ${aOrigin[0]}; let ay = ${aOrigin[1]};
  let bx = ${bOrigin[0]}; let by = ${bOrigin[1]};
  ${decl.join("\n  ")}
  for (var k4 = 0u; k4 < P.K4; k4++) {
    ${loads.join("\n    ")}
    ${fmas.join("\n    ")}
  }
  ${sliceOffset("so", "P.zBase + z", "os", nDims)}
  ${sliceOffset("sb", "P.zBase + z", "bs", nDims)}
  ${epi.join("\n  ")}`,
  };
}

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
      "zBase",
      "ooff",
      "ors",
      "ocs",
      "boff",
      "bcs",
      "flags",
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
