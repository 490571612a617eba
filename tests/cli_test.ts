/** The flag parser: defaults, types, ranges, unknown flags, `--help`, YAML config files. */
import { CliError, defineCli, flagName, formatHelp, formatValues, parseCli } from "../src/util/cli.ts";

const spec = defineCli({
  name: "deno task demo",
  description: "Trains a demo model.",
  flags: {
    steps: { type: "int", default: 100, min: 1, description: "Training steps." },
    lr: { type: "number", default: 0.003, min: 0, description: "Learning rate." },
    batchSize: { type: "int", default: 64, min: 1, max: 4096, description: "Batch size." },
    act: { type: "string", default: "relu", choices: ["relu", "tanh"], description: "Activation." },
    out: { type: "string", default: "", description: "Output path." },
    quiet: { type: "boolean", default: false, description: "Less output." },
  },
});

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals(a: unknown, b: unknown): void {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`expected ${sb}, got ${sa}`);
}

function values(args: string[]) {
  const r = parseCli(spec, args);
  if (r.help) throw new Error("unexpected help");
  return r.values;
}

function problems(args: string[]): string[] {
  try {
    parseCli(spec, args);
  } catch (e) {
    if (e instanceof CliError) return e.problems;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(args)} to fail`);
}

Deno.test("cli: defaults when no flags are given", () => {
  assertEquals(values([]), { steps: 100, lr: 0.003, batchSize: 64, act: "relu", out: "", quiet: false });
});

Deno.test("cli: typed values, kebab-case names, = syntax, booleans and negation", () => {
  const v = values(["--steps", "250", "--lr=1e-2", "--batch-size", "32", "--act", "tanh", "--quiet"]);
  assertEquals(v, { steps: 250, lr: 0.01, batchSize: 32, act: "tanh", out: "", quiet: true });
  assertEquals(values(["--quiet", "--no-quiet"]).quiet, false);
  assertEquals(values(["--quiet=false"]).quiet, false);
  assertEquals(values(["--out", "runs/a"]).out, "runs/a");
  assertEquals(flagName("batchSize"), "batch-size");
});

Deno.test("cli: nargs '+' takes the words up to the next flag, like argparse", () => {
  const multi = defineCli({
    name: "deno task demo",
    description: "Milestones.",
    flags: {
      steps: { type: "int", default: 1, description: "Steps." },
      out: { type: "string", default: "", description: "Output path." },
      marks: { type: "string", default: "1,2", nargs: "+", description: "Milestones." },
    },
  });
  const parse = (args: string[]) => parseCli(multi, args);
  const ok = (args: string[]) => {
    const r = parse(args);
    if (r.help) throw new Error("unexpected help");
    return r.values;
  };
  assertEquals(ok(["--marks", "0", "0", "0", "--steps", "3"]), { steps: 3, out: "", marks: "0 0 0" });
  assertEquals(ok(["--marks", "8000", "15000"]).marks, "8000 15000");
  assertEquals(ok(["--marks", "-1", "5"]).marks, "-1 5");
  assertEquals(ok(["--marks", "7"]).marks, "7");
  assertEquals(ok([]).marks, "1,2");
  assert(parse(["--marks", "5", "-h"]).help);
  const fails = (args: string[]) => {
    try {
      parse(args);
    } catch (e) {
      if (e instanceof CliError) return e.problems;
      throw e;
    }
    throw new Error(`expected ${JSON.stringify(args)} to fail`);
  };
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/c.yaml`, "marks: [8000, 15000]\nout: [a, b]\n");
    const p = fails(["--config", `${dir}/c.yaml`]);
    assert(p.length === 1 && p[0].includes("out"), `only the list for a one-word flag fails: ${p}`);
    Deno.writeTextFileSync(`${dir}/c.yaml`, "marks: [8000, 15000]\n");
    assertEquals(ok(["--config", `${dir}/c.yaml`]).marks, "8000 15000");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  // Without nargs, a second word is still an error.
  assert(fails(["--out", "a", "b"]).some((p) => p.includes('unexpected argument "b"')));
  assert(fails(["--marks", "--steps", "3"]).some((p) => p.includes("--marks: expected a value")));
});

Deno.test("cli: unknown flags are rejected with a suggestion", () => {
  const p = problems(["--stpes", "5"]);
  assert(
    p.some((m) => m.includes("unknown flag --stpes") && m.includes("did you mean --steps?")),
    p.join("; "),
  );
  assert(problems(["-z"]).some((m) => m.includes("unknown flag -z")));
  assert(problems(["stray"]).some((m) => m.includes('unexpected argument "stray"')));
});

Deno.test("cli: bad values fail with clear messages, all reported at once", () => {
  const p = problems(["--lr", "abc", "--batch-size", "1.5", "--act", "gelu", "--steps", "0"]);
  assertEquals(p.length, 4);
  assert(p.some((m) => m === '--lr: expected a number, got "abc"'), p.join("; "));
  assert(p.some((m) => m === '--batch-size: expected an integer, got "1.5"'), p.join("; "));
  assert(p.some((m) => m.startsWith("--act: expected one of relu, tanh")), p.join("; "));
  assert(p.some((m) => m.startsWith("--steps: expected a value ≥ 1")), p.join("; "));
  assert(problems(["--batch-size", "9999"]).some((m) => m.includes("≤ 4096")));
  assert(problems(["--lr", "--steps", "5"]).some((m) => m === "--lr: expected a value"));
  assert(problems(["--steps"]).some((m) => m === "--steps: expected a value"));
  assert(problems(["--quiet=maybe"]).some((m) => m.includes("expected true or false")));
  assert(problems(["--lr", "Infinity"]).length === 1);
});

Deno.test("cli: the error message names the command and points to --help", () => {
  try {
    parseCli(spec, ["--nope"]);
    throw new Error("should fail");
  } catch (e) {
    assert(e instanceof CliError);
    assert(e.message.includes("deno task demo"), e.message);
    assert(e.message.includes("--help"), e.message);
  }
});

Deno.test("cli: --help lists every flag with its default", () => {
  const r = parseCli(spec, ["--steps", "bad", "--help"]);
  assert(r.help);
  const text = r.text;
  assertEquals(text, formatHelp(spec));
  for (const name of ["--steps", "--lr", "--batch-size", "--act", "--out", "--quiet", "--config", "--help"]) {
    assert(text.includes(name), `help lacks ${name}`);
  }
  assert(text.includes("(default: 100)") && text.includes("(default: 0.003)"), text);
  assert(text.includes('(default: "relu")') && text.includes("(default: false)"), text);
  assert(text.includes("Usage: deno task demo"), text);
  assert(parseCli(spec, ["-h"]).help);
});

Deno.test("cli: --config loads a YAML file; command-line flags override it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/run.yaml`;
    await Deno.writeTextFile(path, "steps: 500\nbatch-size: 16\nlr: 1e-3\nquiet: true\n");
    const r = parseCli(spec, ["--config", path, "--steps", "7"]);
    assert(!r.help);
    assertEquals(r.values, { steps: 7, lr: 0.001, batchSize: 16, act: "relu", out: "", quiet: true });
    assertEquals(r.configPath, path);
    // camelCase keys are accepted too.
    await Deno.writeTextFile(path, "batchSize: 8\n");
    assertEquals(values(["--config", path]).batchSize, 8);
    // An empty file is an empty mapping.
    await Deno.writeTextFile(path, "");
    assertEquals(values(["--config", path]).steps, 100);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: bad config files fail before anything runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bad.yaml`;
    await Deno.writeTextFile(path, "stepz: 5\nlr: fast\nbatch-size: 2.5\n");
    const p = problems(["--config", path]);
    assert(p.some((m) => m.includes('unknown key "stepz"') && m.includes("--steps")), p.join("; "));
    assert(p.some((m) => m.includes("lr: expected a number")), p.join("; "));
    assert(p.some((m) => m.includes("batch-size: expected an integer")), p.join("; "));
    await Deno.writeTextFile(path, "steps: [1, 2\n");
    assert(problems(["--config", path]).some((m) => m.includes("not valid YAML")));
    await Deno.writeTextFile(path, "- 1\n- 2\n");
    assert(problems(["--config", path]).some((m) => m.includes("expected a mapping")));
    assert(problems(["--config", `${dir}/missing.yaml`]).some((m) => m.includes("no such file")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: cross-flag validation runs after parsing", () => {
  const checked = defineCli({
    ...spec,
    validate: (v) =>
      v.batchSize > v.steps ? `--batch-size (${v.batchSize}) exceeds --steps (${v.steps})` : undefined,
  });
  assertEquals(parseCli(checked, ["--steps", "10", "--batch-size", "5"]).help, false);
  try {
    parseCli(checked, ["--steps", "10", "--batch-size", "50"]);
    throw new Error("should fail");
  } catch (e) {
    assert(e instanceof CliError && e.problems[0].includes("exceeds"), String(e));
  }
});

Deno.test("cli: formatValues prints the effective settings", () => {
  assertEquals(
    formatValues(spec, values(["--steps", "3"])),
    "steps=3 lr=0.003 batch-size=64 act=relu out= quiet=false",
  );
});

/** Runs a task script in a subprocess; returns its exit code and output. */
async function runTask(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const url = new URL(`../${script}`, import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", url.pathname, ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: the demo prints --help with every flag and its default", async () => {
  const r = await runTask("tasks/demo/train.ts", ["--help"]);
  assertEquals(r.code, 0);
  for (const f of ["--steps", "--batch-size", "--lr", "--seed", "--hidden", "--config", "(default: "]) {
    assert(r.stdout.includes(f), `demo --help lacks ${f}:\n${r.stdout}`);
  }
});

Deno.test("cli: the demo rejects bad flags and configs before training starts", async () => {
  const r = await runTask("tasks/demo/train.ts", ["--lr", "fast", "--stepz", "3"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes('--lr: expected a number, got "fast"'), r.stderr);
  assert(r.stderr.includes("did you mean --steps?"), r.stderr);
  assert(!r.stdout.includes("adapter:"), "the GPU must not start on bad flags");
  const r2 = await runTask("tasks/demo/train.ts", ["--batch-size", "100000"]);
  assertEquals(r2.code, 2);
  assert(r2.stderr.includes("exceeds the training set"), r2.stderr);
});

Deno.test("cli: deno task info prints --help", async () => {
  const r = await runTask("tasks/info.ts", ["--help"]);
  assertEquals(r.code, 0);
  assert(r.stdout.includes("--json") && r.stdout.includes("(default: false)"), r.stdout);
});

Deno.test("cli: a short demo run trains, shows progress lines and reports the test accuracy", async () => {
  const r = await runTask("tasks/demo/train.ts", [
    "--dataset=circles",
    "--steps=150",
    "--points=600",
    "--log-every=10",
    "--min-acc=0.9",
  ]);
  assertEquals(r.code, 0);
  assert(/train step +\d+\/150 .*loss .*acc .*it\/s .*ETA/.test(r.stderr), r.stderr);
  assert(r.stderr.includes("train done: 150/150 steps"), r.stderr);
  assert(/test accuracy: \d+\.\d\d% \(\d+\/120\)/.test(r.stdout), r.stdout);
});
