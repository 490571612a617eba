/**
 * Matmul plumbing shared by the kernel families (no autograd): the problem description (strided
 * matrix views per slice), variant selection, slice-dim compression, epilogue parameters and the
 * shared-memory `tiled` launcher. Dispatch and the texture-based `regblock` path live in
 * `matmul_dispatch.ts`; the public ops in `matmul.ts`.
 */
import { type Activation, ACTIVATIONS, TILE, tiledSpec } from "../../shaders/matmul.ts";
import { gpu } from "../gpu/device.ts";
import { type KernelSpec, launch } from "../gpu/kernel.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { dummyBuffers } from "./matmul_tex.ts";

/** Kernel family: `regblock` (texture-packed, register-blocked), `tiled` (shared memory), or `auto`. */
export type MatmulVariant = "auto" | "tiled" | "regblock";

let forced: MatmulVariant = (() => {
  try {
    const v = Deno.env.get("MATMUL_VARIANT");
    return v === "tiled" || v === "regblock" ? v : "auto";
  } catch {
    return "auto";
  }
})();

/**
 * Forces a matmul kernel family for every later call (tests, benches), or `auto` to choose per
 * adapter: `regblock` on software adapters, `tiled` on real GPUs. The env var `MATMUL_VARIANT`
 * sets the initial value.
 */
export function setMatmulVariant(v: MatmulVariant): void {
  forced = v;
}

/** The variant `auto` resolves to on this adapter, or the forced one. */
export function matmulVariant(): "tiled" | "regblock" {
  if (forced !== "auto") return forced;
  return gpu().isFallback ? "regblock" : "tiled";
}

/** A strided matrix per slice: element (r, c) of slice s at `off + Σ sliceOff(s) + r·rs + c·cs`. */
export interface MatView {
  /** The tensor whose buffer holds the data. */
  t: Tensor;
  off: number;
  rs: number;
  cs: number;
  /** One stride per slice dim (0 where the operand is broadcast). */
  ss: number[];
}

/** One matmul problem: for each slice, `out = act(a · b + bias)`, a: M×K, b: K×N. */
export interface MatmulProblem {
  /** Slice (batch) dim sizes; [] for a single matrix. */
  slices: number[];
  M: number;
  N: number;
  K: number;
  a: MatView;
  b: MatView;
  /** Output view (its tensor must be fresh: not aliasing a, b or bias). */
  out: MatView;
  /** Bias over columns: `t[off + sliceOff + c·cs]` (rs unused). */
  bias?: MatView;
  act?: Activation;
  /** Also store the pre-activation here, with exactly the layout of `out`. */
  z?: Tensor;
}
// ---------------------------------------------------------------- specs

const specCache = new Map<string, KernelSpec>();
/** Caches a generated spec under `key`. */
export function cached<T extends KernelSpec>(key: string, make: () => T): T {
  let s = specCache.get(key) as T | undefined;
  if (!s) specCache.set(key, s = make());
  return s;
}
/** Drops size-1 slice dims and merges adjacent dims that every view strides uniformly. */
export function compressSlices(p: MatmulProblem): MatmulProblem {
  const views = [p.a, p.b, p.out, ...(p.bias ? [p.bias] : [])];
  const dims: number[] = [];
  const strides: number[][] = views.map(() => []);
  p.slices.forEach((d, i) => {
    if (d === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && views.every((v, k) => strides[k][last] === v.ss[i] * d)) {
      dims[last] *= d;
      views.forEach((v, k) => (strides[k][last] = v.ss[i]));
      return;
    }
    dims.push(d);
    views.forEach((v, k) => strides[k].push(v.ss[i]));
  });
  const [a, b, out, bias] = views.map((v, k) => ({ ...v, ss: strides[k] }));
  return { ...p, slices: dims, a, b, out, bias: p.bias ? bias : undefined };
}
// ---------------------------------------------------------------- helpers

/** Runtime epilogue parameters of a problem. */
export function epilogue(p: MatmulProblem): { flags: number; act: number; bias: MatView | null } {
  return {
    flags: (p.bias ? 1 : 0) | (p.z ? 2 : 0),
    act: ACTIVATIONS[p.act ?? "none"],
    bias: p.bias ?? null,
  };
}

/** Slice dim sizes followed by each view's slice strides (0 for a missing view). */
export function sliceParams(p: MatmulProblem, views: (MatView | null)[]): number[] {
  const out = [...p.slices];
  for (const v of views) for (let d = 0; d < p.slices.length; d++) out.push(v ? v.ss[d] : 0);
  return out;
}

/** Records the shared-memory tiled kernel for a problem with `S` slices. */
export function runTiled(p: MatmulProblem, S: number): void {
  const nd = p.slices.length;
  const spec = cached(`tiled${nd}`, () => tiledSpec(nd));
  const { flags, act, bias } = epilogue(p);
  const [dz, db] = dummyBuffers();
  for (let z0 = 0; z0 < S; z0 += 65535) {
    const nz = Math.min(65535, S - z0);
    const params = [
      p.M,
      p.N,
      p.K,
      p.a.off,
      p.a.rs,
      p.a.cs,
      p.b.off,
      p.b.rs,
      p.b.cs,
      z0,
      p.out.off,
      p.out.rs,
      p.out.cs,
      bias?.off ?? 0,
      bias?.cs ?? 0,
      flags,
      act,
      ...sliceParams(p, [p.a, p.b, p.out, bias]),
    ];
    const bufs = [p.a.t.buffer, p.b.t.buffer, p.out.t.buffer, p.z?.buffer ?? dz, bias?.t.buffer ?? db];
    launch(spec, bufs, params, [Math.ceil(p.N / TILE), Math.ceil(p.M / TILE), nz]);
  }
}

/** True when a view can be read or written as whole vec4s. */
export function vecAligned(v: MatView, cols: number): boolean {
  return v.cs === 1 && cols % 4 === 0 && v.rs % 4 === 0 && v.off % 4 === 0 &&
    v.ss.every((s) => s % 4 === 0) &&
    v.t.buffer.size % 16 === 0;
}
