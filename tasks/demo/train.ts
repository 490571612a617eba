/**
 * `deno task demo`: trains a small MLP (2 → hidden → hidden → 2, ReLU) with AdamW on a generated,
 * seeded 2-D dataset (two interleaved spirals by default), showing a progress bar, and prints the
 * final test accuracy. Run with `--help` for the flags.
 *
 * Every step stays on the GPU: the loss and accuracy are computed there and read back only every
 * `--log-every` steps, through a queue that keeps a few reads in flight instead of waiting for each.
 */
import "../../src/ops/setup.ts";
import { gpu, initGpu, NoAdapterError } from "../../src/gpu/device.ts";
import { ReadQueue } from "../../src/gpu/readback.ts";
import { eq } from "../../src/ops/arith.ts";
import { fromArray } from "../../src/ops/creation.ts";
import { crossEntropy } from "../../src/ops/loss.ts";
import { argmax, mean } from "../../src/ops/reduce.ts";
import { stack } from "../../src/ops/views.ts";
import { Sequential } from "../../src/nn/containers.ts";
import { seedInit } from "../../src/nn/init.ts";
import { ReLU } from "../../src/nn/layers.ts";
import { Linear } from "../../src/nn/linear.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { detach, noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { defineCli, formatValues, runCli } from "../../src/util/cli.ts";
import { Progress } from "../../src/util/progress.ts";
import { batches, type Dataset, DATASETS, generate, trainTestSplit } from "./data.ts";

const cli = defineCli({
  name: "deno task demo",
  description: "Trains a small MLP (2 → hidden → hidden → 2, ReLU) with AdamW on a generated 2-D dataset\n" +
    "(two interleaved spirals, or two concentric circles) and reports the test accuracy.",
  flags: {
    steps: { type: "int", default: 1500, min: 1, description: "Training steps (one batch each)." },
    batchSize: { type: "int", default: 128, min: 1, description: "Points per batch." },
    lr: { type: "number", default: 0.01, min: 0, max: 10, description: "AdamW learning rate." },
    weightDecay: { type: "number", default: 1e-4, min: 0, description: "AdamW decoupled weight decay." },
    hidden: { type: "int", default: 64, min: 1, max: 4096, description: "Width of the two hidden layers." },
    seed: {
      type: "int",
      default: 0,
      min: 0,
      description: "Seed of the data, the split, the batches and the init.",
    },
    dataset: {
      type: "string",
      default: "spirals",
      choices: DATASETS,
      description: "Which generated dataset to learn.",
    },
    points: { type: "int", default: 2000, min: 10, description: "Number of generated points." },
    noise: {
      type: "number",
      default: 0.03,
      min: 0,
      description: "Std of the Gaussian noise on each coordinate.",
    },
    testFraction: {
      type: "number",
      default: 0.2,
      min: 0.01,
      max: 0.99,
      description: "Fraction of the points held out for testing.",
    },
    logEvery: {
      type: "int",
      default: 25,
      min: 1,
      description: "Read the loss and accuracy back from the GPU every this many steps.",
    },
    evalEvery: {
      type: "int",
      default: 250,
      min: 0,
      description: "Measure the test accuracy every this many steps (0: only at the end).",
    },
    minAcc: {
      type: "number",
      default: 0,
      min: 0,
      max: 1,
      description: "Exit with status 1 if the final test accuracy is below this fraction.",
    },
  },
  examples: [
    "deno task demo",
    "deno task demo --steps 3000 --hidden 128 --lr 0.005",
    "deno task demo --dataset circles --steps 300",
  ],
  validate: (v) => {
    const nTrain = v.points - Math.max(1, Math.round(v.points * v.testFraction));
    const problems: string[] = [];
    if (v.batchSize > nTrain) {
      problems.push(
        `--batch-size (${v.batchSize}) exceeds the training set (${nTrain} points): lower it or raise --points`,
      );
    }
    if (nTrain < 2) {
      problems.push(`--points ${v.points} with --test-fraction ${v.testFraction} leaves no training set`);
    }
    return problems;
  },
});

const opts = runCli(cli);

// Mesa's Vulkan driver complains on stderr when XDG_RUNTIME_DIR is unset; it is not used for compute.
if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");

try {
  await initGpu();
} catch (e) {
  if (e instanceof NoAdapterError) {
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
console.log(`adapter: ${gpu().adapterName}`);
console.log(`config: ${formatValues(cli, opts)}`);

// ---------------------------------------------------------------- data
const all = generate(opts.dataset as typeof DATASETS[number], opts.points, {
  seed: opts.seed,
  noise: opts.noise,
});
const { train, test } = trainTestSplit(all, opts.testFraction, opts.seed);
console.log(`data: ${opts.dataset}, ${train.n} train / ${test.n} test points, ${all.classes} classes`);

/** Uploads the points at `idx` (or all of them) as an f32 `[b, 2]` input and an i32 `[b]` target. */
function upload(ds: Dataset, idx?: Int32Array): { x: Tensor; y: Tensor } {
  if (!idx) return { x: fromArray(ds.x, [ds.n, 2]), y: fromArray(ds.y, [ds.n]) };
  const x = new Float32Array(idx.length * 2);
  const y = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    x[2 * i] = ds.x[2 * j];
    x[2 * i + 1] = ds.x[2 * j + 1];
    y[i] = ds.y[j];
  }
  return { x: fromArray(x, [idx.length, 2]), y: fromArray(y, [idx.length]) };
}

// ---------------------------------------------------------------- model
seedInit(opts.seed);
const model = new Sequential(
  new Linear(opts.hidden, { inFeatures: 2 }),
  new ReLU(),
  new Linear(opts.hidden, { inFeatures: opts.hidden }),
  new ReLU(),
  new Linear(all.classes, { inFeatures: opts.hidden }),
);
const optimizer = new AdamW(model.parameters(), { lr: opts.lr, weightDecay: opts.weightDecay });
console.log(
  `model: MLP 2 → ${opts.hidden} → ${opts.hidden} → ${all.classes}, ${model.parameterCount()} parameters`,
);

// Test set stays on the GPU for the whole run.
const testSet = upload(test);

/** Accuracy (a scalar on the GPU) of the model on the test set. */
function testAccuracy(): Tensor {
  return tidy(() =>
    noGrad(() => {
      model.eval();
      const acc = mean(eq(argmax(model.forward(testSet.x), 1), testSet.y));
      model.train();
      return acc;
    })
  );
}

// ---------------------------------------------------------------- training
const bar = new Progress({ total: opts.steps, label: "train" });
const reads = new ReadQueue(4);
const batchIter = batches(train.n, opts.batchSize, opts.seed);
let failure: string | null = null;

for (let step = 1; step <= opts.steps; step++) {
  const idx = batchIter.next().value as Int32Array;
  const wantMetrics = step % opts.logEvery === 0 || step === opts.steps;
  const metrics = tidy(() => {
    const { x, y } = upload(train, idx);
    const logits = model.forward(x);
    const loss = crossEntropy(logits, y);
    loss.backward();
    optimizer.step();
    optimizer.zeroGrad();
    if (!wantMetrics) return null;
    // [loss, batch accuracy], computed on the GPU and read back later.
    return noGrad(() => stack([detach(loss), mean(eq(argmax(logits, 1), y))]));
  });
  if (metrics) {
    await reads.push(metrics, (v) => {
      if (!Number.isFinite(v[0]) && failure === null) failure = `the loss became ${v[0]}: lower --lr`;
      bar.setMetrics({ loss: v[0], acc: v[1] });
    });
  }
  if (opts.evalEvery > 0 && step % opts.evalEvery === 0 && step !== opts.steps) {
    await reads.push(testAccuracy(), (v) => bar.setMetrics({ test_acc: v[0] }));
  }
  bar.update(step);
  if (failure !== null) break;
}
await reads.drain();

let finalAcc = NaN;
await reads.push(testAccuracy(), (v) => (finalAcc = v[0]));
await reads.drain();
bar.done({ test_acc: finalAcc });

if (failure !== null) {
  console.error(`error: training diverged: ${failure}`);
  Deno.exit(1);
}
const correct = Math.round(finalAcc * test.n);
console.log(`test accuracy: ${(finalAcc * 100).toFixed(2)}% (${correct}/${test.n})`);
if (finalAcc < opts.minAcc) {
  console.error(`error: test accuracy ${(finalAcc * 100).toFixed(2)}% is below --min-acc ${opts.minAcc}`);
  Deno.exit(1);
}
