/**
 * Attention backward of the fused CTM recurrence, per tick: from dL/dO (`DO`) to dL/dscores
 * (`DS`), dL/dq (`DQ`, unscaled query) and dL/dS_act. Two forms:
 *
 * - {@link attnBwdSpec}, thread per (row, head), storing each head's part of dL/dS_act as texels
 *   for the synchronisation backward (`dzAsmSpec`) to sum;
 * - {@link attnSyncBwdSpec}, thread per row: every head of the row unrolled, then the
 *   synchronisation backward of the same tick with dL/dS_act computed from the heads' dL/dq in
 *   registers. One dispatch per tick fewer (on lavapipe each costs ~40 µs of queue-thread work
 *   while the workers wait) and no texel round trip; used while the unrolled heads stay small
 *   ({@link attnSyncFits}).
 */
import { type CtmDims, derived, f, type FusedSpec, range, spec, tl, XYZW } from "./fused_ctm.ts";
import { dzAsmParts } from "./fused_ctm_bwd.ts";

/**
 * WGSL of one head's backward for row `b` at tick `t` (both in scope), head `h` (a WGSL u32
 * expression): defines `${pre}dq{i}` for the head's `dh/4` query texels and stores its `DS`
 * and `DQ` texels. Names are prefixed with `pre` so that heads can be unrolled side by side.
 */
function headBwd(c: CtmDims, h: string, pre: string): string {
  const { dhq, Lq } = derived(c);
  const scale = 1 / Math.sqrt(c.d / c.nh);
  const I = range(dhq), Ls = range(c.L);
  const n = (x: string) => `${pre}${x}`;
  const wOf = (l: number) => `${n(`w${l >> 2}`)}.${XYZW[l & 3]}`;
  const L: string[] = [`let ${n("c0")} = (${h}) * ${dhq}u; let ${n("row")} = b * ${c.nh}u + (${h});`];
  for (const i of I) L.push(`let ${n(`do${i}`)} = ${tl("DO", `${n("c0")} + ${i}u`, "b", "t")};`);
  for (const l4 of range(Lq)) L.push(`let ${n(`w${l4}`)} = ${tl("Wt", `${l4}u`, n("row"), "t")};`);
  for (const l of Ls) {
    const terms = I.map((i) => `dot(${n(`do${i}`)}, ${tl("Vt", `${n("c0")} + ${i}u`, `${l}u`, "b")})`);
    L.push(`let ${n(`dw${l}`)} = ${terms.join(" + ")};`);
  }
  L.push(`let ${n("sw")} = ${Ls.map((l) => `${wOf(l)} * ${n(`dw${l}`)}`).join(" + ")};`);
  for (const l of Ls) L.push(`let ${n(`ds${l}`)} = ${wOf(l)} * (${n(`dw${l}`)} - ${n("sw")});`);
  for (const l4 of range(Lq)) {
    const comps = range(4).map((q) => (4 * l4 + q < c.L ? n(`ds${4 * l4 + q}`) : "0.0")).join(", ");
    L.push(`textureStore(DS, vec2u(${l4}u, ${n("row")}), t, vec4f(${comps}));`);
  }
  for (const i of I) {
    const sum = Ls.map((l) => `${n(`ds${l}`)} * ${tl("Kt", `${n("c0")} + ${i}u`, `${l}u`, "b")}`).join(" + ");
    L.push(`let ${n(`dq${i}`)} = (${sum}) * ${f(scale)};`);
    L.push(`textureStore(DQ, vec2u(${n("c0")} + ${i}u, b), t, ${n(`dq${i}`)});`);
  }
  return L.join("\n  ");
}

const attnTextures: FusedSpec["textures"] = [
  { name: "DO", kind: "r" },
  { name: "Wt", kind: "r" },
  { name: "Kt", kind: "r" },
  { name: "Vt", kind: "r" },
  { name: "Wq", kind: "r" },
  { name: "DQ", kind: "w" },
  { name: "DS", kind: "w" },
];

/**
 * Attention backward for tick t, thread per (b, head): `DS`, `DQ` and the head's part of
 * dL/dS_act in the texture `DSP`, texel `(p/4, b·heads + h)` (four pairs per store instead of
 * one storage store per pair).
 */
export function attnBwdSpec(c: CtmDims): FusedSpec {
  const { dhq, SaQ } = derived(c);
  const I = range(dhq);
  return spec(
    "ctm attention bwd",
    ["t"],
    [],
    [...attnTextures, { name: "DSP", kind: "w" }],
    `
  if (tid >= ${c.B * c.nh}u) { return; }
  let b = tid / ${c.nh}u; let h = tid % ${c.nh}u; let t = P.t;
  ${headBwd(c, "h", "")}
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

/** Most unrolled (head, key, query texel) terms of {@link attnSyncBwdSpec} (tests set 0 to force the two kernels). */
export const attnSyncLimit: { terms: number } = { terms: 1024 };

/** Whether {@link attnSyncBwdSpec} keeps its unrolled heads small enough to compile quickly. */
export function attnSyncFits(c: CtmDims): boolean {
  return c.nh * c.L * derived(c).dhq <= attnSyncLimit.terms;
}

/**
 * Attention backward of tick j < T for every head of row b (thread per row), then the
 * synchronisation backward of layer j (see `dzAsmSpec`), whose dL/dS_act for pair p is
 * `Σ_c dot(dq_c, Wq[c, p])` over the row's query texels, straight from registers.
 */
export function attnSyncBwdSpec(c: CtmDims, vec4: boolean): FusedSpec {
  const { dhq } = derived(c);
  const heads = range(c.nh).map((h) => headBwd(c, `${h}u`, `h${h}_`)).join("\n  ");
  const dq = range(c.nh).flatMap((h) => range(dhq).map((i) => [`h${h}_dq${i}`, h * dhq + i] as const));
  const dsPair = (pair: string) =>
    dq.map(([name, c4]) => `dot(${name}, ${tl("Wq", `${c4}u`, pair)})`).join(" + ");
  const dS = vec4 ? `vec4f(${range(4).map((q) => dsPair(`4u * p + ${q}u`)).join(", ")})` : dsPair("p");
  const { bindings, textures, body } = dzAsmParts(c, vec4, dS);
  return spec(
    `ctm attention + sync bwd${vec4 ? " vec4" : ""}`,
    ["j", "dsOff"],
    bindings,
    [...textures, ...attnTextures],
    `
  if (tid >= ${c.B}u) { return; }
  let b = tid; let j = P.j; let t = j;
  ${heads}
  ${body}`,
  );
}
