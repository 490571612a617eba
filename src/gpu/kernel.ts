/**
 * Kernel plumbing: WGSL assembly from a small spec, a pipeline cache keyed by the generated WGSL,
 * a bind-group cache, and {@link launch}, which records one dispatch.
 *
 * Binding convention: `@group(0) @binding(0)` is a uniform struct `P` of u32 fields (floats are
 * passed as their bits; use `bitcast<f32>(P.x)`), bindings 1… are storage buffers in spec order.
 */
import { gpu } from "./device.ts";
import { recorder } from "./recorder.ts";

/** Element type of a storage binding. */
export type WgslType = "f32" | "i32" | "u32" | "vec4<f32>" | "vec4<i32>" | "vec4<u32>";

/** One storage-buffer binding of a kernel. */
export interface BindingSpec {
  /** Name used in the WGSL body. */
  name: string;
  /** Element type; the binding is `array<type>`. */
  type: WgslType;
  /** `read` for inputs, `rw` for outputs. */
  access: "read" | "rw";
}

/** Everything needed to generate a kernel's WGSL. */
export interface KernelSpec {
  /** u32 uniform fields, in order. */
  params: string[];
  /** Storage bindings, in order. */
  bindings: BindingSpec[];
  /** Workgroup size (x, y, z). */
  workgroup: [number, number?, number?];
  /** Body of `main`; `gid`, `lid`, `wid` and `nwg` (num_workgroups) are in scope. */
  body: string;
  /** Module-scope WGSL placed before `main` (helpers, `var<workgroup>`). */
  prelude?: string;
  /** Short name for profiles (default: the last line of the body). */
  name?: string;
}

/** Assembles the WGSL of a kernel spec. */
export function wgsl(spec: KernelSpec): string {
  const fields = spec.params.length ? spec.params : ["_unused"];
  const lines = [`struct Params { ${fields.map((f) => `${f}: u32,`).join(" ")} }`];
  lines.push(`@group(0) @binding(0) var<uniform> P: Params;`);
  spec.bindings.forEach((b, i) => {
    const acc = b.access === "read" ? "read" : "read_write";
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${acc}> ${b.name}: array<${b.type}>;`);
  });
  if (spec.prelude) lines.push(spec.prelude);
  const [x, y = 1, z = 1] = spec.workgroup;
  lines.push(
    `@compute @workgroup_size(${x}, ${y}, ${z})`,
    `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_id) lid: vec3u,`,
    `        @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
    spec.body,
    `}`,
  );
  return lines.join("\n");
}

interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  key: string;
}

const pipelines = new Map<string, Compiled>();
const bindGroups = new Map<string, GPUBindGroup>();
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
let compiledCount = 0;

function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, id = nextBufferId++);
  return id;
}

function compile(code: string, access: string): Compiled {
  const key = access + "\n" + code;
  let c = pipelines.get(key);
  if (c) return c;
  const { device } = gpu();
  const entries: GPUBindGroupLayoutEntry[] = [{
    binding: 0,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: "uniform", hasDynamicOffset: true },
  }];
  for (let i = 0; i < access.length; i++) {
    entries.push({
      binding: i + 1,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: access[i] === "r" ? "read-only-storage" : "storage" },
    });
  }
  const layout = device.createBindGroupLayout({ entries });
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
  });
  c = { pipeline, layout, key: String(compiledCount++) };
  pipelines.set(key, c);
  return c;
}

/** Number of distinct pipelines compiled so far. */
export function pipelineCount(): number {
  return pipelines.size;
}

/** Forgets cached bind groups (call after destroying pooled buffers). */
export function clearBindGroupCache(): void {
  bindGroups.clear();
}

/**
 * Records one dispatch of `spec` (or of ready WGSL with its access string) over `grid`
 * workgroups. `buffers` follow the spec's binding order; `params` the spec's param order.
 */
export function launch(
  spec: KernelSpec,
  buffers: GPUBuffer[],
  params: ArrayLike<number>,
  grid: [number, number?, number?],
): void {
  // Per spec object: its pipeline and profile name (recording a step launches ~460 kernels, so
  // rebuilding the WGSL-keyed lookup string and the name each time showed in JS profiles).
  let s = specCache.get(spec);
  if (!s) {
    const access = spec.bindings.map((b) => (b.access === "read" ? "r" : "w")).join("");
    const name = spec.name ??
      spec.body.trim().split("\n").filter((l) => l.trim() !== "}").slice(-1)[0]?.trim().slice(0, 60) ?? "";
    specCache.set(spec, s = { c: compile(wgsl(spec), access), name });
  }
  const c = s.c;
  const rec = recorder();
  const u = rec.params(params instanceof Uint32Array ? params : Uint32Array.from(params));
  let key = c.key + ":" + bufferId(u.buffer) + ":" + u.size;
  for (const b of buffers) key += ":" + bufferId(b);
  let bg = bindGroups.get(key);
  if (!bg) {
    if (bindGroups.size > 50000) bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: u.buffer, size: u.size } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    bg = rec.bindGroup(c.layout, entries);
    bindGroups.set(key, bg);
  }
  const [x, y = 1, z = 1] = grid;
  const name = s.name;
  rec.dispatch(c.pipeline, bg, [u.offset], x, y, z, name);
  if (profile) profile.set(name, (profile.get(name) ?? 0) + 1);
}

let profile: Map<string, number> | null = null;

/** Starts counting dispatches per kernel (by spec name, or the last line of its body). */
export function startKernelProfile(): void {
  profile = new Map();
}

/** Stops counting and returns dispatch counts per kernel, most frequent first. */
export function stopKernelProfile(): [string, number][] {
  const p = [...(profile ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);
  profile = null;
  return p;
}

const specCache = new WeakMap<KernelSpec, { c: Compiled; name: string }>();

/** Bits of a float32, for passing floats through the u32 parameter struct. */
export function f32bits(x: number): number {
  f32buf[0] = x;
  return u32buf[0];
}
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/**
 * Splits `n` workgroups over x and y so neither exceeds the per-dimension limit. Kernels recover
 * the linear workgroup index as `wid.x + wid.y * nwg.x`.
 */
export function grid1d(n: number): [number, number] {
  const max = 65535;
  if (n <= max) return [Math.max(n, 1), 1];
  const y = Math.ceil(n / max);
  return [Math.ceil(n / y), y];
}
