/**
 * Binary elementwise ops with full broadcasting and autograd: add, sub, mul, div, pow, maximum,
 * minimum, where, and comparisons (which return f32 0/1 masks). A plain number on either side is
 * passed to the kernel as a uniform, so changing it never compiles a new pipeline.
 */
import { record } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { mapN } from "./map.ts";
import { sumToShape } from "./reduce.ts";

/** A tensor or a plain number. */
export type TensorLike = Tensor | number;

/** Gradient expressions use A, B (operands) and G (output gradient). */
interface BinaryDef {
  name: string;
  fwd: string;
  da: string | null;
  db: string | null;
  /** Which operands the gradient expressions read. */
  needs: string;
}

function bind(expr: string, names: Record<string, string>): string {
  return expr.replace(/\b([ABG])\b/g, (m) => names[m] ?? m);
}

function binary(def: BinaryDef, a: TensorLike, b: TensorLike): Tensor {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${def.name}: at least one tensor needed`);
  }
  const ta = typeof a === "number" ? null : a;
  const tb = typeof b === "number" ? null : b;
  const inputs: Tensor[] = [];
  const scalars: number[] = [];
  const name = (v: TensorLike) => {
    if (typeof v === "number") {
      scalars.push(v);
      return `s${scalars.length - 1}`;
    }
    inputs.push(v);
    return `x${inputs.length - 1}`;
  };
  const A = name(a);
  const B = name(b);
  const out = mapN(bind(def.fwd, { A, B }), inputs, scalars);
  const savedA = ta && def.needs.includes("A") ? ta.alias() : null;
  const savedB = tb && def.needs.includes("B") ? tb.alias() : null;
  const keepSaved = [savedA, savedB].filter((x): x is Tensor => x !== null);
  return record(def.name, inputs, out, (g) => {
    // Rebuild the operand names for the gradient kernels: G first, then saved tensors, then scalars.
    const gi: Tensor[] = [g];
    const gs: number[] = [];
    const nm = (t: Tensor | null, v: TensorLike) => {
      if (typeof v === "number") {
        gs.push(v);
        return `s${gs.length - 1}`;
      }
      if (!t) return "0.0";
      gi.push(t);
      return `x${gi.length - 1}`;
    };
    const names = { G: "x0", A: nm(savedA, a), B: nm(savedB, b) };
    const grad = (expr: string | null, target: Tensor | null) => {
      if (!expr || !target || !target.requiresGrad) return null;
      const full = mapN(bind(expr, names), gi, gs);
      const r = sumToShape(full, target.shape);
      full.dispose();
      return r;
    };
    const res: (Tensor | null)[] = [];
    if (ta) res.push(grad(def.da, ta));
    if (tb) res.push(grad(def.db, tb));
    return res;
  }, keepSaved);
}

const ADD: BinaryDef = { name: "add", fwd: "A + B", da: "G", db: "G", needs: "" };
const SUB: BinaryDef = { name: "sub", fwd: "A - B", da: "G", db: "-G", needs: "" };
const MUL: BinaryDef = { name: "mul", fwd: "A * B", da: "G * B", db: "G * A", needs: "AB" };
const DIV: BinaryDef = { name: "div", fwd: "A / B", da: "G / B", db: "-G * A / (B * B)", needs: "AB" };
const POW: BinaryDef = {
  name: "pow",
  fwd: "powf(A, B)",
  da: "G * B * powf(A, B - 1.0)",
  db: "G * powf(A, B) * select(log(A), 0.0, A == 0.0)",
  needs: "AB",
};
const MAXIMUM: BinaryDef = {
  name: "maximum",
  fwd: "max(A, B)",
  da: "G * select(b2f(A > B), 0.5, A == B)",
  db: "G * select(b2f(B > A), 0.5, A == B)",
  needs: "AB",
};
const MINIMUM: BinaryDef = {
  name: "minimum",
  fwd: "min(A, B)",
  da: "G * select(b2f(A < B), 0.5, A == B)",
  db: "G * select(b2f(B < A), 0.5, A == B)",
  needs: "AB",
};

/**
 * `a + b` with broadcasting.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, add } from "./mod.ts";
 * await initGpu();
 * const y = add(fromArray([[1], [2]]), fromArray([10, 20, 30])); // [2, 3]
 * ```
 */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binary(ADD, a, b);
}
/** `a - b` with broadcasting. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary(SUB, a, b);
}
/** `a * b` with broadcasting. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary(MUL, a, b);
}
/** `a / b` with broadcasting. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary(DIV, a, b);
}
/** `a ** b` with broadcasting (negative bases with integer exponents work like PyTorch). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return binary(POW, a, b);
}
/** Elementwise maximum (ties split the gradient equally). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binary(MAXIMUM, a, b);
}
/** Elementwise minimum (ties split the gradient equally). */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return binary(MINIMUM, a, b);
}

function compare(op: string, a: TensorLike, b: TensorLike): Tensor {
  return binary({ name: "compare", fwd: `b2f(A ${op} B)`, da: null, db: null, needs: "" }, a, b);
}
/** `a == b` as an f32 mask of 0/1 (no gradient). */
export function eq(a: TensorLike, b: TensorLike): Tensor {
  return compare("==", a, b);
}
/** `a != b` as an f32 mask. */
export function ne(a: TensorLike, b: TensorLike): Tensor {
  return compare("!=", a, b);
}
/** `a < b` as an f32 mask. */
export function lt(a: TensorLike, b: TensorLike): Tensor {
  return compare("<", a, b);
}
/** `a <= b` as an f32 mask. */
export function le(a: TensorLike, b: TensorLike): Tensor {
  return compare("<=", a, b);
}
/** `a > b` as an f32 mask. */
export function gt(a: TensorLike, b: TensorLike): Tensor {
  return compare(">", a, b);
}
/** `a >= b` as an f32 mask. */
export function ge(a: TensorLike, b: TensorLike): Tensor {
  return compare(">=", a, b);
}

/**
 * `cond ? a : b` elementwise with broadcasting; `cond` is a mask (non-zero means true), e.g. from
 * {@link gt}. Gradients flow to `a` where true and to `b` where false.
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const inputs: Tensor[] = [cond];
  const scalars: number[] = [];
  const nm = (v: TensorLike) => {
    if (typeof v === "number") {
      scalars.push(v);
      return `s${scalars.length - 1}`;
    }
    inputs.push(v);
    return `x${inputs.length - 1}`;
  };
  const c = cond.dtype === "f32" ? "x0 != 0.0" : `x0 != 0`;
  const A = nm(a);
  const B = nm(b);
  const out = mapN(`select(${B}, ${A}, ${c})`, inputs, scalars);
  const mask = cond.alias();
  const tensors = inputs.slice(1);
  return record("where", tensors, out, (g) => {
    const res: (Tensor | null)[] = [];
    const side = (v: TensorLike, expr: string) => {
      if (typeof v === "number") return;
      if (!v.requiresGrad) {
        res.push(null);
        return;
      }
      const full = mapN(expr, [g, mask]);
      res.push(sumToShape(full, v.shape));
      full.dispose();
    };
    const cc = cond.dtype === "f32" ? "x1 != 0.0" : "x1 != 0";
    side(a, `select(0.0, x0, ${cc})`);
    side(b, `select(x0, 0.0, ${cc})`);
    return res;
  }, [mask]);
}
