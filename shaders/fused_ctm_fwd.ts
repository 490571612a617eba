/**
 * Per-tick forward kernels of the fused CTM recurrence other than the neuron-level models
 * (`fused_ctm_nlm.ts`): action synchronisation + attention, the synapse matmul, GLU + LayerNorm,
 * and the output synchronisation of all ticks. Layouts: see `fused_ctm.ts`.
 */
import {
  type CtmDims,
  derived,
  f,
  type FusedSpec,
  mmLoop,
  mmLoopQuad,
  pairIdx,
  range,
  rw,
  spec,
  tl,
  XYZW,
  zAt,
} from "./fused_ctm.ts";

/**
 * Action synchronisation, query, attention for one tick. Thread per (b, head): every head
 * recomputes the Sa synchronisation values it needs (decay rates and β_t from the `DecA`
 * texture); head 0 stores them (α history, `S` texture, tracking). Writes `Q`, `W` and `O` (its
 * head's texels) at layer t.
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
    if (t > 0u) { al = comp(${
    tl("DecA", "p >> 2u", "0u")
  }, p & 3u) * AlA[((t - 1u) * ${c.B}u + b) * ${c.Sa}u + p] + pp; }
    let s = al / sqrt(comp(${tl("DecA", "p >> 2u", "t + 1u")}, p & 3u));
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
    ["t", "track"],
    [rw("AlA"), rw("SAT"), rw("ATT")],
    [
      { name: "Z", kind: "r" },
      { name: "IdxA", kind: "r" },
      { name: "DecA", kind: "r" },
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
 * Synapse forward for tick t: `U = [O | Z_t] · W'ᵀ + b'` (value and gate halves), stored in `U`.
 * Thread per (TM rows, TN4 value texels + the matching gate texels); TM a multiple of 4 (the
 * quad-layout `Z` gives four rows per texel).
 */
export function synFwdSpec(c: CtmDims, TM: number, TN4: number): FusedSpec {
  const { Dq, dq, Bq } = derived(c);
  const nCB = Math.ceil(Dq / TN4), nRB = Math.ceil(c.B / TM);
  const cols: string[] = [];
  for (let j = 0; j < TN4; j++) cols.push(`ja${j}`);
  for (let j = 0; j < TN4; j++) cols.push(`jg${j}`);
  const L: string[] = [];
  L.push(`if (tid >= ${nCB * nRB}u) { return; }`);
  L.push(`let cb = tid % ${nCB}u; let r0 = (tid / ${nCB}u) * ${TM}u; let j0 = cb * ${TN4}u; let t = P.t;`);
  for (let i = 0; i < TM; i++) L.push(`let ri${i} = min(r0 + ${i}u, ${c.B - 1}u);`);
  for (let iq = 0; iq < TM / 4; iq++) L.push(`let rq${iq} = min(r0 / 4u + ${iq}u, ${Bq - 1}u);`);
  for (let j = 0; j < TN4; j++) {
    L.push(`let ja${j} = min(j0 + ${j}u, ${Dq - 1}u); let jg${j} = ja${j} + ${Dq}u;`);
  }
  for (let i = 0; i < TM; i++) for (let j = 0; j < 2 * TN4; j++) L.push(`var c${i}_${j} = vec4f(0.0);`);
  L.push(
    mmLoop(TM, cols, "0u", `${dq}u`, (i) => tl("Ot", "k4", `ri${i}`, "t"), (col, k) => tl("Wt", col, k)),
  );
  L.push(
    mmLoopQuad(
      TM / 4,
      cols,
      "0u",
      `${c.D}u`,
      (iq) => tl("Z", "k", `rq${iq}`, "t"),
      (col, k) => tl("Wt", col, `${4 * dq}u + ${k}`),
    ),
  );
  for (let j = 0; j < 2 * TN4; j++) L.push(`let bias${j} = ${tl("Bs", cols[j], "0u")};`);
  for (let i = 0; i < TM; i++) {
    L.push(`if (r0 + ${i}u < ${c.B}u) {`);
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

/** WGSL of the four rows `r{q}` of row quad `rq` (clamped to B−1) and `h{q}` at texel n4. */
const gluRows = (c: CtmDims) =>
  range(4).map((q) => `let r${q} = min(4u * rq + ${q}u, ${c.B - 1}u);`).join(" ");
const gluAt = (Dq: number, q: number) =>
  `let h${q} = ${tl("Ut", "n4", `r${q}`, "t")} * sg4(${tl("Ut", `n4 + ${Dq}u`, `r${q}`, "t")});`;

/**
 * GLU + LayerNorm of the synapse output for tick t, thread per row quad: `pre = LN(a·σ(g))`
 * into layer t of the quad-layout `Pre` (rows past B zero); (mean, 1/std) of the four rows into
 * texels 0, 1 of `Stats`.
 */
export function lnFwdSpec(c: CtmDims): FusedSpec {
  const { Dq, Bq } = derived(c);
  const Q = range(4);
  const h = Q.map((q) => gluAt(Dq, q)).join(" ");
  const hsum = (v: string) => `dot(${v}, vec4f(1.0))`;
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
  if (tid >= ${Bq}u) { return; }
  let rq = tid; let t = P.t;
  ${gluRows(c)}
  // Mean and summed squared deviations in one pass, merging each texel's four values in (Chan
  // et al.'s pairwise update): as robust as two passes, without recomputing the GLU.
  var mu = vec4f(0.0); var m2 = vec4f(0.0);
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${h}
    let cm = vec4f(${Q.map((q) => hsum(`h${q}`)).join(", ")}) * 0.25;
    ${Q.map((q) => `let e${q} = h${q} - vec4f(cm.${XYZW[q]});`).join(" ")}
    let na = 4.0 * f32(n4);
    let dl = cm - mu;
    mu += dl * (4.0 / (na + 4.0));
    m2 += vec4f(${Q.map((q) => `dot(e${q}, e${q})`).join(", ")}) + dl * dl * (na * 4.0 / (na + 4.0));
  }
  let rstd = vec4f(1.0) / sqrt(m2 / ${f(c.D)} + vec4f(1e-5));
  textureStore(Stats, vec2u(0u, rq), t, mu);
  textureStore(Stats, vec2u(1u, rq), t, rstd);
  let valid = ${`(vec4u(4u * rq) + vec4u(0u, 1u, 2u, 3u) < vec4u(${c.B}u))`};
  for (var n4 = 0u; n4 < ${Dq}u; n4++) {
    ${h}
    let lw = ${tl("Ln", "n4", "0u")}; let lb = ${tl("Ln", "n4", "1u")};
    ${Q.map((q) => `let y${q} = (h${q} - vec4f(mu.${XYZW[q]})) * rstd.${XYZW[q]} * lw + lb;`).join("\n    ")}
    ${
      Q.map((k) =>
        `textureStore(Pre, vec2u(4u * n4 + ${k}u, rq), t, select(vec4f(0.0), vec4f(${
          Q.map((q) => `y${q}.${XYZW[k]}`).join(", ")
        }), valid));`
      ).join("\n    ")
    }
    if (P.track != 0u) {
      ${
      Q.map((q) => `if (valid.${XYZW[q]}) { PRE[(t * ${c.B}u + 4u * rq + ${q}u) * ${Dq}u + n4] = y${q}; }`)
        .join("\n      ")
    }
    }
  }`,
  );
}

/**
 * Output synchronisation for all ticks at once, thread per (b, p): α history into `AlO`
 * (`[T+1, B, So]`), `S_out` for ticks 0…T-1 into `SO` (`[T, B, So]`).
 */
export function syncOutSpec(c: CtmDims): FusedSpec {
  return spec(
    "ctm sync out",
    [],
    [rw("AlO"), rw("SO")],
    [
      { name: "Z", kind: "r" },
      { name: "IdxO", kind: "r" },
      { name: "DecO", kind: "r" },
    ],
    `
  if (tid >= ${c.B * c.So}u) { return; }
  let b = tid / ${c.So}u; let p = tid % ${c.So}u;
  let li = ${pairIdx("IdxO", "p", 0)}; let ri = ${pairIdx("IdxO", "p", 1)};
  let r = comp(${tl("DecO", "p >> 2u", "0u")}, p & 3u);
  var al = 0.0;
  for (var j = 0u; j <= ${c.T}u; j++) {
    let pp = ${zAt("li", "j")} * ${zAt("ri", "j")};
    if (j == 0u) { al = pp; } else { al = r * al + pp; }
    AlO[(j * ${c.B}u + b) * ${c.So}u + p] = al;
    if (j > 0u) { SO[((j - 1u) * ${c.B}u + b) * ${c.So}u + p] = al / sqrt(comp(${
      tl("DecO", "p >> 2u", "j + 1u")
    }, p & 3u)); }
  }`,
  );
}
