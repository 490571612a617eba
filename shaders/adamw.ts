/**
 * WGSL for the fused AdamW update of one parameter: decoupled weight decay, both moment updates
 * and the bias-corrected step in one pass. Every hyperparameter (and the step's bias corrections)
 * is a uniform, so changing the learning rate never compiles a new pipeline.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup. */
export const ADAMW_WG = 256;

/**
 * Params: n, element offsets of param/grad/exp_avg/exp_avg_sq, then f32 bits of
 * decay (1 − lr·wd), b1c (1 − β1), beta2, b2c (1 − β2), eps, stepSize (lr / (1 − β1ᵗ)) and
 * bc2sqrt (√(1 − β2ᵗ)). Mirrors PyTorch's AdamW arithmetic. With `vec4` each thread updates four
 * elements (count and offsets in vec4s), the same arithmetic per element.
 */
export function adamwSpec(vec4 = false): KernelSpec {
  const type = vec4 ? "vec4<f32>" : "f32";
  return {
    params: ["n", "op", "og", "om", "ov", "decay", "b1c", "beta2", "b2c", "eps", "stepSize", "bc2sqrt"],
    bindings: [
      { name: "W", type, access: "rw" },
      { name: "G", type, access: "read" },
      { name: "M", type, access: "rw" },
      { name: "V", type, access: "rw" },
    ],
    workgroup: [ADAMW_WG],
    body: `
  let i = (wid.x + wid.y * nwg.x) * ${ADAMW_WG}u + lid.x;
  if (i >= P.n) { return; }
  let g = G[P.og + i];
  let p = W[P.op + i] * bitcast<f32>(P.decay);
  var m = M[P.om + i];
  m = m + bitcast<f32>(P.b1c) * (g - m);
  var v = V[P.ov + i];
  v = v * bitcast<f32>(P.beta2) + bitcast<f32>(P.b2c) * g * g;
  let denom = sqrt(v) / bitcast<f32>(P.bc2sqrt) + bitcast<f32>(P.eps);
  M[P.om + i] = m;
  V[P.ov + i] = v;
  W[P.op + i] = p - bitcast<f32>(P.stepSize) * (m / denom);`,
  };
}
