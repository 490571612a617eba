/**
 * `deno task analyse:images`: the readout maths (instant / most certain / average logits /
 * certainty-weighted top-k accuracy, certainty-threshold fractions, calibration bins) against a
 * hand-computed host example; and end to end on a tiny CTM trained for a few steps on generated
 * CIFAR-shaped data: the analysis agrees with the trainer's own test metrics, writes every figure
 * with sensible sizes and one GIF frame per tick (also with more inference ticks than trained), and
 * fails clearly on a missing run, checkpoint or sample.
 */
import assert from "node:assert/strict";
import omggif from "omggif";
import { readPng } from "../src/plot/mod.ts";
import { join } from "../src/util/std.ts";
import { analyseImages, ImageAnalysisError, main } from "../tasks/image_classification/analysis.ts";
import {
  calibrationCurves,
  certaintyThresholds,
  type ImageEval,
  mostCertainTick,
  rankOf,
  readoutAccuracy,
  readoutScores,
} from "../tasks/image_classification/readouts.ts";
import type { ImageMetricsFile } from "../tasks/image_classification/train.ts";
import { runImages } from "../tasks/image_classification/train.ts";
import { gpuTest } from "./helpers.ts";
import { makeCifar, tinyImageConfig } from "./image_fixtures.ts";

interface GifReader {
  width: number;
  height: number;
  numFrames(): number;
  decodeAndBlitFrameRGBA(i: number, out: Uint8Array): void;
}
const GifReaderCtor = (omggif as unknown as { GifReader: new (b: Uint8Array) => GifReader }).GifReader;

/** Two images, three classes, three ticks: logits per tick `[c0, c1, c2]` and certainty. */
function handExample(): ImageEval {
  const ticks = [
    // image 0, true class 2
    [[2, 1, 0], [0, 1, 3], [1, 0, 0.5]],
    // image 1, true class 1
    [[0, 1, 0], [3, 0, 0], [0, 2, 1]],
  ];
  const cert = [[0.5, 0.2, 0.4], [0.1, 0.9, 0.3]];
  const N = 2, C = 3, T = 3;
  const logits = new Float32Array(N * C * T), certainties = new Float32Array(N * 2 * T);
  for (let n = 0; n < N; n++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) logits[(n * C + c) * T + t] = ticks[n][t][c];
      certainties[(n * 2 + 1) * T + t] = cert[n][t];
      certainties[(n * 2) * T + t] = 1 - cert[n][t];
    }
  }
  return { n: N, classes: C, ticks: T, logits, certainties, labels: Int32Array.from([2, 1]) };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-6) => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const ok = (Number.isNaN(a[i]) && Number.isNaN(b[i])) || Math.abs(a[i] - b[i]) <= tol;
    assert.ok(ok, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
};

Deno.test("image analysis: readout scores and top-k accuracy per tick match the hand computation", () => {
  const e = handExample();
  // Most certain tick of image 0 stays 0 (0.5 > 0.2, 0.4); of image 1 it moves to 1 at tick 1.
  assert.deepEqual([0, 1, 2].map((t) => mostCertainTick(e, 0, t)), [0, 0, 0]);
  assert.deepEqual([0, 1, 2].map((t) => mostCertainTick(e, 1, t)), [0, 1, 1]);
  close(readoutScores(e, "instant", 0, 1), [0, 1, 3], "instant");
  close(readoutScores(e, "most certain", 1, 2), [3, 0, 0], "most certain");
  close(readoutScores(e, "average logits", 0, 2), [1, 2 / 3, 3.5 / 3], "average");
  close(readoutScores(e, "certainty-weighted logits", 0, 2), [1.4 / 1.1, 0.7 / 1.1, 0.8 / 1.1], "weighted");
  // Ties rank the lower class index first.
  assert.equal(rankOf([1, 1, 0], 1), 1);
  assert.equal(rankOf([1, 1, 0], 0), 0);
  assert.equal(rankOf([3, 0, 0], 2), 2);

  const acc = readoutAccuracy(e, 2);
  close(acc["instant"].top1, [0.5, 0.5, 0.5], "instant top-1");
  close(acc["instant"].topk, [0.5, 1, 1], "instant top-2");
  close(acc["most certain"].top1, [0.5, 0, 0], "most certain top-1");
  close(acc["most certain"].topk, [0.5, 0.5, 0.5], "most certain top-2");
  close(acc["average logits"].top1, [0.5, 0.5, 0.5], "average top-1");
  close(acc["average logits"].topk, [0.5, 1, 1], "average top-2");
  close(acc["certainty-weighted logits"].top1, [0.5, 0, 0], "weighted top-1");
  close(acc["certainty-weighted logits"].topk, [0.5, 0.5, 1], "weighted top-2");
  // The running-sum pass agrees with scoring every (image, tick) from scratch.
  const k1 = readoutAccuracy(e, 1);
  for (const r of ["instant", "most certain", "average logits", "certainty-weighted logits"] as const) {
    const brute = [0, 1, 2].map((t) =>
      [0, 1].filter((n) => rankOf(readoutScores(e, r, n, t), e.labels[n]) === 0).length / 2
    );
    close(k1[r].top1, brute, `${r} brute force`);
    close(k1[r].topk, brute, `${r} top-1 as top-k`);
  }
});

Deno.test("image analysis: certainty-threshold fractions and calibration bins match the hand computation", () => {
  const e = handExample();
  const [lo, hi] = certaintyThresholds(e, [0.25, 0.5]);
  close(lo.correct, [0, 0, 0.5], "≥0.25 correct");
  close(lo.incorrect, [0.5, 0.5, 0.5], "≥0.25 incorrect");
  close(hi.correct, [0, 0, 0], "≥0.5 correct");
  close(hi.incorrect, [0.5, 0.5, 0], "≥0.5 incorrect");

  const softmax = (l: number[]) => {
    const z = l.reduce((s, v) => s + Math.exp(v), 0);
    return l.map((v) => Math.exp(v) / z);
  };
  const [c0, c2] = calibrationCurves(e, [0, 2], 2);
  // Tick 1: image 0 predicts class 0 (wrong), image 1 class 1 (right); both above 0.5.
  const p00 = softmax([2, 1, 0])[0], p10 = softmax([0, 1, 0])[1];
  assert.deepEqual(c0.count, [0, 2]);
  close(c0.confidence, [NaN, (p00 + p10) / 2], "tick 1 confidence");
  close(c0.accuracy, [NaN, 0.5], "tick 1 accuracy");
  close([c0.ece], [Math.abs(0.5 - (p00 + p10) / 2)], "tick 1 ECE");
  // Tick 3: mean probabilities over the three ticks.
  const mean = (rows: number[][]) =>
    [0, 1, 2].map((c) => rows.reduce((s, r) => s + softmax(r)[c], 0) / rows.length);
  const m0 = mean([[2, 1, 0], [0, 1, 3], [1, 0, 0.5]]), m1 = mean([[0, 1, 0], [3, 0, 0], [0, 2, 1]]);
  const conf = [Math.max(...m0), Math.max(...m1)];
  const right = [m0.indexOf(conf[0]) === 2, m1.indexOf(conf[1]) === 1].map(Number);
  const bin = conf.map((v) => Math.min(1, Math.floor(v * 2)));
  for (let b = 0; b < 2; b++) {
    const inBin = [0, 1].filter((n) => bin[n] === b);
    assert.equal(c2.count[b], inBin.length, `tick 3 bin ${b} count`);
    if (!inBin.length) continue;
    close([c2.confidence[b]], [inBin.reduce((s, n) => s + conf[n], 0) / inBin.length], `tick 3 conf ${b}`);
    close([c2.accuracy[b]], [inBin.reduce((s, n) => s + right[n], 0) / inBin.length], `tick 3 acc ${b}`);
  }
  // A confidence of exactly 1 falls into the last bin.
  const sure: ImageEval = {
    ...e,
    n: 1,
    ticks: 1,
    logits: Float32Array.from([100, 0, 0]),
    labels: Int32Array.of(0),
  };
  assert.deepEqual(calibrationCurves(sure, [0], 4)[0].count, [0, 0, 0, 1]);
});

gpuTest("image analysis: a tiny trained CTM is analysed end to end", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCifar(dir, 16, 3);
    const runDir = join(dir, "run");
    const trained = await runImages(
      {
        ...tinyImageConfig(dir, runDir),
        training_iterations: 2,
        warmup_steps: 1,
        save_every: 2,
        track_every: 2,
        n_test_batches: 1,
        log_every: 1,
        plot: false,
      },
      { log: () => {}, handleSigint: false },
    );
    trained.dispose();
    const quiet = { log: () => {}, print: () => {} };

    // One test batch at the trained T: the "instant" and "most certain" readouts are the trainer's
    // per-tick and most-certain test accuracy of the same checkpoint and batch.
    const first = await main(["--log_dir", runDir, "--n_batches", "1", "--samples", ""], quiet);
    assert.ok(first);
    const metrics: ImageMetricsFile = JSON.parse(await Deno.readTextFile(join(runDir, "metrics.json")));
    const ev = metrics.histories.eval;
    const at = ev.iters.indexOf(2);
    assert.ok(at >= 0, "evaluation at iteration 2");
    const T = 3;
    assert.equal(first.eval.ticks, T);
    assert.equal(first.eval.n, 8);
    close(first.accuracy["instant"].top1, ev.values.test_top1_per_tick[at] as number[], "per-tick top-1");
    close([first.accuracy["most certain"].top1[T - 1]], [ev.values.test_top1[at] as number], "most certain");
    close(
      [first.accuracy["most certain"].topk[T - 1]],
      [ev.values.test_top5[at] as number],
      "most certain top-5",
    );

    // Two batches, two animated images (one per batch), more ticks than trained, own output dir.
    const out = join(dir, "figs");
    const r = await analyseImages({
      logDir: runDir,
      nBatches: 2,
      samples: [1, 9],
      outputDir: out,
      inferenceIterations: 4,
    });
    assert.equal(r.eval.n, 16);
    assert.equal(r.eval.ticks, 4);
    assert.equal(r.eval.classes, 10);
    assert.equal(r.checkpoint.iteration, 2);
    const names = [
      "accuracy_vs_ticks.png",
      "certainty_threshold.png",
      "calibration.png",
      "attention_1.gif",
      "attention_9.gif",
      "analysis.json",
    ];
    assert.deepEqual(r.files.map((f) => f.slice(out.length + 1)).sort(), [...names].sort());
    for (
      const [name, minW, minH] of [
        ["accuracy_vs_ticks", 1000, 400],
        ["certainty_threshold", 1000, 300],
        ["calibration", 700, 500],
      ] as const
    ) {
      const img = await readPng(join(out, `${name}.png`));
      assert.ok(img.width >= minW && img.width < 3000, `${name}.png width ${img.width}`);
      assert.ok(img.height >= minH && img.height < 2000, `${name}.png height ${img.height}`);
    }
    for (const i of [1, 9]) {
      const gif = new GifReaderCtor(await Deno.readFile(join(out, `attention_${i}.gif`)));
      assert.equal(gif.numFrames(), 4, `attention_${i}.gif frames`);
      assert.ok(gif.width >= 600 && gif.width < 3000 && gif.height >= 300 && gif.height < 2000);
      const f0 = new Uint8Array(gif.width * gif.height * 4), f3 = new Uint8Array(f0.length);
      gif.decodeAndBlitFrameRGBA(0, f0);
      gif.decodeAndBlitFrameRGBA(3, f3);
      assert.ok(f0.some((v, k) => v !== f3[k]), "frames change over ticks");
    }
    const summary = JSON.parse(await Deno.readTextFile(join(out, "analysis.json")));
    assert.equal(summary.ticks, 4);
    assert.equal(summary.trained_ticks, 3);
    assert.equal(summary.accuracy.instant.top1.length, 4);

    // Clear errors.
    await assert.rejects(
      () => analyseImages({ logDir: join(dir, "nowhere") }),
      (e) => e instanceof ImageAnalysisError && e.message.includes("does not exist"),
    );
    await assert.rejects(
      () => analyseImages({ logDir: runDir, checkpoint: 3 }),
      (e) => e instanceof ImageAnalysisError && e.message.includes("available: 2"),
    );
    await assert.rejects(
      () => analyseImages({ logDir: runDir, nBatches: 1, samples: [8], outputDir: out }),
      (e) => e instanceof ImageAnalysisError && e.message.includes("only 8 test images"),
    );
    await assert.rejects(() => main(["--log_dir", runDir, "--samples", "a"], quiet), /non-negative integer/);
    let help = "";
    assert.equal(await main(["--help"], { print: (l) => (help += l) }), null);
    assert.ok(help.includes("--inference_iterations"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
