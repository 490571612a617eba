/**
 * Texture plumbing for the regblock matmul: a pool of `rgba32float` 2-D array textures, a
 * launcher for kernels with texture bindings ({@link TexKernelSpec}), and buffer→texture copies
 * submitted in order with the recorder's work.
 */
import type { TexKernelSpec } from "../../shaders/matmul.ts";
import { gpu } from "../gpu/device.ts";
import { FreeList } from "../gpu/free_list.ts";
import { wgsl } from "../gpu/kernel.ts";
import { recorder } from "../gpu/recorder.ts";

/** A pooled texture and its 2-D array view. */
export interface PooledTex {
  tex: GPUTexture;
  view: GPUTextureView;
  key: string;
  /** Creation number (the pool hands out the oldest idle texture first). */
  num: number;
}

const texPool = new Map<string, FreeList<PooledTex>>();
let texCreated = 0;
let pooledBytes = 0;
const POOL_CAP = 512 * 1024 * 1024;

function sizeClass(n: number): number {
  if (n <= 16) return Math.max(n, 1);
  const step = 2 ** Math.floor(Math.log2(n)) / 4;
  return Math.ceil(n / step) * step;
}

/** A texture of at least `w × h` texels and exactly `layers` layers (contents undefined). */
export function acquireTex(w: number, h: number, layers: number): PooledTex {
  const lim = gpu().device.limits.maxTextureDimension2D;
  const W = Math.min(sizeClass(w), lim), H = Math.min(sizeClass(h), lim);
  // wgpu's GL backend takes a one-layer texture for a plain 2-D one and then reads zeros through
  // a 2d-array view, so every texture gets at least two layers.
  layers = Math.max(layers, 2);
  const key = `${W}x${H}x${layers}`;
  const hit = texPool.get(key)?.pop();
  if (hit) {
    pooledBytes -= W * H * layers * 16;
    return hit;
  }
  const tex = gpu().device.createTexture({
    size: [W, H, layers],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
  return { tex, view: tex.createView({ dimension: "2d-array" }), key, num: texCreated++ };
}

/**
 * Returns a texture to the pool. Safe right after recording its last use: every later use is
 * recorded or submitted after it, in queue order.
 */
export function releaseTex(t: PooledTex): void {
  const bytes = t.tex.width * t.tex.height * t.tex.depthOrArrayLayers * 16;
  if (pooledBytes + bytes > POOL_CAP) {
    t.tex.destroy();
    return;
  }
  let list = texPool.get(t.key);
  if (!list) texPool.set(t.key, list = new FreeList());
  list.push(t, t.num);
  pooledBytes += bytes;
}

interface TexPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
}
const pipelines = new Map<string, TexPipeline>();
const codes = new WeakMap<TexKernelSpec, string>();
const bindGroups = new Map<string, GPUBindGroup>();
const ids = new WeakMap<object, number>();
let nextId = 1;
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, id = nextId++);
  return id;
}

function pipelineOf(spec: TexKernelSpec): TexPipeline {
  let code = codes.get(spec);
  if (!code) codes.set(spec, code = wgsl(spec));
  let p = pipelines.get(code);
  if (p) return p;
  const { device } = gpu();
  const stage = GPUShaderStage.COMPUTE;
  const entries: GPUBindGroupLayoutEntry[] = [
    { binding: 0, visibility: stage, buffer: { type: "uniform", hasDynamicOffset: true } },
  ];
  spec.bindings.forEach((b, i) => {
    entries.push({
      binding: i + 1,
      visibility: stage,
      buffer: { type: b.access === "read" ? "read-only-storage" : "storage" },
    });
  });
  spec.textures.forEach((kind, i) => {
    const binding = spec.bindings.length + 1 + i;
    const access = kind === "read" ? "read-only" : "write-only";
    entries.push({
      binding,
      visibility: stage,
      storageTexture: { access, format: "rgba32float", viewDimension: "2d-array" },
    });
  });
  const layout = device.createBindGroupLayout({ entries });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  p = { pipeline, layout, id: pipelines.size };
  pipelines.set(code, p);
  return p;
}

/** Records one dispatch of a kernel with storage buffers then texture views, in spec order. */
export function launchTex(
  spec: TexKernelSpec,
  buffers: GPUBuffer[],
  views: GPUTextureView[],
  params: number[],
  grid: [number, number, number?],
): void {
  if (grid.some((g) => g === 0)) return;
  const p = pipelineOf(spec);
  const rec = recorder();
  const u = rec.params(Uint32Array.from(params));
  let key = `${p.id}:${idOf(u.buffer)}:${u.size}`;
  for (const b of buffers) key += ":" + idOf(b);
  for (const v of views) key += ":" + idOf(v);
  let bg = bindGroups.get(key);
  if (!bg) {
    if (bindGroups.size > 20000) bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: u.buffer, size: u.size } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    views.forEach((resource, i) => entries.push({ binding: buffers.length + 1 + i, resource }));
    bg = rec.bindGroup(p.layout, entries);
    bindGroups.set(key, bg);
  }
  const [x, y = 1, z = 1] = grid;
  rec.dispatch(p.pipeline, bg, [u.offset], x, y, z, spec.name ?? "");
}

/** One buffer→texture copy: `size` = [texels, rows, layers] from byte `offset`. */
export interface TexCopy {
  buffer: GPUBuffer;
  offset: number;
  bytesPerRow?: number;
  rowsPerImage?: number;
  tex: GPUTexture;
  layer: number;
  size: [number, number, number];
}

/** Records buffer→texture copies in order with the rest of the recorded work (no extra submit). */
export function submitCopies(copies: TexCopy[]): void {
  const rec = recorder();
  for (const c of copies) {
    rec.copyToTexture(
      { buffer: c.buffer, offset: c.offset, bytesPerRow: c.bytesPerRow, rowsPerImage: c.rowsPerImage },
      { texture: c.tex, origin: [0, 0, c.layer] },
      c.size,
    );
  }
}

let dummies: [GPUBuffer, GPUBuffer] | null = null;

/** Two distinct small storage buffers to bind where a kernel's optional Z / Bias is unused. */
export function dummyBuffers(): [GPUBuffer, GPUBuffer] {
  const mk = () => gpu().device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
  return dummies ??= [mk(), mk()];
}
