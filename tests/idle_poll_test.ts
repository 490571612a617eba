/**
 * Idle-CPU polling (`src/gpu/idle_poll.ts`): the request written and held, refusals that say why,
 * the `auto`/`on`/`off` modes, and the training loop holding it only while it runs (checked on the
 * kernel's own PM QoS file where this process may read it).
 */
import { holdIdlePoll, idlePollFor } from "../src/gpu/idle_poll.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mean } from "../src/ops/reduce.ts";
import { mul } from "../src/ops/arith.ts";
import { Linear } from "../src/nn/linear.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { train } from "../src/train/loop.ts";
import { gpuTest } from "./helpers.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

Deno.test("holdIdlePoll writes a 0 µs latency and keeps the file open until release", () => {
  const path = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(path, new Uint8Array([9, 9, 9, 9, 9, 9]));
    const hold = holdIdlePoll(path);
    assert(hold.active && hold.reason === "", `expected an active hold, got ${hold.reason}`);
    const bytes = Deno.readFileSync(path);
    assert(new Int32Array(bytes.slice(0, 4).buffer)[0] === 0, `latency written: ${bytes.slice(0, 4)}`);
    hold.release();
    assert(!hold.active, "released hold still active");
    hold.release(); // idempotent
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("holdIdlePoll refuses with a reason instead of throwing", () => {
  const hold = holdIdlePoll("/nonexistent-dir/cpu_dma_latency");
  assert(!hold.active, "hold on a missing file is active");
  assert(/does not exist/.test(hold.reason), `reason: ${hold.reason}`);
  hold.release();
});

Deno.test("idlePollFor: off never holds, auto only on a CPU adapter, on always tries", () => {
  const path = Deno.makeTempFileSync();
  try {
    assert(!idlePollFor("off", true, path).active, "off held");
    const gpuAuto = idlePollFor("auto", false, path);
    assert(!gpuAuto.active && /not a CPU adapter/.test(gpuAuto.reason), `auto on a GPU: ${gpuAuto.reason}`);
    for (const [mode, fallback] of [["auto", true], ["on", false]] as const) {
      const h = idlePollFor(mode, fallback, path);
      assert(h.active, `${mode} (fallback ${fallback}) did not hold: ${h.reason}`);
      h.release();
    }
  } finally {
    Deno.removeSync(path);
  }
});

/** The kernel's current CPU latency target, or null where this process may not read it. */
function qosNow(): number | null {
  try {
    const b = Deno.readFileSync("/dev/cpu_dma_latency");
    return new Int32Array(b.slice(0, 4).buffer)[0];
  } catch {
    return null;
  }
}

gpuTest("train holds the request only while it runs (pollIdleCpus on/off)", async () => {
  for (const mode of ["on", "off"] as const) {
    const model = new Linear(1, { inFeatures: 2 });
    const optimizer = new AdamW(model.parameters(), { lr: 0.01 });
    const logs: string[] = [];
    const during: (number | null)[] = [];
    const before = qosNow();
    await train({
      model,
      optimizer,
      steps: 3,
      progress: false,
      handleSigint: false,
      pollIdleCpus: mode,
      log: (m) => logs.push(m),
      trainStep: () => {
        during.push(qosNow());
        const y = model.forward(fromArray([1, 2, 3, 4], [2, 2]));
        return { loss: mean(mul(y, y)) };
      },
    });
    const after = qosNow();
    const polled = logs.some((m) => /idle CPU cores poll while training/.test(m));
    const refused = logs.some((m) => /cannot be kept polling/.test(m));
    if (mode === "off") {
      assert(!polled && !refused, `off logged: ${logs.join(" | ")}`);
      if (before !== null && before !== 0) {
        assert(during.every((v) => v === before), `off changed QoS: ${during}`);
      }
    } else {
      assert(polled !== refused, `on: exactly one of held/refused expected, logs: ${logs.join(" | ")}`);
      if (before !== null && before !== 0) {
        assert(polled, "on: /dev/cpu_dma_latency is readable here but the hold was refused");
        assert(during.every((v) => v === 0), `on: latency during the run ${during}`);
        assert(after === before, `on: latency after the run ${after}, before ${before}`);
      }
    }
    model.dispose();
    optimizer.zeroGrad();
  }
});
