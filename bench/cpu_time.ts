/**
 * Process CPU time for benches: steadier than wall time when other processes share the cores.
 */

/**
 * Process CPU time (all threads, lavapipe's workers included) in ms: the sum of every thread's
 * run time in `/proc/self/task/<tid>/schedstat` (ns; exited threads are folded into the process
 * by the kernel only in `/proc/self/stat`, which counts 10 ms ticks, so that is the fallback).
 * NaN where neither is readable (not Linux).
 */
export function processCpuMs(): number {
  try {
    let ns = 0;
    for (const e of Deno.readDirSync("/proc/self/task")) {
      try {
        ns += Number(Deno.readTextFileSync(`/proc/self/task/${e.name}/schedstat`).split(" ")[0]);
      } catch {
        // thread exited meanwhile
      }
    }
    return ns / 1e6;
  } catch {
    try {
      const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
      return (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      return NaN;
    }
  }
}
