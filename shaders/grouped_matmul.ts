/**
 * WGSL for the per-neuron matmul `out[b,n,o] = Σ_i x[b,n,i]·w[i,o,n] + bias[n,o]`, vectorised
 * across 4 consecutive neurons (the regblock family's grouped kernel).
 *
 * In the SuperLinear layout `w[i,o,n]` the neuron index is the contiguous one, so `w` viewed as a
 * `[I·O, N]` matrix goes to a texture with one plain copy and each texel holds `w[i,o,n…n+3]`:
 * no pack kernel (storage-buffer loads are lavapipe's most expensive operation). Each thread owns
 * 4 neurons × TB batch rows × TO outputs and accumulates vec4s over the neurons. x's slices
 * (neuron n = slice) sit at texel origin `((n % SPL)·sx, (n % SPL)·sy)` of layer `n / SPL` with
 * texels along i (see `shaders/matmul.ts`).
 *
 * Stores: with `TO = O ≤ 8` the 4·O outputs of a row and neuron group are contiguous and leave as
 * O vec4s ("row" mode); otherwise (O % 4 = 0, TO ∈ {4, 8}) each neuron's TO outputs leave as TO/4
 * vec4s ("blocked" mode).
 */
import type { TexKernelSpec } from "./matmul.ts";

/** Batch rows per thread of the grouped kernel. */
export const GROUPED_TB = 16;

/** Workgroup size of the grouped kernel. */
export const GROUPED_WG = 8;

const X = "xyzw";

/**
 * Kernel spec for O outputs per neuron, TO of them per thread (TO = O ≤ 8, or O % 4 = 0 with
 * TO ∈ {4, 8} dividing O). Params: I4 (texels along i), nG (= N/4), nOB (= O/TO), T (threads),
 * B, N, x texture placement (SPL, sx, sy), output offset, bias offset and (n, o) strides, flags
 * (bit 0: add bias). Launch ceil(T / 8) workgroups (linear over x, y); `C` is a contiguous
 * `[B, N, O]` tensor seen as vec4s.
 */
export function groupedSpec(O: number, TO: number): TexKernelSpec {
  const TB = GROUPED_TB;
  const rowMode = TO === O;
  const decl: string[] = [];
  const body: string[] = [];
  for (let b = 0; b < TB; b++) for (let o = 0; o < TO; o++) decl.push(`var c${b}_${o} = vec4f(0.0);`);
  for (let q = 0; q < 4; q++) {
    for (let o = 0; o < TO; o++) {
      body.push(`let w${q}_${o} = textureLoad(Wt, vec2u(g, (i4 * 4u + ${q}u) * ${O}u + o0 + ${o}u), 0u);`);
    }
  }
  for (let b = 0; b < TB; b++) {
    body.push("{");
    for (let c = 0; c < 4; c++) {
      body.push(`let x${c} = textureLoad(Xt, vec2u(xx${c} + i4, xy${c} + ${b}u), xl${c});`);
    }
    for (let q = 0; q < 4; q++) {
      body.push(`let v${q} = vec4f(x0.${X[q]}, x1.${X[q]}, x2.${X[q]}, x3.${X[q]});`);
    }
    for (let o = 0; o < TO; o++) {
      let e = `c${b}_${o}`;
      for (let q = 0; q < 4; q++) e = `fma(v${q}, w${q}_${o}, ${e})`;
      body.push(`c${b}_${o} = ${e};`);
    }
    body.push("}");
  }
  const origin: string[] = [];
  for (let c = 0; c < 4; c++) {
    origin.push(
      `let n${c} = g * 4u + ${c}u; let xw${c} = n${c} % P.SPL; let xl${c} = n${c} / P.SPL;`,
      `let xx${c} = xw${c} * P.sx; let xy${c} = xw${c} * P.sy + b0;`,
    );
  }
  // Epilogue: bias as vec4s over the 4 neurons, then a row loop whose switch picks the row's
  // accumulators (runtime bounds keep lavapipe's JIT fast).
  const epi: string[] = [];
  for (let o = 0; o < TO; o++) {
    epi.push(`var bias${o} = vec4f(0.0);`, `if ((P.flags & 1u) != 0u) {`);
    for (let c = 0; c < 4; c++) {
      epi.push(`  bias${o}.${X[c]} = Bias[P.boff + n${c} * P.bns + (o0 + ${o}u) * P.bos];`);
    }
    epi.push(`}`);
  }
  epi.push(`let bEnd = min(${TB}u, P.B - b0);`, `for (var b = 0u; b < bEnd; b++) {`);
  epi.push("  " + [...Array(TO).keys()].map((o) => `var r${o}: vec4f;`).join(" "));
  epi.push(`  switch b {`);
  for (let b = 0; b < TB; b++) {
    epi.push(
      `    case ${b}u: { ${[...Array(TO).keys()].map((o) => `r${o} = c${b}_${o} + bias${o};`).join(" ")} }`,
    );
  }
  epi.push(`    default: {}`, `  }`);
  epi.push(`  let base = (P.ooff + ((b0 + b) * P.N + g * 4u) * ${O}u + o0) / 4u;`);
  if (rowMode) {
    // Element e = c·O + o of the row block holds neuron n4 + c, output o.
    for (let k = 0; k < O; k++) {
      const comps = [0, 1, 2, 3].map((e4) => `r${(4 * k + e4) % O}.${X[Math.floor((4 * k + e4) / O)]}`);
      epi.push(`  C[base + ${k}u] = vec4f(${comps.join(", ")});`);
    }
  } else {
    for (let c = 0; c < 4; c++) {
      for (let k = 0; k < TO / 4; k++) {
        const comps = [0, 1, 2, 3].map((e) => `r${4 * k + e}.${X[c]}`);
        epi.push(`  C[base + ${(c * O) / 4 + k}u] = vec4f(${comps.join(", ")});`);
      }
    }
  }
  epi.push(`}`);
  return {
    params: ["I4", "nG", "nOB", "T", "B", "N", "SPL", "sx", "sy", "ooff", "boff", "bns", "bos", "flags"],
    bindings: [
      { name: "C", type: "vec4<f32>", access: "rw" },
      { name: "Bias", type: "f32", access: "read" },
    ],
    textures: ["read", "read"],
    prelude: `@group(0) @binding(3) var Xt: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(4) var Wt: texture_storage_2d_array<rgba32float, read>;`,
    workgroup: [GROUPED_WG, 1, 1],
    body: `
  let t = (wid.x + wid.y * nwg.x) * ${GROUPED_WG}u + lid.x;
  if (t >= P.T) { return; }
  let g = t % P.nG; let rest = t / P.nG;
  let o0 = (rest % P.nOB) * ${TO}u; let b0 = (rest / P.nOB) * ${TB}u;
  ${origin.join("\n  ")}
  ${decl.join("\n  ")}
  for (var i4 = 0u; i4 < P.I4; i4++) {
    ${body.join("\n    ")}
  }
  ${epi.join("\n  ")}`,
  };
}
