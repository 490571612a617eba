/**
 * WGSL kernels of gradient clipping over a gathered gradient arena (see
 * `src/optim/grad_arena.ts`): per-chunk sums of squares, per-segment scaling, the global-norm
 * finish, and autoclip's quantile step with each parameter's past norms kept sorted, so a step
 * moves only the entries between the removed and the inserted norm instead of sorting the whole
 * history (a 1024-entry bitonic sort per parameter took ~0.7 ms of one core on lavapipe).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup of the chunk and quantile kernels (8 lavapipe SIMD batches). */
export const CLIP_WG = 64;

const reduceTree = (n: number) => `
  workgroupBarrier();
  for (var s = ${n / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { sh[lid.x] = sh[lid.x] + sh[lid.x + s]; }
    workgroupBarrier();
  }`;

/** Chunk c of the arena: `Chunks[3c..3c+3) = [segment, start, end)` in elements (start % 4 = 0). */
const CHUNK_HEAD = `
  let c = wid.x + wid.y * nwg.x;
  if (c >= P.nChunks) { return; }
  let seg = Chunks[3u * c];
  let start = Chunks[3u * c + 1u];
  let end = Chunks[3u * c + 2u];`;

/** Lanes of quad q that lie before `end`. */
const LANES = `let lanes = vec4u(4u * q) + vec4u(0u, 1u, 2u, 3u) < vec4u(end);`;

/** `Part[c]` = the sum of squares of chunk c (lanes past its end read as 0, whatever they hold). */
export const chunkSumsqSpec: KernelSpec = {
  name: "clip sumsq",
  params: ["nChunks"],
  bindings: [
    { name: "G", type: "vec4<f32>", access: "read" },
    { name: "Chunks", type: "u32", access: "read" },
    { name: "Part", type: "f32", access: "rw" },
  ],
  workgroup: [CLIP_WG],
  prelude: `var<workgroup> sh: array<f32, ${CLIP_WG}>;`,
  body: `${CHUNK_HEAD}
  var acc = 0.0;
  for (var q = start / 4u + lid.x; 4u * q < end; q += ${CLIP_WG}u) {
    ${LANES}
    let v = select(vec4f(0.0), G[q], lanes);
    acc += dot(v, v);
  }
  sh[lid.x] = acc;${reduceTree(CLIP_WG)}
  if (lid.x == 0u) { Part[c] = sh[0]; }`,
};

/** Multiplies chunk c in place by `Coef[coefOff + segment·coefStride]` (lanes past its end untouched). */
export const chunkScaleSpec: KernelSpec = {
  name: "clip scale",
  params: ["nChunks", "coefOff", "coefStride"],
  bindings: [
    { name: "G", type: "vec4<f32>", access: "rw" },
    { name: "Chunks", type: "u32", access: "read" },
    { name: "Coef", type: "f32", access: "read" },
  ],
  workgroup: [CLIP_WG],
  body: `${CHUNK_HEAD}
  let k = Coef[P.coefOff + seg * P.coefStride];
  for (var q = start / 4u + lid.x; 4u * q < end; q += ${CLIP_WG}u) {
    ${LANES}
    let v = G[q];
    G[q] = select(v, v * k, lanes);
  }`,
};

const FINISH_WG = 256;

/** One workgroup: norm = √ΣPart, Out[0] = norm, Out[1] = min(1, maxNorm / (norm + 1e-6)). */
export const normFinishSpec: KernelSpec = {
  name: "clip norm",
  params: ["count", "maxNorm"],
  bindings: [{ name: "Part", type: "f32", access: "read" }, { name: "Out", type: "f32", access: "rw" }],
  workgroup: [FINISH_WG],
  prelude: `var<workgroup> sh: array<f32, ${FINISH_WG}>;`,
  body: `
  var acc = 0.0;
  for (var i = lid.x; i < P.count; i += ${FINISH_WG}u) { acc += Part[i]; }
  sh[lid.x] = acc;${reduceTree(FINISH_WG)}
  if (lid.x == 0u) {
    let norm = sqrt(sh[0]);
    Out[0] = norm;
    Out[1] = min(1.0, bitcast<f32>(P.maxNorm) / (norm + 1e-6));
  }`,
};

const LOWER_BOUND = `
fn lowerBound(base: u32, n: u32, x: f32) -> u32 {
  var lo = 0u;
  var hi = n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (Sorted[base + mid] < x) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}`;

/**
 * One quantile-clipping step, workgroup per segment s (parameter `p = Seg[3s]`, partial sums
 * `Part[Seg[3s+1] .. Seg[3s+2])`): norm = √ΣPart; with m = min(Counts[p], L) past norms,
 * `Coef[s] = min(1, thr / (norm + 1e-6))` where thr is their q-quantile (linear interpolation,
 * +∞ when m = 0); then the norm (NaN as +∞) replaces the oldest entry of the ring `Hist[p·L ..]`
 * at Counts[p] mod L and of the sorted window `Sorted[p·L .. p·L+m)`, and Counts[p] grows by one.
 */
export function quantileStepSpec(L: number): KernelSpec {
  return {
    name: "clip quantile",
    params: ["nSeg", "q"],
    bindings: [
      { name: "Part", type: "f32", access: "read" },
      { name: "Seg", type: "u32", access: "read" },
      { name: "Hist", type: "f32", access: "rw" },
      { name: "Sorted", type: "f32", access: "rw" },
      { name: "Counts", type: "u32", access: "rw" },
      { name: "Coef", type: "f32", access: "rw" },
    ],
    workgroup: [CLIP_WG],
    prelude: `var<workgroup> sh: array<f32, ${CLIP_WG}>;
var<workgroup> sv: array<f32, ${L}>;
var<workgroup> span: vec4u;
${LOWER_BOUND}`,
    body: `
  let s = wid.x + wid.y * nwg.x;
  if (s >= P.nSeg) { return; }
  let p = Seg[3u * s];
  var acc = 0.0;
  for (var i = Seg[3u * s + 1u] + lid.x; i < Seg[3u * s + 2u]; i += ${CLIP_WG}u) { acc += Part[i]; }
  sh[lid.x] = acc;${reduceTree(CLIP_WG)}
  let base = p * ${L}u;
  if (lid.x == 0u) {
    let norm = sqrt(sh[0]);
    let inf = bitcast<f32>(0x7f800000u);
    let cnt = Counts[p];
    let m = min(cnt, ${L}u);
    let pos = cnt % ${L}u;
    var thr = inf;
    if (m > 0u) {
      let r = bitcast<f32>(P.q) * f32(m - 1u);
      let lo = u32(floor(r));
      let hi = min(u32(ceil(r)), m - 1u);
      let w = r - f32(lo);
      let a = Sorted[base + lo];
      let b = Sorted[base + hi];
      thr = select(b - (b - a) * (1.0 - w), a + w * (b - a), w < 0.5);
    }
    Coef[s] = min(1.0, thr / (norm + 1e-6));
    let x = select(norm, inf, norm != norm);
    var kdel = m;
    var ins = lowerBound(base, m, x);
    if (m == ${L}u) {
      kdel = lowerBound(base, m, Hist[base + pos]);
      if (kdel < ins) { ins = ins - 1u; }
    }
    Hist[base + pos] = x;
    Counts[p] = cnt + 1u;
    span = vec4u(min(kdel, ins), max(kdel, ins), kdel, ins);
    sh[0] = x;
  }
  workgroupBarrier();
  storageBarrier();
  let sp = span;
  let x = sh[0];
  // New entry j (lo ≤ j ≤ hi) of the window with entry kdel removed and x inserted at ins.
  for (var j = sp.x + lid.x; j <= sp.y; j += ${CLIP_WG}u) {
    var v = x;
    if (j < sp.w) { v = Sorted[base + select(j, j + 1u, j >= sp.z)]; }
    else if (j > sp.w) { v = Sorted[base + select(j - 1u, j, j - 1u >= sp.z)]; }
    sv[j - sp.x] = v;
  }
  workgroupBarrier();
  storageBarrier();
  for (var j = sp.x + lid.x; j <= sp.y; j += ${CLIP_WG}u) { Sorted[base + j] = sv[j - sp.x]; }`,
  };
}

/**
 * Rebuilds parameter p's sorted window (workgroup p) from its ring: the first min(Counts[p], L)
 * entries of `Hist[p·L ..]` (NaN stored as +∞) sorted ascending into `Sorted[p·L ..]` by a
 * bitonic sort over N ≥ L slots. Run after loading a checkpoint.
 */
export function rebuildSortedSpec(L: number): KernelSpec {
  const N = 2 ** Math.ceil(Math.log2(Math.max(L, 2)));
  return {
    name: "clip rebuild",
    params: ["nParams"],
    bindings: [
      { name: "Hist", type: "f32", access: "rw" },
      { name: "Sorted", type: "f32", access: "rw" },
      { name: "Counts", type: "u32", access: "read" },
    ],
    workgroup: [FINISH_WG],
    prelude: `var<workgroup> sv: array<f32, ${N}>;`,
    body: `
  let p = wid.x + wid.y * nwg.x;
  if (p >= P.nParams) { return; }
  let base = p * ${L}u;
  let m = min(Counts[p], ${L}u);
  let inf = bitcast<f32>(0x7f800000u);
  for (var i = lid.x; i < ${N}u; i += ${FINISH_WG}u) {
    var v = inf;
    if (i < m) {
      v = Hist[base + i];
      if (v != v) { v = inf; Hist[base + i] = inf; }
    }
    sv[i] = v;
  }
  workgroupBarrier();
  for (var k = 2u; k <= ${N}u; k = k << 1u) {
    for (var j = k >> 1u; j > 0u; j = j >> 1u) {
      for (var t = lid.x; t < ${N}u; t += ${FINISH_WG}u) {
        let o = t ^ j;
        if (o > t) {
          let a = sv[t];
          let b = sv[o];
          if ((a > b) == ((t & k) == 0u)) { sv[t] = b; sv[o] = a; }
        }
      }
      workgroupBarrier();
    }
  }
  for (var i = lid.x; i < m; i += ${FINISH_WG}u) { Sorted[base + i] = sv[i]; }`,
  };
}
