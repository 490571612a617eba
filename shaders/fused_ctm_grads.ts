/**
 * Parameter gradients of the fused CTM recurrence summed over all ticks in single passes after
 * the backward loop (the NLM weights' are in `fused_ctm_nlm.ts`): synapse and query weight outer
 * products, bias column sums, dK/dV, LayerNorm affine, start trace. Layouts: see `fused_ctm.ts`.
 */
import { type CtmDims, derived, type FusedSpec, range, rw, spec, tl, XYZW } from "./fused_ctm.ts";

/** Geometry of an {@link outerSpec} product. */
export interface OuterOpts {
  /** Texels along m and n; m and n texels per thread (TM4 counts neurons, not texels, with `quadA`). */
  M4: number;
  N4: number;
  TM4: number;
  TN4: number;
  /** Valid m, n; output strides. */
  Mrows: number;
  Ncols: number;
  sm: number;
  sn: number;
  /** A in the quad layout (texel (m, rq) = column m of four rows; `M4` then counts columns). */
  quadA?: boolean;
}

/**
 * `G[off + m·sm + n·sn] = Σ_{t<T, b<B} A_tb[m] · B_tb[n]` for `m < Mrows`, `n < Ncols`, with `A`
 * and `Bt` textures holding row b of tick t at layer t. Thread per (block of m, TN4 texels of
 * n), n fastest so the lanes of a SIMD batch share their A texels. Row layout A: TM4 texels of m
 * per thread, one row per step; quad layout A (`quadA`, rows past B zero): TM4 columns m, four
 * rows per step.
 */
export function outerSpec(name: string, c: CtmDims, o: OuterOpts): FusedSpec {
  const { M4, N4, TM4, TN4 } = o;
  const { Bq } = derived(c);
  const nCB = Math.ceil(N4 / TN4), nRB = Math.ceil(M4 / TM4);
  const rowsOfM = o.quadA ? 1 : 4;
  const L: string[] = [];
  L.push(`if (tid >= ${nCB * nRB}u) { return; }`);
  L.push(`let m0 = (tid / ${nCB}u) * ${TM4}u; let j0 = (tid % ${nCB}u) * ${TN4}u;`);
  for (let i = 0; i < TM4; i++) L.push(`let mi${i} = min(m0 + ${i}u, ${M4 - 1}u);`);
  for (let j = 0; j < TN4; j++) L.push(`let nj${j} = min(j0 + ${j}u, ${N4 - 1}u);`);
  for (let i = 0; i < rowsOfM * TM4; i++) {
    for (let j = 0; j < TN4; j++) L.push(`var c${i}_${j} = vec4f(0.0);`);
  }
  if (o.quadA) {
    L.push(`for (var t = 0u; t < ${c.T}u; t++) {`, `for (var rq = 0u; rq < ${Bq}u; rq++) {`);
    for (let i = 0; i < TM4; i++) L.push(`  let a${i} = ${tl("A", `mi${i}`, "rq", "t")};`);
    for (let r = 0; r < 4; r++) {
      for (let j = 0; j < TN4; j++) {
        L.push(`  let b${r}_${j} = ${tl("Bt", `nj${j}`, `min(4u * rq + ${r}u, ${c.B - 1}u)`, "t")};`);
      }
    }
    for (let i = 0; i < TM4; i++) {
      for (let j = 0; j < TN4; j++) {
        let e = `c${i}_${j}`;
        for (let r = 0; r < 4; r++) e = `fma(vec4f(a${i}.${XYZW[r]}), b${r}_${j}, ${e})`;
        L.push(`  c${i}_${j} = ${e};`);
      }
    }
  } else {
    L.push(`for (var t = 0u; t < ${c.T}u; t++) {`, `for (var b = 0u; b < ${c.B}u; b++) {`);
    for (let i = 0; i < TM4; i++) L.push(`  let a${i} = ${tl("A", `mi${i}`, "b", "t")};`);
    for (let j = 0; j < TN4; j++) L.push(`  let b${j} = ${tl("Bt", `nj${j}`, "b", "t")};`);
    for (let i = 0; i < TM4; i++) {
      for (let q = 0; q < 4; q++) {
        for (let j = 0; j < TN4; j++) {
          const r = 4 * i + q;
          L.push(`  c${r}_${j} = fma(vec4f(a${i}.${XYZW[q]}), b${j}, c${r}_${j});`);
        }
      }
    }
  }
  L.push(`}`, `}`);
  // m index of accumulator row i
  const mOf = (i: number) => (o.quadA ? `m0 + ${i}u` : `4u * (m0 + ${i >> 2}u) + ${i & 3}u`);
  for (let i = 0; i < rowsOfM * TM4; i++) {
    L.push(`{ let m = ${mOf(i)};`, `  if (m < ${o.Mrows}u) {`);
    for (let j = 0; j < TN4; j++) {
      for (let k = 0; k < 4; k++) {
        L.push(
          `    { let n = 4u * (j0 + ${j}u) + ${k}u; if (n < ${o.Ncols}u) { G[P.off + m * ${o.sm}u + n * ${o.sn}u] = c${i}_${j}.${
            XYZW[k]
          }; } }`,
        );
      }
    }
    L.push(`  }`, `}`);
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
export function outerThreads(o: OuterOpts): number {
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
 * dK, dV summed over ticks into `DKV` (`[B, L, 2d]`, dK in columns 0…d-1), thread per
 * (b, head, l4): `dV = Σ_t w·dO`, `dK = Σ_t dscores · q_scaled`.
 */
export function dkvSpec(c: CtmDims): FusedSpec {
  const { dq, dhq, Lq } = derived(c);
  const I = range(dhq), Q = range(4);
  return spec(
    "ctm dK dV",
    [],
    [rw("DKV", "vec4<f32>")],
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
          `v${q}_${i} = fma(vec4f(w.${XYZW[q]}), do${i}, v${q}_${i}); k${q}_${i} = fma(vec4f(ds.${
            XYZW[q]
          }), q${i}, k${q}_${i});`
        ).join(" ")
      ).join("\n    ")
    }
  }
  ${
      Q.map((q) =>
        `if (4u * l4 + ${q}u < ${c.L}u) {
    let o = (b * ${c.L}u + 4u * l4 + ${q}u) * ${2 * dq}u + c0;
    ${I.map((i) => `DKV[o + ${i}u] = k${q}_${i}; DKV[o + ${dq + i}u] = v${q}_${i};`).join(" ")}
  }`
      ).join("\n  ")
    }`,
  );
}

/** LayerNorm parameter gradients summed over ticks and rows, thread per neuron quad. */
export function dlnSpec(c: CtmDims): FusedSpec {
  const { Dq, Bq } = derived(c);
  const Q = range(4);
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
    for (var rq = 0u; rq < ${Bq}u; rq++) {
      let mu = ${tl("Stats", "0u", "rq", "t")}; let rstd = ${tl("Stats", "1u", "rq", "t")};
      ${Q.map((k) => `let g${k} = ${tl("Dpre", `4u * n4 + ${k}u`, "rq", "t")};`).join(" ")}
      ${
      Q.map((q) => {
        const r = `min(4u * rq + ${q}u, ${c.B - 1}u)`;
        return `{ let h = ${tl("Ut", "n4", r, "t")} * sg4(${tl("Ut", `n4 + ${Dq}u`, r, "t")});
        let g = vec4f(${Q.map((k) => `g${k}.${XYZW[q]}`).join(", ")});
        gw = fma(g, (h - vec4f(mu.${XYZW[q]})) * rstd.${XYZW[q]}, gw); gb += g; }`;
      }).join("\n      ")
    }
    }
  }
  DW[n4] = gw; DB[n4] = gb;`,
  );
}

/**
 * Start-trace gradient `[D, M]` from the pending trace gradients left after tick 0 (quad-layout
 * `C`, rows k·Bq + rq for history slot k), summed over rows; slot 0 gets 0. Thread per (neuron,
 * slot).
 */
export function dstSpec(c: CtmDims): FusedSpec {
  const { Bq } = derived(c);
  return spec(
    "ctm d start_trace",
    ["hasC"],
    [rw("G")],
    [{ name: "C", kind: "r" }],
    `
  if (tid >= ${c.M * c.D}u) { return; }
  let n = tid % ${c.D}u; let m = tid / ${c.D}u;
  var v = vec4f(0.0);
  if (m > 0u && P.hasC != 0u) {
    for (var rq = 0u; rq < ${Bq}u; rq++) { v += ${tl("C", "n", `(m - 1u) * ${Bq}u + rq`)}; }
  }
  G[n * ${c.M}u + m] = dot(v, vec4f(1.0));`,
  );
}
