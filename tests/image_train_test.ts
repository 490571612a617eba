/**
 * The image trainer end to end on generated CIFAR-10-shaped binaries: a tiny CTM whose loss falls,
 * with metrics.json, plots and checkpoints written; resuming an interrupted run reproduces the
 * uninterrupted one; bad settings and missing data fail before training with clear messages.
 */
import assert, { deepStrictEqual as assertEquals } from "node:assert";
import { join } from "../src/util/std.ts";
import { ImageConfigError, runImages } from "../tasks/image_classification/train.ts";
import { gpuTest } from "./helpers.ts";
import { makeCifar, tinyImageConfig as tiny } from "./image_fixtures.ts";

gpuTest(
  "image trainer: a tiny CTM learns generated CIFAR-shaped data, writes metrics, plots, checkpoints",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await makeCifar(dir, 16, 1);
      const r = await runImages(tiny(dir, join(dir, "run")), { log: () => {}, handleSigint: false });
      try {
        const loss = r.metrics.histories.train.values.loss as number[];
        assert(loss.length >= 4, "training windows recorded");
        const first = loss[0], last = loss[loss.length - 1];
        assert(last < first, `loss fell: ${first} → ${last}`);
        const ev = r.metrics.histories.eval;
        assertEquals(ev.iters, [0, 12, 24]);
        assertEquals((ev.values.test_top1_per_tick[0] as number[]).length, 3);
        for (const f of ["metrics.json", "args.yaml", "losses.png", "accuracies.png", "checkpoint_24.json"]) {
          await Deno.stat(join(dir, "run", f));
        }
      } finally {
        r.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("image trainer: resuming after an interruption continues the same run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCifar(dir, 16, 2);
    const base = { ...tiny(dir, join(dir, "a")), training_iterations: 12, track_every: 100, save_every: 6 };
    const full = await runImages(base, { log: () => {}, handleSigint: false });
    const want = full.metrics.histories.train.values.loss as number[];
    full.dispose();
    const stop = new AbortController();
    const part = { ...base, log_dir: join(dir, "b") };
    let seen = 0;
    const first = await runImages(part, {
      log: (m) => void (m.includes("saved") && ++seen >= 1 && stop.abort()),
      signal: stop.signal,
      handleSigint: false,
    });
    first.dispose();
    const resumed = await runImages({ ...part, reload: true }, { log: () => {}, handleSigint: false });
    const got = resumed.metrics.histories.train.values.loss as number[];
    resumed.dispose();
    assertEquals(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assert(
        Math.abs(got[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])),
        `window ${i}: ${got[i]} vs ${want[i]}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("image trainer: bad settings and missing data fail before training", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => runImages({ ...tiny(dir, join(dir, "x")), backbone_type: "resnet19-2" }, { log: () => {} }),
      (e) => e instanceof ImageConfigError && e.message.includes("unknown backbone_type"),
    );
    await assert.rejects(
      () => runImages(tiny(join(dir, "nowhere"), join(dir, "x")), { log: () => {} }),
      (e) => e instanceof Error && e.message.includes("cifar-10-binary.tar.gz"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
