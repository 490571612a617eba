/**
 * `deno task info`: what WebGPU adapter Deno finds, its features and the limits the engine gets.
 * Run it first when something GPU-related fails.
 */
import { initGpu, NoAdapterError } from "../src/gpu/device.ts";
import { idlePollFor } from "../src/gpu/idle_poll.ts";
import { defineCli, runCli } from "../src/util/cli.ts";

const cli = defineCli({
  name: "deno task info",
  description:
    "Prints the WebGPU adapter Deno finds, its features and the device limits the engine runs with.",
  config: false,
  flags: {
    json: { type: "boolean", default: false, description: "Print one JSON object instead of text." },
  },
});

const opts = runCli(cli);

// Mesa's Vulkan driver complains on stderr when XDG_RUNTIME_DIR is unset; it is not used for compute.
if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");

let ctx;
try {
  ctx = await initGpu();
} catch (e) {
  if (e instanceof NoAdapterError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}

const info = ctx.adapter.info;
const features = [...ctx.adapter.features].sort();
const limits: Record<string, number> = {};
for (const k in ctx.limits) {
  const v = (ctx.limits as unknown as Record<string, unknown>)[k];
  if (typeof v === "number") limits[k] = v;
}
// Without Vulkan, Deno falls back to OpenGL (llvmpipe through EGL), which lacks shader-f16.
const likelyGl = ctx.isFallback && !ctx.adapter.features.has("shader-f16");
// What the trainers' --poll_idle_cpus auto would do here: try the request, then drop it.
const poll = idlePollFor("auto", ctx.isFallback);
const idlePoll = { available: poll.active, reason: poll.reason };
poll.release();

if (opts.json) {
  console.log(JSON.stringify(
    {
      adapter: ctx.adapterName,
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallback: ctx.isFallback,
      hasF16: ctx.hasF16,
      idlePoll,
      deno: Deno.version,
      features,
      limits,
    },
    null,
    2,
  ));
} else {
  const kb = (n: number) => n >= 1 << 20 ? `${n} (${(n / (1 << 20)).toFixed(0)} MiB)` : String(n);
  console.log(`WebGPU adapter: ${ctx.adapterName}`);
  console.log(
    `  vendor ${info.vendor || "-"}, architecture ${info.architecture || "-"}, device ${info.device || "-"}`,
  );
  console.log(
    `  software adapter: ${ctx.isFallback ? "yes (CPU; kernels use register-blocked variants)" : "no (GPU)"}`,
  );
  console.log(`  shader-f16: ${ctx.hasF16 ? "yes" : "no"}`);
  console.log(
    `  idle-CPU polling while training (--poll_idle_cpus auto): ${
      idlePoll.available ? "yes" : `no (${idlePoll.reason})`
    }`,
  );
  if (likelyGl) {
    console.log(
      "  backend: probably the OpenGL fallback (no Vulkan driver found). For Vulkan on the CPU\n" +
        "  (lavapipe, with shader-f16) install: sudo apt-get install mesa-vulkan-drivers libvulkan1",
    );
  }
  console.log(`Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${Deno.build.target}`);
  console.log(`\nFeatures (${features.length}):`);
  for (const f of features) console.log(`  ${f}`);
  console.log(`\nDevice limits (${Object.keys(limits).length}):`);
  const w = Math.max(...Object.keys(limits).map((k) => k.length));
  for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(w)}  ${kb(v)}`);
}
