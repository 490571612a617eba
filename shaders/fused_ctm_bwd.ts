/**
 * Per-tick backward kernels of the fused CTM recurrence other than the neuron-level models
 * (`fused_ctm_nlm.ts`): GLU + LayerNorm, the synapse input gradient, attention, and the
 * synchronisation gradients into dL/dz. Layouts: see `fused_ctm.ts`; dL/dz lives in the storage
 * buffer `DZ` `[D, Bp]` (neuron-major, rows past B zero) so that the NLM backward reads four rows
 * per vec4.
 */
import {
  type CtmDims,
  derived,
  f,
  type FusedSpec,
  mmLoop,
  pairIdx,
  range,
  rw,
  spec,
  tl,
  XYZW,
  zAt,
} from "./fused_ctm.ts";

/**
 * LayerNorm + GLU backward for tick t, thread per row quad: from dL/dpre (quad-layout `Dpre`
 * layer t) to dL/dU (`DU` layer t, value and gate halves, rows < B).
 */
export function lnBwdSpec(c: CtmDims): FusedSpec {
  const { Dq, Bq } = derived(c);
  const Q = range(4);
  const load = [
    `let lw = ${tl("Ln", "n4", "0u")};`,
    ...Q.map((k) => `let g${k} = ${tl("Dpre", `4u * n4 + ${k}u`, "rq", "t")};`),
    ...Q.map((q) =>
      `let a${q} = ${tl("Ut", "n4", `r${q}`, "t")}; let s${q} = sg4(${
        tl("Ut", `n4 + ${Dq}u`, `r${q}`, "t")
      }); ` +
      `let xh${q} = (a${q} * s${q} - vec4f(mu.${XYZW[q]})) * rstd.${XYZW[q]}; ` +
      `let dxh${q} = vec4f(${Q.map((k) => `g${k}.${XYZW[q]}`).join(", ")}) * lw;`
    ),
  ].join("\n    ");
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
  if (tid >= ${Bq}u) { return; }
  let rq = tid; let t = P.t;
  ${Q.map((q) => `let r${q} = min(4u * rq + ${q}u, ${c.B - 1}u);`).join(" ")}
  let mu = ${tl("Stats", "0u", "rq", "t")}; let rstd = ${tl("Stats", "1u", "rq", "t")};
  var sum1 = vec4f(0.0); var sum2 = vec4f(0.0);
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${load}
    sum1 += vec4f(${Q.map((q) => `dot(dxh${q}, vec4f(1.0))`).join(", ")});
    sum2 += vec4f(${Q.map((q) => `dot(dxh${q}, xh${q})`).join(", ")});
  }
  let m1 = sum1 / ${f(c.D)}; let m2 = sum2 / ${f(c.D)};
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${load}
    ${
      Q.map((q) =>
        `if (4u * rq + ${q}u < ${c.B}u) {
      let dh = rstd.${XYZW[q]} * (dxh${q} - vec4f(m1.${XYZW[q]}) - xh${q} * m2.${XYZW[q]});
      textureStore(DU, vec2u(n4, r${q}), t, dh * s${q});
      textureStore(DU, vec2u(n4 + ${Dq}u, r${q}), t, dh * a${q} * s${q} * (vec4f(1.0) - s${q}));
    }`
      ).join("\n    ")
    }
  }`,
  );
}

/**
 * Synapse input gradient for tick t: `dX = dU · W'`; the attention part goes to `DO` (layer t),
 * the z part overwrites `DZ` (`[D, Bp]` as vec4s over row quads, rows past B zero). Thread per
 * (TM rows, TN4 texels of dX); TM a multiple of 4.
 */
export function synBwdSpec(c: CtmDims, TM: number, TN4: number): FusedSpec {
  const { Dq, dq, Bq } = derived(c);
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
    }
    L.push(`}`);
  }
  for (let iq = 0; iq < TM / 4; iq++) {
    L.push(`{ let rq = r0 / 4u + ${iq}u;`);
    L.push(`  let valid = vec4u(4u * rq) + vec4u(0u, 1u, 2u, 3u) < vec4u(${c.B}u);`);
    L.push(`  if (rq < ${Bq}u) {`);
    for (let j = 0; j < TN4; j++) {
      L.push(`    if (j0 + ${j}u >= ${dq}u && j0 + ${j}u < ${N4}u) {`);
      for (let k = 0; k < 4; k++) {
        const v = range(4).map((r) => `c${4 * iq + r}_${j}.${XYZW[k]}`).join(", ");
        L.push(
          `      DZ[(4u * (n${j} - ${dq}u) + ${k}u) * ${Bq}u + rq] = select(vec4f(0.0), vec4f(${v}), valid);`,
        );
      }
      L.push(`    }`);
    }
    L.push(`  }`, `}`);
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
 * unscaled query), dL/dscores (`DS`) and the head's part of dL/dS_act (texture `DSP`, texel
 * `(p/4, b·heads + h)`: four pairs per store instead of one storage store per pair).
 */
export function attnBwdSpec(c: CtmDims): FusedSpec {
  const { dhq, Lq, SaQ } = derived(c);
  const scale = 1 / Math.sqrt(c.d / c.nh);
  const I = range(dhq), Ls = range(c.L);
  const wOf = (l: number) => `w${l >> 2}.${XYZW[l & 3]}`;
  return spec(
    "ctm attention bwd",
    ["t"],
    [],
    [
      { name: "DO", kind: "r" },
      { name: "Wt", kind: "r" },
      { name: "Kt", kind: "r" },
      { name: "Vt", kind: "r" },
      { name: "Wq", kind: "r" },
      { name: "DQ", kind: "w" },
      { name: "DS", kind: "w" },
      { name: "DSP", kind: "w" },
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
  for (var p4 = 0u; p4 < ${SaQ}u; p4++) {
    var v = vec4f(0.0);
    ${
      range(4).map((q) => {
        // pairs past Sa (a partial last texel) read a clamped row and store 0
        const p = c.Sa % 4 === 0 ? `4u * p4 + ${q}u` : `min(4u * p4 + ${q}u, ${c.Sa - 1}u)`;
        const e = I.map((i) => `dot(dq${i}, ${tl("Wq", `c0 + ${i}u`, p)})`).join(" + ");
        return c.Sa % 4 === 0
          ? `v.${XYZW[q]} = ${e};`
          : `v.${XYZW[q]} = select(0.0, ${e}, 4u * p4 + ${q}u < ${c.Sa}u);`;
      }).join("\n    ")
    }
    textureStore(DSP, vec2u(p4, row), 0u, v);
  }`,
  );
}

/**
 * Gradient of z layer j from the synchronisations, thread per row b: the output
 * synchronisation at layer j (incoming dL/dS_out for tick j−1) and, for j < T, the action
 * synchronisation of tick j (dL/dS_act, summed over the heads' parts in the texture `DSP`).
 * Carries dα, dβ to layer j−1 (`C*`), accumulates dL/dr per (b, p) (`DR*`) and scatter-adds the
 * pair-product gradients into `DZ` (`[D, Bp]`, zero before the first call).
 *
 * With `vec4` (both synchronisation sizes multiples of 4, offsets in vec4s) every per-pair buffer
 * is read and written four pairs at a time: lavapipe pays per storage access, and these are all
 * but the scatter into `DZ`.
 */
export function dzAsmSpec(c: CtmDims, vec4 = false): FusedSpec {
  const { Bp } = derived(c);
  const V = vec4 ? 4 : 1;
  const T = vec4 ? "vec4<f32>" : "f32";
  const zero = vec4 ? "vec4f(0.0)" : "0.0";
  const part = (
    kind: "O" | "A",
    S: number,
    dS: string,
    hasCarryIn: string,
    firstDr: string,
  ) => {
    const n = S / V; // entries per row
    // decay rate (row 0) and β_i (row i + 1) of this entry, from the Dec texture
    const dec = (row: string) =>
      vec4 ? tl(`Dec${kind}`, "p", row) : `comp(${tl(`Dec${kind}`, "p >> 2u", row)}, p & 3u)`;
    const scatter = (q: string, li: string, ri: string) => `
    { let li = ${li}; let ri = ${ri};
      let zl = ${zAt("li", "j")}; let zr = ${zAt("ri", "j")};
      DZ[li * ${Bp}u + b] += da${q} * zr;
      DZ[ri * ${Bp}u + b] += da${q} * zl; }`;
    const scatters = vec4
      ? `let il = ${tl(`Idx${kind}`, "p", "0u")}; let ir = ${tl(`Idx${kind}`, "p", "1u")};` +
        range(4).map((q) => scatter(`.${XYZW[q]}`, `u32(il.${XYZW[q]})`, `u32(ir.${XYZW[q]})`)).join("")
      : scatter("", pairIdx(`Idx${kind}`, "p", 0), pairIdx(`Idx${kind}`, "p", 1));
    return `
  for (var p = 0u; p < ${n}u; p++) {
    let dS = ${dS};
    let al = Al${kind}[(j * ${c.B}u + b) * ${n}u + p];
    let be = ${dec("j + 1u")};
    let r = ${dec("0u")};
    let sb = sqrt(be);
    var da = dS / sb;
    var db = -al * dS / (2.0 * be * sb);
    if (${hasCarryIn}) { da += r * CA${kind}[b * ${n}u + p]; db += r * CB${kind}[b * ${n}u + p]; }
    if (j > 0u) {
      let g = Al${kind}[((j - 1u) * ${c.B}u + b) * ${n}u + p] * da + ${dec("j")} * db;
      if (${firstDr}) { DR${kind}[b * ${n}u + p] = g; } else { DR${kind}[b * ${n}u + p] += g; }
    }
    CA${kind}[b * ${n}u + p] = da; CB${kind}[b * ${n}u + p] = db;
    ${scatters}
  }`;
  };
  const buf = (
    name: string,
    rwAccess = false,
  ) => ({ name, type: T, access: rwAccess ? "rw" : "read" } as const);
  return spec(
    `ctm sync bwd${vec4 ? " vec4" : ""}`,
    ["j", "dsOff"],
    [
      buf("AlO"),
      buf("AlA"),
      buf("DSO"),
      buf("CAO", true),
      buf("CBO", true),
      buf("CAA", true),
      buf("CBA", true),
      buf("DRO", true),
      buf("DRA", true),
      rw("DZ"),
    ],
    [
      { name: "Z", kind: "r" },
      { name: "IdxO", kind: "r" },
      { name: "IdxA", kind: "r" },
      { name: "DecO", kind: "r" },
      { name: "DecA", kind: "r" },
      { name: "DSP", kind: "r" },
    ],
    `
  if (tid >= ${c.B}u) { return; }
  let b = tid; let j = P.j;
  ${
      part(
        "O",
        c.So,
        `select(${zero}, DSO[P.dsOff + ((j - 1u) * ${c.B}u + b) * ${c.So / V}u + p], j > 0u)`,
        `j < ${c.T}u`,
        `j == ${c.T}u`,
      )
    }
  if (j < ${c.T}u) {
    ${
      part(
        "A",
        c.Sa,
        range(c.nh).map((h) =>
          vec4
            ? tl("DSP", "p", `b * ${c.nh}u + ${h}u`)
            : `comp(${tl("DSP", "p >> 2u", `b * ${c.nh}u + ${h}u`)}, p & 3u)`
        ).join(" + "),
        `j < ${c.T - 1}u`,
        `j == ${c.T - 1}u`,
      )
    }
  }`,
  );
}
