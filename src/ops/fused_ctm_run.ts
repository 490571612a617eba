/**
 * Plumbing of the fused CTM kernels (`src/ops/fused_ctm.ts`): a pool of `rgba32float` 2-D array
 * textures, pipelines and bind groups for {@link FusedSpec}s (storage buffers then textures), a
 * launcher that records one dispatch, per-configuration spec caching and tensor→texture packing.
 */
import { type FusedSpec, FWG, rowPitch, setTextureReadMode } from "../../shaders/fused_ctm.ts";
import { packSpec, packT4Spec } from "../../shaders/fused_ctm_pack.ts";
import { gpu } from "../gpu/device.ts";
import { FreeList } from "../gpu/free_list.ts";
import { grid1d, wgsl } from "../gpu/kernel.ts";
import { recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** A pooled 2-D array texture. */
export interface Tex {
  /** The texture. */
  tex: GPUTexture;
  /** Its `2d-array` view. */
  view: GPUTextureView;
  /** Pool key (size). */
  key: string;
  /** Creation number (the pool hands out the oldest idle texture first). */
  num: number;
}

const texPool = new Map<string, FreeList<Tex>>();
let texCreated = 0;
let texIds = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object) => {
  let id = texIds.get(o);
  if (id === undefined) texIds.set(o, id = nextId++);
  return id;
};

/** A pooled `w × h × layers` texture (contents undefined). */
export function acquire(w: number, h: number, layers0: number): Tex {
  // At least two layers: wgpu's GL backend treats a one-layer texture as plain 2-D.
  const layers = Math.max(layers0, 2);
  const key = `${w}x${h}x${layers}`;
  const hit = texPool.get(key)?.pop();
  if (hit) return hit;
  const tex = gpu().device.createTexture({
    size: [Math.max(w, 1), Math.max(h, 1), layers],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
  return { tex, view: tex.createView({ dimension: "2d-array" }), key, num: texCreated++ };
}

/** Returns a texture to the pool (safe right after recording its last use: queue order). */
export function release(t: Tex): void {
  let l = texPool.get(t.key);
  if (!l) texPool.set(t.key, l = new FreeList());
  l.push(t, t.num);
}

interface Pipe {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
}
const pipes = new Map<string, Pipe>();
const pipeOfSpec = new WeakMap<FusedSpec, Pipe>();
const bindGroups = new Map<string, GPUBindGroup>();

function pipeOf(spec: FusedSpec): Pipe {
  let p = pipeOfSpec.get(spec);
  if (p) return p;
  const code = wgsl(spec);
  p = pipes.get(code);
  if (!p) {
    const { device } = gpu();
    const stage = GPUShaderStage.COMPUTE;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: stage, buffer: { type: "uniform", hasDynamicOffset: true } },
    ];
    spec.bindings.forEach((b, i) =>
      entries.push({
        binding: i + 1,
        visibility: stage,
        buffer: { type: b.access === "read" ? "read-only-storage" : "storage" },
      })
    );
    spec.textures.forEach((t, i) => {
      const binding = spec.bindings.length + 1 + i;
      if (t.kind === "r" && spec.readMode === "sampled") {
        entries.push({
          binding,
          visibility: stage,
          texture: { sampleType: "unfilterable-float", viewDimension: "2d-array" },
        });
      } else {
        entries.push({
          binding,
          visibility: stage,
          storageTexture: {
            access: t.kind === "r" ? "read-only" : "write-only",
            format: "rgba32float",
            viewDimension: "2d-array",
          },
        });
      }
    });
    const layout = device.createBindGroupLayout({ entries });
    const pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    p = { pipeline, layout, id: pipes.size };
    pipes.set(code, p);
  }
  pipeOfSpec.set(spec, p);
  return p;
}

let dummies: GPUBuffer[] = [];
/** The i-th distinct small placeholder buffer (for unused optional bindings). */
export function dummy(i: number): GPUBuffer {
  while (dummies.length <= i) {
    dummies.push(gpu().device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE }));
  }
  return dummies[i];
}

let profileCount: Map<string, number> | null = null;
/** Extra dispatches per kernel name (cost measurement by repetition; see the step bench). */
export const repeat: Map<string, number> = new Map();

/** Records one dispatch of `spec` over `threads` invocations. */
export function run(
  spec: FusedSpec,
  buffers: GPUBuffer[],
  texs: Tex[],
  params: number[],
  threads: number,
): void {
  if (threads <= 0) return;
  if (buffers.length !== spec.bindings.length || texs.length !== spec.textures.length) {
    throw new Error(`internal: ${spec.name}: binding count mismatch`);
  }
  const p = pipeOf(spec);
  const rec = recorder();
  const u = rec.params(Uint32Array.from(params.length ? params : [0]));
  let key = `${p.id}:${idOf(u.buffer)}:${u.size}`;
  for (const b of buffers) key += ":" + idOf(b);
  for (const t of texs) key += ":" + idOf(t.view);
  let bg = bindGroups.get(key);
  if (!bg) {
    if (bindGroups.size > 20000) bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: u.buffer, size: u.size } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    texs.forEach((t, i) => entries.push({ binding: buffers.length + 1 + i, resource: t.view }));
    bg = rec.bindGroup(p.layout, entries);
    bindGroups.set(key, bg);
  }
  const [x, y] = grid1d(Math.ceil(threads / FWG));
  const name = spec.name ?? "";
  const n = 1 + (repeat.get(name) ?? 0);
  for (let i = 0; i < n; i++) rec.dispatch(p.pipeline, bg, [u.offset], x, y, 1, name);
  profileCount?.set(name, (profileCount.get(name) ?? 0) + 1);
}

/** Starts counting dispatches by kernel name. */
export function startCounting(): void {
  profileCount = new Map();
}

/** Stops counting; returns counts per kernel name, most frequent first. */
export function stopCounting(): [string, number][] {
  const r = [...(profileCount ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);
  profileCount = null;
  return r;
}

const specCache = new Map<string, FusedSpec>();
let modeChosen = false;

/** The spec cached under `key`, made on first use (the texture read mode chosen before). */
export function cached(key: string, make: () => FusedSpec): FusedSpec {
  if (!modeChosen) {
    // Read-only storage textures are faster on lavapipe; the attention kernel binds 10 textures.
    setTextureReadMode(gpu().limits.maxStorageTexturesPerShaderStage >= 12 ? "storage" : "sampled");
    modeChosen = true;
  }
  let s = specCache.get(key);
  if (!s) specCache.set(key, s = make());
  return s;
}

/** Forces the texture read mode of specs made from now on. */
export function forceReadMode(mode: "storage" | "sampled"): void {
  setTextureReadMode(mode);
  modeChosen = true;
}

/** Where {@link pack} puts a tensor: see `packSpec` in `shaders/fused_ctm_pack.ts`. */
export interface PackOpts {
  /** Texels along x, rows along y, layers. */
  W: number;
  R: number;
  NL?: number;
  /** Element strides per texel column, row, component and layer. */
  xs: number;
  ys: number;
  qs: number;
  ls?: number;
  /** Validity: `4·(x·vx + y·vy) + q < lim`. */
  vx: number;
  vy: number;
  lim: number;
  rowOff?: number;
  layerOff?: number;
  /** First texel column written. */
  colOff?: number;
  /** Extra element offset. */
  off?: number;
  /** Divide every entry by `div[0]`. */
  div?: Tensor;
}

/** Packs a (strided) tensor into texture `out`. */
export function pack(src: Tensor, out: Tex, o: PackOpts): void {
  const NL = o.NL ?? 1;
  const spec = cached(`pack${src.dtype}${!!o.div}`, () => packSpec(src.dtype === "i32", !!o.div));
  run(
    spec,
    o.div ? [src.buffer, o.div.buffer] : [src.buffer],
    [out],
    [
      src.offset + (o.off ?? 0),
      o.ls ?? 0,
      o.xs,
      o.ys,
      o.qs,
      o.W,
      o.R,
      NL,
      o.rowOff ?? 0,
      o.colOff ?? 0,
      o.layerOff ?? 0,
      o.vx,
      o.vy,
      o.lim,
      ...(o.div ? [o.div.offset] : []),
    ],
    o.W * o.R * NL,
  );
}

/**
 * Transposing pack (see `packT4Spec`): texel `(nOff + n, r)`, or `(r, nOff + n)` with `swap`, of `out` gets
 * entries 4r…4r+3 of column n of the `[E, N]` view `src[e·es + n]`, divided by `div[0]`.
 * Returns false (nothing recorded) where N, es or the offset are not multiples of 4.
 */
export function packT(
  src: Tensor,
  out: Tex,
  o: { N: number; E: number; es: number; swap?: boolean; nOff?: number; div?: Tensor },
): boolean {
  if (src.dtype !== "f32" || o.N % 4 !== 0 || o.es % 4 !== 0 || src.offset % 4 !== 0) return false;
  const swap = !!o.swap, div = !!o.div;
  const spec = cached(`packt4${div}${swap}`, () => packT4Spec(div, swap));
  const R = Math.ceil(o.E / 4);
  run(
    spec,
    o.div ? [src.buffer, o.div.buffer] : [src.buffer],
    [out],
    [src.offset / 4, o.es / 4, o.N / 4, R, o.E, o.nOff ?? 0, ...(o.div ? [o.div.offset] : [])],
    (o.N / 4) * R,
  );
  return true;
}

/**
 * Row-layout packing of `[R, C]` with strides (rs, cs) (and per layer ls). Where each texel is four
 * consecutive floats and the rows' byte pitch suits a buffer-to-texture copy (a multiple of 256,
 * offset a multiple of 16), a copy does it: on lavapipe a memcpy instead of a kernel whose
 * storage-buffer loads are per-lane loops (~1.3 ms → ~0.1 ms for the bench's synapse weight).
 */
export function packRows(
  src: Tensor,
  out: Tex,
  o: {
    R: number;
    C: number;
    rs: number;
    cs: number;
    ls?: number;
    NL?: number;
    rowOff?: number;
    /** First texel column written. */
    colOff?: number;
    div?: Tensor;
  },
): void {
  const NL = o.NL ?? 1;
  const copyable = src.dtype === "f32" && !o.div && o.cs === 1 && o.C % 4 === 0 && src.offset % 4 === 0 &&
    (o.R === 1 || (4 * o.rs) % 256 === 0) && (NL === 1 || (o.R > 1 && o.ls === o.R * o.rs));
  if (copyable) {
    recorder().copyToTexture(
      {
        buffer: src.buffer,
        offset: 4 * src.offset,
        bytesPerRow: o.R > 1 ? 4 * o.rs : Math.ceil((4 * o.C) / 256) * 256,
        rowsPerImage: o.R,
      },
      { texture: out.tex, origin: [o.colOff ?? 0, o.rowOff ?? 0, 0] },
      [o.C / 4, o.R, NL],
    );
    return;
  }
  pack(src, out, {
    W: Math.ceil(o.C / 4),
    R: o.R,
    NL: o.NL,
    xs: 4 * o.cs,
    ys: o.rs,
    qs: o.cs,
    ls: o.ls,
    vx: 1,
    vy: 0,
    lim: o.C,
    rowOff: o.rowOff,
    colOff: o.colOff,
    div: o.div,
  });
}

/**
 * Records a copy of a staging buffer (rows of {@link rowPitch}(w) texels, `h` rows per layer,
 * `layers` layers) into layers `layer…layer+layers-1` of `out`. On lavapipe a kernel's texel stores
 * cost several times its vec4 buffer stores, so kernels with many stores write a buffer and this
 * copy moves it into the texture that later kernels load from.
 */
export function copyRowsToTexture(src: Tensor, out: Tex, w: number, h: number, layer = 0, layers = 1): void {
  recorder().copyToTexture(
    { buffer: src.buffer, offset: src.offset * 4, bytesPerRow: rowPitch(w) * 16, rowsPerImage: h },
    { texture: out.tex, origin: [0, 0, layer] },
    [w, h, layers],
  );
}

/** Frees pooled textures, bind groups and placeholders. */
export function trimPools(): void {
  for (const l of texPool.values()) for (const t of l.drain()) t.tex.destroy();
  texPool.clear();
  bindGroups.clear();
  texIds = new WeakMap();
  for (const b of dummies) b.destroy();
  dummies = [];
}
