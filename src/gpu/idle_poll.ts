/**
 * Keeps idle CPU cores polling instead of sleeping while a run lasts (Linux PM QoS).
 *
 * On a CPU WebGPU adapter (lavapipe) every dispatch hands work from the driver's queue thread to
 * its worker threads and back, and a CTM step has ~400 dispatches. When a core goes idle between
 * them, waking it again costs tens of microseconds (far more inside a VM, where an idle vCPU
 * halts). Writing a wake-up latency of 0 µs to `/dev/cpu_dma_latency` and keeping the file open
 * asks the kernel to poll in its idle loop instead, until the file is closed (or the process
 * exits). OpenMP-based CPU frameworks get the same effect by spinning their own threads.
 *
 * The request needs write access to `/dev/cpu_dma_latency` (root, usually) and costs power while
 * it is held; without access it is simply not made.
 */

/** When to hold the request: always, only on a CPU (fallback) adapter, or never. */
export type IdlePollMode = "on" | "auto" | "off";

/** The accepted {@link IdlePollMode} values, for flag tables. */
export const IDLE_POLL_MODES: readonly IdlePollMode[] = ["auto", "on", "off"];

/** A held (or refused) idle-polling request. */
export interface IdlePollHold {
  /** True while the kernel is asked to poll. */
  readonly active: boolean;
  /** Why it is not active (empty when it is). */
  readonly reason: string;
  /** Drops the request (idempotent). */
  release(): void;
}

const QOS_FILE = "/dev/cpu_dma_latency";

/**
 * Asks the kernel to keep idle cores polling (a CPU wake-up latency of 0 µs) until `release()`.
 * Never throws: where that is not possible the hold is inactive and says why.
 *
 * @example
 * ```ts
 * import { holdIdlePoll } from "./mod.ts";
 * const hold = holdIdlePoll();
 * console.log(hold.active ? "idle cores poll" : `not polling: ${hold.reason}`);
 * hold.release();
 * ```
 */
export function holdIdlePoll(path: string = QOS_FILE): IdlePollHold {
  if (Deno.build.os !== "linux") return inactive(`only Linux has ${QOS_FILE}`);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true });
  } catch (e) {
    const why = e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? "no permission (run as root, or with write access to it)"
      : e instanceof Deno.errors.NotFound
      ? "the file does not exist"
      : (e as Error).message;
    return inactive(`cannot open ${path}: ${why}`);
  }
  try {
    // The kernel reads a native-endian s32 latency in microseconds.
    file.writeSync(new Uint8Array(new Int32Array([0]).buffer));
  } catch (e) {
    file.close();
    return inactive(`cannot write ${path}: ${(e as Error).message}`);
  }
  let open = true;
  return {
    get active() {
      return open;
    },
    reason: "",
    release() {
      if (!open) return;
      open = false;
      file.close();
    },
  };
}

/** Applies `mode` for an adapter: `auto` holds the request only on a CPU (fallback) adapter. */
export function idlePollFor(mode: IdlePollMode, isFallbackAdapter: boolean, path?: string): IdlePollHold {
  if (mode === "off") return inactive("off");
  if (mode === "auto" && !isFallbackAdapter) return inactive("not a CPU adapter");
  return holdIdlePoll(path);
}

function inactive(reason: string): IdlePollHold {
  return { active: false, reason, release() {} };
}
