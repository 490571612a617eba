/**
 * Shared pieces of the fused CTM recurrence's WGSL generators (`src/ops/fused_ctm.ts`): sizes,
 * the spec builder, texture-read helpers, β histories and certainty. The per-tick kernels live in
 * `fused_ctm_fwd.ts`, `fused_ctm_nlm.ts` and `fused_ctm_bwd.ts`, the parameter gradients in
 * `fused_ctm_grads.ts`, the packing of inputs into textures in `fused_ctm_pack.ts`.
 *
 * Data passed between the per-tick kernels lives in `rgba32float` 2-D array textures: lavapipe
 * vectorises texel loads from read-only storage textures (≈ 2 ns per texel per invocation) while
 * every storage-buffer load is a per-lane scalar loop (≈ 27 ns per vec4). Measured costs that
 * shaped the kernels (per invocation): a texel store ≈ 12 ns, an f32 storage store ≈ 3 ns, a vec4
 * storage store ≈ 6 ns, a vec4 FMA ≈ 0.25 ns while the live values fit in L1 (≈ 3× more once a
 * SIMD batch's spilled registers exceed it), WGSL `exp` ≈ 15 ns per vec4 (hence `exp4`).
 *
 * Two texel layouts:
 * - row layout: texel `(x, b)` holds four neighbouring columns (neurons, features) of row `b`;
 * - quad layout (the neuron-level models): texel `(n, rq)` holds neuron `n` of the four rows
 *   `4rq … 4rq+3`, so one NLM invocation per neuron reads its trace as vec4s over rows and its
 *   weights as scalars (a SIMD batch then holds 8 neurons' weights, 16 KB, instead of 32
 *   neurons', which does not fit L1). Rows past B are kept at zero.
 *
 * Textures (x, y, layer):
 * - `Z` (D, Bq, T+1) quad: post-activations, layer 0 the start state, layer t+1 tick t's output.
 * - `Pre` (D, Bq, T) quad: pre-activation of tick t; `ST` (D, M): start trace slot m splat.
 * - `Stats` (2, Bq, T) quad: LayerNorm mean and 1/std of the four rows.
 * - `O` (dq, B, T): attention output (before out_proj, folded into the synapse weight).
 * - `U` (2Dq, B, T): synapse pre-GLU (texels [0, Dq) the value half, [Dq, 2Dq) the gate half).
 * - `Q` (dq, B, T): scaled queries; `S` (SaQ, B, T): action synchronisation;
 *   `W` (Lq, B·heads, T): attention weights.
 * - Weights: `Wt` (2Dq, d+D) = W'ᵀ; `Wn` (dq+Dq, 2D) = W'; `Wq` (dq, Sa); `Bq` (dq, 1);
 *   `Bs` (2Dq, 1); `K`/`V` (dq, L, B); NLM weights per neuron as scalars, four per texel: `W1`
 *   (D, ⌈M·O1/4⌉) entry m·O1+o, `B1` (D, ⌈O1/4⌉), `W2` (D, ⌈2H/4⌉) entry 2j+k, `B2` (D, 1);
 *   `Ln` (Dq, 2) rows weight, bias; `IdxA`/`IdxO` (SQ, 2) pair indices as floats.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/**
 * A kernel spec plus texture bindings (after the storage buffers): `r` read (a read-only storage
 * texture, about twice as fast to load from as a sampled one on lavapipe, or sampled; see
 * {@link setTextureReadMode}), `w` write-only storage texture.
 */
export interface FusedSpec extends KernelSpec {
  /** Texture bindings in order. */
  textures: { name: string; kind: "r" | "w" }[];
  /** How its `r` textures are declared. */
  readMode?: "storage" | "sampled";
}

/** Static sizes of one fused CTM configuration. */
export interface CtmDims {
  /** Batch. */
  B: number;
  /** Neurons (multiple of 4). */
  D: number;
  /** Attention width (multiple of 4). */
  d: number;
  /** Attention heads (d / heads a multiple of 4). */
  nh: number;
  /** Key/value tokens. */
  L: number;
  /** Memory length. */
  M: number;
  /** NLM hidden width (deep NLMs). */
  H: number;
  /** Two-layer NLMs. */
  deep: boolean;
  /** Action / output synchronisation sizes. */
  Sa: number;
  So: number;
  /** Ticks. */
  T: number;
  /** Batch rows per NLM invocation (rounded up to whole row quads). */
  CB: number;
}

/** Sizes derived from {@link CtmDims}. */
export interface CtmDerived {
  /** Texels per row of D, d, a head, L, Sa, So values. */
  Dq: number;
  dq: number;
  dh: number;
  dhq: number;
  Lq: number;
  SaQ: number;
  SoQ: number;
  /** Row quads, and B rounded up to them. */
  Bq: number;
  Bp: number;
  /** First NLM layer outputs (2H deep, 2 shallow). */
  O1: number;
  /** Row quads per NLM invocation and NLM row chunks. */
  CBq: number;
  nChunks: number;
  /** Scalar NLM gradient accumulators: dW1, db1, [dW2, db2], dT1, dT2; and texels holding them. */
  accRows: number;
  accQ: number;
  /** Texels per neuron of W1, B1, W2. */
  W1q: number;
  B1q: number;
  W2q: number;
}

/** Derived sizes. */
export function derived(c: CtmDims): CtmDerived {
  const O1 = c.deep ? 2 * c.H : 2;
  const Bq = Math.ceil(c.B / 4), CBq = Math.max(1, Math.ceil(c.CB / 4));
  const accRows = c.M * O1 + O1 + (c.deep ? 2 * c.H + 2 : 0) + 2;
  return {
    Dq: c.D / 4,
    dq: c.d / 4,
    dh: c.d / c.nh,
    dhq: c.d / c.nh / 4,
    Lq: Math.ceil(c.L / 4),
    SaQ: Math.ceil(c.Sa / 4),
    SoQ: Math.ceil(c.So / 4),
    Bq,
    Bp: 4 * Bq,
    O1,
    CBq,
    nChunks: Math.ceil(Bq / CBq),
    accRows,
    accQ: Math.ceil(accRows / 4),
    W1q: Math.ceil((c.M * O1) / 4),
    B1q: Math.ceil(O1 / 4),
    W2q: c.deep ? Math.ceil((2 * c.H) / 4) : 1,
  };
}

/**
 * Texels per row of a staging buffer holding rows of `w` texels: rounded up to 16 (256 bytes, the
 * row alignment of a buffer-to-texture copy). Element (x, y) of layer l with `h` rows per layer is
 * at texel `(l·h + y)·rowPitch(w) + x`.
 */
export function rowPitch(w: number): number {
  return Math.ceil(w / 16) * 16;
}

/** Workgroup width of all fused kernels (one 8-lane SIMD batch in lavapipe). */
export const FWG = 8;

const HELPERS = `
fn exp4(x: vec4f) -> vec4f {
  let xc = clamp(x, vec4f(-87.0), vec4f(88.0));
  let n = floor(xc * 1.4426950408889634 + 0.5);
  let r = (xc - n * 0.693145751953125) - n * 1.4286068203094172e-06;
  var p = fma(r, vec4f(1.984126984126984e-04), vec4f(1.388888888888889e-03));
  p = fma(p, r, vec4f(8.333333333333333e-03));
  p = fma(p, r, vec4f(4.1666666666666664e-02));
  p = fma(p, r, vec4f(0.16666666666666666));
  p = fma(p, r, vec4f(0.5));
  p = fma(p, r, vec4f(1.0));
  p = fma(p, r, vec4f(1.0));
  return p * bitcast<vec4f>((vec4i(n) + vec4i(127)) << vec4u(23u));
}
fn sg4(x: vec4f) -> vec4f { return vec4f(1.0) / (vec4f(1.0) + exp4(-x)); }
fn comp(v: vec4f, i: u32) -> f32 { return v[i]; }
`;

const TID = `let tid = (wid.x + wid.y * nwg.x) * ${FWG}u + lid.x;`;

let readMode: "storage" | "sampled" = "storage";

/**
 * How kernels generated from now on read textures: `storage` (read-only storage textures, needs
 * ~12 storage textures per stage) or `sampled` (sampled textures, for adapters with fewer).
 */
export function setTextureReadMode(mode: "storage" | "sampled"): void {
  readMode = mode;
}

/** The current {@link setTextureReadMode}. */
export function textureReadMode(): "storage" | "sampled" {
  return readMode;
}

/** Builds a {@link FusedSpec}: textures declared after the buffers, `tid` the linear invocation. */
export function spec(
  name: string,
  params: string[],
  bindings: KernelSpec["bindings"],
  textures: FusedSpec["textures"],
  body: string,
): FusedSpec {
  const decl = textures.map((t, i) => {
    const b = bindings.length + 1 + i;
    const ty = t.kind === "w"
      ? "texture_storage_2d_array<rgba32float, write>"
      : readMode === "storage"
      ? "texture_storage_2d_array<rgba32float, read>"
      : "texture_2d_array<f32>";
    return `@group(0) @binding(${b}) var ${t.name}: ${ty};`;
  });
  return {
    name,
    params: params.length ? params : ["_unused"],
    bindings,
    textures,
    workgroup: [FWG],
    readMode,
    prelude: decl.join("\n") + HELPERS,
    body: `${TID}\n${body}`,
  };
}

type Elem = "f32" | "i32" | "vec4<f32>";
/** A read-only storage binding. */
export const ro = (name: string, type: Elem = "f32"): KernelSpec["bindings"][number] => ({
  name,
  type,
  access: "read",
});
/** A read-write storage binding. */
export const rw = (name: string, type: Elem = "f32"): KernelSpec["bindings"][number] => ({
  name,
  type,
  access: "rw",
});
/** `[0, n)`. */
export const range = (n: number): number[] => [...Array(n).keys()];
/** A WGSL float literal. */
export const f = (x: number): string => (Number.isInteger(x) ? `${x}.0` : `${x}`);
/** Vector component names. */
export const XYZW = "xyzw";

/** Texel `(x, y)` of layer `l` of a read texture. */
export const tl = (tex: string, x: string, y: string, l = "0u"): string =>
  readMode === "storage"
    ? `textureLoad(${tex}, vec2u(${x}, ${y}), ${l})`
    : `textureLoad(${tex}, vec2u(${x}, ${y}), ${l}, 0)`;

/** Pair index `p` (runtime u32 expression) of row `row` in an index texture. */
export const pairIdx = (tex: string, p: string, row: number): string =>
  `u32(comp(${tl(tex, `(${p}) >> 2u`, `${row}u`)}, (${p}) & 3u))`;

/** z[b, n] from layer `l` of the quad-layout `Z` (`b` in scope). */
export const zAt = (n: string, l: string): string => `comp(${tl("Z", n, "b >> 2u", l)}, b & 3u)`;

/** `vec4` of rows valid in row quad `rq` (1 where 4rq+q < B). */
export const rowMask = (c: CtmDims, rq: string): string =>
  `(vec4u(4u * (${rq})) + vec4u(0u, 1u, 2u, 3u) < vec4u(${c.B}u))`;

/**
 * Decay rates and β histories straight into the texel rows the synchronisation kernels read, four
 * pairs per texel (pairs past Sa or So get r = 0): `DecA` row 0 = r, row t + 1 = β_t for t < T;
 * `DecO` row 0 = r, row j + 1 = β_j for j ≤ T (β₀ = 1, β_j = r·β_{j−1} + 1). Threads: SaQ + SoQ.
 */
export function betasSpec(c: CtmDims): FusedSpec {
  const { SaQ, SoQ } = derived(c);
  const part = (R: string, off: string, S: number, Dec: string, rows: number) => {
    const loads = range(4).map((k) =>
      `if (4u * q + ${k}u < ${S}u) { r.${XYZW[k]} = ${R}[${off} + 4u * q + ${k}u]; }`
    );
    return `
    var r = vec4f(0.0);
    ${loads.join(" ")}
    textureStore(${Dec}, vec2u(q, 0u), 0u, r);
    var beta = vec4f(1.0);
    for (var t = 0u; t < ${rows}u; t++) {
      if (t > 0u) { beta = r * beta + vec4f(1.0); }
      textureStore(${Dec}, vec2u(q, t + 1u), 0u, beta);
    }`;
  };
  return spec(
    "ctm betas",
    ["raOff", "roOff"],
    [ro("RA"), ro("RO")],
    [{ name: "DecA", kind: "w" }, { name: "DecO", kind: "w" }],
    `
  if (tid >= ${SaQ + SoQ}u) { return; }
  if (tid < ${SaQ}u) {
    let q = tid;${part("RA", "P.raOff", c.Sa, "DecA", c.T)}
  } else {
    let q = tid - ${SaQ}u;${part("RO", "P.roOff", c.So, "DecO", c.T + 1)}
  }`,
  );
}

/**
 * Certainty per (tick, sample) from logits `[T, B, out]`: normalised entropy averaged over the
 * `G` groups of `C` classes; writes `[B, 2, T]`.
 */
export function certaintySpec(T: number, B: number, out: number, C: number): FusedSpec {
  const G = out / C;
  return spec(
    "ctm certainty",
    ["off"],
    [ro("X"), rw("Y")],
    [],
    `
  if (tid >= ${T * B}u) { return; }
  let t = tid / ${B}u; let b = tid % ${B}u;
  let base = P.off + tid * ${out}u;
  var ne = 0.0;
  for (var g = 0u; g < ${G}u; g++) {
    let o = base + g * ${C}u;
    var mx = X[o];
    for (var k = 1u; k < ${C}u; k++) { mx = max(mx, X[o + k]); }
    var se = 0.0;
    for (var k = 0u; k < ${C}u; k++) { se += exp(X[o + k] - mx); }
    let lse = mx + log(se);
    var ent = 0.0;
    for (var k = 0u; k < ${C}u; k++) { let lp = X[o + k] - lse; ent -= exp(lp) * lp; }
    ne += ent * ${f(1 / Math.log(C))};
  }
  ne = ne / ${f(G)};
  Y[(b * 2u) * ${T}u + t] = ne;
  Y[(b * 2u + 1u) * ${T}u + t] = 1.0 - ne;`,
  );
}

/**
 * Register-blocked matmul body over texture operands (A rows along y, k texels along x; B rows
 * along k): `a(i)` and `b(col, krow)` give the loads; accumulators `c{i}_{j}`.
 */
export function mmLoop(
  TM: number,
  cols: string[],
  k4From: string,
  k4To: string,
  aLoad: (i: number) => string,
  bLoad: (col: string, krow: string) => string,
): string {
  const L: string[] = [];
  L.push(`for (var k4 = ${k4From}; k4 < ${k4To}; k4++) {`);
  for (let i = 0; i < TM; i++) L.push(`  let a${i} = ${aLoad(i)};`);
  cols.forEach((col, j) => {
    for (let q = 0; q < 4; q++) L.push(`  let b${q}_${j} = ${bLoad(col, `k4 * 4u + ${q}u`)};`);
  });
  for (let i = 0; i < TM; i++) {
    cols.forEach((_, j) => {
      let e = `c${i}_${j}`;
      for (let q = 0; q < 4; q++) e = `fma(vec4f(a${i}.${XYZW[q]}), b${q}_${j}, ${e})`;
      L.push(`  c${i}_${j} = ${e};`);
    });
  }
  L.push(`}`);
  return L.join("\n  ");
}

/**
 * The same over a quad-layout A (texel `(k, rq)` = column k of rows 4rq…4rq+3): rows `4·iq + r`
 * of the block come from `aLoad(iq)`; one B row per k.
 */
export function mmLoopQuad(
  TMq: number,
  cols: string[],
  kFrom: string,
  kTo: string,
  aLoad: (iq: number) => string,
  bLoad: (col: string, krow: string) => string,
): string {
  const L: string[] = [];
  L.push(`for (var k = ${kFrom}; k < ${kTo}; k++) {`);
  for (let iq = 0; iq < TMq; iq++) L.push(`  let a${iq} = ${aLoad(iq)};`);
  cols.forEach((col, j) => L.push(`  let b${j} = ${bLoad(col, "k")};`));
  for (let iq = 0; iq < TMq; iq++) {
    for (let r = 0; r < 4; r++) {
      cols.forEach((_, j) => {
        const i = 4 * iq + r;
        L.push(`  c${i}_${j} = fma(vec4f(a${iq}.${XYZW[r]}), b${j}, c${i}_${j});`);
      });
    }
  }
  L.push(`}`);
  return L.join("\n  ");
}
