/**
 * The parity trainer (`tasks/parity/train.ts`): a tiny CTM's loss falls; a run interrupted halfway
 * and resumed with `reload` ends bit-identical to a straight run (weights, histories, metrics.json);
 * `--help` lists every flag with its default; bad settings fail before anything runs; the YAML
 * configs reproduce the reference's scripts; the LSTM baseline trains through the same path.
 */
import {
  defaultParityConfig,
  normaliseParityArgs,
  PARITY_FLAGS,
  parityCli,
  type ParityConfig,
  ParityConfigError,
  resolveParityConfig,
  validateParityConfig,
} from "../tasks/parity/config.ts";
import { main, type ParityMetricsFile, type ParityRunResult, runParity } from "../tasks/parity/train.ts";
import { scanCheckpoints } from "../src/train/checkpoint.ts";
import { CliError, formatHelp, parseCli } from "../src/util/cli.ts";
import { join } from "../src/util/std.ts";
import { gpuTest } from "./helpers.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals(a: unknown, b: unknown, what = "values"): void {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`${what} differ:\n  ${sa.slice(0, 400)}\n  ${sb.slice(0, 400)}`);
}

const quiet = { log: () => {}, handleSigint: false };

/** A tiny CTM on parity length 4: quick on a software adapter. */
function tiny(logDir: string, extra: Partial<ParityConfig> = {}): Partial<ParityConfig> {
  return {
    parity_sequence_length: 4,
    d_model: 32,
    d_input: 8,
    heads: 2,
    n_synch_out: 8,
    n_synch_action: 8,
    iterations: 4,
    memory_length: 3,
    memory_hidden_dims: 4,
    batch_size: 32,
    batch_size_test: 64,
    n_test_batches: 1,
    lr: 3e-3,
    warmup_steps: 5,
    scheduler_type: "cosine",
    gradient_clipping: 0.9,
    training_iterations: 80,
    track_every: 40,
    save_every: 40,
    log_every: 10,
    seed: 3,
    progress: false,
    log_dir: logDir,
    ...extra,
  };
}

async function weights(r: ParityRunResult): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of r.model.stateDict()) out[k] = Array.from(await t.toArray() as ArrayLike<number>);
  return out;
}

async function expectFailure(fn: () => Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message;
    if (!pattern.test(msg)) throw new Error(`error message ${JSON.stringify(msg)} does not match ${pattern}`);
    return msg;
  }
  throw new Error(`expected a failure matching ${pattern}`);
}

gpuTest("parity: a tiny CTM learns, and an interrupted + resumed run equals a straight one", async () => {
  const root = await Deno.makeTempDir({ prefix: "parity_train_" });
  try {
    // Straight run.
    const a = await runParity(tiny(join(root, "a")), quiet);
    const ma: ParityMetricsFile = JSON.parse(await Deno.readTextFile(join(root, "a", "metrics.json")));
    assertEquals(ma, JSON.parse(JSON.stringify(a.metrics)), "metrics.json and the returned metrics");
    const trainLoss = ma.train.loss;
    assertEquals(ma.train.iters, [10, 20, 30, 40, 50, 60, 70, 80], "train iters");
    assertEquals(ma.test.iters, [0, 40, 80], "test iters");
    assert(
      trainLoss.at(-1)! < trainLoss[0] - 0.05,
      `training loss should fall: ${trainLoss.map((x) => x.toFixed(3)).join(" → ")}`,
    );
    assert(ma.test.loss[2] < ma.test.loss[0] - 0.05, `test loss should fall: ${ma.test.loss.join(" → ")}`);
    assert(ma.test.accuracy_per_tick.every((r) => r.length === 4), "per-tick accuracy has T entries");
    for (const s of [ma.train, ma.test]) {
      for (const k of ["loss", "accuracy_most_certain", "accuracy_full_sequence"] as const) {
        assert(s[k].length === s.iters.length && s[k].every(Number.isFinite), `${k} is aligned and finite`);
      }
    }
    const ckA = await scanCheckpoints(join(root, "a"));
    assertEquals(ckA.complete.map((c) => c.iteration), [40, 80], "checkpoints");
    const wa = await weights(a);
    a.dispose();

    // Interrupted halfway (like Ctrl-C), then resumed with reload.
    const b1 = await runParity(tiny(join(root, "b")), { ...quiet, stopAfter: 40 });
    assert(b1.train.interrupted && b1.train.step === 40, `stopped at ${b1.train.step}`);
    b1.dispose();
    const b2 = await runParity(tiny(join(root, "b"), { reload: true }), quiet);
    assert(b2.train.resumedFrom?.endsWith("checkpoint_40"), `resumed from ${b2.train.resumedFrom}`);
    assert(b2.train.startStep === 40 && b2.train.step === 80, "resumed at 40, ran to 80");
    const mb: ParityMetricsFile = JSON.parse(await Deno.readTextFile(join(root, "b", "metrics.json")));
    assertEquals(mb.train, ma.train, "training histories");
    assertEquals(mb.test, ma.test, "test histories");
    assertEquals(await weights(b2), wa, "final weights");
    b2.dispose();

    // Weights only (both flags, the reference's defaults): starts again at step 0 from the trained weights.
    const c = await runParity(
      tiny(join(root, "b"), {
        reload: true,
        reload_model_only: true,
        training_iterations: 1,
        warmup_steps: 0,
        save_every: 0,
      }),
      quiet,
    );
    assert(c.train.startStep === 0 && c.train.resumedFrom?.endsWith("checkpoint_80"), "weights-only reload");
    assert(c.metrics.test.loss[0] < ma.test.loss[0] - 0.05, "the reloaded weights are the trained ones");
    c.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

gpuTest("parity: the LSTM baseline trains through the same path", async () => {
  const root = await Deno.makeTempDir({ prefix: "parity_lstm_" });
  try {
    const cfg = tiny(root, { training_iterations: 6, track_every: 6, save_every: 0 });
    for (const k of ["n_synch_out", "n_synch_action", "memory_length", "memory_hidden_dims"] as const) {
      delete cfg[k];
    }
    const r = await runParity(
      { ...cfg, model_type: "lstm", d_model: 16, use_most_certain_with_lstm: true },
      quiet,
    );
    assert(r.metrics.model_type === "lstm" && r.train.step === 6, "ran 6 LSTM steps");
    assert(r.metrics.train.loss.every(Number.isFinite) && r.metrics.test.loss.length === 2, "finite metrics");
    assert(r.model.stateDict().has("lstm.weight_ih_l0"), "the reference's LSTM parameter names");
    r.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parity: --help lists every flag with its default", () => {
  const r = parseCli(parityCli, ["--help"]);
  assert(r.help);
  assertEquals(r.text, formatHelp(parityCli), "help text");
  const lines = r.text.split("\n");
  for (const [k, s] of Object.entries(PARITY_FLAGS)) {
    const line = lines.find((l) => l.trimStart().startsWith(`--${k} `) || l.trim().startsWith(`--${k}`));
    assert(line, `--help lists --${k}`);
    const shown = s.type === "string" ? JSON.stringify(s.default) : String(s.default);
    assert(line.includes(`(default: ${shown})`), `--${k} shows its default ${shown}: ${line}`);
  }
  // The reference's defaults.
  const d = defaultParityConfig();
  assertEquals(
    [d.model_type, d.parity_sequence_length, d.d_model, d.d_input, d.heads, d.iterations, d.memory_length],
    ["ctm", 64, 1024, 512, 8, 75, 25],
  );
  assertEquals([d.batch_size, d.batch_size_test, d.lr, d.training_iterations, d.milestones], [
    64,
    256,
    1e-4,
    50001,
    "8000,15000,20000",
  ]);
  assertEquals([d.neuron_select_type, d.n_random_pairing_self, d.gradient_clipping, d.seed, d.log_dir], [
    "random",
    256,
    -1,
    42,
    "logs/parity",
  ]);
});

Deno.test("parity: kebab-case flags and --config YAML with command-line overrides", async () => {
  assertEquals(
    normaliseParityArgs(["--d-model", "8", "--no-deep-memory", "--model-type=lstm", "--lr", "1"]),
    ["--d_model", "8", "--no-deep_memory", "--model_type=lstm", "--lr", "1"],
  );
  const dir = await Deno.makeTempDir({ prefix: "parity_cfg_" });
  try {
    const path = join(dir, "c.yaml");
    await Deno.writeTextFile(
      path,
      "parity_sequence_length: 16\nd_model: 64\nd_input: 16\nheads: 4\nlr: 0.001\n",
    );
    const r = parseCli(
      parityCli,
      normaliseParityArgs(["--config", path, "--d-model", "96", "--no-deep_memory"]),
    );
    assert(!r.help);
    assertEquals(
      [r.values.parity_sequence_length, r.values.d_model, r.values.lr, r.values.deep_memory, r.values.heads],
      [16, 96, 0.001, false, 4],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parity: a bad config fails before anything runs, with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parity_bad_" });
  const logDir = join(dir, "never");
  const fail = (args: string[], re: RegExp) =>
    expectFailure(() => main([...args, "--log_dir", logDir], quiet), re).then((msg) => {
      assert(msg.includes("--help"), "points to --help");
    });
  try {
    const t0 = performance.now();
    await fail(["--parity_sequence_length", "10"], /perfect square.*got 10/);
    await fail(
      ["--neuron_select_type", "first-last", "--d_model", "48"],
      /first-last needs d_model \(48\) >= n_synch_out \+ n_synch_action \(32 \+ 32 = 64\)/,
    );
    await fail(["--backbone_type", "resnet19-2"], /unknown backbone_type 'resnet19-2'/);
    await fail(["--backbone_type", "resnet18-2"], /does not fit the parity task/);
    await fail(["--num_layers", "2"], /num_layers is an LSTM option; it cannot be set with model_type ctm/);
    await fail(["--use_most_certain_with_lstm"], /use_most_certain_with_lstm is an LSTM option/);
    await fail(["--model_type", "lstm", "--memory_length", "5"], /memory_length is a CTM option/);
    await fail(["--d_input", "30", "--heads", "8"], /d_input \(30\) must be divisible by heads \(8\)/);
    await fail(["--gradient_clipping", "2"], /gradient_clipping is a quantile in \[0, 1\]/);
    await fail(["--gradient_clipping", "-0.5"], /gradient_clipping is a quantile in \[0, 1\]/);
    await fail(["--milestones", "100,abc"], /milestones must be non-negative integers/);
    await fail(["--model_type", "gru"], /--model_type: expected one of ctm, lstm/);
    await fail(["--d_modle", "8"], /unknown flag --d_modle \(did you mean --d_model\?\)/);
    // Several problems are reported together.
    const msg = await expectFailure(
      () => main(["--parity_sequence_length", "10", "--num_layers", "3", "--log_dir", logDir], quiet),
      /2 problems/,
    );
    assert(msg.includes("perfect square") && msg.includes("num_layers"), msg);
    // The programmatic entry point checks too.
    await expectFailure(
      () => runParity({ parity_sequence_length: 7, log_dir: logDir }, quiet),
      /perfect square/,
    );
    await expectFailure(
      () => runParity({ d_model: 1.5, log_dir: logDir } as Partial<ParityConfig>, quiet),
      /d_model must be an integer/,
    );
    try {
      resolveParityConfig({ backbone_type: "none" });
      throw new Error("expected a ParityConfigError");
    } catch (e) {
      assert(e instanceof ParityConfigError, String(e));
    }
    assert(performance.now() - t0 < 5000, "fails fast");
    let created = true;
    await Deno.stat(logDir).catch(() => (created = false));
    assert(!created, "nothing was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Flags and settings given on the command line fail as CliError (exit status 2 in the task).
  let err: unknown = null;
  await main(["--iterations", "0"], quiet).catch((e) => (err = e));
  assert(err instanceof CliError, `expected a CliError, got ${err}`);
});

Deno.test("parity: the reference scripts' list and clipping flags parse as argparse takes them", () => {
  // `--milestones 0 0 0` (nargs '+') and `--gradient_clipping 0` (quantile 0), as a script writes them.
  const r = parseCli(
    parityCli,
    normaliseParityArgs([
      "--milestones",
      "0",
      "0",
      "0",
      "--gamma",
      "0",
      "--gradient_clipping",
      "0",
      "--lr",
      "1e-4",
    ]),
  );
  assert(!r.help);
  assertEquals([r.values.milestones, r.values.gradient_clipping, r.values.lr], ["0 0 0", 0, 1e-4]);
  assertEquals(validateParityConfig(r.values), []);
  const two = parseCli(parityCli, ["--milestones", "8000", "15000"]);
  assert(!two.help);
  assertEquals(two.values.milestones, "8000 15000");
});

Deno.test("parity: the configs reproduce the reference's scripts", async () => {
  const dir = "tasks/parity/configs";
  const load = (name: string): ParityConfig => {
    const r = parseCli(parityCli, ["--config", join(dir, `${name}.yaml`)]);
    assert(!r.help);
    return r.values;
  };
  const ctm: [string, number, number][] = [
    ["train_ctm_1_1", 1, 1],
    ["train_ctm_10_5", 10, 5],
    ["train_ctm_25_10", 25, 10],
    ["train_ctm_50_25", 50, 25],
    ["train_ctm_75_25", 75, 25],
    ["train_ctm_100_50", 100, 50],
  ];
  for (const [name, T, M] of ctm) {
    const c = load(name);
    const want = {
      model_type: "ctm",
      iterations: T,
      memory_length: M,
      d_model: 1024,
      d_input: 512,
      heads: 8,
      n_synch_out: 32,
      n_synch_action: 32,
      neuron_select_type: "random",
      synapse_depth: 1,
      memory_hidden_dims: 16,
      deep_memory: true,
      dropout: 0,
      do_normalisation: false,
      positional_embedding_type: "custom-rotational-1d",
      backbone_type: "parity_backbone",
      parity_sequence_length: 64,
      batch_size: 64,
      batch_size_test: 256,
      lr: 0.0001,
      training_iterations: 200001,
      warmup_steps: 500,
      use_scheduler: true,
      scheduler_type: "cosine",
      weight_decay: 0,
      gradient_clipping: 0.9,
      n_test_batches: 20,
      track_every: 1000,
      save_every: 10000,
      reload: false,
      reload_model_only: false,
      full_eval: false,
      seed: 0,
      log_dir: `logs/parity/run1/ctm_${T}_${M}`,
    };
    for (const [k, v] of Object.entries(want)) {
      assertEquals(c[k as keyof ParityConfig], v, `${name}: ${k}`);
    }
  }
  const lstm: [string, number, number, number, boolean][] = [
    ["train_lstm_1", 1, 669, 1, false],
    ["train_lstm_10", 10, 686, 1, false],
    ["train_lstm_10_certain", 10, 686, 3, true],
    ["train_lstm_25", 25, 706, 1, false],
    ["train_lstm_25_certain", 25, 706, 3, true],
    ["train_lstm_50", 50, 765, 1, false],
    ["train_lstm_75", 75, 765, 1, false],
    ["train_lstm_100", 100, 857, 1, false],
  ];
  for (const [name, T, D, run, certain] of lstm) {
    const c = load(name);
    const want = {
      model_type: "lstm",
      iterations: T,
      d_model: D,
      d_input: 512,
      heads: 8,
      num_layers: 1,
      gradient_clipping: -1,
      use_most_certain_with_lstm: certain,
      training_iterations: 200001,
      warmup_steps: 500,
      scheduler_type: "cosine",
      lr: 0.0001,
      seed: run - 1,
      log_dir: `logs/parity/run${run}/lstm_${T}${certain ? "_certain" : ""}`,
    };
    for (const [k, v] of Object.entries(want)) {
      assertEquals(c[k as keyof ParityConfig], v, `${name}: ${k}`);
    }
  }
  const names = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".yaml")) names.push(e.name);
  assert(names.includes("quick_16.yaml"), "quick_16.yaml exists");
  for (const n of names) load(n.replace(/\.yaml$/, "")); // every config validates
  const q = load("quick_16");
  assert(q.parity_sequence_length === 16, "quick_16 is parity length 16");
});
