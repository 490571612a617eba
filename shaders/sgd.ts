/**
 * WGSL for the fused SGD update of one parameter (PyTorch semantics): weight decay added to the
 * gradient, optional momentum buffer with dampening and Nesterov, then `p −= lr·d`.
 * Hyperparameters are uniforms; the two variants (with/without a momentum buffer) are separate
 * kernels because the buffer binding differs.
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup. */
export const SGD_WG = 256;

/**
 * Params: n, offsets of param/grad (and momentum buffer), then f32 bits of lr and weightDecay;
 * with momentum also momentum, dampC (1 − dampening) and u32 flags: bit 0 = first step
 * (buffer := d), bit 1 = Nesterov. With `vec4` each thread updates four elements (count and
 * offsets in vec4s), the same arithmetic per element.
 */
export function sgdSpec(withMomentum: boolean, vec4 = false): KernelSpec {
  const type = vec4 ? "vec4<f32>" : "f32";
  const head = `
  let i = (wid.x + wid.y * nwg.x) * ${SGD_WG}u + lid.x;
  if (i >= P.n) { return; }
  let p = W[P.op + i];
  var d = G[P.og + i] + bitcast<f32>(P.wd) * p;`;
  if (!withMomentum) {
    return {
      params: ["n", "op", "og", "lr", "wd"],
      bindings: [
        { name: "W", type, access: "rw" },
        { name: "G", type, access: "read" },
      ],
      workgroup: [SGD_WG],
      body: `${head}
  W[P.op + i] = p - bitcast<f32>(P.lr) * d;`,
    };
  }
  return {
    params: ["n", "op", "og", "ob", "lr", "wd", "mom", "dampC", "flags"],
    bindings: [
      { name: "W", type, access: "rw" },
      { name: "G", type, access: "read" },
      { name: "B", type, access: "rw" },
    ],
    workgroup: [SGD_WG],
    body: `${head}
  let mom = bitcast<f32>(P.mom);
  var b = d;
  if ((P.flags & 1u) == 0u) { b = B[P.ob + i] * mom + bitcast<f32>(P.dampC) * d; }
  B[P.ob + i] = b;
  if ((P.flags & 2u) != 0u) { d = d + mom * b; } else { d = b; }
  W[P.op + i] = p - bitcast<f32>(P.lr) * d;`,
  };
}
