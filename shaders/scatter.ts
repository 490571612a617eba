/**
 * WGSL for float scatter-add along one axis: `Out[c with c[axis] → Idx[c]] += Src[c]`, correct
 * when several entries hit the same destination. Strategies:
 *
 * Deterministic (default). With few entries per line (destination size × line length within a
 * budget, see `src/ops/indexing.ts`), `directSpec`: each destination scans its line in one pass.
 * Otherwise a bucket sort of the index followed by a destination-driven sum; both add in
 * increasing entry order, so they give the same bits. The
 * index has a compact shape (size 1 on broadcast dims); a "line" is one run of it along `axis`,
 * and a bucket is (line, destination row v). Five passes:
 *   1. `countSpec`: Cnt[bucket] += 1 per entry (u32 atomics; counts do not depend on order).
 *   2. `scanSpec`: one workgroup per line turns counts into bucket start offsets (Pos).
 *   3. `placeSpec`: each entry takes a slot of its bucket with an atomic cursor (Pos ends up at the
 *      bucket ends); the order inside a bucket is arbitrary here…
 *   4. `sortSpec`: …so each entry recomputes its rank among its bucket's positions and writes
 *      itself to `Sorted`, giving every bucket in increasing position order.
 *   5. `sumSpec`: one thread per destination element adds base + its bucket's sources in that
 *      order. Fixed order, one writer per element: bit-identical on every run and device.
 *   Work is linear except pass 4, which is Σ over buckets of size² (fine unless one destination
 *   row receives thousands of entries of the same line).
 * Atomic (`atomicSpec`): one thread per entry adds into `array<atomic<u32>>` with a
 * compare-and-swap loop on the float bits (WGSL has no float atomics). Linear in the entries, no
 * hot spot, but the summation order, hence the last bits, may vary between runs.
 *
 * Index normalisation (wrap negatives once, then clamp) matches the gather kernels, so a gather's
 * backward scatters to exactly the rows it read.
 */
import type { KernelSpec, WgslType } from "../src/gpu/kernel.ts";
import { coordLines, INDEX_HELPERS, INDEX_WG, LINEAR_ID } from "./gather.ts";

/**
 * Threads per workgroup of the direct strategy: small, so that the few destinations of a long
 * line (an embedding table's rows) still spread over every CPU core of a software adapter.
 */
export const DIRECT_WG = 16;

/** Threads per workgroup of the per-line scan. */
export const SCAN_WG = 256;

/** `base + Σ_{d≠axis} c_d · P.{prefix}d`. */
function offsetExpr(base: string, prefix: string, rank: number, axis: number): string {
  let e = base;
  for (let d = 0; d < rank; d++) if (d !== axis) e += ` + c${d} * P.${prefix}${d}`;
  return e;
}

function params(rank: number, head: string[], groups: string[]): string[] {
  const p = [...head];
  for (const g of groups) for (let d = 0; d < rank; d++) p.push(`${g}${d}`);
  return p;
}

/**
 * Shared head of the passes over the compact index (params `n`, `io`, `N`, then `d*` index shape,
 * `is*` index strides, `ls*` line strides): defines `k` (position on the line), `v` (normalised
 * index) and `b` (bucket).
 */
function entryHead(rank: number, axis: number): string[] {
  return [
    `let i = ${LINEAR_ID};`,
    `if (i >= P.n) { return; }`,
    ...coordLines(rank),
    `let k = c${axis};`,
    `let v = fix_index(i32(Idx[${offsetExpr("P.io", "is", rank, axis)} + k * P.is${axis}]), P.N);`,
    `let b = (${offsetExpr("0u", "ls", rank, axis)}) * P.N + v;`,
  ];
}

function entrySpec(
  rank: number,
  axis: number,
  idxType: "i32" | "u32",
  extra: { name: string; type: WgslType; access: "read" | "rw" }[],
  body: string[],
): KernelSpec {
  return {
    params: params(rank, ["n", "io", "N"], ["d", "is", "ls"]),
    bindings: [{ name: "Idx", type: idxType, access: "read" }, ...extra],
    workgroup: [INDEX_WG],
    prelude: INDEX_HELPERS,
    body: [...entryHead(rank, axis), ...body].join("\n"),
  };
}

const ATOMIC = "atomic<u32>" as WgslType; // kernel.ts writes array<T>; atomics are valid there.

/** Pass 1: `Cnt[b] += 1` per index entry (Cnt zeroed, lines × N). */
export function countSpec(rank: number, axis: number, idxType: "i32" | "u32"): KernelSpec {
  return entrySpec(rank, axis, idxType, [{ name: "Cnt", type: ATOMIC, access: "rw" }], [
    `atomicAdd(&Cnt[b], 1u);`,
  ]);
}

/**
 * Pass 2: one workgroup per line; `Pos[line·N + v] = line·L + Σ_{u<v} Cnt[line·N + u]`.
 * Params: `lines`, `N`, `L`.
 */
export function scanSpec(): KernelSpec {
  return {
    params: ["lines", "N", "L"],
    bindings: [
      { name: "Cnt", type: "u32", access: "read" },
      { name: "Pos", type: "u32", access: "rw" },
    ],
    workgroup: [SCAN_WG],
    prelude: `var<workgroup> part: array<u32, ${SCAN_WG}>;`,
    body: `
  let line = wid.x + wid.y * nwg.x;
  if (line >= P.lines) { return; }
  let chunk = (P.N + ${SCAN_WG - 1}u) / ${SCAN_WG}u;
  let b0 = line * P.N;
  let lo = min(lid.x * chunk, P.N);
  let hi = min(lo + chunk, P.N);
  var s = 0u;
  for (var v = lo; v < hi; v++) { s = s + Cnt[b0 + v]; }
  part[lid.x] = s;
  workgroupBarrier();
  if (lid.x == 0u) {
    var run = line * P.L;
    for (var t = 0u; t < ${SCAN_WG}u; t++) { let x = part[t]; part[t] = run; run = run + x; }
  }
  workgroupBarrier();
  var run = part[lid.x];
  for (var v = lo; v < hi; v++) { Pos[b0 + v] = run; run = run + Cnt[b0 + v]; }`,
  };
}

/** Pass 3: `Tmp[atomicAdd(Pos[b], 1)] = k` (afterwards Pos[b] is the bucket's end). */
export function placeSpec(rank: number, axis: number, idxType: "i32" | "u32"): KernelSpec {
  return entrySpec(rank, axis, idxType, [
    { name: "Pos", type: ATOMIC, access: "rw" },
    { name: "Tmp", type: "u32", access: "rw" },
  ], [`Tmp[atomicAdd(&Pos[b], 1u)] = k;`]);
}

/** Pass 4: rank of `k` among its bucket `[Pos[b] − Cnt[b], Pos[b])` of Tmp, written to Sorted. */
export function sortSpec(rank: number, axis: number, idxType: "i32" | "u32"): KernelSpec {
  return entrySpec(rank, axis, idxType, [
    { name: "Cnt", type: "u32", access: "read" },
    { name: "Pos", type: "u32", access: "read" },
    { name: "Tmp", type: "u32", access: "read" },
    { name: "Sorted", type: "u32", access: "rw" },
  ], [
    `let end = Pos[b];`,
    `let start = end - Cnt[b];`,
    `var rk = 0u;`,
    `for (var j = start; j < end; j++) { rk = rk + select(0u, 1u, Tmp[j] < k); }`,
    `Sorted[start + rk] = k;`,
  ]);
}

/**
 * Pass 5: one thread per destination element `c` (contiguous output of shape `d*`):
 * `Out[c] = base(c) + Σ_{k in bucket} Src[c with c[axis] = k]`. Params: `n`, `bo`, `so`, `N`,
 * then per dim `d*` (destination shape), `it*` (iteration bounds: a destination off `axis`
 * receives only if `c_d < it_d`), `ls*` (line strides, 0 on broadcast dims), `bs*`, `ss*` (base
 * and source strides). Without `hasBase` the base is zero and `bo`/`bs*` are ignored.
 */
export function sumSpec(rank: number, axis: number, hasBase: boolean): KernelSpec {
  const inside: string[] = [];
  for (let d = 0; d < rank; d++) if (d !== axis) inside.push(`c${d} < P.it${d}`);
  const body = [
    `let i = ${LINEAR_ID};`,
    `if (i >= P.n) { return; }`,
    ...coordLines(rank),
    `var acc = ${hasBase ? `Base[${offsetExpr("P.bo", "bs", rank, -1)}]` : "0.0"};`,
    `if (${inside.length ? inside.join(" && ") : "true"}) {`,
    `  let b = (${offsetExpr("0u", "ls", rank, axis)}) * P.N + c${axis};`,
    `  let end = Pos[b];`,
    `  let sb = ${offsetExpr("P.so", "ss", rank, axis)};`,
    `  for (var j = end - Cnt[b]; j < end; j++) { acc = acc + Src[sb + Sorted[j] * P.ss${axis}]; }`,
    `}`,
    `Out[i] = acc;`,
  ];
  return {
    params: params(rank, ["n", "bo", "so", "N"], ["d", "it", "ls", "bs", "ss"]),
    bindings: [
      { name: "Cnt", type: "u32", access: "read" },
      { name: "Pos", type: "u32", access: "read" },
      { name: "Sorted", type: "u32", access: "read" },
      ...(hasBase ? [{ name: "Base", type: "f32" as const, access: "read" as const }] : []),
      { name: "Src", type: "f32", access: "read" },
      { name: "Out", type: "f32", access: "rw" },
    ],
    workgroup: [INDEX_WG],
    body: body.join("\n"),
  };
}

/**
 * Direct strategy for few entries per line (the deterministic mode's choice when destination size
 * × entries per line is small): one thread per destination element `c` scans the L entries of its
 * line and adds `Src` where the index hits `c[axis]`, in increasing entry order from the base —
 * the order of the sorted strategy, hence the same bits, in one pass instead of five. Params: `n`,
 * `bo`, `so`, `io`, `N`, `L`, then per dim `d*` (destination shape), `it*` (as in
 * {@link sumSpec}), `is*` (index strides, 0 on broadcast dims), `bs*`, `ss*`.
 */
export function directSpec(rank: number, axis: number, hasBase: boolean, idxType: "i32" | "u32"): KernelSpec {
  const inside: string[] = [];
  for (let d = 0; d < rank; d++) if (d !== axis) inside.push(`c${d} < P.it${d}`);
  const body = [
    `let i = (wid.x + wid.y * nwg.x) * ${DIRECT_WG}u + lid.x;`,
    `if (i >= P.n) { return; }`,
    ...coordLines(rank),
    `var acc = ${hasBase ? `Base[${offsetExpr("P.bo", "bs", rank, -1)}]` : "0.0"};`,
    `if (${inside.length ? inside.join(" && ") : "true"}) {`,
    `  let ib = ${offsetExpr("P.io", "is", rank, axis)};`,
    `  let sb = ${offsetExpr("P.so", "ss", rank, axis)};`,
    `  for (var k = 0u; k < P.L; k++) {`,
    `    if (fix_index(i32(Idx[ib + k * P.is${axis}]), P.N) == c${axis}) { acc = acc + Src[sb + k * P.ss${axis}]; }`,
    `  }`,
    `}`,
    `Out[i] = acc;`,
  ];
  return {
    params: params(rank, ["n", "bo", "so", "io", "N", "L"], ["d", "it", "is", "bs", "ss"]),
    bindings: [
      { name: "Idx", type: idxType, access: "read" },
      ...(hasBase ? [{ name: "Base", type: "f32" as const, access: "read" as const }] : []),
      { name: "Src", type: "f32", access: "read" },
      { name: "Out", type: "f32", access: "rw" },
    ],
    workgroup: [DIRECT_WG],
    prelude: INDEX_HELPERS,
    body: body.join("\n"),
  };
}

/**
 * Atomic strategy: one thread per entry of the iteration shape adds its source value into `Out`
 * (f32 data viewed as `atomic<u32>`, already holding the base) with a compare-and-swap loop.
 * Params: `n`, `io`, `so`, `N`, then per dim `d*` (iteration shape), `is*`, `ss*`, `os*`
 * (index, source and output strides; index strides 0 on broadcast dims).
 */
export function atomicSpec(rank: number, axis: number, idxType: "i32" | "u32"): KernelSpec {
  const a = axis;
  const body = [
    `let i = ${LINEAR_ID};`,
    `if (i >= P.n) { return; }`,
    ...coordLines(rank),
    `let k = c${a};`,
    `let val = Src[${offsetExpr("P.so", "ss", rank, axis)} + k * P.ss${a}];`,
    `let v = fix_index(i32(Idx[${offsetExpr("P.io", "is", rank, axis)} + k * P.is${a}]), P.N);`,
    `let o = ${offsetExpr("0u", "os", rank, axis)} + v * P.os${a};`,
    `var old = atomicLoad(&Out[o]);`,
    `loop {`,
    `  let r = atomicCompareExchangeWeak(&Out[o], old, bitcast<u32>(bitcast<f32>(old) + val));`,
    `  if (r.exchanged) { break; }`,
    `  old = r.old_value;`,
    `}`,
  ];
  return {
    params: params(rank, ["n", "io", "so", "N"], ["d", "is", "ss", "os"]),
    bindings: [
      { name: "Idx", type: idxType, access: "read" },
      { name: "Src", type: "f32", access: "read" },
      { name: "Out", type: ATOMIC, access: "rw" },
    ],
    workgroup: [INDEX_WG],
    prelude: INDEX_HELPERS,
    body: body.join("\n"),
  };
}
