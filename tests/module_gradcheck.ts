/**
 * Gradient checks for whole modules: load chosen parameter values, compare the forward with a
 * float64 reference of the same parameters, and every parameter's gradient with central finite
 * differences of that reference.
 */
import { assertClose, assertShape, type Ref, Rng, toGpu } from "./helpers.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import type { Module } from "../src/nn/module.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

/** Parameter values by state-dict name. */
export type Params = Map<string, Ref>;

/** Random values for every parameter of `m` (same names and shapes), uniform in [lo, hi). */
export function randomParams(m: Module, rng: Rng, lo = -1, hi = 1): Params {
  const p: Params = new Map();
  for (const [k, t] of m.namedParameters()) {
    p.set(k, { shape: [...t.shape], data: rng.uniformArray(t.size, lo, hi) });
  }
  return p;
}

/** The module's current parameters and buffers as float64 references. */
export async function readParams(m: Module): Promise<Params> {
  const p: Params = new Map();
  for (const [k, t] of m.stateDict()) {
    p.set(k, { shape: [...t.shape], data: Float64Array.from(await t.toArray()) });
  }
  return p;
}

/**
 * Loads `params` into `m` (non-strict: buffers keep their values), checks `m.forward(x)` against
 * `ref(params)`, then checks the gradient of `sum(out · R)` (R random) for every parameter of
 * `m` against central differences (eps 1e-6) of the float64 reference. With `input` (x must then
 * require grad), x's gradient is checked too, against differences of `input.ref` over `input.x`,
 * the same values as x: a path that drops the input's gradient (a shortcut) shows only there.
 */
export async function moduleGradcheck(
  m: Module,
  x: Tensor,
  params: Params,
  ref: (p: Params) => Ref,
  tol: { atol?: number; rtol?: number; gradAtol?: number; gradRtol?: number } = {},
  input?: { x: Ref; ref: (p: Params, x: Ref) => Ref },
): Promise<void> {
  const uploaded = new Map([...params].map(([k, r]) => [k, toGpu(r)]));
  m.loadStateDict(uploaded, { strict: false });
  for (const t of uploaded.values()) t.dispose();
  m.zeroGrad();
  const expected = ref(params);
  const R = new Rng(5).uniformArray(expected.data.length, -1, 1);
  const out = m.forward(x) as Tensor;
  assertShape(out, expected.shape, "forward");
  assertClose(await out.toArray(), expected.data, {
    atol: tol.atol ?? 1e-5,
    rtol: tol.rtol ?? 1e-4,
    msg: "forward",
  });
  const w = fromArray(Float32Array.from(R), out.shape);
  const prod = mul(out, w);
  const loss = sum(prod);
  loss.backward();
  for (const t of [out, w, prod, loss]) t.dispose();
  const dot = (y: Ref) => y.data.reduce((s, v, i) => s + v * R[i], 0);
  // Central differences of `f` around `r`, compared with the engine's gradient `g`.
  const check = async (msg: string, r: Ref, f: (v: Ref) => number, g: Tensor | null) => {
    const fd = new Float64Array(r.data.length);
    for (let j = 0; j < fd.length; j++) {
      const eps = 1e-6 * Math.max(1, Math.abs(r.data[j]));
      const at = (d: number) => {
        const data = r.data.slice();
        data[j] += d;
        return f({ shape: r.shape, data });
      };
      fd[j] = (at(eps) - at(-eps)) / (2 * eps);
    }
    if (!g) throw new Error(`${msg}: no gradient`);
    const scale = Math.max(1, ...Array.from(fd, Math.abs));
    assertClose(await g.toArray(), fd, {
      atol: (tol.gradAtol ?? 1e-4) * scale,
      rtol: tol.gradRtol ?? 1e-3,
      msg,
    });
  };
  for (const [name, t] of m.namedParameters()) {
    const r = params.get(name);
    if (!r) throw new Error(`moduleGradcheck: no value given for parameter '${name}'`);
    await check(`grad ${name}`, r, (v) => dot(ref(new Map(params).set(name, v))), t.grad);
  }
  if (input) await check("grad of the input", input.x, (v) => dot(input.ref(params, v)), x.grad);
}
