/**
 * The CPU-adapter path of the conv GEMMs (`shaders/conv_rb.ts`): the activation operand (x or dy)
 * becomes a channel-packed texture once (a plain buffer→texture copy, then a pack kernel) and the
 * register-blocked implicit-GEMM kernel reads it with im2col addressing; the small operand
 * (weights, or dy for the weight gradient) is gathered into a regblock operand texture, one area
 * per group. Chunks over taps / contraction, columns and groups keep textures within device
 * limits and a ~64 MB budget; contraction chunks add partial results. The contraction order is
 * (tap, channel) with channels padded to a multiple of 4; the weight gradient is computed in that
 * order and permuted into PyTorch's layout at the end.
 */
import { convGatherSpec, cpackSpec, FLAT_ROW, FLAT_ROWS, GATHER_RUN } from "../../shaders/conv_gather.ts";
import { CONV_RB_WG, convRbSpec } from "../../shaders/conv_rb.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d } from "../gpu/kernel.ts";
import { recorder } from "../gpu/recorder.ts";
import { noGrad } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { addPartial, type ConvJob, type ConvOut, geomParams } from "./conv_dispatch.ts";
import { mapInto } from "./map.ts";
import { pickBlock } from "./matmul_dispatch.ts";
import { cached, vecAligned } from "./matmul_kernels.ts";
import { acquireTex, dummyBuffers, launchTex, type PooledTex, releaseTex } from "./matmul_tex.ts";
import { permute, slice } from "./views.ts";

/** A tensor in a flat texture; `shift` = element offset of its first element. */
interface TexSrc {
  tex: PooledTex;
  shift: number;
}

/** A channel-packed tensor (see `cpackSpec`): C4 texels per pixel, 2^sh pixels per row. */
interface Packed {
  tex: PooledTex;
  C4: number;
  sh: number;
  /** The all-zero pixel. */
  zeroPix: number;
}

/** Largest gathered operand texture (bytes) per kernel; see {@link setConvTextureBudget}. */
let TEX_BYTES = 1 << 26;

/**
 * Sets the byte budget of one gathered operand texture (default 64 MiB) and returns the previous
 * one. Tests lower it to exercise the group chunking.
 */
export function setConvTextureBudget(bytes: number): number {
  const old = TEX_BYTES;
  TEX_BYTES = Math.max(16, bytes);
  return old;
}

/** Flat and channel-packed textures of tensors, made once per cache and released together. */
export class TexCache {
  #flat = new Map<Tensor, TexSrc>();
  #packed = new Map<Tensor, Packed>();

  /** The tensor's elements in a flat texture (element i at texel i/4, rows of 256 texels). */
  flat(t: Tensor): TexSrc {
    let f = this.#flat.get(t);
    if (!f) this.#flat.set(t, f = toFlat(t));
    return f;
  }

  /** Contiguous `t` seen as `[N, C, HW]`, channel-packed. */
  cpack(t: Tensor, N: number, C: number, HW: number): Packed {
    let p = this.#packed.get(t);
    if (p) return p;
    const f = this.flat(t);
    const maxDim = gpu().device.limits.maxTextureDimension2D;
    const C4 = Math.ceil(C / 4), Npix = N * HW;
    if (C4 > maxDim) throw new Error(`conv2d: ${C} channels per group exceed this adapter's texture width`);
    const sh = Math.floor(Math.log2(maxDim / C4));
    const rowsNeeded = Math.ceil((Npix + 1) / 2 ** sh);
    const tex = acquireTex(2 ** sh * C4, Math.min(rowsNeeded, FLAT_ROWS), Math.ceil(rowsNeeded / FLAT_ROWS));
    const NT = (Npix + 1) * C4;
    const spec = cached("convCpack", cpackSpec);
    launchTex(
      spec,
      [],
      [f.tex.view, tex.view],
      [f.shift, C, C4, HW, NT, Npix, sh],
      grid1d(Math.ceil(NT / 64)),
    );
    this.#packed.set(t, p = { tex, C4, sh, zeroPix: Npix });
    return p;
  }

  /** Returns every texture to the pool. */
  release(): void {
    for (const s of this.#flat.values()) releaseTex(s.tex);
    for (const s of this.#packed.values()) releaseTex(s.tex);
    this.#flat.clear();
    this.#packed.clear();
  }
}

/** A texture of at least `texels` texels in the flat layout. */
function flatTex(texels: number): PooledTex {
  const perRow = FLAT_ROW / 4, rows = Math.max(1, Math.ceil(texels / perRow));
  return acquireTex(perRow, Math.min(rows, FLAT_ROWS), Math.ceil(rows / FLAT_ROWS));
}

/** Copies a contiguous tensor's elements into a flat texture (plain buffer→texture copies). */
function toFlat(t: Tensor): TexSrc {
  const shift = t.offset % 4, base = t.offset - shift;
  const texels = Math.max(1, Math.ceil((t.size + shift) / 4));
  const perRow = FLAT_ROW / 4;
  const tex = flatTex(texels);
  if (base * 4 + texels * 16 > t.buffer.size) {
    throw new Error(`conv2d: internal: buffer of ${t.buffer.size} bytes too small for its flat copy`);
  }
  const rec = recorder();
  const full = Math.floor(texels / perRow);
  for (let l = 0; l * FLAT_ROWS < full; l++) {
    const n = Math.min(FLAT_ROWS, full - l * FLAT_ROWS);
    rec.copyToTexture(
      { buffer: t.buffer, offset: (base + l * FLAT_ROWS * FLAT_ROW) * 4, bytesPerRow: FLAT_ROW * 4 },
      { texture: tex.tex, origin: [0, 0, l] },
      [perRow, n, 1],
    );
  }
  const rest = texels - full * perRow;
  if (rest > 0) {
    rec.copyToTexture(
      { buffer: t.buffer, offset: (base + full * FLAT_ROW) * 4 },
      { texture: tex.tex, origin: [0, full % FLAT_ROWS, Math.floor(full / FLAT_ROWS)] },
      [rest, 1, 1],
    );
  }
  return { tex, shift };
}

/** Records a conv GEMM on the CPU path (see `ConvJob`). */
export function runRegblockConv(j: ConvJob, S: number): void {
  const cache = j.cache ?? new TexCache();
  const { B, G, Cg, Og, H, W, Ho, Wo, kH, kW } = j.geo;
  const maxDim = gpu().device.limits.maxTextureDimension2D;
  const T = kH * kW, Cg4 = Math.ceil(Cg / 4), Og4 = Math.ceil(Og / 4);
  if (j.gemm === "wgrad") {
    // Weight gradient in (o, tap, c4·4 + q) order, then permuted into [Cout, Cg, kH, kW].
    const Np = T * Cg4 * 4;
    const tmp = Tensor.empty([G * Og, T, Cg4 * 4]);
    const out: ConvOut = { t: tmp, off: 0, rs: Np, cs: 1, ss: [0, 0, Og * Np] };
    const dy = cache.flat(j.a), x = cache.cpack(j.b, B * G, Cg, H * W);
    const kCap = 4 * maxDim;
    for (let k0 = 0; k0 < Math.max(j.K, 1); k0 += kCap) {
      const K = Math.min(kCap, j.K - k0);
      const run = (o: ConvOut) => wgradChunk(j, S, Np, k0, K, o, dy, x);
      if (k0 === 0) run(out);
      else addPartial(out, j.dims, j.M, Np, run);
    }
    noGrad(() => {
      const s = slice(tmp, 2, 0, Cg);
      const p = permute(s, [0, 2, 1]);
      const dst = j.out.t.alias([G * Og, Cg, T], [Cg * T, T, 1], j.out.t.offset);
      mapInto(dst, "x0", [p]);
      for (const t of [s, p, dst, tmp]) t.dispose();
    });
  } else {
    const fwd = j.gemm === "fwd";
    const act = fwd ? cache.cpack(j.a, B * G, Cg, H * W) : cache.cpack(j.a, B * G, Og, Ho * Wo);
    const w = cache.flat(j.b);
    const taps = fwd ? T : j.cls!.nth * j.cls!.ntw;
    const Cp4 = fwd ? Cg4 : Og4;
    // Taps per kernel: the gathered weight texture is at most maxDim texels wide.
    const tpc = Math.max(1, Math.floor(maxDim / Cp4));
    for (let tp0 = 0; tp0 < Math.max(taps, 1); tp0 += tpc) {
      const tp1 = Math.min(taps, tp0 + tpc);
      const run = (o: ConvOut, bias: boolean) => tapChunk(j, S, tp0, tp1, Cp4, o, bias, act, w);
      if (tp0 === 0) run(j.out, true);
      else addPartial(j.out, j.dims, j.M, j.N, (o) => run(o, false));
    }
  }
  if (!j.cache) cache.release();
}

/** Shared kernel parameters after `CONV_PARAMS`. */
function rbParams(
  j: ConvJob,
  o: { off: number; rs: number; cs: number; ss: number[] },
  bias: ConvJob["bias"] | undefined,
  n0: number,
  k: { K4: number; nCB: number; nRB: number; NT: number; M: number; N: number; SPL: number; sy: number },
  grp: { div: number; base: number; zBase: number },
  pack: { Cp4: number; sh: number; zeroPix: number; tp0: number; tp1: number; Ktot: number },
): number[] {
  return [
    ...[k.K4, k.nCB, k.nRB, k.NT, k.M, k.N, k.SPL, k.sy, grp.div, grp.base, grp.zBase],
    ...[o.off, o.rs, o.cs, (bias?.off ?? 0) + n0 * (bias?.cs ?? 0), bias?.cs ?? 0, bias ? 1 : 0],
    ...[j.dims[1], j.dims[2], ...o.ss, ...(bias?.ss ?? [0, 0, 0])],
    ...[pack.Cp4, pack.sh, pack.zeroPix, pack.tp0, pack.tp1, pack.Ktot],
  ];
}

/** Groups per chunk so `areas` of `texels` fit the texture (rows `SPL` per layer) and budget. */
function groupChunk(texels: number, spl: number): number {
  const lim = gpu().device.limits;
  return Math.max(1, Math.min(spl * lim.maxTextureArrayLayers, Math.floor(TEX_BYTES / 16 / texels)));
}

/** Forward / data gradient over taps [tp0, tp1): implicit A from `act`, gathered weights as B. */
function tapChunk(
  j: ConvJob,
  S: number,
  tp0: number,
  tp1: number,
  Cp4: number,
  o: ConvOut,
  withBias: boolean,
  act: Packed,
  w: TexSrc,
): void {
  const maxDim = gpu().device.limits.maxTextureDimension2D;
  const bias = withBias ? j.bias : undefined;
  const [TM, TN4] = pickBlock(S, j.M, j.N);
  const K4 = (tp1 - tp0) * Cp4, K4a = Math.max(K4, 1);
  const perGroup = S / j.geo.G;
  const Nc = Math.max(4 * TN4, Math.floor((maxDim - 64) / (4 * TN4)) * 4 * TN4);
  const gather = cached(
    `convGather_${j.gemm === "fwd" ? "w4" : "wd4"}`,
    () => convGatherSpec(j.gemm === "fwd" ? "w4" : "wd4"),
  );
  const nRB = Math.ceil(j.M / TM);
  for (let n0 = 0; n0 < j.N; n0 += Nc) {
    const N = Math.min(Nc, j.N - n0), nCB = Math.ceil(N / (4 * TN4)), Np = nCB * 4 * TN4;
    const geo = geomParams(j, 0, n0, tp0 * Cp4 * 4, 0, 0);
    const SPL = Math.floor(maxDim / Np);
    const gc = groupChunk(K4a * Np, SPL);
    const out = { ...o, off: o.off + n0 * o.cs };
    const vecOut = vecAligned({ t: o.t, off: out.off, rs: o.rs, cs: o.cs, ss: [...o.ss] }, N);
    const spec = cached(`convRb_${j.gemm}${TM}x${TN4}${vecOut}`, () => convRbSpec(j.gemm, TM, TN4, vecOut));
    for (let g0 = 0; g0 < j.geo.G; g0 += gc) {
      const ng = Math.min(gc, j.geo.G - g0);
      const texB = gatherTex(gather, geo, w.shift, N, 0, K4a, Np, g0, ng, SPL, w.tex);
      const NT = nCB * nRB * ng * perGroup;
      const params = rbParams(j, out, bias, n0, { K4, nCB, nRB, NT, M: j.M, N, SPL, sy: Np }, {
        div: perGroup,
        base: g0,
        zBase: g0 * perGroup,
      }, { Cp4, sh: act.sh, zeroPix: act.zeroPix, tp0, tp1, Ktot: 0 });
      const bufs = [o.t.buffer, bias?.t.buffer ?? dummyBuffers()[1]];
      launchTex(
        spec,
        bufs,
        [act.tex.view, texB.view],
        [...geo, ...params],
        grid1d(Math.ceil(NT / CONV_RB_WG)),
      );
      releaseTex(texB);
    }
  }
}

/** Weight gradient over contraction [k0, k0 + K): gathered dy as A, implicit x as B. */
function wgradChunk(
  j: ConvJob,
  S: number,
  N: number,
  k0: number,
  K: number,
  o: ConvOut,
  dy: TexSrc,
  x: Packed,
): void {
  const maxDim = gpu().device.limits.maxTextureDimension2D;
  const [TM, TN4] = pickBlock(S, j.M, N);
  const K4 = Math.ceil(K / 4), K4a = Math.max(K4, 1);
  const Mc = Math.max(TM, Math.floor((maxDim - 64) / TM) * TM);
  const gather = cached("convGather_dyflat", () => convGatherSpec("dyflat"));
  const nCB = Math.ceil(N / (4 * TN4));
  for (let m0 = 0; m0 < j.M; m0 += Mc) {
    const M = Math.min(Mc, j.M - m0), nRB = Math.ceil(M / TM), Mp = nRB * TM;
    const geo = geomParams(j, m0, 0, k0, 0, 0);
    const SPL = Math.floor(maxDim / Mp);
    const gc = groupChunk(K4a * Mp, SPL);
    const out = { ...o, off: o.off + m0 * o.rs };
    const vecOut = vecAligned({ t: o.t, off: out.off, rs: o.rs, cs: o.cs, ss: [...o.ss] }, N);
    const spec = cached(`convRb_wgrad${TM}x${TN4}${vecOut}`, () => convRbSpec("wgrad", TM, TN4, vecOut));
    for (let g0 = 0; g0 < S; g0 += gc) {
      const ng = Math.min(gc, S - g0);
      const texA = gatherTex(gather, geo, dy.shift, M, K, K4a, Mp, g0, ng, SPL, dy.tex);
      const NT = nCB * nRB * ng;
      const params = rbParams(j, out, undefined, 0, { K4, nCB, nRB, NT, M, N, SPL, sy: Mp }, {
        div: 1,
        base: g0,
        zBase: g0,
      }, { Cp4: x.C4, sh: x.sh, zeroPix: x.zeroPix, tp0: 0, tp1: 0, Ktot: j.K });
      const bufs = [o.t.buffer, dummyBuffers()[1]];
      launchTex(spec, bufs, [texA.view, x.tex.view], [...geo, ...params], grid1d(Math.ceil(NT / CONV_RB_WG)));
      releaseTex(texA);
    }
  }
}

/**
 * Gathers areas for groups [g0, g0 + ng) into a texture whose areas are `TW` texels × `TH` rows
 * (stacked `spl` per layer), `R` valid rows, `C` valid contraction elements.
 */
function gatherTex(
  spec: ReturnType<typeof convGatherSpec>,
  geo: number[],
  shift: number,
  R: number,
  C: number,
  TW: number,
  TH: number,
  g0: number,
  ng: number,
  spl: number,
  src: PooledTex,
): PooledTex {
  const tex = acquireTex(TW, Math.min(ng, spl) * TH, Math.ceil(ng / spl));
  const NRC = Math.ceil(TH / GATHER_RUN);
  const NT = TW * NRC * ng;
  const params = [...geo, shift, R, C, TW, TH, spl, g0, NT, NRC];
  launchTex(spec, [], [src.view, tex.view], params, grid1d(Math.ceil(NT / 64)));
  return tex;
}
