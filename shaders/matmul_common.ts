/**
 * Shared pieces of the matmul WGSL generators (`shaders/matmul.ts`,
 * `shaders/matmul_regblock.ts`): the texture kernel spec type, the fused activations and the
 * slice-offset decomposition helpers.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** A kernel spec plus the texture bindings that follow its storage bindings. */
export interface TexKernelSpec extends KernelSpec {
  /**
   * Texture bindings after the storage ones, all `rgba32float` 2-D arrays: `read` (read-only
   * storage: lavapipe fetches these ~2.5× faster than sampled textures) or `write`.
   */
  textures: ("read" | "write")[];
}

/** Most slice (batch) dims a kernel decomposes. */
export const MAX_SLICE_DIMS = 4;

/** Name of an activation fused into a matmul's store. */
export type Activation = "none" | "relu" | "silu" | "sigmoid" | "tanh";

/** Runtime codes of the epilogue activations (the kernels' `act` parameter). */
export const ACTIVATIONS: Record<Activation, number> = { none: 0, relu: 1, silu: 2, sigmoid: 3, tanh: 4 };

/** WGSL of `mm_act(v, code)`, the fused epilogue activation selected by {@link ACTIVATIONS}. */
export const ACT_HELPERS = `
fn mm_act(v: vec4f, code: u32) -> vec4f {
  switch code {
    case 1u: { return max(v, vec4f(0.0)); }
    case 2u: { return v / (vec4f(1.0) + exp(-v)); }
    case 3u: { return vec4f(1.0) / (vec4f(1.0) + exp(-v)); }
    case 4u: { let e = exp(-2.0 * abs(v)); return sign(v) * (vec4f(1.0) - e) / (vec4f(1.0) + e); }
    default: { return v; }
  }
}`;

/** WGSL computing `name = Σ_d ((s / (d_{d+1}·…)) % d_d) * strideName_d` for a slice index `s`. */
export function sliceOffset(name: string, s: string, strides: string, nDims: number): string {
  if (nDims === 0) return `let ${name} = 0u;`;
  const lines = [`var ${name} = 0u;`, `{ var r = ${s};`];
  for (let d = nDims - 1; d >= 0; d--) {
    lines.push(`${name} += (r % P.d${d}) * P.${strides}${d};`);
    if (d > 0) lines.push(`r = r / P.d${d};`);
  }
  lines.push("}");
  return lines.join("\n");
}

/** Parameter names of the slice decomposition: sizes `d0…`, then each prefix's strides `pre0…`. */
export function sliceParams(prefixes: string[], nDims: number): string[] {
  const p: string[] = [];
  for (let d = 0; d < nDims; d++) p.push(`d${d}`);
  for (const pre of prefixes) for (let d = 0; d < nDims; d++) p.push(`${pre}${d}`);
  return p;
}

/**
 * Uniform parameters of the shared matmul/conv epilogue, in this order: batch slice base, output
 * offset and row/column strides, bias offset and stride, flags (bias, accumulate).
 */
export const EPILOGUE_PARAMS: readonly string[] = ["zBase", "ooff", "ors", "ocs", "boff", "bcs", "flags"];
