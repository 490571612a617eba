/**
 * The image trainer end to end on generated CIFAR-10-shaped binaries: a tiny CTM whose loss falls,
 * with metrics.json, plots and checkpoints written; resuming an interrupted run reproduces the
 * uninterrupted one; bad settings and missing data fail before training with clear messages; the
 * evaluations' test batches come from a fresh shuffle each time.
 */
import assert, { deepStrictEqual as assertEquals } from "node:assert";
import { join } from "../src/util/std.ts";
import { ImageConfigError, runImages } from "../tasks/image_classification/train.ts";
import { defaultImageConfig, type ImageConfig } from "../tasks/image_classification/config.ts";
import { openImageData } from "../tasks/image_classification/data.ts";
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

Deno.test("image data: each evaluation draws a fresh shuffle of a class-sorted test split", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCifar(dir, 8, 2);
    // A test split stored class by class (as ImageNet's folders are): 3 classes × 8 images.
    const rec = new Uint8Array(24 * 3073);
    for (let i = 0; i < 24; i++) rec[i * 3073] = Math.floor(i / 8);
    await Deno.writeFile(join(dir, "cifar-10-batches-bin", "test_batch.bin"), rec);
    const c = {
      ...defaultImageConfig("cifar10"),
      ...tiny(dir, join(dir, "run")),
      n_test_batches: 1,
    } as ImageConfig;
    const data = await openImageData(c);
    try {
      const draw = async (iteration: number) => {
        const idx: number[] = [], labels = new Set<number>();
        for await (const b of data.testBatches(iteration)) {
          idx.push(...b.indices);
          b.labels.forEach((l) => labels.add(l));
        }
        return { idx, labels };
      };
      const a = await draw(12), again = await draw(12), b = await draw(24);
      assertEquals(a.idx.length, 8);
      assert(
        a.labels.size >= 2,
        `one batch of 8 from a sorted split holds several classes: ${[...a.labels]}`,
      );
      assertEquals(again.idx, a.idx);
      assert(b.idx.join() !== a.idx.join(), "another evaluation draws other images");
      const all = await (async () => {
        const d = await openImageData({ ...c, n_test_batches: 0 });
        try {
          const seen: number[] = [];
          for await (const x of d.testBatches(5)) seen.push(...x.indices);
          return seen;
        } finally {
          d.close();
        }
      })();
      assertEquals([...all].sort((x, y) => x - y), Array.from({ length: 24 }, (_, i) => i));
    } finally {
      data.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
