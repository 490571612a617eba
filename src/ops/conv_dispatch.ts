/**
 * Conv GEMM dispatch (no autograd): {@link runConvGemm} records one of the three implicit GEMMs of
 * a convolution (forward, data gradient, weight gradient), choosing the kernel family like
 * matmul does (`matmulVariant()`):
 * - `regblock` (CPU adapters): texture gathers feeding the register-blocked matmul kernel
 *   (`conv_regblock.ts`);
 * - `tiled` (real GPUs): the shared-memory implicit-GEMM kernel of `shaders/conv.ts`, whose tile
 *   loaders compute im2col addresses in the NCHW buffers directly.
 * A contraction longer than one kernel may run is split into chunks whose partial results are
 * added into the output.
 */
import { CONV_TILE, type ConvGemm, convTiledSpec } from "../../shaders/conv.ts";
import { launch } from "../gpu/kernel.ts";
import { noGrad } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { mapInto, mapN } from "./map.ts";
import { cached, matmulVariant } from "./matmul_kernels.ts";
import { dummyBuffers } from "./matmul_tex.ts";
import { runRegblockConv, type TexCache } from "./conv_regblock.ts";

/** Convolution geometry (channels per group `Cg` in, `Og` out). */
export interface ConvGeom {
  B: number;
  G: number;
  Cg: number;
  Og: number;
  H: number;
  W: number;
  Ho: number;
  Wo: number;
  kH: number;
  kW: number;
  sH: number;
  sW: number;
  pH: number;
  pW: number;
  dH: number;
  dW: number;
}

/** A data-gradient residue class (see `CONV_PARAMS` in `shaders/conv.ts`). */
export interface ConvClass {
  Hs: number;
  rh: number;
  rw: number;
  kh0: number;
  khs: number;
  nth: number;
  kw0: number;
  kws: number;
  ntw: number;
  Hn: number;
  Wn: number;
}

/** Where a GEMM writes: element (m, n) of slice s at `off + so(s) + m·rs + n·cs`. */
export interface ConvOut {
  t: Tensor;
  off: number;
  rs: number;
  cs: number;
  /** Strides of the slice decomposition s = (i0·d1 + i1)·d2 + i2. */
  ss: [number, number, number];
}

/** Bias element n of slice s at `off + bs(s) + n·cs`. */
export interface ConvBias {
  t: Tensor;
  off: number;
  cs: number;
  ss: [number, number, number];
}

/**
 * One conv GEMM: per slice, `out = A·B (+ bias over n)` with A: M×K and B: K×N in PyTorch's k
 * order. The weight gradient's `out` must be the whole fresh `[Cout, Cg, kH, kW]` tensor.
 */
export interface ConvJob {
  gemm: ConvGemm;
  geo: ConvGeom;
  cls?: ConvClass;
  /** Contiguous source tensors of A and B: fwd (x, w), dgrad (dy, w), wgrad (dy, x). */
  a: Tensor;
  b: Tensor;
  /** Slice dims [d0, d1, d2] (z = (i0·d1 + i1)·d2 + i2). */
  dims: [number, number, number];
  M: number;
  N: number;
  K: number;
  out: ConvOut;
  bias?: ConvBias;
  /** Textures of the sources shared between jobs (regblock path); released by the caller. */
  cache?: TexCache;
}

/** Longest contraction one tiled kernel runs. */
export const K_CAP = 32768;

/** The uniform values of `CONV_PARAMS` for a job and chunk offsets. */
export function geomParams(
  j: ConvJob,
  m0: number,
  n0: number,
  k0: number,
  offA: number,
  offB: number,
): number[] {
  const g = j.geo;
  const c = j.cls ?? { Hs: 1, rh: 0, rw: 0, kh0: 0, khs: 1, nth: 0, kw0: 0, kws: 1, ntw: 0, Hn: 0, Wn: 0 };
  return [
    ...[g.B, g.G, g.Cg, g.Og, g.H, g.W, g.Ho, g.Wo, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW, g.dH, g.dW],
    ...[c.Hs, c.rh, c.rw, c.kh0, c.khs, c.nth, c.kw0, c.kws, c.ntw, c.Hn, c.Wn],
    ...[m0, n0, k0, offA, offB],
  ];
}

/** Records a conv GEMM (see {@link ConvJob}). */
export function runConvGemm(j: ConvJob): void {
  const S = j.dims[0] * j.dims[1] * j.dims[2];
  if (S === 0 || j.M === 0 || j.N === 0) return;
  if (matmulVariant() === "regblock") return runRegblockConv(j, S);
  for (let k0 = 0; k0 < Math.max(j.K, 1); k0 += K_CAP) {
    const K = Math.min(K_CAP, j.K - k0);
    if (k0 === 0) runTiledConv(j, S, 0, K, j.bias);
    else addPartial(j.out, j.dims, j.M, j.N, (out) => runTiledConv({ ...j, out }, S, k0, K, undefined));
  }
}

/**
 * Runs `fill` into a scratch copy of `out`'s layout, then adds the scratch values into `out`'s
 * view (slices × M × N).
 */
export function addPartial(
  out: ConvOut,
  dims: [number, number, number],
  M: number,
  N: number,
  fill: (scratch: ConvOut) => void,
): void {
  const tmp = Tensor.empty(out.t.shape);
  fill({ ...out, t: tmp });
  noGrad(() => {
    const shape = [...dims, M, N];
    const strides = [...out.ss, out.rs, out.cs];
    const dst = out.t.alias(shape, strides, out.off);
    const part = tmp.alias(shape, strides, out.off);
    const s = mapN("x0 + x1", [dst, part]);
    mapInto(dst, "x0", [s]);
    for (const t of [s, dst, part, tmp]) t.dispose();
  });
}

function runTiledConv(j: ConvJob, S: number, k0: number, K: number, bias: ConvBias | undefined): void {
  const spec = cached(`convTiled_${j.gemm}`, () => convTiledSpec(j.gemm));
  const o = j.out;
  const db = dummyBuffers()[1];
  for (let z0 = 0; z0 < S; z0 += 65535) {
    const nz = Math.min(65535, S - z0);
    const params = [
      ...geomParams(j, 0, 0, k0, j.a.offset, j.b.offset),
      ...[j.M, j.N, K, z0, o.off, o.rs, o.cs],
      ...[bias?.off ?? 0, bias?.cs ?? 0, bias ? 1 : 0, j.dims[1], j.dims[2]],
      ...o.ss,
      ...(bias?.ss ?? [0, 0, 0]),
    ];
    const grid: [number, number, number] = [Math.ceil(j.N / CONV_TILE), Math.ceil(j.M / CONV_TILE), nz];
    launch(spec, [j.a.buffer, j.b.buffer, o.t.buffer, bias?.t.buffer ?? db], params, grid);
  }
}
