/**
 * `deno task analyse:parity` on a tiny CTM: checkpoints written by the test (the trainer's
 * format: numbered checkpoints holding the parity config and histories) are analysed, every
 * expected file is written, PNGs decode to sensible sizes and per-tick GIFs have one frame per
 * tick; the host statistics (accuracy per tick, most certain tick, thinking time) are checked on
 * hand-made logits; a missing log directory or one without checkpoints gives a clear error, also
 * through the command line.
 */
import assert from "node:assert/strict";
import { gpuTest, Rng } from "./helpers.ts";
import omggif from "omggif";
import { Ctm } from "../src/models/ctm.ts";
import { evenlySpaced, readPng } from "../src/plot/mod.ts";
import { saveCheckpoint } from "../src/train/checkpoint.ts";
import { appendHistory, emptyHistories } from "../src/train/metrics.ts";
import { join } from "../src/util/std.ts";
import { ctmOptionsFor, resolveParityConfig } from "../tasks/parity/config.ts";
import { analyseParity, NoCheckpointError, parityStats } from "../tasks/parity/analysis.ts";
import { runParity } from "../tasks/parity/train.ts";

interface GifReader {
  width: number;
  height: number;
  numFrames(): number;
}
const GifReaderCtor = (omggif as unknown as { GifReader: new (b: Uint8Array) => GifReader }).GifReader;

const L = 16, T = 5;
const CONFIG = {
  parity_sequence_length: L,
  d_model: 32,
  d_input: 8,
  heads: 2,
  n_synch_out: 6,
  n_synch_action: 6,
  iterations: T,
  memory_length: 3,
  memory_hidden_dims: 2,
  batch_size_test: 8,
  training_iterations: 20,
};

/** Three checkpoints (0, 10, 20) of one tiny CTM run, with the histories `deno task train:parity` records. */
async function writeRun(dir: string): Promise<void> {
  const config = resolveParityConfig(CONFIG);
  const h = emptyHistories();
  for (const [k, it] of [0, 10, 20].entries()) {
    const perTick = Array.from({ length: T }, (_, t) => 0.5 + 0.02 * k * t);
    if (it > 0) {
      appendHistory(h.train, it, {
        loss: 0.7 - 0.1 * k,
        acc: 0.5 + 0.1 * k,
        full_acc: 0.05 * k,
        acc_per_tick: perTick,
      });
    }
    appendHistory(h.eval, it, {
      test_loss: 0.72 - 0.1 * k,
      test_acc: 0.5 + 0.1 * k,
      test_full_acc: 0.05 * k,
      test_acc_per_tick: perTick,
    });
    // Fresh weights per checkpoint, so that the checkpoints differ.
    const model = new Ctm({ ...ctmOptionsFor(config), rng: new Rng(3 + k) });
    await saveCheckpoint(dir, { model, iteration: it, histories: h, config });
    model.dispose();
  }
}

gpuTest("parity analysis: writes every figure; PNG sizes; one GIF frame per tick", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parity_analysis_" });
  try {
    await writeRun(dir);
    const out = join(dir, "figs");
    const t0 = performance.now();
    const files = await analyseParity({ logDir: dir, out, batchSizeTest: 8, nSamples: 2, maxCheckpoints: 3 });
    const secs = (performance.now() - t0) / 1000;
    const names = files.map((f) => f.slice(out.length + 1)).sort();
    const expected = [
      "losses.png",
      "accuracies.png",
      "accuracies_full_sequence.png",
      "train_acc_per_tick_over_training.png",
      "test_acc_per_tick_over_training.png",
      "accuracy_vs_tick.png",
      "thinking_time_histogram.png",
      "accuracy_vs_thinking_time.png",
      "thinking_time_vs_seq_element.png",
      "sample_0.gif",
      "sample_0_last_tick.png",
      "attention_sample_0.gif",
      "sample_1.gif",
      "sample_1_last_tick.png",
      "attention_sample_1.gif",
      "neural_dynamics.png",
      "accuracy_vs_seq_element.png",
      "accuracy_heatmap.png",
      "tick_accuracy_heatmap.png",
      "accuracy_heatmap.gif",
      "analysis.json",
    ].sort();
    assert.deepEqual(names, expected);
    for (const f of files) assert.ok((await Deno.stat(f)).size > 100, `${f} is empty`);
    for (const f of files.filter((f) => f.endsWith(".png"))) {
      const img = await readPng(f);
      assert.ok(
        img.width >= 200 && img.width <= 2400 && img.height >= 150 && img.height <= 2400,
        `${f}: ${img.width}x${img.height}`,
      );
    }
    const curve = await readPng(join(out, "accuracy_vs_tick.png"));
    assert.deepEqual([curve.width, curve.height], [720, 420]);
    for (const name of ["sample_0", "sample_1", "attention_sample_0", "attention_sample_1"]) {
      const gif = new GifReaderCtor(await Deno.readFile(join(out, `${name}.gif`)));
      assert.equal(gif.numFrames(), T, `${name}.gif frames`);
    }
    const last = await readPng(join(out, "sample_0_last_tick.png"));
    const gif0 = new GifReaderCtor(await Deno.readFile(join(out, "sample_0.gif")));
    assert.deepEqual([gif0.width, gif0.height], [last.width, last.height]);
    assert.equal(new GifReaderCtor(await Deno.readFile(join(out, "accuracy_heatmap.gif"))).numFrames(), 3);
    const summary = JSON.parse(await Deno.readTextFile(join(out, "analysis.json")));
    assert.equal(summary.iteration, 20);
    assert.equal(summary.accuracy_per_tick.length, T);
    assert.equal(summary.accuracy_per_position.length, L);
    assert.deepEqual(summary.checkpoints.map((c: { iteration: number }) => c.iteration), [0, 10, 20]);
    const hist = summary.thinking_time_histogram as number[];
    assert.ok(Math.abs(hist.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    console.log(`analysis of a tiny run: ${files.length} files in ${secs.toFixed(1)} s`);

    // An earlier checkpoint, no samples: only that checkpoint and those before it.
    const out2 = join(dir, "figs10");
    const files2 = await analyseParity({
      logDir: dir,
      out: out2,
      checkpoint: 10,
      batchSizeTest: 4,
      nSamples: 0,
    });
    const s2 = JSON.parse(await Deno.readTextFile(join(out2, "analysis.json")));
    assert.equal(s2.iteration, 10);
    assert.deepEqual(s2.checkpoints.map((c: { iteration: number }) => c.iteration), [0, 10]);
    assert.ok(!files2.some((f) => f.includes("sample_")));
    await assert.rejects(
      () => analyseParity({ logDir: dir, out: out2, checkpoint: 7 }),
      /no complete checkpoint 7 .*available: 0, 10, 20/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const model_type of ["ctm", "lstm"] as const) {
  gpuTest(`parity analysis of a tiny \`deno task train:parity\` run (${model_type})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: `parity_analysis_${model_type}_` });
    try {
      const T3 = 3;
      const run = await runParity({
        model_type,
        parity_sequence_length: 4,
        d_model: model_type === "ctm" ? 16 : 8,
        d_input: 4,
        heads: 2,
        ...(model_type === "ctm"
          ? { n_synch_out: 4, n_synch_action: 4, memory_length: 2, memory_hidden_dims: 2 }
          : {}),
        iterations: T3,
        batch_size: 4,
        batch_size_test: 4,
        n_test_batches: 1,
        training_iterations: 4,
        track_every: 2,
        save_every: 2,
        log_dir: dir,
        progress: false,
      }, { log: () => {}, handleSigint: false });
      run.dispose();
      const out = join(dir, "analysis");
      const files = await analyseParity({ logDir: dir, batchSizeTest: 4, nSamples: 1 });
      const names = files.map((f) => f.slice(out.length + 1));
      for (
        const n of [
          "losses.png",
          "accuracies.png",
          "accuracies_full_sequence.png",
          "test_acc_per_tick_over_training.png",
          "accuracy_vs_tick.png",
          "thinking_time_histogram.png",
          "sample_0.gif",
          "attention_sample_0.gif",
          "neural_dynamics.png",
          "accuracy_heatmap.png",
          "accuracy_heatmap.gif",
          "analysis.json",
        ]
      ) assert.ok(names.includes(n), `${n} missing from ${names.join(", ")}`);
      assert.equal(new GifReaderCtor(await Deno.readFile(join(out, "sample_0.gif"))).numFrames(), T3);
      assert.equal(
        new GifReaderCtor(await Deno.readFile(join(out, "attention_sample_0.gif"))).numFrames(),
        T3,
      );
      const summary = JSON.parse(await Deno.readTextFile(join(out, "analysis.json")));
      assert.equal(summary.model_type, model_type);
      assert.equal(summary.tick_choice, model_type === "ctm" ? "most certain" : "last");
      assert.deepEqual(summary.checkpoints.map((c: { iteration: number }) => c.iteration), [2, 4]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

gpuTest("parity analysis: a missing log dir or one without checkpoints is a clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parity_analysis_empty_" });
  try {
    await assert.rejects(
      () => analyseParity({ logDir: join(dir, "nope") }),
      (e: Error) =>
        e instanceof NoCheckpointError && /does not exist/.test(e.message) &&
        /deno task train:parity/.test(e.message),
    );
    await Deno.writeTextFile(join(dir, "checkpoint_5.json"), "{");
    await assert.rejects(
      () => analyseParity({ logDir: dir }),
      (e: Error) =>
        e instanceof NoCheckpointError && /no complete checkpoint/.test(e.message) &&
        /checkpoint_5/.test(e.message) && /train:parity/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parity analysis: the command line reports a missing log dir and exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parity_analysis_cli_" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../tasks/parity/analysis.ts", import.meta.url).pathname,
        "--log-dir",
        join(dir, "missing"),
      ],
      env: { NO_COLOR: "1", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 1, err);
    assert.match(err, /log dir .*missing does not exist/);
    assert.match(err, /deno task train:parity .*--log_dir/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parity analysis: statistics on hand-made logits", () => {
  // B = 2 sequences, L = 2 positions, T = 3 ticks; logits [B, L, 2, T].
  const B = 2, Ln = 2, Tn = 3;
  const logits = new Float32Array(B * Ln * 2 * Tn);
  const set = (b: number, l: number, t: number, odd: number) => {
    logits[((b * Ln + l) * 2) * Tn + t] = 0;
    logits[((b * Ln + l) * 2 + 1) * Tn + t] = odd;
  };
  // Sequence 0: targets [1, 0]; position 0 right at ticks 1 and 2, position 1 always right.
  [-1, 2, 0.5].forEach((v, t) => set(0, 0, t, v));
  [-3, -1, -0.2].forEach((v, t) => set(0, 1, t, v));
  // Sequence 1: targets [0, 0]; position 0 right at ticks 1 and 2, position 1 always wrong.
  [1, -4, -1].forEach((v, t) => set(1, 0, t, v));
  [0.5, 1, 3].forEach((v, t) => set(1, 1, t, v));
  const certainties = new Float32Array(B * 2 * Tn);
  [0.1, 0.9, 0.5].forEach((c, t) => (certainties[(0 * 2 + 1) * Tn + t] = c));
  [0.3, 0.2, 0.8].forEach((c, t) => (certainties[(1 * 2 + 1) * Tn + t] = c));
  const st = parityStats({
    batch: B,
    length: Ln,
    ticks: Tn,
    logits,
    certainties,
    targets: Int32Array.from([1, 0, 0, 0]),
  });
  assert.deepEqual(st.accuracyPerTick, [1 / 4, 3 / 4, 3 / 4]);
  assert.deepEqual(st.fullSequencePerTick, [0, 1 / 2, 1 / 2]);
  assert.deepEqual([...st.chosenTick], [1, 2]);
  assert.equal(st.accuracyAtTick, 3 / 4); // seq 0 at tick 1: both right; seq 1 at tick 2: one right
  assert.equal(st.fullSequenceAtTick, 1 / 2);
  assert.deepEqual(st.accuracyPerPosition, [1, 1 / 2]);
  // Thinking time: the tick of the largest |logit difference|.
  assert.deepEqual([...st.thinkingTime], [1, 0, 1, 2]);
  assert.deepEqual(st.thinkingTimeHistogram, [1 / 4, 2 / 4, 1 / 4]);
  assert.deepEqual(st.accuracyByThinkingTime, [1, 1, 0]);
  assert.deepEqual(st.thinkingTimePerPosition.mean, [2, 2]);
  // At the last tick instead (the plain LSTM's accuracy).
  const last = parityStats({
    batch: B,
    length: Ln,
    ticks: Tn,
    logits,
    certainties,
    targets: Int32Array.from([1, 0, 0, 0]),
  }, "last");
  assert.deepEqual([...last.chosenTick], [2, 2]);
  assert.equal(last.accuracyAtTick, 3 / 4);
  assert.deepEqual(last.accuracyPerPosition, [1, 1 / 2]);
  assert.equal(last.tickChoice, "last");
  const p = st.probOdd[0];
  assert.ok(Math.abs(p - 1 / (1 + Math.exp(1))) < 1e-6);
  const h = -(p * Math.log(p) + (1 - p) * Math.log(1 - p)) / Math.LN2;
  assert.ok(Math.abs(st.entropy[0] - h) < 1e-6);
});

Deno.test("parity analysis: evenly spaced checkpoints keep the first and the last", () => {
  assert.deepEqual(evenlySpaced(3, 16), [0, 1, 2]);
  assert.deepEqual(evenlySpaced(10, 4), [0, 3, 6, 9]);
  assert.deepEqual(evenlySpaced(5, 1), [4]);
});
