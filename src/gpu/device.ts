/**
 * Acquires the WebGPU adapter and device once per process and describes what they can do.
 *
 * Every other part of the engine reads the device through {@link gpu}; call {@link initGpu} once
 * (it is idempotent) before creating tensors.
 */

/** What the engine knows about the device it runs on. */
export interface GpuContext {
  /** The WebGPU device every kernel runs on. */
  device: GPUDevice;
  /** The adapter the device came from. */
  adapter: GPUAdapter;
  /** Human-readable adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  adapterName: string;
  /** True for software adapters (lavapipe, llvmpipe): kernels then prefer register blocking. */
  isFallback: boolean;
  /** True when the device was created with `shader-f16`. */
  hasF16: boolean;
  /** The limits the device was created with. */
  limits: GPUSupportedLimits;
}

let ctx: GpuContext | null = null;
let pending: Promise<GpuContext> | null = null;
let lostReason: string | null = null;

/** Error thrown when no WebGPU adapter can be found, with instructions to get one. */
export class NoAdapterError extends Error {
  /** Creates the error with its installation hint. */
  constructor() {
    super(
      "No WebGPU adapter found. Install a GPU driver with Vulkan support; on Linux without a GPU " +
        "install the software driver: `sudo apt-get install mesa-vulkan-drivers libvulkan1`. " +
        "Run `deno task info` to see what Deno finds.",
    );
    this.name = "NoAdapterError";
  }
}

/** Error thrown when the device was lost (driver reset, out of memory, process shutdown). */
export class DeviceLostError extends Error {
  /** Creates the error; `reason` is what the driver reported. */
  constructor(reason: string) {
    super(`The WebGPU device was lost: ${reason}. Restart the process; if it repeats, lower the batch size.`);
    this.name = "DeviceLostError";
  }
}

/**
 * Requests the adapter and a device with the adapter's maximum limits (and `shader-f16` when the
 * adapter has it). Safe to call many times; the first call does the work.
 *
 * @example
 * ```ts
 * import { initGpu } from "./mod.ts";
 * const { adapterName } = await initGpu();
 * console.log(adapterName);
 * ```
 */
export function initGpu(): Promise<GpuContext> {
  if (ctx) return Promise.resolve(ctx);
  pending ??= create();
  return pending;
}

async function create(): Promise<GpuContext> {
  quietMesa();
  if (typeof navigator === "undefined" || !navigator.gpu) throw new NoAdapterError();
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new NoAdapterError();
  const want: GPUFeatureName[] = ["shader-f16", "timestamp-query"];
  const requiredFeatures = want.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (
    const name of [
      "maxStorageBuffersPerShaderStage",
      "maxStorageTexturesPerShaderStage",
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupSizeY",
      "maxComputeWorkgroupSizeZ",
      "maxComputeWorkgroupsPerDimension",
      "maxBindGroups",
    ] as const
  ) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  device.lost.then((info) => {
    lostReason = info.message || String(info.reason);
  });
  const info = adapter.info;
  ctx = {
    device,
    adapter,
    adapterName: info.description || info.device || info.vendor || "unknown adapter",
    isFallback: info.isFallbackAdapter ?? false,
    hasF16: requiredFeatures.includes("shader-f16"),
    limits: device.limits,
  };
  return ctx;
}

/**
 * Mesa's software drivers print "XDG_RUNTIME_DIR is invalid" when the variable is unset (it only
 * matters for display sockets); point it at the temp dir when we may.
 */
function quietMesa(): void {
  try {
    if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  } catch {
    // no env permission: the warning is harmless
  }
}

/** The initialised context; throws a clear error if {@link initGpu} was not awaited or the device was lost. */
export function gpu(): GpuContext {
  if (lostReason !== null) throw new DeviceLostError(lostReason);
  if (!ctx) throw new Error("The GPU is not initialised: `await initGpu()` once before creating tensors.");
  return ctx;
}

/** Reason the device was lost, or null while it is alive. */
export function deviceLostReason(): string | null {
  return lostReason;
}
