/**
 * Tests of the shared training loop and checkpoints: the loss falls, save → load restores
 * weights, optimizer, scheduler, clipper and RNG states exactly, an interrupted and resumed run
 * ends bit-identical to a straight one, damaged checkpoints are skipped or reported clearly, and
 * a model/config mismatch names the offending tensors and config keys.
 */
import { recorder } from "../src/gpu/recorder.ts";
import { eq, mul } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { crossEntropy } from "../src/ops/loss.ts";
import { getRngState, manualSeed } from "../src/ops/random.ts";
import { argmax, mean } from "../src/ops/reduce.ts";
import { softmax } from "../src/ops/softmax.ts";
import { stack } from "../src/ops/views.ts";
import { Sequential } from "../src/nn/containers.ts";
import { seedInit } from "../src/nn/init.ts";
import { Dropout, ReLU } from "../src/nn/layers.ts";
import { Linear } from "../src/nn/linear.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { QuantileClip } from "../src/optim/clip.ts";
import { WarmupCosineLR } from "../src/optim/schedulers.ts";
import { noGrad } from "../src/tensor/autograd.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import {
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  scanCheckpoints,
} from "../src/train/checkpoint.ts";
import { train, type TrainOptions } from "../src/train/loop.ts";
import { GpuMetrics } from "../src/train/metrics.ts";
import { resumeMode } from "../src/train/run_common.ts";
import { gpuTest, Rng } from "./helpers.ts";

const TEACHER = new Rng(99).uniformArray(12, -1, 1); // fixed [3, 4] labelling rule

/** Batch of step `step`: drawn from (seed, step), plus jitter from a host RNG the run checkpoints. */
function batch(seed: number, step: number, jitter: Rng, n = 32): { x: Tensor; y: Tensor } {
  const r = new Rng(seed * 100003 + step);
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    for (let j = 0; j < 4; j++) x[i * 4 + j] = r.uniform(-1, 1);
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let j = 0; j < 4; j++) s += TEACHER[c * 4 + j] * x[i * 4 + j];
      if (s > best) [best, y[i]] = [s, c];
    }
    x[i * 4] += 0.01 * jitter.normal();
  }
  return { x: fromArray(x, [n, 4]), y: fromArray(y, [n]) };
}

/** A complete run setup; `initSeed` and `rngSeed` vary the starting state (resumes overwrite it). */
function setup(hidden = 16, initSeed = 1, rngSeed = 5) {
  seedInit(initSeed);
  manualSeed(rngSeed);
  const model = new Sequential(
    new Linear(hidden, { inFeatures: 4 }),
    new ReLU(),
    new Dropout(0.1),
    new Linear(3, { inFeatures: hidden }),
  );
  const optimizer = new AdamW(model.parameters(), { lr: 0.03, weightDecay: 0.01 });
  const scheduler = new WarmupCosineLR(optimizer, { warmupSteps: 4, maxSteps: 60 });
  const clip = new QuantileClip(model.parameters(), { quantile: 0.9, historyLength: 16 });
  const jitter = new Rng(rngSeed + 17);
  const test = batch(7, 123456, new Rng(0), 128);
  const opts = {
    model,
    optimizer,
    scheduler,
    clip,
    rngs: { jitter },
    config: { hidden, lr: 0.03 },
    progress: false,
    handleSigint: false,
    trainStep: (step: number) => {
      const { x, y } = batch(1, step, jitter);
      const logits = model.forward(x);
      const metrics = { acc: mean(eq(argmax(logits, 1), y)), probs: mean(softmax(logits, 1), 0) };
      return { loss: crossEntropy(logits, y), metrics };
    },
    evaluate: async () => {
      const t = tidy(() =>
        noGrad(() => {
          model.eval();
          const logits = model.forward(test.x);
          return stack([crossEntropy(logits, test.y), mean(eq(argmax(logits, 1), test.y))]);
        })
      );
      const v = await t.toArray();
      t.dispose();
      return { test_loss: v[0], test_acc: v[1] };
    },
  } satisfies Partial<TrainOptions>;
  return { model, optimizer, scheduler, clip, jitter, opts };
}

type Run = ReturnType<typeof setup>;

async function arrays(m: Map<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of m) out[k] = Array.from(await t.toArray());
  return out;
}

/** Every piece of training state, on the host. */
async function snapshot(r: Run) {
  const opt = r.optimizer.stateDict();
  const clip = r.clip.stateDict();
  return JSON.stringify({
    weights: await arrays(r.model.stateDict()),
    optMeta: opt.meta,
    optTensors: await arrays(opt.tensors),
    clipMeta: clip.meta,
    clipTensors: await arrays(clip.tensors),
    scheduler: r.scheduler.stateDict(),
    gpuRng: getRngState(),
    jitter: r.jitter.state,
  });
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    const m = (e as Error).message;
    assert(pattern.test(m), `error '${m}' does not match ${pattern}`);
    return m;
  }
  throw new Error(`expected an error matching ${pattern}`);
}

function dispose(r: Run): void {
  r.model.dispose();
  r.optimizer.dispose();
  r.clip.dispose();
}

const tmp = () => Deno.makeTempDir({ prefix: "train_loop_test_" });

Deno.test("resumeMode: --reload resumes; --reload_model_only, alone or with --reload, loads only weights", () => {
  const m = (reload: boolean, only: boolean) => resumeMode({ reload, reload_model_only: only });
  const got = [m(false, false), m(true, false), m(false, true), m(true, true)];
  if (JSON.stringify(got) !== JSON.stringify([undefined, true, "modelOnly", "modelOnly"])) {
    throw new Error(`resumeMode: ${JSON.stringify(got)}`);
  }
});

gpuTest("GpuMetrics averages scalars and arrays over a window with one read", async () => {
  const m = new GpuMetrics(2);
  const got: unknown[] = [];
  for (const [a, b] of [[1, 2], [3, 4]]) {
    tidy(() => m.add({ loss: fromArray(a), v: fromArray([a, b]), n: fromArray(new Int32Array([b])) }));
  }
  await m.flush((v, steps) => got.push(v, steps));
  tidy(() => m.add({ loss: fromArray(10), v: fromArray([0, 0]), n: fromArray(new Int32Array([1])) }));
  await m.flush((v, steps) => got.push(v, steps));
  await m.drain();
  assert(
    JSON.stringify(got) ===
      JSON.stringify([{ loss: 2, v: [2, 3], n: [3] }, 2, { loss: 10, v: [0, 0], n: [1] }, 1]),
    `got ${JSON.stringify(got)}`,
  );
  assert(
    /keep its shape/.test((() => {
      try {
        tidy(() => m.add({ v: fromArray([1, 2, 3]) }));
      } catch (e) {
        return String(e);
      }
      return "";
    })()),
    "shape change not rejected",
  );
  m.dispose();
});

gpuTest("train: the loss falls, evaluation at 0/every/end, progress output", async () => {
  const r = setup();
  let text = "";
  const res = await train({
    ...r.opts,
    steps: 40,
    evalEvery: 20,
    logEvery: 10,
    progress: { write: (s) => (text += s), tty: false, label: "t" },
  });
  const loss = res.histories.train.values.loss as number[];
  assert(loss.length === 4 && res.histories.train.iters.join() === "10,20,30,40", "train history windows");
  assert(loss[3] < 0.6 * loss[0], `loss did not fall: ${loss}`);
  assert((res.histories.train.values.probs[0] as number[]).length === 3, "array metric kept");
  assert(res.histories.eval.iters.join() === "0,20,40", `eval points ${res.histories.eval.iters}`);
  const acc = res.histories.eval.values.test_acc as number[];
  assert(acc[2] > acc[0] && acc[2] > 0.8, `test accuracy ${acc}`);
  assert(/t done: 40\/40 steps/.test(text) && /loss \d/.test(text), `progress output: ${text}`);
  // Continuing the run (optimizer state now exists) leaves no tensor behind.
  const live = memoryStats().liveBuffers;
  await train({ ...r.opts, startStep: 40, steps: 50, logEvery: 3, evalEvery: 5 });
  assert(memoryStats().liveBuffers === live, `leak: ${live} → ${memoryStats().liveBuffers} live buffers`);
  dispose(r);
});

gpuTest(
  "train: interrupted + resumed run equals a straight run exactly; save/load restores all state",
  async () => {
    const [dirA, dirB] = [await tmp(), await tmp()];
    const common = { steps: 24, evalEvery: 6, logEvery: 4, saveEvery: 12 };
    // Straight run.
    const a = setup();
    const resA = await train({ ...a.opts, ...common, logDir: dirA });
    // Interrupted at step 12 (abort during the step: it finishes, then a checkpoint is written).
    const b = setup();
    const ac = new AbortController();
    const stepB = b.opts.trainStep;
    const resB1 = await train({
      ...b.opts,
      ...common,
      logDir: dirB,
      signal: ac.signal,
      trainStep: (s) => {
        if (s === 11) ac.abort();
        return stepB(s);
      },
    });
    assert(resB1.interrupted && resB1.step === 12, `interrupted at ${resB1.step}`);
    assert((await latestCheckpoint(dirB))?.iteration === 12, "checkpoint_12 written");
    dispose(b);
    // A new run with other initial weights and RNG states resumes and finishes.
    const c = setup(16, 77, 1234);
    let resumed = -1;
    const resC = await train({
      ...c.opts,
      ...common,
      logDir: dirB,
      resume: true,
      onResume: (k) => (resumed = k.iteration),
    });
    assert(resumed === 12 && resC.startStep === 12 && resC.step === 24, "resumed at 12");
    assert(JSON.stringify(resC.histories) === JSON.stringify(resA.histories), "histories differ");
    assert(await snapshot(c) === await snapshot(a), "final state differs from the straight run");

    // save → load into a fresh setup restores every piece of state.
    const before = await snapshot(a);
    const path = await saveCheckpoint(dirA, {
      model: a.model,
      optimizer: a.optimizer,
      scheduler: a.scheduler,
      clip: a.clip,
      rngs: { jitter: a.jitter },
      iteration: 99,
      histories: resA.histories,
      config: { hidden: 16 },
      extra: { note: "x" },
    });
    const d = setup(16, 3, 3);
    const ck = await loadCheckpoint(dirA, { ...d.opts, config: { hidden: 16 } });
    assert(
      ck.path === path && ck.iteration === 99 && (ck.extra as { note: string }).note === "x",
      "loaded meta",
    );
    assert(JSON.stringify(ck.histories) === JSON.stringify(resA.histories), "loaded histories");
    assert(await snapshot(d) === before, "state not restored exactly");
    for (const r of [a, c, d]) dispose(r);
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  },
);

gpuTest("checkpoints: damaged ones are skipped by latestCheckpoint and reported clearly", async () => {
  const dir = await tmp();
  const r = setup(8);
  for (const it of [1, 2, 3, 4]) await saveCheckpoint(dir, { ...r.opts, iteration: it });
  // Truncated weights.
  const w3 = `${dir}/checkpoint_3.safetensors`;
  const bytes = await Deno.readFile(w3);
  await Deno.writeFile(w3, bytes.subarray(0, bytes.length - 10));
  // Damaged JSON, missing JSON (interrupted save), corrupted header of the same size.
  await Deno.writeTextFile(`${dir}/checkpoint_4.json`, '{"format": "ctm-webg');
  await Deno.remove(`${dir}/checkpoint_2.json`);
  const scan = await scanCheckpoints(dir);
  assert(scan.complete.map((c) => c.iteration).join() === "1", `complete: ${JSON.stringify(scan.complete)}`);
  assert(scan.skipped.length === 2, "two skipped (a checkpoint without JSON is not listed)");
  assert((await latestCheckpoint(dir))?.iteration === 1, "latest is 1");
  await rejects(
    loadCheckpoint(`${dir}/checkpoint_3`, r.opts),
    /checkpoint_3\.safetensors has \d+ bytes.*truncated/,
  );
  await rejects(loadCheckpoint(`${dir}/checkpoint_4.json`, r.opts), /not valid JSON.*damaged/);
  await rejects(loadCheckpoint(`${dir}/checkpoint_2`, r.opts), /never completed/);
  const w1 = `${dir}/checkpoint_1.safetensors`;
  const b1 = await Deno.readFile(w1);
  new DataView(b1.buffer).setBigUint64(0, 1n << 40n, true);
  await Deno.writeFile(w1, b1);
  await rejects(loadCheckpoint(dir, r.opts), /checkpoint_1\.safetensors: safetensors: header length/);
  await Deno.remove(`${dir}/checkpoint_1.json`);
  await rejects(loadCheckpoint(dir, r.opts), /no complete checkpoint in .*skipped/);
  dispose(r);
  await Deno.remove(dir, { recursive: true });
});

gpuTest("checkpoints: a model/config mismatch is a clear error; model-only reload; pruning", async () => {
  const dir = await tmp();
  const big = setup(16);
  await train({ ...big.opts, steps: 3, logDir: dir, saveEvery: 1, keepLast: 2, evalAtStart: false });
  const kept = (await scanCheckpoints(dir)).complete.map((c) => c.iteration).join();
  assert(kept === "2,3", `keepLast kept ${kept}`);
  const small = setup(8);
  const msg = await rejects(
    loadCheckpoint(dir, { ...small.opts, config: small.opts.config }),
    /does not fit this model/,
  );
  assert(/'0\.weight' has shape \[16, 4\].*\[8, 4\]/.test(msg) && /hidden: 16 → 8/.test(msg), msg);
  // Model only: weights restored, optimizer untouched, run restarts at 0 with fresh histories.
  const fresh = setup(16, 9, 9);
  const res = await train({ ...fresh.opts, steps: 0, logDir: dir, resume: "modelOnly" });
  assert(res.startStep === 0 && res.histories.eval.iters.join() === "0", "model-only restarts at 0");
  assert(fresh.optimizer.stateDict().tensors.size === 0, "optimizer untouched");
  const w = JSON.stringify(await arrays(fresh.model.stateDict()));
  assert(w === JSON.stringify(await arrays(big.model.stateDict())), "weights restored");
  for (const r of [big, small, fresh]) dispose(r);
  await Deno.remove(dir, { recursive: true });
});

gpuTest("train: bad options fail before any step; a diverging loss stops with a clear error", async () => {
  const r = setup(8);
  let called = 0;
  const trainStep = (s: number) => (called++, r.opts.trainStep(s));
  await rejects(
    train({ ...r.opts, trainStep, steps: 10, evalEvery: -1, resume: true }),
    /evalEvery must be an integer ≥ 0.*resume needs a logDir/,
  );
  assert(called === 0, "trainStep ran despite bad options");
  const dir = await tmp();
  await rejects(
    train({
      ...r.opts,
      steps: 20,
      logEvery: 2,
      logDir: dir,
      evaluate: undefined,
      trainStep: (s) => {
        const out = r.opts.trainStep(s);
        return s < 3 ? out : { ...out, loss: mul(out.loss, NaN) };
      },
    }),
    /training diverged: the mean loss of steps \d+…\d+ .* is NaN/,
  );
  assert((await scanCheckpoints(dir)).complete.length === 0, "no checkpoint of NaN weights");
  dispose(r);
  await Deno.remove(dir, { recursive: true });
});

gpuTest("train: submitting every k steps changes the submissions, not the result", async () => {
  const run = async (submitEvery: number) => {
    const r = setup(8);
    const s0 = recorder().stats().submits;
    await train({ ...r.opts, steps: 12, logEvery: 12, evaluate: undefined, submitEvery });
    const submits = recorder().stats().submits - s0;
    const snap = await snapshot(r);
    dispose(r);
    return { submits, snap };
  };
  const one = await run(1), three = await run(3);
  assert(one.snap === three.snap, "the trained state depends on submitEvery");
  assert(
    one.submits >= 12 && three.submits <= 6,
    `submissions: ${one.submits} (every step), ${three.submits} (every 3)`,
  );
  const r = setup(8);
  await rejects(train({ ...r.opts, steps: 2, submitEvery: 0 }), /submitEvery must be an integer ≥ 1/);
  dispose(r);
});
