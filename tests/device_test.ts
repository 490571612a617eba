import { gpu } from "../src/gpu/device.ts";
import { FreeList } from "../src/gpu/free_list.ts";
import { ReadQueue } from "../src/gpu/readback.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { add } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { assertClose, gpuTest } from "./helpers.ts";

gpuTest("the device is acquired once with the adapter's limits", () => {
  const g = gpu();
  if (!g.adapterName) throw new Error("no adapter name");
  if (g.limits.maxStorageBuffersPerShaderStage < 8) throw new Error("storage buffer limit not raised");
  if (g.hasF16 !== g.adapter.features.has("shader-f16")) throw new Error("f16 must follow the adapter");
});

gpuTest("several reads in flight come back in order, without blocking recording", async () => {
  const q = new ReadQueue(3);
  const seen: number[] = [];
  const before = recorder().stats().readbacks;
  for (let i = 0; i < 10; i++) await q.push(add(fromArray([i]), 100), (v) => seen.push(v[0]));
  if (q.inFlight > 3) throw new Error("too many reads in flight");
  await q.drain();
  assertClose(seen, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  if (recorder().stats().readbacks - before !== 10) throw new Error("expected one readback per push");
});

gpuTest("a lost device gives a clear error, not a hang", async () => {
  const script = `
    import "${new URL("../src/ops/setup.ts", import.meta.url)}";
    import { initGpu } from "${new URL("../src/gpu/device.ts", import.meta.url)}";
    import { fromArray } from "${new URL("../src/ops/creation.ts", import.meta.url)}";
    import { add } from "${new URL("../src/ops/arith.ts", import.meta.url)}";
    const g = await initGpu();
    const a = fromArray([1, 2]);
    g.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    try { await add(a, 1).toArray(); console.log("NO ERROR"); } catch (e) { console.log(String(e)); }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!text.includes("device was lost")) throw new Error(`unexpected output: ${text}`);
});

Deno.test("no adapter gives instructions to install a driver", async () => {
  const script = `
    import { initGpu } from "${new URL("../src/gpu/device.ts", import.meta.url)}";
    try { await initGpu(); console.log("GOT ADAPTER"); } catch (e) { console.log(String(e)); }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    env: {
      DENO_WEBGPU_BACKEND: "vulkan",
      VK_ICD_FILENAMES: "/nonexistent.json",
      VK_DRIVER_FILES: "/nonexistent.json",
    },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!text.includes("NoAdapterError") || !text.includes("mesa-vulkan-drivers")) {
    throw new Error(`unexpected output: ${text}`);
  }
});

Deno.test("pool free lists hand out the oldest idle resource, whatever order they came back in", () => {
  const a = new FreeList<string>(), b = new FreeList<string>();
  for (const [x, n] of [["c", 2], ["a", 0], ["d", 3], ["b", 1]] as const) a.push(x, n);
  for (const [x, n] of [["b", 1], ["d", 3], ["c", 2], ["a", 0]] as const) b.push(x, n);
  const order = (l: FreeList<string>) => Array.from({ length: l.length }, () => l.pop()).join("");
  if (order(a) !== "abcd" || order(b) !== "abcd") throw new Error("free lists must pop oldest first");
  if (a.pop() !== undefined) throw new Error("an empty free list pops undefined");
});
