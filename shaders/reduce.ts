/**
 * WGSL for reductions over the middle axis of a contiguous `[O1, R, O2]` view: sum, max, min,
 * argmax, argmin. `thread` mode gives each output one thread (small R); `group` mode gives each
 * output a workgroup that strides over R and combines in shared memory (large R, few outputs).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Reduction kinds. */
export type ReduceOp = "sum" | "max" | "min" | "argmax" | "argmin";

/** Threads per workgroup (both modes, unless chosen otherwise). */
export const RED_WG = 128;

/**
 * Thread-mode workgroup size on a CPU (fallback) adapter: small, so that even ~100 outputs spread
 * over every core; there one thread per output beats shared-memory group reductions, whose
 * barriers and shared loads are slow (a [1024, 128] column sum: 1.3–1.4 ms in group mode, 0.6 in
 * thread mode with 128-thread workgroups, i.e. on one core).
 */
export const RED_WG_CPU = 16;

function combine(op: ReduceOp, acc: string, idx: string, v: string, vi: string): string {
  switch (op) {
    case "sum":
      return `${acc} = ${acc} + ${v};`;
    case "max":
      return `${acc} = max(${acc}, ${v});`;
    case "min":
      return `${acc} = min(${acc}, ${v});`;
    case "argmax":
      return `if (${v} > ${acc} || (${v} == ${acc} && ${vi} < ${idx})) { ${acc} = ${v}; ${idx} = ${vi}; }`;
    case "argmin":
      return `if (${v} < ${acc} || (${v} == ${acc} && ${vi} < ${idx})) { ${acc} = ${v}; ${idx} = ${vi}; }`;
  }
}

function init(op: ReduceOp): string {
  if (op === "sum") return "0.0";
  if (op === "max" || op === "argmax") return "-3.4028234e38";
  return "3.4028234e38";
}

/**
 * Kernel spec for one reduction kind and mode. Params: O1, R, O2, off. `wg` is the workgroup size
 * (a power of two in group mode).
 */
export function reduceSpec(op: ReduceOp, mode: "thread" | "group", wg = RED_WG): KernelSpec {
  const isArg = op.startsWith("arg");
  const outType = isArg ? "i32" : "f32";
  const result = isArg ? "i32(idx)" : "acc";
  const bindings = [
    { name: "X", type: "f32" as const, access: "read" as const },
    { name: "Y", type: outType as "f32" | "i32", access: "rw" as const },
  ];
  const params = ["O1", "R", "O2", "off"];
  if (mode === "thread") {
    return {
      params,
      bindings,
      workgroup: [wg],
      body: `
  let o = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  if (o >= P.O1 * P.O2) { return; }
  let base = P.off + (o / P.O2) * P.R * P.O2 + o % P.O2;
  var acc = ${init(op)};
  var idx = 0xffffffffu;
  for (var r = 0u; r < P.R; r++) {
    let v = X[base + r * P.O2];
    ${combine(op, "acc", "idx", "v", "r")}
  }
  Y[o] = ${result};`,
    };
  }
  return {
    params,
    bindings,
    workgroup: [wg],
    prelude: `var<workgroup> sv: array<f32, ${wg}>;\nvar<workgroup> si: array<u32, ${wg}>;`,
    body: `
  let o = wid.x + wid.y * nwg.x;
  let base = P.off + (o / P.O2) * P.R * P.O2 + o % P.O2;
  var acc = ${init(op)};
  var idx = 0xffffffffu;
  for (var r = lid.x; r < P.R; r += ${wg}u) {
    let v = X[base + r * P.O2];
    ${combine(op, "acc", "idx", "v", "r")}
  }
  sv[lid.x] = acc;
  si[lid.x] = idx;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) {
      var a = sv[lid.x];
      var ai = si[lid.x];
      let v = sv[lid.x + s];
      let vi = si[lid.x + s];
      ${combine(op, "a", "ai", "v", "vi")}
      sv[lid.x] = a;
      si[lid.x] = ai;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && o < P.O1 * P.O2) {
    let acc = sv[0];
    let idx = si[0];
    Y[o] = ${result};
  }`,
  };
}

/**
 * Thread mode over four adjacent outputs at once (`vec4` loads and stores): sum, max or min of a
 * `[O1, R, O2]` view with O2 and `off` multiples of 4. Params: O1, R, O2, off. On lavapipe every
 * storage access is a per-lane loop, so one `vec4` access instead of four halves the cost.
 */
export function reduceVec4Spec(op: "sum" | "max" | "min", wg: number): KernelSpec {
  const acc = op === "sum" ? "acc + v" : `${op}(acc, v)`;
  return {
    params: ["O1", "R", "O2", "off"],
    bindings: [
      { name: "X", type: "vec4<f32>", access: "read" },
      { name: "Y", type: "vec4<f32>", access: "rw" },
    ],
    workgroup: [wg],
    body: `
  let o = (wid.x + wid.y * nwg.x) * ${wg}u + lid.x;
  let Q = P.O2 / 4u;
  if (o >= P.O1 * Q) { return; }
  let base = P.off / 4u + (o / Q) * P.R * Q + o % Q;
  var acc = vec4f(${init(op)});
  for (var r = 0u; r < P.R; r++) {
    let v = X[base + r * Q];
    acc = ${acc};
  }
  Y[o] = acc;`,
  };
}
