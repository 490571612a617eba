/**
 * WGSL for the fused AdamW update: decoupled weight decay, both moment updates and the
 * bias-corrected step in one pass, for up to `count` parameters per dispatch (each with its own
 * parameter, gradient and two moment buffers). Every hyperparameter (and each parameter's bias
 * corrections) is a uniform, so changing the learning rate never compiles a new pipeline.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup. */
export const ADAMW_WG = 256;

/** Per-parameter uniforms of {@link adamwSpec}, in order (floats as f32 bits). */
export const ADAMW_FIELDS = [
  "n", // element count
  "wg0", // first workgroup of this parameter
  "op", // element offsets of param / grad / exp_avg / exp_avg_sq
  "og",
  "om",
  "ov",
  "decay", // 1 − lr·wd
  "b1c", // 1 − β1
  "beta2",
  "b2c", // 1 − β2
  "eps",
  "stepSize", // lr / (1 − β1ᵗ)
  "bc2sqrt", // √(1 − β2ᵗ)
] as const;

/**
 * The update of `count` parameters in one dispatch: parameter k owns the workgroups from its
 * `wg0` on, so each workgroup finds its parameter by comparing with the later starts and runs
 * that parameter's copy of the update (WGSL cannot index bindings). Mirrors PyTorch's AdamW
 * arithmetic.
 */
export function adamwSpec(count = 1): KernelSpec {
  const params: string[] = [];
  const bindings: KernelSpec["bindings"] = [];
  for (let k = 0; k < count; k++) {
    params.push(...ADAMW_FIELDS.map((f) => `${f}${k}`));
    bindings.push(
      { name: `W${k}`, type: "f32", access: "rw" },
      { name: `G${k}`, type: "f32", access: "read" },
      { name: `M${k}`, type: "f32", access: "rw" },
      { name: `V${k}`, type: "f32", access: "rw" },
    );
  }
  const f = (name: string, k: number) => `bitcast<f32>(P.${name}${k})`;
  const cases: string[] = [];
  for (let k = 0; k < count; k++) {
    cases.push(`    case ${k}u: {
      let i = (w - P.wg0${k}) * ${ADAMW_WG}u + lid.x;
      if (i >= P.n${k}) { return; }
      let g = G${k}[P.og${k} + i];
      let p = W${k}[P.op${k} + i] * ${f("decay", k)};
      var m = M${k}[P.om${k} + i];
      m = m + ${f("b1c", k)} * (g - m);
      var v = V${k}[P.ov${k} + i];
      v = v * ${f("beta2", k)} + ${f("b2c", k)} * g * g;
      let denom = sqrt(v) / ${f("bc2sqrt", k)} + ${f("eps", k)};
      M${k}[P.om${k} + i] = m;
      V${k}[P.ov${k} + i] = v;
      W${k}[P.op${k} + i] = p - ${f("stepSize", k)} * (m / denom);
    }`);
  }
  const pick = [];
  for (let k = 1; k < count; k++) pick.push(`  if (w >= P.wg0${k}) { k = ${k}u; }`);
  return {
    params,
    bindings,
    workgroup: [ADAMW_WG],
    body: `
  let w = wid.x + wid.y * nwg.x;
  var k = 0u;
${pick.join("\n")}
  switch k {
${cases.join("\n")}
    default: {}
  }`,
  };
}
