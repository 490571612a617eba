/**
 * Unary elementwise ops and activations with autograd: neg, exp, expNeg, log, sqrt, abs, square, sin,
 * cos, clamp, relu, silu, sigmoid, tanh, and GLU on any dim (one fused kernel each way).
 */
import { record } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { normAxis } from "./broadcast.ts";
import { mapInto, mapN } from "./map.ts";

/**
 * A unary op: `fwd` reads `x0`; `back` reads `x0` (the gradient) and `x1` (the saved input
 * if `save` is "in", the output if "out").
 */
function unary(
  name: string,
  t: Tensor,
  fwd: string,
  back: string,
  save: "in" | "out" | "none",
  s: number[] = [],
) {
  if (t.dtype !== "f32") throw new Error(`${name}: needs an f32 tensor, got ${t.dtype}`);
  const out = mapN(fwd, [t], s);
  const saved = save === "in" ? [t.alias()] : save === "out" ? [out.alias()] : [];
  return record(name, [t], out, (g) => [mapN(back, [g, ...saved], s)], saved);
}

/** `-x`. */
export function neg(t: Tensor): Tensor {
  return unary("neg", t, "-x0", "-x0", "none");
}
/** `e^x`. */
export function exp(t: Tensor): Tensor {
  return unary("exp", t, "exp(x0)", "x0 * x1", "out");
}
/** `e^(−x)` in one kernel each way (the CTM's decay rates). */
export function expNeg(t: Tensor): Tensor {
  return unary("expNeg", t, "exp(-x0)", "-x0 * x1", "out");
}
/** Natural logarithm. */
export function log(t: Tensor): Tensor {
  return unary("log", t, "log(x0)", "x0 / x1", "in");
}
/** Square root. */
export function sqrt(t: Tensor): Tensor {
  return unary("sqrt", t, "sqrt(x0)", "x0 * 0.5 / x1", "out");
}
/** `1 / sqrt(x)`. */
export function rsqrt(t: Tensor): Tensor {
  return unary("rsqrt", t, "inverseSqrt(x0)", "-0.5 * x0 * x1 * x1 * x1", "out");
}
/** `x²`. */
export function square(t: Tensor): Tensor {
  return unary("square", t, "x0 * x0", "2.0 * x0 * x1", "in");
}
/** `|x|` (gradient 0 at 0, like PyTorch). */
export function abs(t: Tensor): Tensor {
  return unary("abs", t, "abs(x0)", "x0 * sign(x1)", "in");
}
/** Sine. */
export function sin(t: Tensor): Tensor {
  return unary("sin", t, "sin(x0)", "x0 * cos(x1)", "in");
}
/** Cosine. */
export function cos(t: Tensor): Tensor {
  return unary("cos", t, "cos(x0)", "-x0 * sin(x1)", "in");
}
/** Clamps to `[lo, hi]`; the gradient passes where `lo ≤ x ≤ hi` (PyTorch's rule). */
export function clamp(t: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  const l = Math.max(lo, -3.4028234e38);
  const h = Math.min(hi, 3.4028234e38);
  return unary("clamp", t, "clamp(x0, s0, s1)", "x0 * b2f(x1 >= s0 && x1 <= s1)", "in", [l, h]);
}
/** `max(x, 0)`. */
export function relu(t: Tensor): Tensor {
  return unary("relu", t, "max(x0, 0.0)", "x0 * b2f(x1 > 0.0)", "out");
}
/** Logistic sigmoid. */
export function sigmoid(t: Tensor): Tensor {
  return unary("sigmoid", t, "sigm(x0)", "x0 * x1 * (1.0 - x1)", "out");
}
/** Hyperbolic tangent. */
export function tanh(t: Tensor): Tensor {
  return unary("tanh", t, "tanh_s(x0)", "x0 * (1.0 - x1 * x1)", "out");
}
/** SiLU (swish): `x · sigmoid(x)`. */
export function silu(t: Tensor): Tensor {
  return unary("silu", t, "x0 * sigm(x0)", "x0 * sigm(x1) * (1.0 + x1 * (1.0 - sigm(x1)))", "in");
}

/**
 * Gated linear unit over `axis` (default last): splits it in halves `a, b` and returns
 * `a · sigmoid(b)`, in one kernel forward and one per half backward.
 *
 * @example
 * ```ts
 * import { initGpu, randn, glu } from "./mod.ts";
 * await initGpu();
 * const y = glu(randn([2, 8])); // [2, 4]
 * ```
 */
export function glu(t: Tensor, axis = -1): Tensor {
  const ax = normAxis(axis, t.ndim);
  const n = t.shape[ax];
  if (n % 2 !== 0) throw new Error(`glu: dim ${ax} has odd size ${n}`);
  const h = n / 2;
  const shape = [...t.shape];
  shape[ax] = h;
  const half = (x: Tensor, k: number) => x.alias(shape, x.strides, x.offset + k * h * x.strides[ax], true);
  const a = half(t, 0);
  const b = half(t, 1);
  const out = mapN("x0 * sigm(x1)", [a, b]);
  a.dispose();
  b.dispose();
  const saved = [t.alias()];
  return record("glu", [t], out, (g) => {
    const x = saved[0];
    const gx = Tensor.empty(x.shape);
    const xa = half(x, 0), xb = half(x, 1), ga = half(gx, 0), gb = half(gx, 1);
    mapInto(ga, "x0 * sigm(x1)", [g, xb]);
    mapInto(gb, "x0 * x1 * sigm(x2) * (1.0 - sigm(x2))", [g, xa, xb]);
    for (const v of [xa, xb, ga, gb]) v.dispose();
    return [gx];
  }, saved);
}
