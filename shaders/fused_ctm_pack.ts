/**
 * Kernels that pack tensors into the `rgba32float` textures of the fused CTM recurrence
 * (`fused_ctm.ts`): a general strided pack and a transposing one with `vec4` loads. Row-major
 * operands whose pitch allows it skip both and use a buffer-to-texture copy
 * (`src/ops/fused_ctm_run.ts`).
 */
import { type FusedSpec, ro, spec, XYZW } from "./fused_ctm.ts";

/**
 * Packs a strided tensor into a texture: texel `(x, rowOff + y)` of layer `layerOff + l`,
 * component q, holds `X[off + l·ls + x·xs + y·ys + q·qs]` (divided by `Dv[dvOff]` with `div`)
 * when `4·(x·vx + y·vy) + q < lim`, else 0. Threads: W·R·NL.
 */
export function packSpec(int: boolean, div = false): FusedSpec {
  const rd = (i: string) => (int ? `f32(X[${i}])` : div ? `X[${i}] / Dv[P.dvOff]` : `X[${i}]`);
  return spec(
    `ctm pack${int ? " i32" : div ? " scaled" : ""}`,
    [
      "off",
      "ls",
      "xs",
      "ys",
      "qs",
      "W",
      "R",
      "NL",
      "rowOff",
      "colOff",
      "layerOff",
      "vx",
      "vy",
      "lim",
      ...(div ? ["dvOff"] : []),
    ],
    [ro("X", int ? "i32" : "f32"), ...(div ? [ro("Dv")] : [])],
    [{ name: "Out", kind: "w" }],
    `
  if (tid >= P.W * P.R * P.NL) { return; }
  let x = tid % P.W; let y = (tid / P.W) % P.R; let l = tid / (P.W * P.R);
  let base = P.off + l * P.ls + x * P.xs + y * P.ys;
  let v0 = 4u * (x * P.vx + y * P.vy);
  var v = vec4f(0.0);
  for (var q = 0u; q < 4u; q++) {
    if (v0 + q < P.lim) { v[q] = ${rd("base + q * P.qs")}; }
  }
  textureStore(Out, vec2u(P.colOff + x, P.rowOff + y), P.layerOff + l, v);`,
  );
}

/**
 * Transposing pack of a `[E, N]` source whose N dim is contiguous (entry e of column n at
 * `X[off + e·es + n]`, N, es and off multiples of 4): texel `(nOff + n, r)` (or `(r, nOff + n)` with `swap`)
 * gets entries 4r…4r+3 of column n (zero past E), divided by `Dv[dvOff]` with `div`. Thread per
 * (4 columns, texel row): four `vec4` loads, a 4×4 transpose, four texel stores, instead of
 * {@link packSpec}'s sixteen scalar loads (each a per-lane loop on lavapipe). Threads: N/4 · ⌈E/4⌉.
 */
export function packT4Spec(div: boolean, swap: boolean): FusedSpec {
  const sc = div ? " / Dv[P.dvOff]" : "";
  const L: string[] = [
    `if (tid >= P.N4 * P.R) { return; }`,
    `let n4 = tid % P.N4; let r = tid / P.N4; let e0 = 4u * r;`,
  ];
  for (let q = 0; q < 4; q++) {
    L.push(`var a${q} = vec4f(0.0);`);
    L.push(`if (e0 + ${q}u < P.E) { a${q} = X[P.off4 + (e0 + ${q}u) * P.es4 + n4]${sc}; }`);
  }
  for (let i = 0; i < 4; i++) {
    const at = swap ? `vec2u(r, P.nOff + 4u * n4 + ${i}u)` : `vec2u(P.nOff + 4u * n4 + ${i}u, r)`;
    const c = XYZW[i];
    L.push(`textureStore(Out, ${at}, 0u, vec4f(a0.${c}, a1.${c}, a2.${c}, a3.${c}));`);
  }
  return spec(
    `ctm pack t4${div ? " scaled" : ""}`,
    ["off4", "es4", "N4", "R", "E", "nOff", ...(div ? ["dvOff"] : [])],
    [ro("X", "vec4<f32>"), ...(div ? [ro("Dv")] : [])],
    [{ name: "Out", kind: "w" }],
    L.join("\n  "),
  );
}
