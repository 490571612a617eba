/**
 * The neuron-level models of the fused CTM recurrence (forward and backward per tick), in the
 * quad layout of `fused_ctm.ts`: one invocation per (neuron, chunk of row quads), so the 8 lanes
 * of a lavapipe SIMD batch are 8 neurons, each vec4 holds four batch rows and every weight is a
 * scalar. A batch's weights (M·2H + … floats per neuron) and scalar gradient accumulators then
 * take 16 KB each instead of the 64 KB of a neuron-quad-per-lane layout, and the per-neuron
 * matmuls (M → 2H, its transpose and the weight outer product) run as vec4 × scalar FMAs.
 */
import {
  type CtmDims,
  derived,
  type FusedSpec,
  range,
  ro,
  rowMask,
  rowPitch,
  rw,
  spec,
  tl,
  XYZW,
} from "./fused_ctm.ts";

/** Row quads per inner step of the NLM forward (each hoisted weight then serves RQ·4 rows). */
export const NLM_RQ = 1;
/**
 * Row quads per inner step of the NLM backward. 1 and 2 cost the same on lavapipe since the
 * pending trace gradients moved to a storage buffer (2 was 25% faster before); 1 compiles faster.
 */
export const NLM_BWD_RQ = 1;

/** Scalar expression of packed entry `r` of a weight texture loaded as `pre{r>>2}`. */
const ent = (pre: string, r: number) => `${pre}${r >> 2}.${XYZW[r & 3]}`;

/** WGSL hoisting neuron n's NLM weights (`wt*`, `bt*`, `vt*`, `et`) as texels. */
function nlmWeights(c: CtmDims): string {
  const { W1q, B1q, W2q } = derived(c);
  const L: string[] = [];
  for (let r = 0; r < W1q; r++) L.push(`let wt${r} = ${tl("W1", "n", `${r}u`)};`);
  for (let r = 0; r < B1q; r++) L.push(`let bt${r} = ${tl("B1", "n", `${r}u`)};`);
  if (c.deep) {
    for (let r = 0; r < W2q; r++) L.push(`let vt${r} = ${tl("W2", "n", `${r}u`)};`);
    L.push(`let et = ${tl("B2", "n", "0u")};`);
  }
  return L.join("\n  ");
}

const w1 = (c: CtmDims, m: number, o: number) => ent("wt", m * derived(c).O1 + o);
const v2 = (j: number, k: number) => ent("vt", 2 * j + k);

/** WGSL loading trace slot m (history index t + m) of row quad `rq{p}` into `x{m}_{p}`. */
function traceLoads(c: CtmDims, P: number[], t = "P.t", rq = (p: number) => `rq${p}`): string {
  const L: string[] = [];
  for (let m = 0; m < c.M; m++) {
    L.push(P.map((p) => `var x${m}_${p}: vec4f;`).join(" "));
    const st = P.map((p) => `x${m}_${p} = ${tl("ST", "n", `${t} + ${m + 1}u`)};`).join(" ");
    const pr = P.map((p) => `x${m}_${p} = ${tl("Pre", "n", rq(p), `${t} + ${m}u - ${c.M - 1}u`)};`).join(" ");
    L.push(`if (${t} + ${m}u < ${c.M - 1}u) { ${st} } else { ${pr} }`);
  }
  return L.join("\n    ");
}

/** `u{o}_{p}` for the outputs `os`: one FMA chain over the trace slots per output. */
function firstLayer(c: CtmDims, os: number[], P: number[]): string {
  const L: string[] = [];
  for (const o of os) {
    for (const p of P) {
      let e = `vec4f(${ent("bt", o)})`;
      for (let m = 0; m < c.M; m++) e = `fma(x${m}_${p}, vec4f(${w1(c, m, o)}), ${e})`;
      L.push(`let u${o}_${p} = ${e};`);
    }
  }
  return L.join("\n    ");
}

/**
 * WGSL of the NLM forward for the row quads `P`: from `x{m}_{p}` to `u{o}_{p}` (first layer),
 * `s{j}_{p}`, `h{j}_{p}` (deep GLU), `A_p`, `G_p`, `sG_p` and `z_p`. The packed weights hold
 * `w/T`, `b/T`, so `u = x·w/T + b/T = (x·w + b)/T` needs no division.
 */
function nlmForward(c: CtmDims, P: number[]): string {
  const { O1 } = derived(c);
  const L: string[] = [];
  L.push(firstLayer(c, range(O1), P));
  if (c.deep) {
    for (let j = 0; j < c.H; j++) {
      L.push(
        P.map((p) => `let s${j}_${p} = sg4(u${c.H + j}_${p}); let h${j}_${p} = u${j}_${p} * s${j}_${p};`)
          .join(" "),
      );
    }
    for (const p of P) {
      let a = `vec4f(et.x)`, g = `vec4f(et.y)`;
      for (let j = 0; j < c.H; j++) {
        a = `fma(h${j}_${p}, vec4f(${v2(j, 0)}), ${a})`;
        g = `fma(h${j}_${p}, vec4f(${v2(j, 1)}), ${g})`;
      }
      L.push(`let A_${p} = ${a};`, `let G_${p} = ${g};`);
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

/** Loop head over this invocation's row quads, `RQ` per step: `rq{p}` clamped, `ok{p}` valid. */
function rowLoop(c: CtmDims, P: number[]): string[] {
  const { Bq, CBq } = derived(c);
  return [
    `for (var i = 0u; i < ${CBq}u; i += ${P.length}u) {`,
    `  if (cq0 + i >= ${Bq}u) { break; }`,
    `  ${
      P.map((p) =>
        `let ok${p} = i + ${p}u < ${CBq}u && cq0 + i + ${p}u < ${Bq}u; let rq${p} = min(cq0 + i + ${p}u, ${
          Bq - 1
        }u);`
      ).join(" ")
    }`,
  ];
}

/**
 * Neuron-level models for tick t, invocation per (neuron, chunk of `CBq` row quads): z into layer
 * t+1 of `Zo` (rows past B zero), and with `track` into `POST` (`[T, B, D]`).
 */
export function nlmFwdSpec(c: CtmDims, RQ = NLM_RQ): FusedSpec {
  const { nChunks, CBq } = derived(c);
  const P = range(RQ);
  const L: string[] = [];
  L.push(`if (tid >= ${c.D * nChunks}u) { return; }`);
  L.push(`let n = tid % ${c.D}u; let cq0 = (tid / ${c.D}u) * ${CBq}u;`);
  L.push(nlmWeights(c));
  L.push(...rowLoop(c, P));
  L.push(`  ${traceLoads(c, P)}`);
  L.push(`  ${nlmForward(c, P)}`);
  for (const p of P) {
    L.push(
      `  if (ok${p}) {`,
      `    textureStore(Zo, vec2u(n, rq${p}), P.t + 1u, select(vec4f(0.0), z_${p}, ${
        rowMask(c, `rq${p}`)
      }));`,
      `    if (P.track != 0u) {`,
      `      for (var q = 0u; q < 4u; q++) {`,
      `        let b = 4u * rq${p} + q;`,
      `        if (b < ${c.B}u) { POST[(P.t * ${c.B}u + b) * ${c.D}u + n] = z_${p}[q]; }`,
      `      }`,
      `    }`,
      `  }`,
    );
  }
  L.push(`}`);
  return spec(
    "ctm nlm fwd",
    ["t", "track"],
    [rw("POST")],
    [...nlmTex(c), { name: "Zo", kind: "w" }],
    L.join("\n  "),
  );
}

/** Threads of {@link nlmFwdSpec} and {@link nlmBwdSpec}. */
export function nlmThreads(c: CtmDims): number {
  return c.D * derived(c).nChunks;
}

/** `d{o}_{p}` (gradients of the first layer's outputs) for the hidden units `js` (deep NLMs). */
function hiddenGrads(c: CtmDims, js: number[], P: number[], v: (j: number, k: number) => string): string {
  const L: string[] = [];
  for (const j of js) {
    for (const p of P) {
      L.push(
        `let dh${j}_${p} = fma(dA_${p}, vec4f(${v(j, 0)}), dG_${p} * vec4f(${v(j, 1)}));` +
          ` let d${j}_${p} = dh${j}_${p} * s${j}_${p};` +
          ` let d${c.H + j}_${p} = dh${j}_${p} * h${j}_${p} * (vec4f(1.0) - s${j}_${p});`,
      );
    }
  }
  return L.join("\n    ");
}

/**
 * Neuron-level model backward for tick t on the critical path, invocation per (neuron, chunk of
 * row quads): recomputes the forward, reads dL/dz from `DZ` (`[D, Bp]` as vec4s over row
 * quads), stores dL/dA and dL/dG of the output GLU into layers 2t, 2t+1 of the buffer `DAGB`
 * (rows of `rowPitch(D)` texels; copied into the texture `DAG` after the last tick, the weight
 * gradients come later from them, see {@link nlmGradSpec}), writes dL/dpre_t into `Dpre` (layer
 * t) and shifts the pending trace gradients (`Cin` → `Cout`, rows k·Bq + rq for history index
 * t + k; `Cin` unread when `first`). `Cout` is a storage buffer with rows of `rowPitch(D)`
 * texels, copied into the `Cin` texture before the next tick: on lavapipe a texel store costs
 * several times a vec4 buffer store, and these M − 1 stores per row quad dominated the kernel
 * (142 → 91 ms CPU per bench step, 67 with `DAG` as a buffer too), while texel loads stay the fast way to read them back.
 */
export function nlmBwdSpec(c: CtmDims, RQ = NLM_BWD_RQ): FusedSpec {
  const { O1, Bq, nChunks, CBq } = derived(c);
  const M = c.M, pitch = rowPitch(c.D);
  const P = range(RQ);
  const each = (fn: (p: number) => string) => P.map(fn).join(" ");
  const L: string[] = [];
  L.push(`if (tid >= ${c.D * nChunks}u) { return; }`);
  L.push(`let n = tid % ${c.D}u; let cq0 = (tid / ${c.D}u) * ${CBq}u;`);
  L.push(nlmWeights(c));
  L.push(...rowLoop(c, P));
  L.push(`  ${traceLoads(c, P)}`);
  L.push(`  ${nlmForward(c, P)}`);
  L.push(`  ${each((p) => `let dz_${p} = select(vec4f(0.0), DZ[n * ${Bq}u + rq${p}], ok${p});`)}`);
  L.push(
    `  ${
      each((p) =>
        `let dA_${p} = dz_${p} * sG_${p}; let dG_${p} = dz_${p} * A_${p} * sG_${p} * (vec4f(1.0) - sG_${p});`
      )
    }`,
  );
  for (const p of P) {
    L.push(
      `  if (ok${p}) {`,
      `    DAGB[(2u * P.t * ${Bq}u + rq${p}) * ${pitch}u + n] = dA_${p};`,
      `    DAGB[((2u * P.t + 1u) * ${Bq}u + rq${p}) * ${pitch}u + n] = dG_${p};`,
      `  }`,
    );
  }
  if (c.deep) L.push(`  ${hiddenGrads(c, range(c.H), P, v2)}`);
  else L.push(`  ${each((p) => `let d0_${p} = dA_${p}; let d1_${p} = dG_${p};`)}`);
  for (let m = 0; m < M; m++) {
    for (const p of P) {
      let e = `d0_${p} * vec4f(${w1(c, m, 0)})`;
      for (let o = 1; o < O1; o++) e = `fma(d${o}_${p}, vec4f(${w1(c, m, o)}), ${e})`;
      L.push(`  let dx${m}_${p} = ${e};`);
    }
  }
  // trace-gradient shift register
  for (const p of P) {
    L.push(`  if (ok${p}) {`);
    if (M === 1) {
      L.push(`    textureStore(Dpre, vec2u(n, rq${p}), P.t, dx0_${p});`);
    } else {
      for (let k = 0; k <= M - 2; k++) L.push(`    var cin${k} = vec4f(0.0);`);
      L.push(`    if (P.first == 0u) {`);
      for (let k = 0; k <= M - 2; k++) L.push(`      cin${k} = ${tl("Cin", "n", `${k * Bq}u + rq${p}`)};`);
      L.push(`    }`);
      L.push(`    textureStore(Dpre, vec2u(n, rq${p}), P.t, cin${M - 2} + dx${M - 1}_${p});`);
      for (let k = 0; k <= M - 2; k++) {
        const v = k >= 1 ? `cin${k - 1} + dx${k}_${p}` : `dx0_${p}`;
        L.push(`    COUT[(${k * Bq}u + rq${p}) * ${pitch}u + n] = ${v};`);
      }
    }
    L.push(`  }`);
  }
  L.push(`}`);
  return spec(
    "ctm nlm bwd",
    ["t", "first"],
    [ro("DZ", "vec4<f32>"), rw("COUT", "vec4<f32>"), rw("DAGB", "vec4<f32>")],
    [
      ...nlmTex(c),
      { name: "Cin", kind: "r" },
      { name: "Dpre", kind: "w" },
    ],
    L.join("\n  "),
  );
}

/**
 * Hidden units per block of {@link nlmGradSpec} (deep NLMs). On lavapipe one block of 16 (the
 * bench's H = 16) costs ~10% less CPU than two of 8 and compiles ~3 s longer (once: Mesa caches
 * it); blocks of 4 are 45% slower.
 */
export const NLM_GRAD_JB = 16;

/** Blocks of hidden units of {@link nlmGradSpec}, one dispatch of D invocations each. */
export function nlmGradBlocks(c: CtmDims): number {
  return c.deep ? Math.ceil(c.H / Math.min(c.H, NLM_GRAD_JB)) : 1;
}

/**
 * NLM parameter gradients summed over all ticks and rows for block `bI` of hidden units (j and
 * j+H for j in the block; one dispatch per block, invocation per neuron): recomputes the block's first-layer outputs from the trace, takes
 * dL/dA, dL/dG from `DAG` (see {@link nlmBwdSpec}) and writes dW1 `[M, O1, D]`, db1
 * `[1, D, O1]`, dW2 `[H, 2, D]`, db2 `[1, D, 2]` entries of its block, and into
 * `GTP[bI·D + n]`, `GTP[(nBlocks + bI)·D + n]` its parts of dL/dT1, dL/dT2 (summed by the
 * caller). The weights
 * hold `w/T`, so with ŵ = w/T: dL/dw = dL/dŵ / T and dL/dT = −Σ ŵ·dL/dŵ / T (biases alike).
 */
export function nlmGradSpec(c: CtmDims, bI: number): FusedSpec {
  const { O1, Bq, W1q } = derived(c);
  const JB = Math.min(c.H, NLM_GRAD_JB), nB = nlmGradBlocks(c);
  const P = [0];
  const L: string[] = [];
  L.push(`if (tid >= ${c.D}u) { return; }`);
  L.push(`let n = tid;`);
  L.push(`let i1 = 1.0 / TP1[P.t1Off]; let i2 = 1.0 / TP2[P.t2Off];`);
  {
    const js = c.deep ? range(Math.min(JB, c.H - bI * JB)).map((x) => x + bI * JB) : [];
    const os = c.deep ? [...js, ...js.map((j) => c.H + j)] : [0, 1];
    const B: string[] = [];
    // weight texels holding this block's entries
    const need = new Set<number>();
    if (c.deep) { for (let m = 0; m < c.M; m++) for (const o of os) need.add((m * O1 + o) >> 2); }
    else for (let r = 0; r < W1q; r++) need.add(r);
    for (const r of [...need].sort((a, b) => a - b)) B.push(`let wt${r} = ${tl("W1", "n", `${r}u`)};`);
    for (const r of new Set(os.map((o) => o >> 2))) B.push(`let bt${r} = ${tl("B1", "n", `${r}u`)};`);
    if (c.deep) {
      for (const r of new Set(js.flatMap((j) => [(2 * j) >> 2, (2 * j + 1) >> 2]))) {
        B.push(`let vt${r} = ${tl("W2", "n", `${r}u`)};`);
      }
      B.push(`let et = ${tl("B2", "n", "0u")};`);
    }
    const acc: string[] = [];
    for (let m = 0; m < c.M; m++) for (const o of os) acc.push(`gw${m}_${o}`);
    for (const o of os) acc.push(`gc${o}`);
    if (c.deep) { for (const j of js) acc.push(`gv${j}_0`, `gv${j}_1`); }
    const withE = bI === 0;
    if (withE) acc.push(`ge0`, `ge1`);
    for (const a of acc) B.push(`var ${a} = 0.0;`);
    B.push(`for (var t = 0u; t < ${c.T}u; t++) {`, `for (var rq = 0u; rq < ${Bq}u; rq++) {`);
    B.push(
      `  let dA_0 = ${tl("DAG", "n", "rq", "2u * t")}; let dG_0 = ${tl("DAG", "n", "rq", "2u * t + 1u")};`,
    );
    B.push(`  ${traceLoads(c, P, "t", () => "rq")}`);
    if (c.deep) {
      B.push(`  ${firstLayer(c, os, P)}`);
      for (const j of js) B.push(`  let s${j}_0 = sg4(u${c.H + j}_0); let h${j}_0 = u${j}_0 * s${j}_0;`);
      B.push(`  ${hiddenGrads(c, js, P, v2)}`);
      for (const j of js) B.push(`  gv${j}_0 += dot(h${j}_0, dA_0); gv${j}_1 += dot(h${j}_0, dG_0);`);
    } else {
      B.push(`  let d0_0 = dA_0; let d1_0 = dG_0;`);
    }
    if (withE) B.push(`  ge0 += dot(dA_0, vec4f(1.0)); ge1 += dot(dG_0, vec4f(1.0));`);
    for (const o of os) B.push(`  gc${o} += dot(d${o}_0, vec4f(1.0));`);
    for (let m = 0; m < c.M; m++) for (const o of os) B.push(`  gw${m}_${o} += dot(x${m}_0, d${o}_0);`);
    B.push(`}`, `}`);
    // write out
    const pT1: string[] = [], pT2: string[] = [];
    for (let m = 0; m < c.M; m++) {
      for (const o of os) {
        B.push(`GW1[${(m * O1 + o) * c.D}u + n] = gw${m}_${o} * i1;`);
        pT1.push(`gw${m}_${o} * ${w1(c, m, o)}`);
      }
    }
    for (const o of os) {
      B.push(`GB1[n * ${O1}u + ${o}u] = gc${o} * i1;`);
      pT1.push(`gc${o} * ${ent("bt", o)}`);
    }
    if (c.deep) {
      for (const j of js) {
        for (const k of [0, 1]) {
          B.push(`GW2[${(2 * j + k) * c.D}u + n] = gv${j}_${k} * i2;`);
          pT2.push(`gv${j}_${k} * ${v2(j, k)}`);
        }
      }
      if (withE) {
        B.push(`GB2[n * 2u] = ge0 * i2; GB2[n * 2u + 1u] = ge1 * i2;`);
        pT2.push(`ge0 * et.x`, `ge1 * et.y`);
      }
    }
    B.push(`var pt1 = 0.0;`, ...pT1.map((x) => `pt1 += ${x};`));
    B.push(`var pt2 = 0.0;`, ...pT2.map((x) => `pt2 += ${x};`));
    B.push(`GTP[${bI * c.D}u + n] = -pt1 * i1; GTP[${(nB + bI) * c.D}u + n] = -pt2 * i2;`);
    L.push(...B);
  }
  return spec(
    "ctm nlm grads",
    ["t1Off", "t2Off"],
    [ro("TP1"), ro("TP2"), rw("GW1"), rw("GB1"), rw("GW2"), rw("GB2"), rw("GTP")],
    [...nlmTex(c), { name: "DAG", kind: "r" }],
    L.join("\n  "),
  );
}
