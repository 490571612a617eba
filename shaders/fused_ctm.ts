/**
 * WGSL generators for the fused CTM recurrence (`src/ops/fused_ctm.ts`).
 *
 * Data passed between the per-tick kernels lives in `rgba32float` 2-D array textures: lavapipe
 * vectorises texel loads from read-only storage textures (≈ 2 ns per texel per invocation, half
 * the cost of a sampled texture) while every storage-buffer load is a per-lane scalar loop
 * (≈ 7 ns per f32). Kernels therefore read textures and write storage textures or buffers.
 * Neurons are vectorised in groups of four (one texel holds four neighbouring neurons), so the
 * neuron-level models are plain vec4 arithmetic. Measured costs that shaped the kernels: a texel
 * store ≈ 11 ns, an f32 storage store ≈ 3 ns, a vec4 FMA on values already in (spilled)
 * registers ≈ 0.3–0.7 ns per invocation, WGSL `exp` ≈ 15 ns per vec4 (hence `exp4`).
 *
 * Texture layouts (x = texel column, y = row, layer):
 * - `Z` (Dq, B, T+1): post-activations, layer 0 the start state, layer t+1 the output of tick t.
 * - `Pre` (Dq, B, T): pre-activation written at tick t (the history before tick 0 is `ST`).
 * - `ST` (Dq, M): start trace, row m = history slot m.
 * - `O` (dq, B, T): attention output (before out_proj, which is folded into the synapse weight).
 * - `U` (2Dq, B, T): synapse pre-GLU (texels [0, Dq) the value half, [Dq, 2Dq) the gate half).
 * - `Q` (dq, B, T): scaled queries; `S` (SaQ, B, T): action synchronisation;
 *   `W` (Lq, B·heads, T): attention weights.
 * - Weights: `Wt` (2Dq, d+D) = W'ᵀ; `Wn` (dq+Dq, 2D) = W'; `Wq` (dq, Sa); `Bq` (dq, 1);
 *   `Bs` (2Dq, 1); `K`/`V` (dq, L, B); `W1` (Dq, M·O1) row m·O1+o; `B1` (Dq, O1); `W2` (Dq, 2H)
 *   row 2j+k; `B2` (Dq, 2); `Ln` (Dq, 2) rows weight, bias; `IdxA`/`IdxO` (SQ, 2) pair indices as
 *   floats, rows left, right.
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
  /** Batch rows per NLM thread. */
  CB: number;
}

/** Derived sizes. */
export function derived(c: CtmDims) {
  const O1 = c.deep ? 2 * c.H : 2;
  return {
    Dq: c.D / 4,
    dq: c.d / 4,
    dh: c.d / c.nh,
    dhq: c.d / c.nh / 4,
    Lq: Math.ceil(c.L / 4),
    SaQ: Math.ceil(c.Sa / 4),
    SoQ: Math.ceil(c.So / 4),
    O1,
    nChunks: Math.ceil(c.B / c.CB),
    /** Rows of the NLM gradient accumulator: dW1, db1, [dW2, db2], dT1, dT2. */
    accRows: c.M * O1 + O1 + (c.deep ? 2 * c.H + 2 : 0) + 2,
  };
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
fn sg1(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn comp(v: vec4f, i: u32) -> f32 { return v[i]; }
`;

const TID = `let tid = (wid.x + wid.y * nwg.x) * ${FWG}u + lid.x;`;

function spec(
  name: string,
  params: string[],
  bindings: KernelSpec["bindings"],
  textures: FusedSpec["textures"],
  body: string,
  extra = "",
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
    prelude: decl.join("\n") + HELPERS + extra,
    body: `${TID}\n${body}`,
  };
}

const ro = (name: string, type: "f32" | "i32" | "vec4<f32>" = "f32") => ({
  name,
  type,
  access: "read" as const,
});
const rw = (name: string, type: "f32" | "i32" | "vec4<f32>" = "f32") => ({
  name,
  type,
  access: "rw" as const,
});
const range = (n: number) => [...Array(n).keys()];
const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** Texel `(x, y)` of layer `l` of a read-only storage texture. */
const tl = (tex: string, x: string, y: string, l = "0u") =>
  readMode === "storage"
    ? `textureLoad(${tex}, vec2u(${x}, ${y}), ${l})`
    : `textureLoad(${tex}, vec2u(${x}, ${y}), ${l}, 0)`;

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

// ---------------------------------------------------------------- packing

/**
 * Packs a strided matrix per layer into a texture: texel `(x, rowOff + r)` of layer
 * `layerOff + l` holds `X[off + l·ls + r·rs + (4x+q)·cs]` for `4x+q < C` (0 elsewhere), divided
 * by `Dv[dvOff]` with `div` (the NLM temperatures are folded into their weights this way).
 * Threads: W·R·NL.
 */
export function packSpec(int: boolean, div = false): FusedSpec {
  const rd = (i: string) => (int ? `f32(X[${i}])` : div ? `X[${i}] / Dv[P.dvOff]` : `X[${i}]`);
  return spec(
    `ctm pack${int ? " i32" : div ? " scaled" : ""}`,
    ["off", "ls", "rs", "cs", "R", "C", "W", "NL", "rowOff", "layerOff", ...(div ? ["dvOff"] : [])],
    [ro("X", int ? "i32" : "f32"), ...(div ? [ro("Dv")] : [])],
    [{ name: "Out", kind: "w" }],
    `
  if (tid >= P.W * P.R * P.NL) { return; }
  let x = tid % P.W; let r = (tid / P.W) % P.R; let l = tid / (P.W * P.R);
  let base = P.off + l * P.ls + r * P.rs;
  var v = vec4f(0.0);
  for (var q = 0u; q < 4u; q++) {
    let c = 4u * x + q;
    if (c < P.C) { v[q] = ${rd("base + c * P.cs")}; }
  }
  textureStore(Out, vec2u(x, P.rowOff + r), P.layerOff + l, v);`,
  );
}

/** β histories: `BA[t·Sa + p]` for t < T (β₀ = 1) and `BO[j·So + p]` for j ≤ T. Threads: Sa + So. */
export function betasSpec(c: CtmDims): FusedSpec {
  return spec(
    "ctm betas",
    ["raOff", "roOff"],
    [ro("RA"), ro("RO"), rw("BA"), rw("BO")],
    [],
    `
  if (tid >= ${c.Sa + c.So}u) { return; }
  var beta = 1.0;
  if (tid < ${c.Sa}u) {
    let r = RA[P.raOff + tid];
    for (var t = 0u; t < ${c.T}u; t++) {
      if (t > 0u) { beta = r * beta + 1.0; }
      BA[t * ${c.Sa}u + tid] = beta;
    }
  } else {
    let p = tid - ${c.Sa}u;
    let r = RO[P.roOff + p];
    for (var j = 0u; j <= ${c.T}u; j++) {
      if (j > 0u) { beta = r * beta + 1.0; }
      BO[j * ${c.So}u + p] = beta;
    }
  }`,
  );
}

// ---------------------------------------------------------------- forward, per tick

/** Pair index `p` (runtime u32 expression) of row `row` in an index texture. */
const pairIdx = (tex: string, p: string, row: number) =>
  `u32(comp(${tl(tex, `(${p}) >> 2u`, `${row}u`)}, (${p}) & 3u))`;
/** z[b, n] from layer `l` of Z. */
const zAt = (n: string, l: string) => `comp(${tl("Z", `(${n}) >> 2u`, "b", l)}, (${n}) & 3u)`;

/**
 * Action synchronisation, query, attention for one tick. Thread per (b, head): every head
 * recomputes the Sa synchronisation values it needs; head 0 stores them (α history, `S`
 * texture, tracking). Writes `Q`, `W` and `O` (its head's texels) at layer t.
 */
export function attendSpec(c: CtmDims): FusedSpec {
  const { dhq, Lq } = derived(c);
  const scale = 1 / Math.sqrt(c.d / c.nh);
  const I = range(dhq), Ls = range(c.L);
  const body = `
  if (tid >= ${c.B * c.nh}u) { return; }
  let b = tid / ${c.nh}u; let h = tid % ${c.nh}u; let t = P.t;
  let c0 = h * ${dhq}u;
  ${I.map((i) => `var q${i} = ${tl("Bq", `c0 + ${i}u`, "0u")};`).join("\n  ")}
  var sv = vec4f(0.0);
  for (var p = 0u; p < ${c.Sa}u; p++) {
    let li = ${pairIdx("IdxA", "p", 0)}; let ri = ${pairIdx("IdxA", "p", 1)};
    let pp = ${zAt("li", "t")} * ${zAt("ri", "t")};
    var al = pp;
    if (t > 0u) { al = RA[P.raOff + p] * AlA[((t - 1u) * ${c.B}u + b) * ${c.Sa}u + p] + pp; }
    let s = al / sqrt(BA[t * ${c.Sa}u + p]);
    if (h == 0u) {
      AlA[(t * ${c.B}u + b) * ${c.Sa}u + p] = al;
      if (P.track != 0u) { SAT[(t * ${c.B}u + b) * ${c.Sa}u + p] = s; }
    }
    sv[p & 3u] = s;
    if ((p & 3u) == 3u || p == ${c.Sa - 1}u) {
      if (h == 0u) { textureStore(St, vec2u(p >> 2u, b), t, sv); }
      sv = vec4f(0.0);
    }
    ${I.map((i) => `q${i} = fma(vec4f(s), ${tl("Wq", `c0 + ${i}u`, "p")}, q${i});`).join("\n    ")}
  }
  ${
    I.map((i) => `q${i} = q${i} * ${f(scale)}; textureStore(Qt, vec2u(c0 + ${i}u, b), t, q${i});`).join(
      "\n  ",
    )
  }
  ${
    Ls.map((l) =>
      `let sc${l} = ${I.map((i) => `dot(q${i}, ${tl("Kt", `c0 + ${i}u`, `${l}u`, "b")})`).join(" + ")};`
    ).join("\n  ")
  }
  let mx = max(${Ls.map((l) => `sc${l}`).reduce((a, x) => `max(${a}, ${x})`)}, sc0);
  ${Ls.map((l) => `let e${l} = exp(sc${l} - mx);`).join("\n  ")}
  let den = ${Ls.map((l) => `e${l}`).join(" + ")};
  ${Ls.map((l) => `let w${l} = e${l} / den;`).join("\n  ")}
  let row = b * ${c.nh}u + h;
  ${
    range(Lq).map((l4) => {
      const comps = range(4).map((q) => (4 * l4 + q < c.L ? `w${4 * l4 + q}` : "0.0")).join(", ");
      return `textureStore(Wt, vec2u(${l4}u, row), t, vec4f(${comps}));`;
    }).join("\n  ")
  }
  if (P.track != 0u) {
    ${Ls.map((l) => `ATT[((t * ${c.B}u + b) * ${c.nh}u + h) * ${c.L}u + ${l}u] = w${l};`).join("\n    ")}
  }
  ${
    I.map((i) => {
      const sum = Ls.map((l) => `w${l} * ${tl("Vt", `c0 + ${i}u`, `${l}u`, "b")}`).join(" + ");
      return `textureStore(Ot, vec2u(c0 + ${i}u, b), t, ${sum});`;
    }).join("\n  ")
  }`;
  return spec(
    "ctm attend",
    ["t", "raOff", "track"],
    [ro("RA"), rw("AlA"), ro("BA"), rw("SAT"), rw("ATT")],
    [
      { name: "Z", kind: "r" },
      { name: "IdxA", kind: "r" },
      { name: "Wq", kind: "r" },
      { name: "Bq", kind: "r" },
      { name: "Kt", kind: "r" },
      { name: "Vt", kind: "r" },
      { name: "St", kind: "w" },
      { name: "Qt", kind: "w" },
      { name: "Wt", kind: "w" },
      { name: "Ot", kind: "w" },
    ],
    body,
  );
}

/**
 * Register-blocked matmul body over texture operands (A rows along y, k texels along x; B rows
 * along k): `a(i, k4)` and `b(q, j, krow)` give the loads; accumulators `c{i}_{j}`.
 */
function mmLoop(
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
      for (let q = 0; q < 4; q++) e = `fma(vec4f(a${i}.${"xyzw"[q]}), b${q}_${j}, ${e})`;
      L.push(`  c${i}_${j} = ${e};`);
    });
  }
  L.push(`}`);
  return L.join("\n  ");
}

/**
 * Synapse forward for tick t: `U = [O | Z_t] · W'ᵀ + b'` (value and gate halves), stored in `U`.
 * Thread per (TM rows, TN4 value texels + the matching gate texels).
 */
export function synFwdSpec(c: CtmDims, TM: number, TN4: number): FusedSpec {
  const { Dq, dq } = derived(c);
  const nCB = Math.ceil(Dq / TN4), nRB = Math.ceil(c.B / TM);
  const cols: string[] = [];
  for (let j = 0; j < TN4; j++) cols.push(`ja${j}`);
  for (let j = 0; j < TN4; j++) cols.push(`jg${j}`);
  const L: string[] = [];
  L.push(`if (tid >= ${nCB * nRB}u) { return; }`);
  L.push(`let cb = tid % ${nCB}u; let r0 = (tid / ${nCB}u) * ${TM}u; let j0 = cb * ${TN4}u; let t = P.t;`);
  for (let i = 0; i < TM; i++) L.push(`let ri${i} = min(r0 + ${i}u, ${c.B - 1}u);`);
  for (let j = 0; j < TN4; j++) {
    L.push(`let ja${j} = min(j0 + ${j}u, ${Dq - 1}u); let jg${j} = ja${j} + ${Dq}u;`);
  }
  for (let i = 0; i < TM; i++) for (let j = 0; j < 2 * TN4; j++) L.push(`var c${i}_${j} = vec4f(0.0);`);
  L.push(
    mmLoop(TM, cols, "0u", `${dq}u`, (i) => tl("Ot", "k4", `ri${i}`, "t"), (col, k) => tl("Wt", col, k)),
  );
  L.push(
    mmLoop(
      TM,
      cols,
      "0u",
      `${Dq}u`,
      (i) => tl("Z", "k4", `ri${i}`, "t"),
      (col, k) => tl("Wt", col, `${4 * dq}u + ${k}`),
    ),
  );
  for (let j = 0; j < 2 * TN4; j++) L.push(`let bias${j} = ${tl("Bs", cols[j], "0u")};`);
  for (let i = 0; i < TM; i++) {
    const cond = [`r0 + ${i}u < ${c.B}u`];
    L.push(`if (${cond.join(" && ")}) {`);
    for (let j = 0; j < TN4; j++) {
      L.push(`  if (j0 + ${j}u < ${Dq}u) {`);
      L.push(`    textureStore(Ut, vec2u(ja${j}, r0 + ${i}u), t, c${i}_${j} + bias${j});`);
      L.push(`    textureStore(Ut, vec2u(jg${j}, r0 + ${i}u), t, c${i}_${TN4 + j} + bias${TN4 + j});`);
      L.push(`  }`);
    }
    L.push(`}`);
  }
  return spec(
    `ctm synapse fwd ${TM}x${TN4}`,
    ["t"],
    [],
    [
      { name: "Ot", kind: "r" },
      { name: "Z", kind: "r" },
      { name: "Wt", kind: "r" },
      { name: "Bs", kind: "r" },
      { name: "Ut", kind: "w" },
    ],
    L.join("\n  "),
  );
}

/** Threads of {@link synFwdSpec}. */
export function synFwdThreads(c: CtmDims, TM: number, TN4: number): number {
  return Math.ceil(c.D / 4 / TN4) * Math.ceil(c.B / TM);
}

/**
 * GLU + LayerNorm of the synapse output for tick t, thread per row: `pre = LN(a·σ(g))` into
 * layer t of `Pre`; (mean, rstd) into `Stats`.
 */
export function lnFwdSpec(c: CtmDims): FusedSpec {
  const { Dq } = derived(c);
  const h = `let h = ${tl("Ut", "n4", "b", "t")} * sg4(${tl("Ut", `n4 + ${Dq}u`, "b", "t")});`;
  return spec(
    "ctm glu+layernorm fwd",
    ["t", "track"],
    [rw("PRE", "vec4<f32>")],
    [
      { name: "Ut", kind: "r" },
      { name: "Ln", kind: "r" },
      { name: "Pre", kind: "w" },
      { name: "Stats", kind: "w" },
    ],
    `
  if (tid >= ${c.B}u) { return; }
  let b = tid; let t = P.t;
  var s = vec4f(0.0);
  for (var n4 = 0u; n4 < ${Dq}u; n4++) { ${h} s += h; }
  let mu = (s.x + s.y + s.z + s.w) / ${f(c.D)};
  var v = vec4f(0.0);
  for (var n4 = 0u; n4 < ${Dq}u; n4++) { ${h} let dv = h - vec4f(mu); v += dv * dv; }
  let rstd = 1.0 / sqrt((v.x + v.y + v.z + v.w) / ${f(c.D)} + 1e-5);
  textureStore(Stats, vec2u(0u, b), t, vec4f(mu, rstd, 0.0, 0.0));
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${h}
    let y = (h - vec4f(mu)) * rstd * ${tl("Ln", "n4", "0u")} + ${tl("Ln", "n4", "1u")};
    textureStore(Pre, vec2u(n4, b), t, y);
    if (P.track != 0u) { PRE[(t * ${c.B}u + b) * ${Dq}u + n4] = y; }
  }`,
  );
}

/** WGSL loading trace slot m (history index t + m) of row `b{p}` into `x{m}_{p}` for p < PB. */
function traceLoads(c: CtmDims, PB: number): string {
  const L: string[] = [];
  for (let m = 0; m < c.M; m++) {
    L.push(`var x${m}_0: vec4f;` + range(PB - 1).map((p) => ` var x${m}_${p + 1}: vec4f;`).join(""));
    const st = range(PB).map((p) => `x${m}_${p} = ${tl("ST", "n4", `P.t + ${m + 1}u`)};`).join(" ");
    const pr = range(PB).map((p) => `x${m}_${p} = ${tl("Pre", "n4", `b${p}`, `P.t + ${m}u - ${c.M - 1}u`)};`)
      .join(" ");
    L.push(`if (P.t + ${m}u < ${c.M - 1}u) { ${st} } else { ${pr} }`);
  }
  return L.join("\n    ");
}

/** WGSL hoisting the NLM weights of neuron quad n4 into `w{m}_{o}`, `c{o}`, `v{j}_{k}`, `e{k}`. */
function nlmWeights(c: CtmDims): string {
  const { O1 } = derived(c);
  const L: string[] = [];
  for (let m = 0; m < c.M; m++) {
    for (let o = 0; o < O1; o++) L.push(`let w${m}_${o} = ${tl("W1", "n4", `${m * O1 + o}u`)};`);
  }
  for (let o = 0; o < O1; o++) L.push(`let c${o} = ${tl("B1", "n4", `${o}u`)};`);
  if (c.deep) {
    for (let j = 0; j < c.H; j++) {
      for (let k = 0; k < 2; k++) L.push(`let v${j}_${k} = ${tl("W2", "n4", `${2 * j + k}u`)};`);
    }
    L.push(`let e0 = ${tl("B2", "n4", "0u")}; let e1 = ${tl("B2", "n4", "1u")};`);
  }
  return L.join("\n  ");
}

/**
 * WGSL of the NLM forward for PB rows at once (interleaved so each weight serves PB rows): from
 * `x{m}_{p}` to `u{o}_{p}` (layer 1) and `z_{p}`. The weights and biases hold `w/T`, `b/T`
 * (packed that way), so `u = x·w/T + b/T = (x·w + b)/T` needs no division.
 */
function nlmForward(c: CtmDims, PB: number): string {
  const { O1 } = derived(c);
  const P = range(PB);
  const L: string[] = [];
  for (let o = 0; o < O1; o++) {
    L.push(P.map((p) => `var u${o}_${p} = c${o};`).join(" "));
    for (let m = 0; m < c.M; m++) {
      L.push(P.map((p) => `u${o}_${p} = fma(x${m}_${p}, w${m}_${o}, u${o}_${p});`).join(" "));
    }
  }
  if (c.deep) {
    for (let j = 0; j < c.H; j++) {
      L.push(
        P.map((p) => `let s${j}_${p} = sg4(u${c.H + j}_${p}); let h${j}_${p} = u${j}_${p} * s${j}_${p};`)
          .join(" "),
      );
    }
    L.push(P.map((p) => `var A_${p} = e0; var G_${p} = e1;`).join(" "));
    for (let j = 0; j < c.H; j++) {
      L.push(
        P.map((p) => `A_${p} = fma(h${j}_${p}, v${j}_0, A_${p}); G_${p} = fma(h${j}_${p}, v${j}_1, G_${p});`)
          .join(" "),
      );
    }
  } else {
    L.push(P.map((p) => `let A_${p} = u0_${p}; let G_${p} = u1_${p};`).join(" "));
  }
  L.push(P.map((p) => `let sG_${p} = sg4(G_${p}); let z_${p} = A_${p} * sG_${p};`).join(" "));
  return L.join("\n    ");
}

const nlmTex = (c: CtmDims): FusedSpec["textures"] => [
  { name: "Pre", kind: "r" },
  { name: "ST", kind: "r" },
  { name: "W1", kind: "r" },
  { name: "B1", kind: "r" },
  ...(c.deep ? [{ name: "W2", kind: "r" as const }, { name: "B2", kind: "r" as const }] : []),
];

/**
 * Neuron-level models for tick t: thread per (neuron quad, CB rows), PB rows per step; z into
 * layer t+1 of Z.
 */
export function nlmFwdSpec(c: CtmDims, PB = NLM_PB): FusedSpec {
  const { Dq } = derived(c);
  const P = range(PB);
  return spec(
    "ctm nlm fwd",
    ["t", "track"],
    [rw("POST", "vec4<f32>")],
    [
      ...nlmTex(c),
      { name: "Zo", kind: "w" },
    ],
    `
  if (tid >= ${Dq * Math.ceil(c.B / c.CB)}u) { return; }
  let n4 = tid % ${Dq}u; let rb0 = (tid / ${Dq}u) * ${c.CB}u;
  ${nlmWeights(c)}
  for (var bi = 0u; bi < ${c.CB}u; bi += ${PB}u) {
    if (rb0 + bi >= ${c.B}u) { break; }
    ${P.map((p) => `let b${p} = min(rb0 + bi + ${p}u, ${c.B - 1}u);`).join(" ")}
    ${traceLoads(c, PB)}
    ${nlmForward(c, PB)}
    ${
      P.map((p) =>
        `if (rb0 + bi + ${p}u < ${c.B}u) {
      textureStore(Zo, vec2u(n4, b${p}), P.t + 1u, z_${p});
      if (P.track != 0u) { POST[(P.t * ${c.B}u + b${p}) * ${Dq}u + n4] = z_${p}; }
    }`
      ).join("\n    ")
    }
  }`,
  );
}

/** Rows per step of the NLM kernels. */
export const NLM_PB = 2;

/** Threads of {@link nlmFwdSpec} and {@link nlmBwdSpec}. */
export function nlmThreads(c: CtmDims): number {
  return (c.D / 4) * Math.ceil(c.B / c.CB);
}

/**
 * Output synchronisation for all ticks at once, thread per (b, p): α history into `AlO`
 * (`[T+1, B, So]`), `S_out` for ticks 0…T-1 into `SO` (`[T, B, So]`).
 */
export function syncOutSpec(c: CtmDims): FusedSpec {
  return spec(
    "ctm sync out",
    ["roOff"],
    [ro("RO"), ro("BO"), rw("AlO"), rw("SO")],
    [
      { name: "Z", kind: "r" },
      { name: "IdxO", kind: "r" },
    ],
    `
  if (tid >= ${c.B * c.So}u) { return; }
  let b = tid / ${c.So}u; let p = tid % ${c.So}u;
  let li = ${pairIdx("IdxO", "p", 0)}; let ri = ${pairIdx("IdxO", "p", 1)};
  let r = RO[P.roOff + p];
  var al = 0.0;
  for (var j = 0u; j <= ${c.T}u; j++) {
    let pp = ${zAt("li", "j")} * ${zAt("ri", "j")};
    if (j == 0u) { al = pp; } else { al = r * al + pp; }
    AlO[(j * ${c.B}u + b) * ${c.So}u + p] = al;
    if (j > 0u) { SO[((j - 1u) * ${c.B}u + b) * ${c.So}u + p] = al / sqrt(BO[j * ${c.So}u + p]); }
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

// ---------------------------------------------------------------- backward, per tick

/**
 * Neuron-level model backward for tick t, thread per (neuron quad, CB rows), PB rows per step
 * (each hoisted weight and accumulator then serves PB rows): recomputes the
 * forward, reads dL/dz from `DZ` (`[B, D]`), writes dL/dpre_t into `Dpre` (layer t), shifts the
 * pending trace gradients (`Cin` → `Cout`, rows k·B + b for history index t + k) and accumulates
 * the parameter gradients of its rows into `Aout` (= `Ain` + this tick; `Ain` unread when
 * `first`). Accumulator rows: dW1 (m·O1+o), db1, [dW2 (2j+k), db2], dT1, dT2; column
 * n4 + Dq·chunk.
 */
export function nlmBwdSpec(c: CtmDims, PB = NLM_PB): FusedSpec {
  const { Dq, O1, accRows } = derived(c);
  const M = c.M;
  const P = range(PB);
  const each = (f: (p: number) => string) => P.map(f).join(" ");
  const L: string[] = [];
  L.push(`if (tid >= ${Dq * Math.ceil(c.B / c.CB)}u) { return; }`);
  L.push(
    `let n4 = tid % ${Dq}u; let chunk = tid / ${Dq}u; let rb0 = chunk * ${c.CB}u; let col = n4 + ${Dq}u * chunk;`,
  );
  L.push(nlmWeights(c));
  // accumulators
  const accNames: string[] = [];
  for (let m = 0; m < M; m++) for (let o = 0; o < O1; o++) accNames.push(`gw${m}_${o}`);
  for (let o = 0; o < O1; o++) accNames.push(`gc${o}`);
  if (c.deep) {
    for (let j = 0; j < c.H; j++) for (let k = 0; k < 2; k++) accNames.push(`gv${j}_${k}`);
    accNames.push(`ge0`, `ge1`);
  }
  accNames.push(`gT1`, `gT2`);
  if (accNames.length !== accRows) throw new Error("internal: accumulator rows");
  for (const a of accNames) L.push(`var ${a} = vec4f(0.0);`);
  L.push(`for (var bi = 0u; bi < ${c.CB}u; bi += ${PB}u) {`);
  L.push(`  if (rb0 + bi >= ${c.B}u) { break; }`);
  // Rows past B (when B % PB != 0) compute on a clamped row with a zero gradient.
  L.push(
    `  ${
      each((p) => `let b${p} = min(rb0 + bi + ${p}u, ${c.B - 1}u); let ok${p} = rb0 + bi + ${p}u < ${c.B}u;`)
    }`,
  );
  L.push(`  ${traceLoads(c, PB)}`);
  L.push(`  ${nlmForward(c, PB)}`);
  L.push(`  ${each((p) => `let dz_${p} = select(vec4f(0.0), DZ[b${p} * ${Dq}u + n4], ok${p});`)}`);
  L.push(
    `  ${
      each((p) =>
        `let dA_${p} = dz_${p} * sG_${p}; let dG_${p} = dz_${p} * A_${p} * sG_${p} * (vec4f(1.0) - sG_${p});`
      )
    }`,
  );
  const sum = (f: (p: number) => string) => P.map(f).join(" + ");
  if (c.deep) {
    L.push(`  ge0 += ${sum((p) => `dA_${p}`)}; ge1 += ${sum((p) => `dG_${p}`)};`);
    L.push(`  gT2 -= ${sum((p) => `dA_${p} * A_${p} + dG_${p} * G_${p}`)};`);
    for (let j = 0; j < c.H; j++) {
      L.push(
        `  gv${j}_0 += ${sum((p) => `h${j}_${p} * dA_${p}`)}; gv${j}_1 += ${
          sum((p) => `h${j}_${p} * dG_${p}`)
        };`,
      );
      L.push(`  ${each((p) => `let dh${j}_${p} = dA_${p} * v${j}_0 + dG_${p} * v${j}_1;`)}`);
      L.push(
        `  ${
          each((p) =>
            `let d${j}_${p} = dh${j}_${p} * s${j}_${p}; let d${
              c.H + j
            }_${p} = dh${j}_${p} * u${j}_${p} * s${j}_${p} * (vec4f(1.0) - s${j}_${p});`
          )
        }`,
      );
    }
  } else {
    L.push(`  ${each((p) => `let d0_${p} = dA_${p}; let d1_${p} = dG_${p};`)}`);
  }
  for (let o = 0; o < O1; o++) {
    L.push(`  gc${o} += ${sum((p) => `d${o}_${p}`)}; gT1 -= ${sum((p) => `d${o}_${p} * u${o}_${p}`)};`);
  }
  for (let m = 0; m < M; m++) {
    for (let o = 0; o < O1; o++) {
      let e = `gw${m}_${o}`;
      for (const p of P) e = `fma(x${m}_${p}, d${o}_${p}, ${e})`;
      L.push(`  gw${m}_${o} = ${e};`);
    }
    L.push(`  ${each((p) => `var dx${m}_${p} = vec4f(0.0);`)}`);
    for (let o = 0; o < O1; o++) {
      L.push(`  ${each((p) => `dx${m}_${p} = fma(d${o}_${p}, w${m}_${o}, dx${m}_${p});`)}`);
    }
  }
  // trace-gradient shift register
  for (const p of P) {
    L.push(`  if (ok${p}) {`);
    if (M === 1) {
      L.push(`    textureStore(Dpre, vec2u(n4, b${p}), P.t, dx0_${p});`);
    } else {
      for (let k = 0; k <= M - 2; k++) L.push(`    var cin${k} = vec4f(0.0);`);
      L.push(`    if (P.first == 0u) {`);
      for (let k = 0; k <= M - 2; k++) L.push(`      cin${k} = ${tl("Cin", "n4", `${k * c.B}u + b${p}`)};`);
      L.push(`    }`);
      L.push(`    textureStore(Dpre, vec2u(n4, b${p}), P.t, cin${M - 2} + dx${M - 1}_${p});`);
      for (let k = 0; k <= M - 2; k++) {
        const v = k >= 1 ? `cin${k - 1} + dx${k}_${p}` : `dx0_${p}`;
        L.push(`    textureStore(Cout, vec2u(n4, ${k * c.B}u + b${p}), 0u, ${v});`);
      }
    }
    L.push(`  }`);
  }
  L.push(`}`);
  L.push(`if (P.first == 0u) {`);
  accNames.forEach((a, r) => L.push(`  ${a} += ${tl("Ain", "col", `${r}u`)};`));
  L.push(`}`);
  accNames.forEach((a, r) => L.push(`textureStore(Aout, vec2u(col, ${r}u), 0u, ${a});`));
  return spec(
    "ctm nlm bwd",
    ["t", "first"],
    [ro("DZ", "vec4<f32>")],
    [
      ...nlmTex(c),
      { name: "Cin", kind: "r" },
      { name: "Ain", kind: "r" },
      { name: "Cout", kind: "w" },
      { name: "Aout", kind: "w" },
      { name: "Dpre", kind: "w" },
    ],
    L.join("\n  "),
  );
}

/**
 * LayerNorm + GLU backward for tick t, thread per row: from dL/dpre (`Dpre` layer t) to
 * dL/dU (`DU` layer t, value and gate halves).
 */
export function lnBwdSpec(c: CtmDims): FusedSpec {
  const { Dq } = derived(c);
  const load = `let a = ${tl("Ut", "n4", "b", "t")}; let s = sg4(${tl("Ut", `n4 + ${Dq}u`, "b", "t")}); ` +
    `let xh = (a * s - vec4f(mu)) * rstd; let dxh = ${tl("Dpre", "n4", "b", "t")} * ${tl("Ln", "n4", "0u")};`;
  return spec(
    "ctm glu+layernorm bwd",
    ["t"],
    [],
    [
      { name: "Ut", kind: "r" },
      { name: "Ln", kind: "r" },
      { name: "Dpre", kind: "r" },
      { name: "Stats", kind: "r" },
      { name: "DU", kind: "w" },
    ],
    `
  if (tid >= ${c.B}u) { return; }
  let b = tid; let t = P.t;
  let st = ${tl("Stats", "0u", "b", "t")};
  let mu = st.x; let rstd = st.y;
  var s1 = vec4f(0.0); var s2 = vec4f(0.0);
  for (var n4 = 0u; n4 < ${Dq}u; n4++) { ${load} s1 += dxh; s2 += dxh * xh; }
  let m1 = (s1.x + s1.y + s1.z + s1.w) / ${f(c.D)};
  let m2 = (s2.x + s2.y + s2.z + s2.w) / ${f(c.D)};
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${load}
    let dh = rstd * (dxh - vec4f(m1) - xh * m2);
    textureStore(DU, vec2u(n4, b), t, dh * s);
    textureStore(DU, vec2u(n4 + ${Dq}u, b), t, dh * a * s * (vec4f(1.0) - s));
  }`,
  );
}

/**
 * Synapse input gradient for tick t: `dX = dU · W'`; the attention part goes to `DO` (layer t),
 * the z part overwrites `DZ` (`[B, D]` as vec4). Thread per (TM rows, TN4 texels of dX).
 */
export function synBwdSpec(c: CtmDims, TM: number, TN4: number): FusedSpec {
  const { Dq, dq } = derived(c);
  const N4 = dq + Dq;
  const nCB = Math.ceil(N4 / TN4), nRB = Math.ceil(c.B / TM);
  const cols = range(TN4).map((j) => `n${j}`);
  const L: string[] = [];
  L.push(`if (tid >= ${nCB * nRB}u) { return; }`);
  L.push(`let cb = tid % ${nCB}u; let r0 = (tid / ${nCB}u) * ${TM}u; let j0 = cb * ${TN4}u; let t = P.t;`);
  for (let i = 0; i < TM; i++) L.push(`let ri${i} = min(r0 + ${i}u, ${c.B - 1}u);`);
  for (let j = 0; j < TN4; j++) L.push(`let n${j} = min(j0 + ${j}u, ${N4 - 1}u);`);
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN4; j++) L.push(`var c${i}_${j} = vec4f(0.0);`);
  L.push(
    mmLoop(TM, cols, "0u", `${2 * Dq}u`, (i) => tl("DU", "k4", `ri${i}`, "t"), (col, k) => tl("Wn", col, k)),
  );
  for (let i = 0; i < TM; i++) {
    L.push(`if (r0 + ${i}u < ${c.B}u) {`);
    for (let j = 0; j < TN4; j++) {
      L.push(`  if (j0 + ${j}u < ${dq}u) { textureStore(DO, vec2u(n${j}, r0 + ${i}u), t, c${i}_${j}); }`);
      L.push(`  else if (j0 + ${j}u < ${N4}u) { DZ[(r0 + ${i}u) * ${Dq}u + n${j} - ${dq}u] = c${i}_${j}; }`);
    }
    L.push(`}`);
  }
  return spec(
    `ctm synapse bwd ${TM}x${TN4}`,
    ["t"],
    [rw("DZ", "vec4<f32>")],
    [{ name: "DU", kind: "r" }, { name: "Wn", kind: "r" }, { name: "DO", kind: "w" }],
    L.join("\n  "),
  );
}

/** Threads of {@link synBwdSpec}. */
export function synBwdThreads(c: CtmDims, TM: number, TN4: number): number {
  return Math.ceil((c.d / 4 + c.D / 4) / TN4) * Math.ceil(c.B / TM);
}

/**
 * Attention backward for tick t, thread per (b, head): from dL/dO (`DO`) to dL/dq (`DQ`,
 * unscaled query), dL/dscores (`DS`) and the head's part of dL/dS_act (`DSP[b, h, p]`).
 */
export function attnBwdSpec(c: CtmDims): FusedSpec {
  const { dhq, Lq } = derived(c);
  const scale = 1 / Math.sqrt(c.d / c.nh);
  const I = range(dhq), Ls = range(c.L);
  const wOf = (l: number) => `w${l >> 2}.${"xyzw"[l & 3]}`;
  return spec(
    "ctm attention bwd",
    ["t"],
    [rw("DSP")],
    [
      { name: "DO", kind: "r" },
      { name: "Wt", kind: "r" },
      { name: "Kt", kind: "r" },
      { name: "Vt", kind: "r" },
      { name: "Wq", kind: "r" },
      { name: "DQ", kind: "w" },
      { name: "DS", kind: "w" },
    ],
    `
  if (tid >= ${c.B * c.nh}u) { return; }
  let b = tid / ${c.nh}u; let h = tid % ${c.nh}u; let t = P.t;
  let c0 = h * ${dhq}u; let row = b * ${c.nh}u + h;
  ${I.map((i) => `let do${i} = ${tl("DO", `c0 + ${i}u`, "b", "t")};`).join("\n  ")}
  ${range(Lq).map((l4) => `let w${l4} = ${tl("Wt", `${l4}u`, "row", "t")};`).join("\n  ")}
  ${
      Ls.map((l) =>
        `let dw${l} = ${I.map((i) => `dot(do${i}, ${tl("Vt", `c0 + ${i}u`, `${l}u`, "b")})`).join(" + ")};`
      ).join("\n  ")
    }
  let sw = ${Ls.map((l) => `${wOf(l)} * dw${l}`).join(" + ")};
  ${Ls.map((l) => `let ds${l} = ${wOf(l)} * (dw${l} - sw);`).join("\n  ")}
  ${
      range(Lq).map((l4) => {
        const comps = range(4).map((q) => (4 * l4 + q < c.L ? `ds${4 * l4 + q}` : "0.0")).join(", ");
        return `textureStore(DS, vec2u(${l4}u, row), t, vec4f(${comps}));`;
      }).join("\n  ")
    }
  ${
      I.map((i) => {
        const sum = Ls.map((l) => `ds${l} * ${tl("Kt", `c0 + ${i}u`, `${l}u`, "b")}`).join(" + ");
        return `let dq${i} = (${sum}) * ${f(scale)}; textureStore(DQ, vec2u(c0 + ${i}u, b), t, dq${i});`;
      }).join("\n  ")
    }
  for (var p = 0u; p < ${c.Sa}u; p++) {
    DSP[row * ${c.Sa}u + p] = ${I.map((i) => `dot(dq${i}, ${tl("Wq", `c0 + ${i}u`, "p")})`).join(" + ")};
  }`,
  );
}

/**
 * Gradient of z layer j from the synchronisations, thread per row b: the output
 * synchronisation at layer j (incoming dL/dS_out for tick j−1) and, for j < T, the action
 * synchronisation of tick j (dL/dS_act from `DSP`). Carries dα, dβ to layer j−1 (`C*`),
 * accumulates dL/dr per (b, p) (`DR*`) and scatter-adds the pair-product gradients into `DZ`
 * (zeroed first when `zero`).
 */
export function dzAsmSpec(c: CtmDims): FusedSpec {
  const { Dq } = derived(c);
  const part = (
    kind: "O" | "A",
    S: number,
    dS: string,
    hasCarryIn: string,
    firstDr: string,
  ) => `
  for (var p = 0u; p < ${S}u; p++) {
    let dS = ${dS};
    let al = Al${kind}[(j * ${c.B}u + b) * ${S}u + p];
    let be = B${kind}[j * ${S}u + p];
    let r = R${kind}[P.r${kind}Off + p];
    let sb = sqrt(be);
    var da = dS / sb;
    var db = -al * dS / (2.0 * be * sb);
    if (${hasCarryIn}) { da += r * CA${kind}[b * ${S}u + p]; db += r * CB${kind}[b * ${S}u + p]; }
    if (j > 0u) {
      let g = Al${kind}[((j - 1u) * ${c.B}u + b) * ${S}u + p] * da + B${kind}[(j - 1u) * ${S}u + p] * db;
      if (${firstDr}) { DR${kind}[b * ${S}u + p] = g; } else { DR${kind}[b * ${S}u + p] += g; }
    }
    CA${kind}[b * ${S}u + p] = da; CB${kind}[b * ${S}u + p] = db;
    let li = ${pairIdx(`Idx${kind}`, "p", 0)}; let ri = ${pairIdx(`Idx${kind}`, "p", 1)};
    let zl = ${zAt("li", "j")}; let zr = ${zAt("ri", "j")};
    DZ[b * ${c.D}u + li] += da * zr;
    DZ[b * ${c.D}u + ri] += da * zl;
  }`;
  return spec(
    "ctm sync bwd",
    ["j", "rOOff", "rAOff", "dsOff"],
    [
      ro("RO"),
      ro("RA"),
      ro("AlO"),
      ro("AlA"),
      ro("BO"),
      ro("BA"),
      ro("DSO"),
      ro("DSP"),
      rw("CAO"),
      rw("CBO"),
      rw("CAA"),
      rw("CBA"),
      rw("DRO"),
      rw("DRA"),
      rw("DZ"),
    ],
    [{ name: "Z", kind: "r" }, { name: "IdxO", kind: "r" }, { name: "IdxA", kind: "r" }],
    `
  if (tid >= ${c.B}u) { return; }
  let b = tid; let j = P.j;
  if (j == ${c.T}u) {
    for (var n = 0u; n < ${c.D}u; n++) { DZ[b * ${c.D}u + n] = 0.0; }
  }
  ${
      part(
        "O",
        c.So,
        `select(0.0, DSO[P.dsOff + ((j - 1u) * ${c.B}u + b) * ${c.So}u + p], j > 0u)`,
        `j < ${c.T}u`,
        `j == ${c.T}u`,
      )
    }
  if (j < ${c.T}u) {
    ${
      part(
        "A",
        c.Sa,
        range(c.nh).map((h) => `DSP[(b * ${c.nh}u + ${h}u) * ${c.Sa}u + p]`).join(" + "),
        `j < ${c.T - 1}u`,
        `j == ${c.T - 1}u`,
      )
    }
  }
  let _dq = ${Dq}u;`,
  );
}

// ---------------------------------------------------------------- deferred parameter gradients

/**
 * `G[off + m·sm + n·sn] = Σ_{t<T, b<B} A_tb[m] · B_tb[n]` for `m < Mrows`, `n < Ncols`, with `A`
 * and `Bt` textures holding row b of tick t at layer t (texels along m and n: `M4`, `N4` of
 * them). Thread per (TM4 texels of m, TN4 texels of n), n fastest so the lanes of a SIMD batch
 * share their A texels. Parameter gradients summed over all ticks in one pass.
 */
export function outerSpec(
  name: string,
  c: CtmDims,
  o: {
    M4: number;
    N4: number;
    TM4: number;
    TN4: number;
    Mrows: number;
    Ncols: number;
    sm: number;
    sn: number;
  },
): FusedSpec {
  const { M4, N4, TM4, TN4 } = o;
  const nCB = Math.ceil(N4 / TN4), nRB = Math.ceil(M4 / TM4);
  const L: string[] = [];
  L.push(`if (tid >= ${nCB * nRB}u) { return; }`);
  L.push(`let m0 = (tid / ${nCB}u) * ${TM4}u; let j0 = (tid % ${nCB}u) * ${TN4}u;`);
  for (let i = 0; i < TM4; i++) L.push(`let mi${i} = min(m0 + ${i}u, ${M4 - 1}u);`);
  for (let j = 0; j < TN4; j++) L.push(`let nj${j} = min(j0 + ${j}u, ${N4 - 1}u);`);
  for (let i = 0; i < 4 * TM4; i++) for (let j = 0; j < TN4; j++) L.push(`var c${i}_${j} = vec4f(0.0);`);
  L.push(`for (var t = 0u; t < ${c.T}u; t++) {`, `for (var b = 0u; b < ${c.B}u; b++) {`);
  for (let i = 0; i < TM4; i++) L.push(`  let a${i} = ${tl("A", `mi${i}`, "b", "t")};`);
  for (let j = 0; j < TN4; j++) L.push(`  let b${j} = ${tl("Bt", `nj${j}`, "b", "t")};`);
  for (let i = 0; i < TM4; i++) {
    for (let q = 0; q < 4; q++) {
      for (let j = 0; j < TN4; j++) {
        const r = 4 * i + q;
        L.push(`  c${r}_${j} = fma(vec4f(a${i}.${"xyzw"[q]}), b${j}, c${r}_${j});`);
      }
    }
  }
  L.push(`}`, `}`);
  for (let i = 0; i < TM4; i++) {
    for (let q = 0; q < 4; q++) {
      L.push(`{ let m = 4u * (m0 + ${i}u) + ${q}u;`, `  if (m < ${o.Mrows}u) {`);
      for (let j = 0; j < TN4; j++) {
        for (let k = 0; k < 4; k++) {
          L.push(
            `    { let n = 4u * (j0 + ${j}u) + ${k}u; if (n < ${o.Ncols}u) { G[P.off + m * ${o.sm}u + n * ${o.sn}u] = c${
              4 * i + q
            }_${j}.${"xyzw"[k]}; } }`,
          );
        }
      }
      L.push(`  }`, `}`);
    }
  }
  return spec(
    name,
    ["off"],
    [rw("G")],
    [{ name: "A", kind: "r" }, { name: "Bt", kind: "r" }],
    L.join("\n  "),
  );
}

/** Threads of {@link outerSpec}. */
export function outerThreads(o: { M4: number; N4: number; TM4: number; TN4: number }): number {
  return Math.ceil(o.M4 / o.TM4) * Math.ceil(o.N4 / o.TN4);
}

/** `G[n] = Σ_{t<T, b<B} Bt_tb[n]` for `n < Ncols` (bias gradients), thread per texel. */
export function colSumSpec(name: string, c: CtmDims, N4: number, Ncols: number): FusedSpec {
  return spec(
    name,
    [],
    [rw("G")],
    [{ name: "Bt", kind: "r" }],
    `
  if (tid >= ${N4}u) { return; }
  var s = vec4f(0.0);
  for (var t = 0u; t < ${c.T}u; t++) {
    for (var b = 0u; b < ${c.B}u; b++) { s += ${tl("Bt", "tid", "b", "t")}; }
  }
  for (var q = 0u; q < 4u; q++) { if (4u * tid + q < ${Ncols}u) { G[4u * tid + q] = s[q]; } }`,
  );
}

/**
 * dK, dV (`[B, L, d]`) summed over ticks, thread per (b, head, l4): `dV = Σ_t w·dO`,
 * `dK = Σ_t dscores · q_scaled`.
 */
export function dkvSpec(c: CtmDims): FusedSpec {
  const { dq, dhq, Lq } = derived(c);
  const I = range(dhq), Q = range(4);
  return spec(
    "ctm dK dV",
    [],
    [rw("DK", "vec4<f32>"), rw("DV", "vec4<f32>")],
    [
      { name: "Wt", kind: "r" },
      { name: "DS", kind: "r" },
      { name: "DO", kind: "r" },
      { name: "Qt", kind: "r" },
    ],
    `
  if (tid >= ${c.B * c.nh * Lq}u) { return; }
  let l4 = tid % ${Lq}u; let row = tid / ${Lq}u; let b = row / ${c.nh}u; let h = row % ${c.nh}u;
  let c0 = h * ${dhq}u;
  ${
      Q.map((q) => I.map((i) => `var k${q}_${i} = vec4f(0.0); var v${q}_${i} = vec4f(0.0);`).join(" ")).join(
        "\n  ",
      )
    }
  for (var t = 0u; t < ${c.T}u; t++) {
    let w = ${tl("Wt", "l4", "row", "t")}; let ds = ${tl("DS", "l4", "row", "t")};
    ${
      I.map((i) =>
        `let do${i} = ${tl("DO", `c0 + ${i}u`, "b", "t")}; let q${i} = ${tl("Qt", `c0 + ${i}u`, "b", "t")};`
      ).join("\n    ")
    }
    ${
      Q.map((q) =>
        I.map((i) =>
          `v${q}_${i} = fma(vec4f(w.${"xyzw"[q]}), do${i}, v${q}_${i}); k${q}_${i} = fma(vec4f(ds.${
            "xyzw"[q]
          }), q${i}, k${q}_${i});`
        ).join(" ")
      ).join("\n    ")
    }
  }
  ${
      Q.map((q) =>
        `if (4u * l4 + ${q}u < ${c.L}u) {
    let o = (b * ${c.L}u + 4u * l4 + ${q}u) * ${dq}u + c0;
    ${I.map((i) => `DK[o + ${i}u] = k${q}_${i}; DV[o + ${i}u] = v${q}_${i};`).join(" ")}
  }`
      ).join("\n  ")
    }`,
  );
}

/** LayerNorm parameter gradients summed over ticks and rows, thread per neuron quad. */
export function dlnSpec(c: CtmDims): FusedSpec {
  const { Dq } = derived(c);
  return spec(
    "ctm dLN",
    [],
    [rw("DW", "vec4<f32>"), rw("DB", "vec4<f32>")],
    [
      { name: "Ut", kind: "r" },
      { name: "Dpre", kind: "r" },
      { name: "Stats", kind: "r" },
    ],
    `
  if (tid >= ${Dq}u) { return; }
  let n4 = tid;
  var gw = vec4f(0.0); var gb = vec4f(0.0);
  for (var t = 0u; t < ${c.T}u; t++) {
    for (var b = 0u; b < ${c.B}u; b++) {
      let st = ${tl("Stats", "0u", "b", "t")};
      let h = ${tl("Ut", "n4", "b", "t")} * sg4(${tl("Ut", `n4 + ${Dq}u`, "b", "t")});
      let g = ${tl("Dpre", "n4", "b", "t")};
      gw = fma(g, (h - vec4f(st.x)) * st.y, gw);
      gb += g;
    }
  }
  DW[n4] = gw; DB[n4] = gb;`,
  );
}

/**
 * NLM parameter gradients from the accumulator texture (summed over row chunks), scattered to
 * the parameter layouts: dW1 `[M, O1, D]`, db1 `[1, D, O1]`, dW2 `[H, 2, D]`, db2 `[1, D, 2]`;
 * dT1, dT2 summed by thread 0. The accumulators hold gradients w.r.t. the temperature-scaled
 * weights (`w/T`) and outputs, so every entry is divided by its layer's T here.
 * Thread per (accumulator row, neuron quad).
 */
export function nlmGradSpec(c: CtmDims): FusedSpec {
  const { Dq, O1, nChunks, accRows } = derived(c);
  const rW1 = c.M * O1, rB1 = rW1 + O1, rW2 = rB1 + (c.deep ? 2 * c.H : 0), rB2 = rW2 + (c.deep ? 2 : 0);
  return spec(
    "ctm nlm grads",
    ["t1Off", "t2Off"],
    [ro("TP1"), ro("TP2"), rw("GW1"), rw("GB1"), rw("GW2"), rw("GB2"), rw("GT")],
    [{ name: "Acc", kind: "r" }],
    `
  if (tid >= ${accRows * Dq}u) { return; }
  let n4 = tid % ${Dq}u; let r = tid / ${Dq}u;
  let i1 = 1.0 / TP1[P.t1Off]; let i2 = 1.0 / TP2[P.t2Off];
  if (r >= ${rB2}u) {
    if (tid != ${rB2 * Dq}u) { return; }
    var s1 = vec4f(0.0); var s2 = vec4f(0.0);
    for (var x = 0u; x < ${Dq * nChunks}u; x++) { s1 += ${tl("Acc", "x", `${rB2}u`)}; s2 += ${
      tl("Acc", "x", `${rB2 + 1}u`)
    }; }
    GT[0] = (s1.x + s1.y + s1.z + s1.w) * i1; GT[1] = (s2.x + s2.y + s2.z + s2.w) * i2;
    return;
  }
  var v = vec4f(0.0);
  for (var ch = 0u; ch < ${nChunks}u; ch++) { v += ${tl("Acc", `n4 + ${Dq}u * ch`, "r")}; }
  for (var q = 0u; q < 4u; q++) {
    let n = 4u * n4 + q;
    if (r < ${rW1}u) { GW1[r * ${c.D}u + n] = v[q] * i1; }
    else if (r < ${rB1}u) { GB1[n * ${O1}u + r - ${rW1}u] = v[q] * i1; }
    else if (r < ${rW2}u) { GW2[(r - ${rB1}u) * ${c.D}u + n] = v[q] * i2; }
    else { GB2[n * 2u + r - ${rW2}u] = v[q] * i2; }
  }`,
  );
}

/**
 * Start-trace gradient `[D, M]` from the pending trace gradients left after tick 0 (`C`, rows
 * k·B + b for history slot k), summed over rows; slot 0 gets 0. Thread per (slot, quad).
 */
export function dstSpec(c: CtmDims): FusedSpec {
  const { Dq } = derived(c);
  return spec(
    "ctm d start_trace",
    ["hasC"],
    [rw("G")],
    [{ name: "C", kind: "r" }],
    `
  if (tid >= ${c.M * Dq}u) { return; }
  let n4 = tid % ${Dq}u; let m = tid / ${Dq}u;
  var v = vec4f(0.0);
  if (m > 0u && P.hasC != 0u) {
    for (var b = 0u; b < ${c.B}u; b++) { v += ${tl("C", "n4", `(m - 1u) * ${c.B}u + b`)}; }
  }
  for (var q = 0u; q < 4u; q++) { G[(4u * n4 + q) * ${c.M}u + m] = v[q]; }`,
  );
}
