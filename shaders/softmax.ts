/**
 * WGSL for row-wise kernels over the middle axis `R` of a contiguous `[O1, R, O2]` view (rows along
 * any axis, no transpose copy): a generic row-kernel builder ({@link rowSpec}) shared with the
 * layer-norm and cross-entropy shaders, and the softmax / log-softmax / logsumexp kernels.
 *
 * Two modes: `thread` gives each row one thread (many short rows; coalesced when O2 > 1), `group`
 * gives each row a workgroup that strides over R and merges per-thread states in shared memory
 * (few long rows). Row `o` starts at `(o / O2) * R * O2 + o % O2` and steps by `O2`.
 */
import type { BindingSpec, KernelSpec } from "../src/gpu/kernel.ts";

/** One row per thread, or one row per workgroup. */
export type RowMode = "thread" | "group";

/** Threads per workgroup in `thread` mode. */
export const ROW_WG = 128;

/**
 * Online log-sum-exp state `(m, s)`: the running maximum and the sum of `exp(v - m)`. Pushing an
 * element costs one `exp` (`lse_push4`: five per four elements, vectorised); merging two states
 * rescales both sums to the larger maximum. Also
 * `fadd` / `add2`, merge functions for plain sums.
 */
export const LSE_HELPERS = `
const NEG_BIG = -3.4028234e38;
fn lse_push(st: vec2f, v: f32) -> vec2f {
  let e = exp(-abs(v - st.x));
  return select(vec2f(st.x, st.y + e), vec2f(v, st.y * e + 1.0), v > st.x);
}
fn lse_merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
fn lse_push4(st: vec2f, v: vec4f) -> vec2f {
  let m = max(st.x, max(max(v.x, v.y), max(v.z, v.w)));
  let e = exp(v - vec4f(m));
  return vec2f(m, st.y * exp(st.x - m) + ((e.x + e.y) + (e.z + e.w)));
}
fn fadd(a: f32, b: f32) -> f32 { return a + b; }
fn add2(a: vec2f, b: vec2f) -> vec2f { return a + b; }`;

/**
 * The pieces of a row kernel. Statements see `o` (row), `base` (its first element), `P`, and in
 * the per-element passes `r` (column) and the values named in `loads`.
 */
export interface RowParts {
  /** WGSL type of the per-thread state, e.g. `vec2f`. */
  stateType: string;
  /** Identity state. */
  init: string;
  /** Row-indexed f32 inputs: value name → [binding, offset param]; read as `B[P.off + i]`. */
  loads: Record<string, [string, string]>;
  /** Column-indexed f32 inputs (e.g. a weight), read as `B[P.off + r]`; vec4 in vec4 mode. */
  cols?: Record<string, [string, string]>;
  /** Statements run before the first pass (per row, every thread), e.g. loading row statistics. */
  pre?: string;
  /** Statements folding one element (its loaded values, column `r`) into `var st`. */
  push: string;
  /** Optional vec4-mode replacement for `push`, folding four elements (`<name>_4`) at once. */
  push4?: string;
  /** Name of a WGSL function `(a, b) -> state` merging two states (group mode). */
  merge: string;
  /** Statements after the reduction; `st` holds the row's full state in every thread. */
  setup?: string;
  /** A second pass writing binding `out` (row-indexed, contiguous) with `value` after `stmts`. */
  write?: { out: string; value: string; stmts?: string };
  /** Statements run once per row (by one thread), e.g. writing per-row statistics. */
  once?: string;
}

const LANES = ["x", "y", "z", "w"];

/**
 * Builds a row kernel. `params` must include `rows`, `R` and `O2`; grid: `grid1d(ceil(rows /
 * ROW_WG))` in thread mode, `grid1d(rows)` in group mode with workgroup size `wg` (a power of 2).
 * With `vec4` the row-indexed bindings become `array<vec4<f32>>` and each step handles 4
 * elements; only valid when O2 = 1, R % 4 = 0 and every row- and column-indexed offset is a
 * multiple of 4.
 */
export function rowSpec(
  mode: RowMode,
  wg: number,
  vec4: boolean,
  params: string[],
  bindings: BindingSpec[],
  prelude: string,
  parts: RowParts,
): KernelSpec {
  const thread = mode === "thread";
  const size = thread ? ROW_WG : wg;
  const loads = Object.entries(parts.loads);
  const cols = Object.entries(parts.cols ?? {});
  const n = vec4 ? "P.R / 4u" : "P.R";
  const loop = thread ? `for (var q = 0u; q < ${n}; q++) {` : `for (var q = lid.x; q < ${n}; q += ${wg}u) {`;
  // One pass over the row: `body(lane)` runs per element with the loads and `r` in scope.
  const pass = (body: (lane: number) => string, head = "", tail = "", whole?: string) => {
    const used = cols.filter(([v]) => new RegExp(`\\b${v}\\b`).test(body(0)));
    if (!vec4) {
      const ld = loads.map(([v, [b, off]]) => `let ${v} = ${b}[P.${off} + i];`);
      const lc = used.map(([v, [b, off]]) => `let ${v} = ${b}[P.${off} + r];`);
      return [loop, `let r = q;`, `let i = base + r * P.O2;`, ...ld, ...lc, body(0), `}`].join("\n");
    }
    const ld = loads.map(([v, [b, off]]) => `let ${v}_4 = ${b}[P.${off} / 4u + base / 4u + q];`);
    const lc = whole !== undefined
      ? []
      : used.map(([v, [b, off]]) => `let ${v}_4 = ${b}[P.${off} / 4u + q];`);
    const lanes = whole !== undefined ? [whole] : LANES.map((c, k) => {
      const vals = [...loads, ...used].map(([v]) => `let ${v} = ${v}_4.${c};`).join(" ");
      return `{ let r = q * 4u + ${k}u; ${vals}\n${body(k)} }`;
    });
    return [loop, head, ...ld, ...lc, ...lanes, tail, `}`].join("\n");
  };
  const lines = [
    thread ? `let o = (wid.x + wid.y * nwg.x) * ${ROW_WG}u + lid.x;` : `let o = wid.x + wid.y * nwg.x;`,
    `if (o >= P.rows) { return; }`,
    `let base = (o / P.O2) * P.R * P.O2 + o % P.O2;`,
    parts.pre ?? "",
    `var st: ${parts.stateType} = ${parts.init};`,
    pass(() => parts.push, "", "", parts.push4),
  ];
  let pre = prelude;
  if (!thread) {
    pre += `\nvar<workgroup> red: array<${parts.stateType}, ${wg}>;`;
    lines.push(
      `red[lid.x] = st;`,
      `workgroupBarrier();`,
      `for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {`,
      `  if (lid.x < s) { red[lid.x] = ${parts.merge}(red[lid.x], red[lid.x + s]); }`,
      `  workgroupBarrier();`,
      `}`,
      `st = red[0];`,
    );
  }
  if (parts.setup) lines.push(parts.setup);
  const w = parts.write;
  if (w) {
    const stmts = w.stmts ?? "";
    const store = `${w.out}[base / 4u + q] = w4;`;
    const dst = (k: number) => (vec4 ? `w4.${LANES[k]}` : `${w.out}[i]`);
    const one = (k: number) => `${stmts}\n${dst(k)} = ${w.value};`;
    lines.push(vec4 ? pass(one, `var w4: vec4f;`, store) : pass(one));
  }
  if (parts.once) lines.push(thread ? parts.once : `if (lid.x == 0u) {\n${parts.once}\n}`);
  const rowIndexed = new Set([...[...loads, ...cols].map(([, [b]]) => b), ...(w ? [w.out] : [])]);
  const vecType = (b: BindingSpec): BindingSpec => ({ ...b, type: "vec4<f32>" });
  const binds = bindings.map((b) => (vec4 && rowIndexed.has(b.name) ? vecType(b) : b));
  return { params, bindings: binds, workgroup: [size], prelude: pre, body: lines.join("\n") };
}

/** Forward kinds: softmax and log-softmax write a full row; logsumexp writes one value per row. */
export type SoftmaxKind = "softmax" | "logsoftmax" | "logsumexp";

/**
 * Fused forward: one pass for the online max and sum of exponentials, one pass writing the row.
 * Params: rows, R, O2, ox. Bindings: X (read), Y (rw; contiguous `[O1, R, O2]`, or `[rows]` for
 * logsumexp).
 */
export function softmaxForwardSpec(kind: SoftmaxKind, mode: RowMode, wg: number, vec4: boolean): KernelSpec {
  const writes: Record<SoftmaxKind, Partial<RowParts>> = {
    softmax: { setup: `let inv = 1.0 / st.y;`, write: { out: "Y", value: `exp(x - st.x) * inv` } },
    logsoftmax: { setup: `let c = st.x + log(st.y);`, write: { out: "Y", value: `x - c` } },
    logsumexp: { once: `Y[o] = st.x + log(st.y);` },
  };
  return rowSpec(
    mode,
    wg,
    vec4,
    ["rows", "R", "O2", "ox"],
    [
      { name: "X", type: "f32", access: "read" },
      { name: "Y", type: "f32", access: "rw" },
    ],
    LSE_HELPERS,
    {
      stateType: "vec2f",
      init: "vec2f(NEG_BIG, 0.0)",
      loads: { x: ["X", "ox"] },
      push: `st = lse_push(st, x);`,
      push4: `st = lse_push4(st, x_4);`,
      merge: "lse_merge",
      ...writes[kind],
    },
  );
}

/**
 * Fused backward from the saved output `Y`: softmax `dx = y·(g − Σ g·y)`, log-softmax
 * `dx = g − exp(y)·Σ g`. Params: rows, R, O2, og, oy. Bindings: G, Y (read), DX (rw, contiguous).
 */
export function softmaxBackwardSpec(
  kind: "softmax" | "logsoftmax",
  mode: RowMode,
  wg: number,
  vec4: boolean,
): KernelSpec {
  const soft = kind === "softmax";
  return rowSpec(
    mode,
    wg,
    vec4,
    ["rows", "R", "O2", "og", "oy"],
    [
      { name: "G", type: "f32", access: "read" },
      { name: "Y", type: "f32", access: "read" },
      { name: "DX", type: "f32", access: "rw" },
    ],
    LSE_HELPERS,
    {
      stateType: "f32",
      init: "0.0",
      loads: { g: ["G", "og"], y: ["Y", "oy"] },
      push: soft ? `st += g * y;` : `st += g;`,
      merge: "fadd",
      write: { out: "DX", value: soft ? `y * (g - st)` : `g - exp(y) * st` },
    },
  );
}
