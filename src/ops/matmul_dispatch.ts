/**
 * Matmul dispatch: {@link runMatmul} routes a problem to the `tiled` kernel or to the texture-based
 * `regblock` path, which plans how each operand reaches its texture (a plain buffer→texture copy
 * when the layout allows it, else a pack kernel), chunks slices to texture limits and records the
 * kernel. {@link runGroupedVec} runs the neuron-vectorised grouped kernel.
 */
import { GROUPED_TB, GROUPED_WG, groupedSpec } from "../../shaders/grouped_matmul.ts";
import {
  MAX_SLICE_DIMS,
  packSlices4Spec,
  packSpec,
  RB_WG,
  regblockSpec,
  type TexForm,
} from "../../shaders/matmul.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d } from "../gpu/kernel.ts";
import type { Tensor } from "../tensor/tensor.ts";
import {
  cached,
  compressSlices,
  epilogue,
  type MatmulProblem,
  matmulVariant,
  type MatView,
  runTiled,
  sliceParams,
  vecAligned,
} from "./matmul_kernels.ts";
import {
  acquireTex,
  dummyBuffers,
  launchTex,
  type PooledTex,
  releaseTex,
  submitCopies,
  type TexCopy,
} from "./matmul_tex.ts";

/** Register blocks [TM, TN4] and their relative speed per useful FLOP on lavapipe. */
const BLOCKS: [number, number, number][] = [
  [32, 8, 1.0],
  [16, 8, 0.85],
  [16, 4, 0.75],
  [8, 4, 0.55],
  [8, 1, 0.3],
];

/** Picks the register block maximising speed × useful fraction, with enough threads for the CPU. */
export function pickBlock(S: number, M: number, N: number): [number, number] {
  let best: [number, number] = [8, 1];
  let bestScore = -1;
  for (const [TM, TN4, eff] of BLOCKS) {
    const mb = Math.ceil(M / TM), nb = Math.ceil(N / (4 * TN4));
    const useful = (M * N) / (mb * TM * nb * 4 * TN4);
    const threads = S * mb * nb;
    const score = eff * useful * Math.min(1, threads / 64);
    if (score > bestScore + 1e-9) [best, bestScore] = [[TM, TN4], score];
  }
  return best;
}

/** Records the dispatches for one problem (see {@link MatmulProblem}). */
export function runMatmul(prob: MatmulProblem): void {
  const p = compressSlices(prob);
  const S = p.slices.reduce((x, y) => x * y, 1);
  if (S === 0 || p.M === 0 || p.N === 0) return;
  if (p.slices.length > MAX_SLICE_DIMS) {
    // Peel the leading slice dim until the rest fits.
    const rest = p.slices.slice(1);
    for (let i = 0; i < p.slices[0]; i++) {
      const sub = (v: MatView): MatView => ({ ...v, off: v.off + i * v.ss[0], ss: v.ss.slice(1) });
      runMatmul({
        ...p,
        slices: rest,
        a: sub(p.a),
        b: sub(p.b),
        out: sub(p.out),
        bias: p.bias && sub(p.bias),
      });
    }
    return;
  }
  const lim = gpu().device.limits.maxTextureDimension2D;
  if (matmulVariant() === "tiled" || 4 * Math.ceil(p.K / 4) > lim) return runTiled(p, S);
  // Textures hold at most `lim` rows: split M or N into chunks that fit.
  const cap = lim - 64;
  if (p.M > cap) {
    for (let r = 0; r < p.M; r += cap) {
      const sh = (v: MatView): MatView => ({ ...v, off: v.off + r * v.rs });
      runMatmul({ ...p, M: Math.min(cap, p.M - r), a: sh(p.a), out: sh(p.out) });
    }
  } else if (p.N > cap) {
    for (let c = 0; c < p.N; c += cap) {
      const sh = (v: MatView): MatView => ({ ...v, off: v.off + c * v.cs });
      runMatmul({ ...p, N: Math.min(cap, p.N - c), b: sh(p.b), out: sh(p.out), bias: p.bias && sh(p.bias) });
    }
  } else runRegblock(p, S);
}

/** How one operand gets into its texture. */
interface Plan {
  v: MatView;
  form: TexForm;
  /** Texture-matrix view: rows R (stride rs) × columns C (stride cs, packed 4 per texel). */
  R: number;
  C: number;
  rs: number;
  cs: number;
  /** Texels × rows of one slice's area. */
  W: number;
  H: number;
  mode: "single" | "layers" | "horiz" | "pack";
  step: 0 | 1;
  SPL: number;
  sx: number;
  sy: number;
  /** Most slices one texture holds. */
  cap: number;
}

interface Geometry {
  M: number;
  N: number;
  K: number;
  K4: number;
  Mp: number;
  Np: number;
  S: number;
  nd: number;
}

/** Chooses form and fill (a plain copy when the layout allows it, else the pack kernel). */
function planOperand(
  v: MatView,
  isA: boolean,
  g: Geometry,
  allowed: TexForm[] = ["N", "T"],
  copy = true,
): Plan {
  const lim = gpu().device.limits;
  const maxDim = lim.maxTextureDimension2D;
  const Kp = 4 * g.K4;
  const forms: Record<TexForm, Omit<Plan, "mode" | "SPL" | "sx" | "sy" | "cap" | "v" | "step">> = isA
    ? {
      N: { form: "N", R: g.M, C: g.K, rs: v.rs, cs: v.cs, W: g.K4, H: g.Mp },
      T: { form: "T", R: g.K, C: g.M, rs: v.cs, cs: v.rs, W: g.Mp / 4, H: Kp },
    }
    : {
      N: { form: "N", R: g.K, C: g.N, rs: v.rs, cs: v.cs, W: g.Np / 4, H: Kp },
      T: { form: "T", R: g.N, C: g.K, rs: v.cs, cs: v.rs, W: g.K4, H: g.Np },
    };
  const step: 0 | 1 = v.ss.some((s) => s !== 0) ? 1 : 0;
  const elems = v.t.buffer.size / 4;
  for (const f of copy ? allowed : []) {
    const o = forms[f];
    if ((o.cs !== 1 && o.C > 1) || g.K % 4 !== 0 || v.off % 4 !== 0) continue;
    const rowOK = o.rs > 0 && o.rs % 64 === 0;
    const ss = step ? v.ss[0] : 0;
    const last = v.off + (step ? (g.S - 1) * ss : 0) + (o.R - 1) * o.rs + 4 * Math.ceil(o.C / 4);
    if (last > elems || !(rowOK || o.R === 1)) continue;
    const base = { ...o, v, step, SPL: 1, sx: 0, sy: 0 };
    if (!step) return { ...base, mode: "single", cap: Infinity };
    if (g.nd !== 1) break;
    if (rowOK && ss % o.rs === 0 && ss / o.rs >= o.R) {
      return { ...base, mode: "layers", cap: lim.maxTextureArrayLayers };
    }
    if (ss === o.C && o.C % 4 === 0) {
      const sx = o.C / 4;
      const SPL = Math.max(1, Math.floor((maxDim - o.W) / sx) + 1);
      return { ...base, mode: "horiz", SPL, sx, cap: SPL * lim.maxTextureArrayLayers };
    }
  }
  const o = forms[allowed.length === 1 ? allowed[0] : forms.T.cs === 1 && forms.N.cs !== 1 ? "T" : "N"];
  const SPL = Math.max(1, Math.floor(maxDim / o.H));
  return {
    ...o,
    v,
    step,
    mode: "pack",
    SPL,
    sx: 0,
    sy: o.H,
    cap: step ? SPL * lim.maxTextureArrayLayers : Infinity,
  };
}

/** Fills the texture for chunk slices [z0, z0 + nz); copies are queued into `copies`. */
function fill(pl: Plan, dims: number[], z0: number, nz: number, copies: TexCopy[]): PooledTex {
  const n = pl.step ? nz : 1, zb = pl.step ? z0 : 0;
  const layers = Math.ceil(n / pl.SPL), per = Math.min(n, pl.SPL);
  const w = pl.mode === "horiz" ? (per - 1) * pl.sx + pl.W : pl.W;
  const h = pl.mode === "pack" ? per * pl.H : pl.H;
  const tex = acquireTex(Math.max(w, 1), Math.max(h, 1), layers);
  const { v } = pl;
  if (pl.C === 0 || pl.R === 0) return tex;
  const copy = (offset: number, layer: number, size: [number, number, number], rowsPerImage?: number) => {
    const bytesPerRow = size[1] > 1 || size[2] > 1 ? pl.rs * 4 : undefined;
    copies.push({
      buffer: v.t.buffer,
      offset: offset * 4,
      bytesPerRow,
      rowsPerImage,
      tex: tex.tex,
      layer,
      size,
    });
  };
  const texels = Math.ceil(pl.C / 4);
  if (pl.mode === "single") copy(v.off, 0, [texels, pl.R, 1]);
  else if (pl.mode === "layers") copy(v.off + zb * v.ss[0], 0, [texels, pl.R, n], v.ss[0] / pl.rs);
  else if (pl.mode === "horiz") {
    for (let l = 0; l < layers; l++) {
      const first = zb + l * pl.SPL, cnt = Math.min(pl.SPL, n - l * pl.SPL);
      copy(v.off + first * v.ss[0], l, [cnt * pl.sx, pl.R, 1]);
    }
  } else if (
    dims.length === 1 && pl.step && v.ss[0] === 1 && dims[0] % 4 === 0 && zb % 4 === 0 &&
    [v.off, pl.rs, pl.cs].every((x) => x % 4 === 0) && v.t.buffer.size % 16 === 0
  ) {
    // Slices are the contiguous dim: read vec4s across 4 slices.
    const spec = cached("pack4s", packSlices4Spec);
    const T = pl.W * pl.H * Math.ceil(n / 4);
    const params = [v.off, pl.rs, pl.cs, pl.R, pl.C, pl.W, pl.H, pl.SPL, 0, pl.H, zb, T, n];
    launchTex(spec, [v.t.buffer], [tex.view], params, grid1d(Math.ceil(T / 64)));
  } else {
    const vec = pl.cs === 1 && vecAligned({ ...v, rs: pl.rs, cs: 1 }, pl.C);
    const nd = dims.length;
    const spec = cached(`pack${nd}${vec}`, () => packSpec(nd, vec));
    const T = pl.W * pl.H * n;
    const params = [v.off, pl.rs, pl.cs, pl.R, pl.C, pl.W, pl.H, pl.SPL, 0, pl.H, zb, T, ...dims, ...v.ss];
    launchTex(spec, [v.t.buffer], [tex.view], params, grid1d(Math.ceil(T / 64)));
  }
  return tex;
}

function runRegblock(p: MatmulProblem, S: number): void {
  const nd = p.slices.length;
  const [TM, TN4] = pickBlock(S, p.M, p.N);
  const K4 = Math.ceil(p.K / 4);
  const nRB = Math.ceil(p.M / TM), nCB = Math.ceil(p.N / (4 * TN4));
  const g: Geometry = { M: p.M, N: p.N, K: p.K, K4, Mp: nRB * TM, Np: nCB * TN4 * 4, S, nd };
  const pa = planOperand(p.a, true, g), pb = planOperand(p.b, false, g);
  const outVec = vecAligned(p.out, p.N) && (!p.z || p.z.buffer.size % 16 === 0);
  const key = `rb${TM}x${TN4}${pa.form}${pb.form}${outVec}${nd}`;
  const spec = cached(
    key,
    () => regblockSpec({ TM, TN4, formA: pa.form, formB: pb.form, vecOut: outVec, nDims: nd }),
  );
  let chunk = Math.min(pa.step ? pa.cap : Infinity, pb.step ? pb.cap : Infinity, 1 << 24);
  if (chunk < S && chunk >= 4) chunk -= chunk % 4; // keeps 4-slice packs aligned
  const { flags, act, bias } = epilogue(p);
  const [dz, db] = dummyBuffers();
  for (let z0 = 0; z0 < S; z0 += chunk) {
    const nz = Math.min(chunk, S - z0);
    const copies: TexCopy[] = [];
    const ta = fill(pa, p.slices, z0, nz, copies);
    const tb = fill(pb, p.slices, z0, nz, copies);
    submitCopies(copies); // after everything recorded so far (packs included), before the kernel
    const T = nCB * nRB * nz;
    const params = [
      K4,
      nCB,
      nRB,
      T,
      p.M,
      p.N,
      pa.SPL,
      pa.sx,
      pa.sy,
      pa.step,
      pb.SPL,
      pb.sx,
      pb.sy,
      pb.step,
      z0,
      p.out.off,
      p.out.rs,
      p.out.cs,
      bias?.off ?? 0,
      bias?.cs ?? 0,
      flags,
      act,
      ...sliceParams(p, [p.out, bias]),
    ];
    const bufs = [p.out.t.buffer, p.z?.buffer ?? dz, bias?.t.buffer ?? db];
    launchTex(spec, bufs, [ta.view, tb.view], params, grid1d(Math.ceil(T / RB_WG)));
    releaseTex(ta);
    releaseTex(tb);
  }
}

/** Inputs of {@link runGroupedVec}: `out[b,n,o] = Σ_i x[b,n,i]·w[i,o,n] + bias[n,o]`. */
export interface GroupedProblem {
  B: number;
  N: number;
  I: number;
  O: number;
  /** x as slices n of [B × I] matrices. */
  x: MatView;
  /** w as one [I·O × N] matrix (rows i·O + o). */
  w: MatView;
  /** Fresh contiguous [B, N, O] output. */
  out: Tensor;
  /** Bias element (n, o) at `off + n·rs + o·cs`. */
  bias?: MatView;
}

/**
 * The neuron-vectorised grouped kernel (regblock family only; see `shaders/grouped_matmul.ts`).
 * Returns false, doing nothing, when the shapes do not suit it (N % 4 ≠ 0, O > 32, or O > 8
 * with O % 4 ≠ 0: there a matmul per neuron, {@link runMatmul}, is as fast or faster).
 */
export function runGroupedVec(p: GroupedProblem): boolean {
  const TO = p.O <= 8 ? p.O : p.O > 32 ? 0 : p.O % 8 === 0 ? 8 : p.O % 4 === 0 ? 4 : 0;
  if (matmulVariant() !== "regblock" || !TO || p.N % 4 !== 0 || p.B === 0 || p.I === 0) return false;
  const I4 = Math.ceil(p.I / 4);
  const Mp = Math.ceil(p.B / GROUPED_TB) * GROUPED_TB;
  const gx: Geometry = { M: p.B, N: 4, K: p.I, K4: I4, Mp, Np: 4, S: p.N, nd: 1 };
  // w rows i·O + o for i < 4·I4 must exist (zero for i ≥ I): copy only when I % 4 = 0.
  const gw: Geometry = { M: 4, N: p.N, K: p.I * p.O, K4: I4 * p.O, Mp: 4, Np: p.N, S: 1, nd: 0 };
  const lim = gpu().device.limits.maxTextureDimension2D;
  if (Mp > lim || 4 * I4 * p.O > lim || p.N / 4 > lim) return false;
  const px = planOperand(p.x, true, gx, ["N"]);
  const pw = planOperand(p.w, false, gw, ["N"], p.I % 4 === 0);
  if (px.cap < p.N) return false;
  const copies: TexCopy[] = [];
  const tx = fill(px, [p.N], 0, p.N, copies);
  const tw = fill(pw, [], 0, 1, copies);
  submitCopies(copies);
  const spec = cached(`grouped${p.O}_${TO}`, () => groupedSpec(p.O, TO));
  const nG = p.N / 4, nOB = p.O / TO, T = nG * nOB * (Mp / GROUPED_TB);
  const b = p.bias;
  const params = [
    I4,
    nG,
    nOB,
    T,
    p.B,
    p.N,
    px.SPL,
    px.sx,
    px.sy,
    0,
    b?.off ?? 0,
    b?.rs ?? 0,
    b?.cs ?? 0,
    b ? 1 : 0,
  ];
  const bufs = [p.out.buffer, b?.t.buffer ?? dummyBuffers()[1]];
  launchTex(spec, bufs, [tx.view, tw.view], params, grid1d(Math.ceil(T / GROUPED_WG)));
  releaseTex(tx);
  releaseTex(tw);
  return true;
}
