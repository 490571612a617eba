/**
 * 2-D pooling with PyTorch semantics over `[B, C, H, W]` or `[C, H, W]`: max pooling (kernel,
 * stride, padding, dilation, ceil mode; the backward routes each gradient to the saved argmax) and
 * adaptive average pooling (PyTorch's bins). One dispatch forward and one backward each.
 */
import {
  adaptiveAvgBackwardSpec,
  adaptiveAvgForwardSpec,
  maxPoolBackwardSpec,
  maxPoolForwardSpec,
  POOL_WG,
} from "../../shaders/pool.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { record } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { LOOP_BUDGET } from "./softmax.ts";
import { contiguous } from "./views.ts";

/** A size given once for both spatial dims or as `[height, width]`. */
export type Size2 = number | readonly [number, number];

/** Options of {@link maxPool2d}. */
export interface MaxPool2dOptions {
  /** Window size. */
  kernelSize: Size2;
  /** Step between windows (default: `kernelSize`). */
  stride?: Size2;
  /** Implicit −∞ padding on each side (default 0; at most half the kernel size). */
  padding?: Size2;
  /** Spacing between window elements (default 1). */
  dilation?: Size2;
  /** Round the output size up instead of down (default false). */
  ceilMode?: boolean;
}

const specs = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let s = specs.get(key);
  if (!s) specs.set(key, s = make());
  return s;
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function pair(op: string, name: string, v: Size2, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${name} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Checks a `[B, C, H, W]` or `[C, H, W]` f32 input; returns B·C, H, W. */
function planes(op: string, x: Tensor): [number, number, number] {
  x.assertAlive();
  if (x.dtype !== "f32") throw new Error(`${op}: input must be f32, got ${x.dtype}`);
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new Error(`${op}: input must be [B, C, H, W] or [C, H, W], got shape ${fmt(x.shape)}`);
  }
  const [H, W] = x.shape.slice(-2);
  return [x.size / Math.max(H * W, 1), H, W];
}

/** PyTorch's pooled size along one dim (floor or ceil mode; the last window must start in range). */
function pooledSize(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let o = Math.floor(span / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** True when every window along a dim holds at least one real (unpadded) element. */
function windowsHit(n: number, o: number, k: number, s: number, p: number, d: number): boolean {
  for (let i = 0; i < o; i++) {
    const start = i * s - p;
    const first = start >= 0 ? start : start + Math.ceil(-start / d) * d;
    if (first >= Math.min(start + (k - 1) * d + 1, n)) return false;
  }
  return true;
}

/**
 * Max pooling like `torch.nn.functional.max_pool2d(..., return_indices=True)`: returns the
 * output and the i32 indices of each window's maximum within its `H·W` plane (`h·W + w`; the
 * first maximum on ties, NaN counts as the maximum). Gradients flow to `x` only.
 */
export function maxPool2dWithIndices(x: Tensor, opts: MaxPool2dOptions): [Tensor, Tensor] {
  const op = "maxPool2d";
  const [BC, H, W] = planes(op, x);
  const [kh, kw] = pair(op, "kernelSize", opts.kernelSize, 1);
  const [sh, sw] = pair(op, "stride", opts.stride ?? opts.kernelSize, 1);
  const [ph, pw] = pair(op, "padding", opts.padding ?? 0, 0);
  const [dh, dw] = pair(op, "dilation", opts.dilation ?? 1, 1);
  const ceil = opts.ceilMode ?? false;
  if (ph > Math.floor(kh / 2) || pw > Math.floor(kw / 2)) {
    throw new Error(
      `${op}: padding ${fmt([ph, pw])} must be at most half the kernel size ${fmt([kh, kw])}`,
    );
  }
  const OH = pooledSize(H, kh, sh, ph, dh, ceil);
  const OW = pooledSize(W, kw, sw, pw, dw, ceil);
  if (OH < 1 || OW < 1 || !windowsHit(H, OH, kh, sh, ph, dh) || !windowsHit(W, OW, kw, sw, pw, dw)) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} is too small for kernel ${fmt([kh, kw])} with padding ${
        fmt([ph, pw])
      } and dilation ${fmt([dh, dw])} (output would be ${OH}×${OW} or have empty windows)`,
    );
  }
  const candH = Math.floor(((kh - 1) * dh) / sh) + 1;
  const candW = Math.floor(((kw - 1) * dw) / sw) + 1;
  if (kh * kw + kh > LOOP_BUDGET || candH * candW + candH > LOOP_BUDGET) {
    throw new Error(`${op}: kernel ${fmt([kh, kw])} is too large for one thread's loop budget`);
  }
  const outShape = [...x.shape.slice(0, -2), OH, OW];
  const out = Tensor.empty(outShape);
  const idx = Tensor.empty(outShape, "i32");
  const geom = [H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw];
  const n = out.size;
  if (n > 0) {
    const xc = contiguous(x);
    const spec = cached("mf", maxPoolForwardSpec);
    launch(
      spec,
      [xc.buffer, out.buffer, idx.buffer],
      [n, ...geom, xc.offset],
      grid1d(Math.ceil(n / POOL_WG)),
    );
    xc.dispose();
  }
  const saved = [idx.alias()];
  const y = record(op, [x], out, (g) => {
    const dx = Tensor.empty(x.shape);
    const ni = BC * H * W;
    if (ni > 0) {
      const gc = contiguous(g);
      const ix = saved[0];
      const spec = cached("mb", maxPoolBackwardSpec);
      const params = [ni, ...geom, gc.offset, ix.offset];
      launch(spec, [gc.buffer, ix.buffer, dx.buffer], params, grid1d(Math.ceil(ni / POOL_WG)));
      gc.dispose();
    }
    return [dx];
  }, saved);
  return [y, idx];
}

/**
 * Max pooling over the last two dims of `x` (`[B, C, H, W]` or `[C, H, W]`), like
 * `torch.nn.functional.max_pool2d`: padding counts as −∞, the output size is
 * `⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1` (or rounded up with `ceilMode`, keeping the last window's
 * start inside the input or left padding). The gradient goes to each window's first maximum.
 *
 * @example
 * ```ts
 * import { initGpu, randn, maxPool2d } from "./mod.ts";
 * await initGpu();
 * const y = maxPool2d(randn([2, 3, 8, 8]), { kernelSize: 3, stride: 2, padding: 1 }); // [2, 3, 4, 4]
 * ```
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const [y, idx] = maxPool2dWithIndices(x, opts);
  idx.dispose();
  return y;
}

/** Largest bin length over `o` adaptive bins of `n` elements. */
function maxBin(n: number, o: number): number {
  let m = 0;
  for (let i = 0; i < o; i++) m = Math.max(m, Math.ceil(((i + 1) * n) / o) - Math.floor((i * n) / o));
  return m;
}

/**
 * Adaptive average pooling over the last two dims of `x` (`[B, C, H, W]` or `[C, H, W]`) to
 * `outputSize` (one size for both dims, or `[OH, OW]`; `null` keeps that input dim), like
 * `torch.nn.functional.adaptive_avg_pool2d`: output `(i, j)` averages rows
 * `[⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉)` and the matching columns.
 *
 * @example
 * ```ts
 * import { initGpu, randn, adaptiveAvgPool2d } from "./mod.ts";
 * await initGpu();
 * const y = adaptiveAvgPool2d(randn([2, 3, 7, 5]), 1); // [2, 3, 1, 1]
 * ```
 */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | readonly [number | null, number | null],
): Tensor {
  const op = "adaptiveAvgPool2d";
  const [BC, H, W] = planes(op, x);
  const os = typeof outputSize === "number" ? [outputSize, outputSize] : outputSize;
  const OH = os[0] ?? H;
  const OW = os[1] ?? W;
  if (![OH, OW].every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${op}: outputSize must be positive integers, got ${JSON.stringify(outputSize)}`);
  }
  if ((H === 0 || W === 0) && BC > 0) {
    throw new Error(`${op}: input ${fmt(x.shape)} has an empty spatial dim`);
  }
  const out = Tensor.empty([...x.shape.slice(0, -2), OH, OW]);
  const n = out.size;
  if (n > 0) {
    const bh = maxBin(H, OH), bw = maxBin(W, OW);
    const area = bh * bw + bh;
    const fallback = gpu().isFallback;
    // Software adapters: workgroups only when one thread's loop budget is not enough; GPUs:
    // for bins big enough to keep a workgroup busy.
    const group = fallback ? area > LOOP_BUDGET / 2 : area > 512;
    let wg = fallback || area < 8192 ? 64 : 256;
    while (group && Math.ceil(area / wg) + 16 > LOOP_BUDGET && wg < 1024) wg *= 2;
    if (group && Math.ceil(area / wg) + 16 > LOOP_BUDGET) {
      throw new Error(`${op}: bins of ${bh}×${bw} are too large for this adapter's loop budget`);
    }
    const xc = contiguous(x);
    const spec = cached(
      group ? `ag${wg}` : "at",
      () => adaptiveAvgForwardSpec(group ? "group" : "thread", wg),
    );
    launch(
      spec,
      [xc.buffer, out.buffer],
      [n, H, W, OH, OW, xc.offset],
      grid1d(group ? n : Math.ceil(n / POOL_WG)),
    );
    xc.dispose();
  }
  return record(op, [x], out, (g) => {
    const dx = Tensor.empty(x.shape);
    const ni = BC * H * W;
    if (ni > 0) {
      const ch = Math.ceil(OH / H) + 1, cw = Math.ceil(OW / W) + 1;
      if (ch * cw + ch > LOOP_BUDGET) {
        throw new Error(`${op}: output ${OH}×${OW} is too large relative to input ${H}×${W} for backward`);
      }
      const gc = contiguous(g);
      const spec = cached("ab", adaptiveAvgBackwardSpec);
      launch(spec, [gc.buffer, dx.buffer], [ni, H, W, OH, OW, gc.offset], grid1d(Math.ceil(ni / POOL_WG)));
      gc.dispose();
    }
    return [dx];
  });
}
