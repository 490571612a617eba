/**
 * WGSL for 2-D pooling over contiguous `[BC, H, W]` planes (BC = batch × channels): max pooling
 * (forward saves the flat in-plane argmax, `h·W + w`, like PyTorch's indices; backward gathers the
 * gradient of every output window whose argmax is this input, so no atomics are needed) and
 * adaptive average pooling (PyTorch's bins `[⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉)`; forward one thread per
 * output, or one workgroup per output for huge bins; backward one thread per input).
 */
import type { KernelSpec } from "../src/gpu/kernel.ts";

/** Threads per workgroup of the one-thread-per-element pooling kernels. */
export const POOL_WG = 128;

const LINEAR = `let i = (wid.x + wid.y * nwg.x) * ${POOL_WG}u + lid.x;\n  if (i >= P.n) { return; }`;

/**
 * Max-pool forward, one thread per output. Params: n (= BC·OH·OW), H, W, OH, OW, kh, kw, sh, sw,
 * ph, pw, dh, dw, ox. Bindings: X (read), Y (rw), IDX (rw i32). The window starts at
 * `o·s − p`; padded positions are skipped (PyTorch's −∞ padding), the first maximum wins and a
 * NaN counts as the maximum.
 */
export function maxPoolForwardSpec(): KernelSpec {
  return {
    name: "maxpool2d",
    params: ["n", "H", "W", "OH", "OW", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw", "ox"],
    bindings: [
      { name: "X", type: "f32", access: "read" },
      { name: "Y", type: "f32", access: "rw" },
      { name: "IDX", type: "i32", access: "rw" },
    ],
    workgroup: [POOL_WG],
    prelude: `
fn first_in(start: i32, step: i32) -> i32 {
  if (start >= 0) { return start; }
  return start + ((-start + step - 1) / step) * step;
}`,
    body: `
  ${LINEAR}
  let ow = i % P.OW;
  let t = i / P.OW;
  let oh = t % P.OH;
  let base = P.ox + (t / P.OH) * P.H * P.W;
  let dh = i32(P.dh);
  let dw = i32(P.dw);
  let h0 = i32(oh * P.sh) - i32(P.ph);
  let w0 = i32(ow * P.sw) - i32(P.pw);
  let he = min(h0 + (i32(P.kh) - 1) * dh + 1, i32(P.H));
  let we = min(w0 + (i32(P.kw) - 1) * dw + 1, i32(P.W));
  let hs = first_in(h0, dh);
  let ws = first_in(w0, dw);
  var bi = hs * i32(P.W) + ws;
  var best = X[base + u32(max(bi, 0))];
  for (var h = hs; h < he; h += dh) {
    for (var w = ws; w < we; w += dw) {
      let k = h * i32(P.W) + w;
      let v = X[base + u32(k)];
      if (v > best || v != v) {
        best = v;
        bi = k;
      }
    }
  }
  Y[i] = best;
  IDX[i] = bi;`,
  };
}

/**
 * Max-pool backward, one thread per input element: sums the output gradients of the windows that
 * can contain it and whose saved argmax is it. Params: n (= BC·H·W), H, W, OH, OW, kh, kw, sh,
 * sw, ph, pw, dh, dw, og, oi. Bindings: G, IDX (read), DX (rw).
 */
export function maxPoolBackwardSpec(): KernelSpec {
  return {
    name: "maxpool2d_backward",
    params: ["n", "H", "W", "OH", "OW", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw", "og", "oi"],
    bindings: [
      { name: "G", type: "f32", access: "read" },
      { name: "IDX", type: "i32", access: "read" },
      { name: "DX", type: "f32", access: "rw" },
    ],
    workgroup: [POOL_WG],
    prelude: `
fn lo_out(pos: u32, pad: u32, span: u32, stride: u32) -> u32 {
  let num = i32(pos + pad) - i32(span);
  if (num <= 0) { return 0u; }
  return (u32(num) + stride - 1u) / stride;
}`,
    body: `
  ${LINEAR}
  let w = i % P.W;
  let t = i / P.W;
  let h = t % P.H;
  let plane = (t / P.H) * P.OH * P.OW;
  let me = i32(h * P.W + w);
  let oh0 = lo_out(h, P.ph, (P.kh - 1u) * P.dh, P.sh);
  let oh1 = min((h + P.ph) / P.sh + 1u, P.OH);
  let ow0 = lo_out(w, P.pw, (P.kw - 1u) * P.dw, P.sw);
  let ow1 = min((w + P.pw) / P.sw + 1u, P.OW);
  var acc = 0.0;
  for (var oh = oh0; oh < oh1; oh++) {
    for (var ow = ow0; ow < ow1; ow++) {
      let o = plane + oh * P.OW + ow;
      if (IDX[P.oi + o] == me) { acc += G[P.og + o]; }
    }
  }
  DX[i] = acc;`,
  };
}

const BINS = `
fn bin_lo(o: u32, n: u32, on: u32) -> u32 { return (o * n) / on; }
fn bin_hi(o: u32, n: u32, on: u32) -> u32 { return ((o + 1u) * n + on - 1u) / on; }`;

/**
 * Adaptive average-pool forward. `thread`: one thread per output; `group`: one workgroup of `wg`
 * threads per output (bins too long for one thread's loop budget). Params: n (= BC·OH·OW), H, W,
 * OH, OW, ox. Bindings: X (read), Y (rw).
 */
export function adaptiveAvgForwardSpec(mode: "thread" | "group", wg = 64): KernelSpec {
  const head = `
  let ow = o % P.OW;
  let t = o / P.OW;
  let oh = t % P.OH;
  let base = P.ox + (t / P.OH) * P.H * P.W;
  let hs = bin_lo(oh, P.H, P.OH);
  let he = bin_hi(oh, P.H, P.OH);
  let ws = bin_lo(ow, P.W, P.OW);
  let we = bin_hi(ow, P.W, P.OW);
  let bw = we - ws;
  let area = (he - hs) * bw;`;
  const common = {
    params: ["n", "H", "W", "OH", "OW", "ox"],
    bindings: [
      { name: "X", type: "f32" as const, access: "read" as const },
      { name: "Y", type: "f32" as const, access: "rw" as const },
    ],
  };
  if (mode === "thread") {
    return {
      ...common,
      name: "adaptive_avgpool2d",
      workgroup: [POOL_WG],
      prelude: BINS,
      body: `
  let i = (wid.x + wid.y * nwg.x) * ${POOL_WG}u + lid.x;
  if (i >= P.n) { return; }
  let o = i;${head}
  var acc = 0.0;
  for (var h = hs; h < he; h++) {
    for (var w = ws; w < we; w++) { acc += X[base + h * P.W + w]; }
  }
  Y[o] = acc / f32(area);`,
    };
  }
  return {
    ...common,
    name: "adaptive_avgpool2d_group",
    workgroup: [wg],
    prelude: `${BINS}\nvar<workgroup> sh: array<f32, ${wg}>;`,
    body: `
  let o = min(wid.x + wid.y * nwg.x, P.n - 1u);${head}
  var acc = 0.0;
  for (var j = lid.x; j < area; j += ${wg}u) {
    let r = j / bw;
    acc += X[base + (hs + r) * P.W + ws + (j - r * bw)];
  }
  sh[lid.x] = acc;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { sh[lid.x] = sh[lid.x] + sh[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && wid.x + wid.y * nwg.x < P.n) { Y[o] = sh[0] / f32(area); }`,
  };
}

/**
 * Adaptive average-pool backward, one thread per input element: the sum of `g / area` over the
 * bins that contain it. Params: n (= BC·H·W), H, W, OH, OW, og. Bindings: G (read), DX (rw).
 */
export function adaptiveAvgBackwardSpec(): KernelSpec {
  return {
    name: "adaptive_avgpool2d_backward",
    params: ["n", "H", "W", "OH", "OW", "og"],
    bindings: [
      { name: "G", type: "f32", access: "read" },
      { name: "DX", type: "f32", access: "rw" },
    ],
    workgroup: [POOL_WG],
    prelude: BINS,
    body: `
  ${LINEAR}
  let w = i % P.W;
  let t = i / P.W;
  let h = t % P.H;
  let plane = (t / P.H) * P.OH * P.OW;
  let oh1 = min(((h + 1u) * P.OH - 1u) / P.H + 1u, P.OH);
  let ow1 = min(((w + 1u) * P.OW - 1u) / P.W + 1u, P.OW);
  var acc = 0.0;
  for (var oh = (h * P.OH) / P.H; oh < oh1; oh++) {
    let hs = bin_lo(oh, P.H, P.OH);
    let he = bin_hi(oh, P.H, P.OH);
    for (var ow = (w * P.OW) / P.W; ow < ow1; ow++) {
      let ws = bin_lo(ow, P.W, P.OW);
      let we = bin_hi(ow, P.W, P.OW);
      if (h >= hs && h < he && w >= ws && w < we) {
        acc += G[P.og + plane + oh * P.OW + ow] / f32((he - hs) * (we - ws));
      }
    }
  }
  DX[i] = acc;`,
  };
}
