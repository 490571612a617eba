/**
 * The texture-based **regblock** matmul path for CPU adapters (see `shaders/matmul.ts`): pack
 * kernels that copy strided operand views into `rgba32float` texture arrays, and the
 * register-blocked kernel {@link regblockSpec} that multiplies them.
 */
import {
  ACT_HELPERS,
  EPILOGUE_PARAMS,
  sliceOffset,
  sliceParams,
  type TexKernelSpec,
} from "./matmul_common.ts";

/**
 * Workgroup width of the regblock kernel: two 8-lane SIMD batches in lavapipe, 20–40% more
 * GFLOP/s there than one (512³: 36–41 → 50–51, 1024³: 46–58 → 67–77 in alternating runs); the
 * conv and fused CTM kernels gained nothing from it and keep 8.
 */
export const RB_WG = 16;

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
      ...EPILOGUE_PARAMS,
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
