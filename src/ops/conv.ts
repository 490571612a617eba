/**
 * 2-D convolution with autograd: {@link conv2d} (NCHW, PyTorch weight layout, any kernel size,
 * stride, zero padding, dilation and groups). The forward, data-gradient and weight-gradient
 * products are implicit GEMMs run by `conv_dispatch.ts`; the bias gradient is a reduction.
 */
import { noGrad, record } from "../tensor/autograd.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import { type ConvClass, type ConvGeom, runConvGemm } from "./conv_dispatch.ts";
import { TexCache } from "./conv_regblock.ts";
import { zeros } from "./creation.ts";
import { sum } from "./reduce.ts";
import { contiguous } from "./views.ts";

/** Options of {@link conv2d}: a number applies to both spatial dims, a pair is (h, w). */
export interface Conv2dOptions {
  /** Step between output positions (default 1). */
  stride?: number | [number, number];
  /** Zero padding on each side (default 0). */
  padding?: number | [number, number];
  /** Spacing between kernel taps (default 1). */
  dilation?: number | [number, number];
  /** Number of channel groups; in and out channels must both divide by it (default 1). */
  groups?: number;
}

const shp = (s: Shape) => `[${s.join(", ")}]`;

function pair(
  name: string,
  v: number | [number, number] | undefined,
  dflt: number,
  min: number,
): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < min)) {
    throw new Error(
      `conv2d: ${name} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

/** Output size of one spatial dim (PyTorch's formula). */
export function convOutSize(size: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

/** Validates shapes and options; returns the geometry. */
function geometry(x: Tensor, w: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions): ConvGeom {
  if (x.ndim !== 4) throw new Error(`conv2d: input must be [B, C, H, W], got ${shp(x.shape)}`);
  if (w.ndim !== 4) throw new Error(`conv2d: weight must be [Cout, Cin/groups, kH, kW], got ${shp(w.shape)}`);
  for (const [n, t] of [["input", x], ["weight", w], ["bias", bias]] as const) {
    if (t && t.dtype !== "f32") throw new Error(`conv2d: ${n} must be f32, got ${t.dtype}`);
  }
  const G = opts.groups ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new Error(`conv2d: groups must be a positive integer, got ${G}`);
  const [B, Cin, H, W] = x.shape;
  const [Cout, Cg, kH, kW] = w.shape;
  if (Cin % G !== 0 || Cout % G !== 0) {
    throw new Error(`conv2d: ${Cin} input and ${Cout} output channels must both be divisible by groups=${G}`);
  }
  if (Cg !== Cin / G) {
    throw new Error(
      `conv2d: weight ${shp(w.shape)} expects ${Cg * G} input channels (${Cg} per group × ${G} groups), ` +
        `input ${shp(x.shape)} has ${Cin}`,
    );
  }
  if (kH < 1 || kW < 1 || Cout < 1) throw new Error(`conv2d: weight ${shp(w.shape)} has an empty dim`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== Cout)) {
    throw new Error(`conv2d: bias must be [${Cout}] (one per output channel), got ${shp(bias.shape)}`);
  }
  const [sH, sW] = pair("stride", opts.stride, 1, 1);
  const [pH, pW] = pair("padding", opts.padding, 0, 0);
  const [dH, dW] = pair("dilation", opts.dilation, 1, 1);
  const Ho = convOutSize(H, kH, sH, pH, dH), Wo = convOutSize(W, kW, sW, pW, dW);
  if (Ho < 1 || Wo < 1) {
    throw new Error(
      `conv2d: input ${shp(x.shape)} is too small for a ${kH}×${kW} kernel with dilation (${dH}, ${dW}) ` +
        `and padding (${pH}, ${pW}): the output would be ${Ho}×${Wo}`,
    );
  }
  return { B, G, Cg, Og: Cout / G, H, W, Ho, Wo, kH, kW, sH, sW, pH, pW, dH, dW };
}

/** The forward GEMM: per (g, b), out[b, g·Og + n, p] = Σ_k im2col(x)[p, k] · w[g·Og + n, k]. */
function forward(xc: Tensor, wc: Tensor, bias: Tensor | null, geo: ConvGeom): Tensor {
  const { B, G, Og, Ho, Wo, Cg, kH, kW } = geo;
  const P = Ho * Wo, Cout = G * Og;
  const out = Tensor.empty([B, Cout, Ho, Wo]);
  runConvGemm({
    gemm: "fwd",
    geo,
    a: xc,
    b: wc,
    dims: [G, B, 1],
    M: P,
    N: Og,
    K: Cg * kH * kW,
    out: { t: out, off: 0, rs: 1, cs: P, ss: [Og * P, Cout * P, 0] },
    bias: bias
      ? { t: bias, off: bias.offset, cs: bias.strides[0], ss: [Og * bias.strides[0], 0, 0] }
      : undefined,
  });
  return out;
}

/** Taps k < n with (r + pad − k·dil) ≡ 0 (mod s), as an arithmetic progression [first, step, count]. */
function taps(r: number, n: number, s: number, pad: number, dil: number): [number, number, number] {
  const ks: number[] = [];
  for (let k = 0; k < n; k++) if ((((r + pad - k * dil) % s) + s) % s === 0) ks.push(k);
  const step = ks.length > 1 ? ks[1] - ks[0] : 1;
  if (ks.some((k, i) => k !== ks[0] + i * step)) throw new Error("conv2d: internal: taps not a progression");
  return [ks[0] ?? 0, step, ks.length];
}

/**
 * The data gradient: dx[b, g·Cg + ci, ih, iw] = Σ_{o, kh, kw} dy[b, g·Og + o, oh, ow]·w[g·Og + o, ci, kh, kw]
 * over taps with ih + p − kh·d = oh·s. With stride > 1 the input pixels split into s_h·s_w
 * residue classes, each using only its own taps (no multiplications by inserted zeros); each
 * class is one GEMM whose slices are (g, b, input row of the class).
 */
function dataGrad(gc: Tensor, wc: Tensor, geo: ConvGeom, cache: TexCache): Tensor {
  const { B, G, Cg, Og, H, W, sH, sW } = geo;
  const Q = H * W, Cin = G * Cg;
  const strided = sH > 1 || sW > 1;
  const classes: ConvClass[] = [];
  for (let rh = 0; rh < (strided ? sH : 1); rh++) {
    for (let rw = 0; rw < (strided ? sW : 1); rw++) {
      const Hn = Math.ceil((H - rh) / sH), Wn = Math.ceil((W - rw) / sW);
      if (Hn <= 0 || Wn <= 0) continue;
      const [kh0, khs, nth] = taps(rh, geo.kH, sH, geo.pH, geo.dH);
      const [kw0, kws, ntw] = taps(rw, geo.kW, sW, geo.pW, geo.dW);
      classes.push({ Hs: strided ? Hn : 1, rh, rw, kh0, khs, nth, kw0, kws, ntw, Hn, Wn });
    }
  }
  // Pixels no tap reaches (e.g. a 1×1 kernel with stride 2) get a zero gradient.
  const live = classes.filter((c) => c.nth * c.ntw > 0);
  const dx = live.length < classes.length ? zeros([B, Cin, H, W]) : Tensor.empty([B, Cin, H, W]);
  for (const cls of live) {
    runConvGemm({
      gemm: "dgrad",
      geo,
      cls,
      a: gc,
      b: wc,
      dims: [G, B, cls.Hs],
      M: strided ? cls.Wn : Q,
      N: Cg,
      K: Og * cls.nth * cls.ntw,
      cache,
      out: { t: dx, off: cls.rh * W + cls.rw, rs: strided ? sW : 1, cs: Q, ss: [Cg * Q, Cin * Q, sH * W] },
    });
  }
  return dx;
}

/** The weight gradient: dw[g·Og + o, k] = Σ_{b, p} dy[b, g·Og + o, p] · im2col(x)[b, p, k]. */
function weightGrad(gc: Tensor, xc: Tensor, geo: ConvGeom, cache: TexCache): Tensor {
  const { B, G, Cg, Og, Ho, Wo, kH, kW } = geo;
  const Kc = Cg * kH * kW;
  const dw = Tensor.empty([G * Og, Cg, kH, kW]);
  runConvGemm({
    gemm: "wgrad",
    geo,
    a: gc,
    b: xc,
    dims: [1, 1, G],
    M: Og,
    N: Kc,
    K: B * Ho * Wo,
    cache,
    out: { t: dw, off: 0, rs: Kc, cs: 1, ss: [0, 0, Og * Kc] },
  });
  return dw;
}

/**
 * 2-D convolution like `torch.nn.functional.conv2d`: input `[B, Cin, H, W]`, weight
 * `[Cout, Cin/groups, kH, kW]`, optional bias `[Cout]`; output `[B, Cout, Ho, Wo]` with
 * `Ho = ⌊(H + 2·pad − dil·(kH − 1) − 1) / stride⌋ + 1` (likewise Wo). Differentiable in x, weight
 * and bias.
 *
 * @example
 * ```ts
 * import { initGpu, randn, conv2d } from "./mod.ts";
 * await initGpu();
 * const y = conv2d(randn([2, 3, 16, 16]), randn([8, 3, 3, 3]), null, { padding: 1 }); // [2, 8, 16, 16]
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  x.assertAlive();
  w.assertAlive();
  bias?.assertAlive();
  const geo = geometry(x, w, bias, opts);
  const [xc, wc] = noGrad(() => [contiguous(x), contiguous(w)]);
  const out = forward(xc, wc, bias ?? null, geo);
  xc.dispose();
  wc.dispose();
  const inputs = bias ? [x, w, bias] : [x, w];
  const saved = [x.alias(), w.alias()];
  return record("conv2d", inputs, out, (g) => {
    const [sx, sw] = saved;
    const gc = contiguous(g);
    const cache = new TexCache();
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      const c = contiguous(sw);
      gx = dataGrad(gc, c, geo, cache);
      c.dispose();
    }
    if (w.requiresGrad) {
      const c = contiguous(sx);
      gw = weightGrad(gc, c, geo, cache);
      c.dispose();
    }
    if (bias?.requiresGrad) gb = gc.size ? sum(gc, [0, 2, 3]) : zeros([bias.shape[0]]);
    cache.release();
    gc.dispose();
    return bias ? [gx, gw, gb] : [gx, gw];
  }, saved);
}
