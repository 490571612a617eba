/**
 * WGSL for fused elementwise kernels: one output element per thread, any number of inputs, each
 * read either directly (contiguous, same shape as the output) or through broadcast strides.
 *
 * The expression sees inputs as `x0, x1, …` and scalars as `s0, s1, …` (f32).
 */
import type { KernelSpec, WgslType } from "../src/gpu/kernel.ts";

/** How one input is read. */
export interface EwInput {
  /** Element type. */
  type: WgslType;
  /** True: indexed like the output; false: through strides. */
  direct: boolean;
  /** True: this input is the output buffer itself (in-place update), read from `Y`. */
  inPlace?: boolean;
  /**
   * `vec4` kernels only: a contiguous block of `P.m{k}` vec4s repeated over the output's leading
   * dims (an input broadcast along leading dims only, like a bias), read at `j mod m`.
   */
  tile?: boolean;
}

/** Threads per workgroup of elementwise kernels. */
export const EW_WG = 256;

/** Common WGSL helpers available to every elementwise expression. */
export const EW_HELPERS = `
fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanh_s(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
fn softplus(x: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
fn b2f(b: bool) -> f32 { return select(0.0, 1.0, b); }
fn powf(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x > 0.0) { return pow(x, y); }
  if (x == 0.0) { return select(bitcast<f32>(0x7f800000u), 0.0, y > 0.0); }
  if (y != floor(y)) { return bitcast<f32>(0x7fc00000u); }
  let r = pow(-x, y);
  return select(r, -r, abs(y) % 2.0 == 1.0);
}
`;

/** Kernel spec computing `out[i] = expr(x0…, s0…)` over a broadcast shape of rank `rank`. */
export function elementwiseSpec(
  rank: number,
  inputs: EwInput[],
  outType: WgslType,
  expr: string,
  nScalars: number,
  outStrided = false,
): KernelSpec {
  const params = ["n", "oy"];
  const anyStrided = outStrided || inputs.some((x) => !x.direct);
  if (anyStrided) { for (let d = 0; d < rank; d++) params.push(`d${d}`); }
  if (outStrided) { for (let d = 0; d < rank; d++) params.push(`ty${d}`); }
  inputs.forEach((x, k) => {
    params.push(`o${k}`);
    if (!x.direct) { for (let d = 0; d < rank; d++) params.push(`t${k}_${d}`); }
  });
  for (let s = 0; s < nScalars; s++) params.push(`s${s}`);
  const lines = [
    `let i = (wid.x + wid.y * nwg.x) * ${EW_WG}u + lid.x;`,
    `if (i >= P.n) { return; }`,
  ];
  if (anyStrided) {
    lines.push(`var r = i;`);
    for (let d = rank - 1; d >= 0; d--) {
      lines.push(`let c${d} = r % P.d${d};`);
      if (d > 0) lines.push(`r = r / P.d${d};`);
    }
  }
  let yi = "P.oy + i";
  if (outStrided) {
    yi = "P.oy";
    for (let d = 0; d < rank; d++) yi += ` + c${d} * P.ty${d}`;
  }
  lines.push(`let yi = ${yi};`);
  inputs.forEach((x, k) => {
    if (x.inPlace) {
      lines.push(`let x${k} = Y[yi];`);
      return;
    }
    let idx = `P.o${k} + i`;
    if (!x.direct) {
      idx = `P.o${k}`;
      for (let d = 0; d < rank; d++) idx += ` + c${d} * P.t${k}_${d}`;
    }
    lines.push(`let x${k} = X${k}[${idx}];`);
  });
  for (let s = 0; s < nScalars; s++) lines.push(`let s${s} = bitcast<f32>(P.s${s});`);
  lines.push(`Y[yi] = ${expr};`);
  return {
    params,
    bindings: [
      ...inputs.flatMap((x, k) =>
        x.inPlace ? [] : [{ name: `X${k}`, type: x.type, access: "read" as const }]
      ),
      { name: "Y", type: outType, access: "rw" as const },
    ],
    workgroup: [EW_WG],
    prelude: EW_HELPERS,
    body: lines.join("\n"),
  };
}

/**
 * The same kernel four elements per thread, for a contiguous output whose inputs are all read
 * directly and whose length and offsets are multiples of 4 (counts and offsets in vec4s): one vec4
 * load per input and one vec4 store, the expression evaluated per component (`i` is still the
 * element index). Lavapipe pays per storage load and store, not per byte, so this runs several
 * times faster there.
 */
export function elementwiseVec4Spec(
  inputs: EwInput[],
  outType: WgslType,
  expr: string,
  nScalars: number,
): KernelSpec {
  const params = ["n", "oy", ...inputs.map((_, k) => `o${k}`)];
  inputs.forEach((x, k) => x.tile && params.push(`m${k}`));
  for (let s = 0; s < nScalars; s++) params.push(`s${s}`);
  const lines = [
    `let j = (wid.x + wid.y * nwg.x) * ${EW_WG}u + lid.x;`,
    `if (j >= P.n) { return; }`,
    `let yj = P.oy + j;`,
  ];
  inputs.forEach((x, k) =>
    lines.push(`let v${k} = ${x.inPlace ? "Y[yj]" : `X${k}[P.o${k} + ${x.tile ? `j % P.m${k}` : "j"}]`};`)
  );
  for (let s = 0; s < nScalars; s++) lines.push(`let s${s} = bitcast<f32>(P.s${s});`);
  lines.push(`var res4: vec4<${outType}>;`);
  for (let c = 0; c < 4; c++) {
    const xs = inputs.map((_, k) => `let x${k} = v${k}.${"xyzw"[c]};`).join(" ");
    lines.push(`{ let i = 4u * j + ${c}u; ${xs} res4.${"xyzw"[c]} = ${expr}; }`);
  }
  lines.push(`Y[yj] = res4;`);
  const v4 = (t: WgslType) => `vec4<${t}>` as WgslType;
  return {
    params,
    bindings: [
      ...inputs.flatMap((x, k) =>
        x.inPlace ? [] : [{ name: `X${k}`, type: v4(x.type), access: "read" as const }]
      ),
      { name: "Y", type: v4(outType), access: "rw" as const },
    ],
    workgroup: [EW_WG],
    prelude: EW_HELPERS,
    body: lines.join("\n"),
  };
}
