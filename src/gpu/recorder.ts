/**
 * Records kernels and copies into one command encoder and submits them in one go.
 *
 * Kernel parameters go to a uniform arena that is written just before the submit, and uploads go
 * through staging buffers copied inside the encoder, so every operation keeps its recorded order
 * and nothing on the host waits for the device until someone reads a result.
 */
import { DeviceLostError, deviceLostReason, gpu } from "./device.ts";

const AUTO_FLUSH_DISPATCHES = 8192;
// One arena holds a whole submission's parameters (256-byte slots), so consecutive training
// steps recorded into one submission bind the same uniform buffer and reuse their bind groups.
const ARENA_BYTES = AUTO_FLUSH_DISPATCHES * 256;

interface Arena {
  buf: GPUBuffer;
  data: Uint32Array<ArrayBuffer>;
  used: number;
}

/** Counters for benches: how much work has been recorded and submitted. */
export interface RecorderStats {
  /** Kernel dispatches recorded since the process started. */
  dispatches: number;
  /** Command buffers submitted since the process started. */
  submits: number;
  /** Host readbacks (`mapAsync`) started since the process started. */
  readbacks: number;
  /** Bind groups created since the process started (a repeated step should create none). */
  bindGroups: number;
}

/** The single command recorder of the process. */
export class Recorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arenas: Arena[] = [];
  #arenaIdx = 0;
  #staging: GPUBuffer[] = [];
  #pendingDispatches = 0;
  #error: string | null = null;
  #stats: RecorderStats = { dispatches: 0, submits: 0, readbacks: 0, bindGroups: 0 };
  #timing: { querySet: GPUQuerySet; labels: string[]; capacity: number } | null = null;
  /** Alignment of uniform offsets on this device. */
  readonly align: number;

  /** Creates the recorder for `device` (use {@link recorder} instead). */
  constructor(private device: GPUDevice) {
    this.align = device.limits.minUniformBufferOffsetAlignment;
    device.addEventListener("uncapturederror", (e) => {
      const msg = (e as GPUUncapturedErrorEvent).error.message;
      if (this.#error === null) this.#error = msg;
      console.error(`WebGPU error: ${msg}`);
    });
  }

  #enc(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#enc().beginComputePass();
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** Reserves space for kernel parameters; returns the uniform buffer and its dynamic offset. */
  params(values: Uint32Array): { buffer: GPUBuffer; offset: number; size: number } {
    const bytes = Math.max(16, values.byteLength);
    const slot = Math.ceil(bytes / this.align) * this.align;
    if (slot > ARENA_BYTES) throw new Error(`kernel parameters too large: ${bytes} bytes`);
    let a = this.#arenas[this.#arenaIdx];
    if (a && a.used + slot > ARENA_BYTES) a = this.#arenas[++this.#arenaIdx];
    if (!a) {
      a = {
        buf: this.device.createBuffer({
          size: ARENA_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        data: new Uint32Array(ARENA_BYTES / 4),
        used: 0,
      };
      this.#arenas[this.#arenaIdx] = a;
    }
    const offset = a.used;
    a.data.set(values, offset / 4);
    a.used += slot;
    return { buffer: a.buf, offset, size: Math.ceil(bytes / 16) * 16 };
  }

  /** Creates a bind group (every kernel launcher goes through here, so benches can count them). */
  bindGroup(layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[]): GPUBindGroup {
    this.#stats.bindGroups++;
    return this.device.createBindGroup({ layout, entries });
  }

  /** Records one dispatch. */
  dispatch(
    pipeline: GPUComputePipeline,
    bindGroup: GPUBindGroup,
    dynamicOffsets: number[],
    x: number,
    y = 1,
    z = 1,
    label = "",
  ): void {
    if (x === 0 || y === 0 || z === 0) return;
    const t = this.#timing;
    let pass: GPUComputePassEncoder;
    if (t && t.labels.length < t.capacity) {
      this.#endPass();
      const k = t.labels.length;
      t.labels.push(label);
      pass = this.#enc().beginComputePass({
        timestampWrites: {
          querySet: t.querySet,
          beginningOfPassWriteIndex: 2 * k,
          endOfPassWriteIndex: 2 * k + 1,
        },
      });
      this.#pass = pass;
    } else pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, dynamicOffsets);
    pass.dispatchWorkgroups(x, y, z);
    if (t && this.#pass === pass && t.labels.length <= t.capacity) this.#endPass();
    this.#stats.dispatches++;
    if (++this.#pendingDispatches >= AUTO_FLUSH_DISPATCHES) this.flush();
  }

  /** Records a buffer-to-buffer copy (byte offsets and size must be multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Records a buffer-to-texture copy, ordered with the recorded kernels. */
  copyToTexture(src: GPUTexelCopyBufferInfo, dst: GPUTexelCopyTextureInfo, size: GPUExtent3D): void {
    this.#endPass();
    this.#enc().copyBufferToTexture(src, dst, size);
  }

  /** Records an upload of host data into `dst` at `dstOffset`, ordered with the recorded kernels. */
  upload(dst: GPUBuffer, dstOffset: number, data: ArrayBufferView): void {
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size === 0) return;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#staging.push(staging);
    this.copy(staging, 0, dst, dstOffset, size);
  }

  /** Submits everything recorded so far. Cheap; never waits for the device. */
  flush(): void {
    this.#throwIfError();
    if (!this.#encoder) return;
    this.#endPass();
    for (let i = 0; i <= this.#arenaIdx && i < this.#arenas.length; i++) {
      const a = this.#arenas[i];
      if (a.used > 0) this.device.queue.writeBuffer(a.buf, 0, a.data, 0, a.used / 4);
      a.used = 0;
    }
    this.#arenaIdx = 0;
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pendingDispatches = 0;
    this.#stats.submits++;
    for (const s of this.#staging) s.destroy();
    this.#staging = [];
  }

  /** Copies `size` bytes of `src` to the host. Flushes; several reads may be in flight at once. */
  async read(src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    const dst = this.device.createBuffer({
      size: padded,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.copy(src, offset, dst, 0, padded);
    this.flush();
    this.#stats.readbacks++;
    try {
      await dst.mapAsync(GPUMapMode.READ);
    } catch (e) {
      const lost = deviceLostReason();
      if (lost !== null) throw new DeviceLostError(lost);
      this.#throwIfError();
      throw e;
    }
    const out = dst.getMappedRange().slice(0, size);
    dst.unmap();
    dst.destroy();
    this.#throwIfError();
    return out;
  }

  /** Waits until the device has finished everything submitted (for benches). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#throwIfError();
  }

  /**
   * Starts timing every dispatch with GPU timestamps (each in its own pass; for profiling only).
   * Needs the `timestamp-query` feature; returns false without it.
   */
  startTiming(capacity = 2048): boolean {
    if (!this.device.features.has("timestamp-query")) return false;
    this.flush();
    this.#timing = {
      querySet: this.device.createQuerySet({ type: "timestamp", count: 2 * capacity }),
      labels: [],
      capacity,
    };
    return true;
  }

  /** Stops timing; resolves to total milliseconds and counts per label, slowest first. */
  async stopTiming(): Promise<{ label: string; count: number; ms: number }[]> {
    const t = this.#timing;
    if (!t) return [];
    this.#timing = null;
    this.#endPass();
    const n = t.labels.length;
    if (n === 0) return [];
    const resolve = this.device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.#enc().resolveQuerySet(t.querySet, 0, 2 * n, resolve, 0);
    const bytes = await this.read(resolve, 0, 16 * n);
    resolve.destroy();
    t.querySet.destroy();
    const ns = new BigUint64Array(bytes);
    const agg = new Map<string, { label: string; count: number; ms: number }>();
    t.labels.forEach((label, k) => {
      const e = agg.get(label) ?? { label, count: 0, ms: 0 };
      e.count++;
      e.ms += Number(ns[2 * k + 1] - ns[2 * k]) / 1e6;
      agg.set(label, e);
    });
    return [...agg.values()].sort((a, b) => b.ms - a.ms);
  }

  /** Counters since the process started. */
  stats(): RecorderStats {
    return { ...this.#stats };
  }

  #throwIfError(): void {
    if (this.#error !== null) {
      const e = this.#error;
      this.#error = null;
      throw new Error(`WebGPU reported an error: ${e}`);
    }
  }
}

let rec: Recorder | null = null;

/** The process-wide recorder (created on first use, after `initGpu`). */
export function recorder(): Recorder {
  return rec ??= new Recorder(gpu().device);
}
