/**
 * WGSL for the counter-based random number generator. Element `i` of a draw gets
 * `bits(i) = mix(mix(mix((i·0x9e3779b9) ^ k0) ^ k1) + k0)`, where `mix` is the murmur3 32-bit
 * finaliser (xorshift-multiply, a bijection with full avalanche) and `(k0, k1)` are derived on the
 * host from the generator's seed and call counter. No state lives on the GPU, so any element can
 * be regenerated (dropout's backward does) and results do not depend on the launch geometry.
 *
 * Conversions: uniform = top 24 bits · 2⁻²⁴ ∈ [0, 1) (exact in f32); normal = Box–Muller on the
 * bits of elements 2i and 2i+1; integers = Lemire's multiply-shift (high word of bits · range).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup of RNG kernels. */
export const RNG_WG = 256;

/** Kinds of RNG kernel. */
export type RngKind = "uniform" | "normal" | "int" | "bernoulli" | "bernoulliT" | "dropout";

/** WGSL helpers: `rng_mix`, `rng_bits(i)`, `rng_unit(bits)`, `rng_mulhi(a, b)`. */
export const RNG_HELPERS = `
fn rng_mix(x: u32) -> u32 {
  var h = x;
  h = (h ^ (h >> 16u)) * 0x85ebca6bu;
  h = (h ^ (h >> 13u)) * 0xc2b2ae35u;
  return h ^ (h >> 16u);
}
fn rng_bits(i: u32) -> u32 {
  let h = rng_mix((i * 0x9e3779b9u) ^ P.k0);
  return rng_mix(rng_mix(h ^ P.k1) + P.k0);
}
fn rng_unit(b: u32) -> f32 { return f32(b >> 8u) * 5.9604644775390625e-8; }
fn rng_mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u;
  let bl = b & 0xffffu; let bh = b >> 16u;
  let lh = al * bh; let hl = ah * bl;
  let carry = ((al * bl) >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return ah * bh + (lh >> 16u) + (hl >> 16u) + (carry >> 16u);
}
`;

/** Host mirror of `rng_mix` (murmur3 fmix32). */
export function rngMix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Host mirror of `rng_bits(i)` for keys `(k0, k1)` (tests, debugging). */
export function rngBits(k0: number, k1: number, i: number): number {
  const h = rngMix((Math.imul(i >>> 0, 0x9e3779b9) ^ k0) >>> 0);
  return rngMix((rngMix((h ^ k1) >>> 0) + k0) >>> 0);
}

/**
 * Kernel spec of one RNG kind. Params: `n`, `k0`, `k1`, `a`, `b`, `xo`:
 * - uniform: `a` = lo, `b` = hi − lo (f32 bits); normal: `a` = mean, `b` = std (f32 bits);
 * - int: `a` = lo (i32 bits), `b` = range (u32); output i32;
 * - bernoulli: `a` = threshold on the top 24 bits (p·2²⁴); bernoulliT: probabilities in `X`;
 * - dropout: `a` = threshold (p·2²⁴), `b` = scale (f32 bits), input `X` at offset `xo`; keeps
 *   element i when its top 24 bits ≥ threshold.
 */
export function rngSpec(kind: RngKind): KernelSpec {
  let expr: string;
  switch (kind) {
    case "uniform":
      expr = "bitcast<f32>(P.a) + bitcast<f32>(P.b) * rng_unit(rng_bits(i))";
      break;
    case "normal":
      expr = `bitcast<f32>(P.a) + bitcast<f32>(P.b) * rng_normal(i)`;
      break;
    case "int":
      expr = "bitcast<i32>(P.a + rng_mulhi(rng_bits(i), P.b))";
      break;
    case "bernoulli":
      expr = "select(0.0, 1.0, (rng_bits(i) >> 8u) < P.a)";
      break;
    case "bernoulliT":
      expr = "select(0.0, 1.0, rng_unit(rng_bits(i)) < X[P.xo + i])";
      break;
    case "dropout":
      expr = "select(0.0, X[P.xo + i] * bitcast<f32>(P.b), (rng_bits(i) >> 8u) >= P.a)";
      break;
  }
  const normal = `
fn rng_normal(i: u32) -> f32 {
  let u1 = (f32(rng_bits(2u * i) >> 8u) + 1.0) * 5.9604644775390625e-8;
  let u2 = rng_unit(rng_bits(2u * i + 1u));
  // cos over [-π, π), where GPU cos has its guaranteed accuracy; the sign flip is harmless.
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2 - 3.141592653589793);
}
`;
  const hasX = kind === "bernoulliT" || kind === "dropout";
  return {
    params: ["n", "k0", "k1", "a", "b", "xo"],
    bindings: [
      ...(hasX ? [{ name: "X", type: "f32" as const, access: "read" as const }] : []),
      { name: "Y", type: kind === "int" ? "i32" : "f32", access: "rw" },
    ],
    workgroup: [RNG_WG],
    prelude: RNG_HELPERS + (kind === "normal" ? normal : ""),
    body: [
      `let i = (wid.x + wid.y * nwg.x) * ${RNG_WG}u + lid.x;`,
      `if (i >= P.n) { return; }`,
      `Y[i] = ${expr};`,
    ].join("\n"),
  };
}
