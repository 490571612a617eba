/**
 * A tiny, typed command-line parser for the project's tasks.
 *
 * Each flag has a type, a default and a description; `--help` lists them all with their defaults.
 * Unknown flags and bad values fail with a clear message before any work starts. `--config
 * file.yaml` loads values from a YAML mapping whose keys are the flag names; flags given on the
 * command line override it.
 *
 * @example
 * ```ts
 * import { runCli } from "./src/util/cli.ts";
 * const opts = runCli({
 *   name: "deno task demo",
 *   description: "Trains a small MLP.",
 *   flags: {
 *     steps: { type: "int", default: 1000, min: 1, description: "Training steps." },
 *     lr: { type: "number", default: 3e-3, min: 0, description: "Learning rate." },
 *   },
 * });
 * opts.steps; // number
 * ```
 */
import { parseArgs, type ParseArgsOptionSpec, parseYaml, readTextSync } from "./std.ts";
import { suggest } from "./suggest.ts";

/** A numeric flag: `int` accepts integers only. */
export interface NumberFlag {
  /** Value type. */
  type: "int" | "number";
  /** Value when neither the command line nor the config file gives one. */
  default: number;
  /** One line for `--help`. */
  description: string;
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
  /** One-letter alias, e.g. `"n"` for `-n`. */
  short?: string;
}

/** A string flag, optionally restricted to `choices`. */
export interface StringFlag {
  /** Value type. */
  type: "string";
  /** Value when neither the command line nor the config file gives one. */
  default: string;
  /** One line for `--help`. */
  description: string;
  /** Accepted values, when restricted. */
  choices?: readonly string[];
  /**
   * `"+"`: one or more words, like argparse's `nargs='+'` (`--milestones 8000 15000`): the words
   * after the flag up to the next flag are joined with spaces into the value.
   */
  nargs?: "+";
  /** One-letter alias. */
  short?: string;
}

/** A boolean switch: `--flag`, `--no-flag`, `--flag=false`. */
export interface BooleanFlag {
  /** Value type. */
  type: "boolean";
  /** Value when neither the command line nor the config file gives one. */
  default: boolean;
  /** One line for `--help`. */
  description: string;
  /** One-letter alias. */
  short?: string;
}

/** Any flag. */
export type FlagSpec = NumberFlag | StringFlag | BooleanFlag;

/** Flags by property name (camelCase); the command-line name is the kebab-case form (`batchSize` → `--batch-size`). */
export type FlagSpecs = Record<string, FlagSpec>;

/** The parsed value type of a flag. */
export type FlagValue<S extends FlagSpec> = S extends BooleanFlag ? boolean
  : S extends StringFlag ? string
  : number;

/** Parsed values of a set of flags, by property name. */
export type FlagValues<F extends FlagSpecs> = { [K in keyof F]: FlagValue<F[K]> };

/** A command: its name for the usage line, what it does, and its flags. */
export interface CliSpec<F extends FlagSpecs> {
  /** How the command is invoked, e.g. `deno task demo`. */
  name: string;
  /** What the command does (first lines of `--help`). */
  description: string;
  /** The flags. */
  flags: F;
  /** Whether `--config file.yaml` is accepted (default true). */
  config?: boolean;
  /** Example invocations shown at the end of `--help`. */
  examples?: string[];
  /** Cross-flag checks run after parsing: return problems as messages (empty or undefined when fine). */
  validate?: (values: FlagValues<F>) => string[] | string | undefined;
}

/** Declares a command (an identity function that keeps the flag types for {@link parseCli} and {@link runCli}). */
export function defineCli<F extends FlagSpecs>(spec: CliSpec<F>): CliSpec<F> {
  return spec;
}

/** Bad command-line input: the message lists every problem found. */
export class CliError extends Error {
  /** The individual problems. */
  readonly problems: string[];

  /** An error of `command` (its usage name) listing `problems`. */
  constructor(command: string, problems: string[]) {
    super(
      `${command}: ${
        problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join("\n  ")}`
      }\n` +
        `Run \`${command} --help\` to see every flag and its default.`,
    );
    this.name = "CliError";
    this.problems = problems;
  }
}

/** What {@link parseCli} found: either a request for help, or the values. */
export type CliResult<F extends FlagSpecs> =
  | { help: true; text: string }
  | { help: false; values: FlagValues<F>; configPath: string | null };

/** `batchSize` → `batch-size`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function typeLabel(s: FlagSpec): string {
  if (s.type === "boolean") return "";
  if (s.type === "string" && s.choices) return ` <${s.choices.join("|")}>`;
  if (s.type === "string" && s.nargs === "+") return " <string>...";
  return ` <${s.type}>`;
}

function formatDefault(s: FlagSpec): string {
  if (s.type === "string") return s.default === "" ? "none" : JSON.stringify(s.default);
  return String(s.default);
}

/** The `--help` text: usage, description, every flag with its type, default and range. */
export function formatHelp<F extends FlagSpecs>(spec: CliSpec<F>): string {
  const rows: [string, string][] = [];
  for (const [key, s] of Object.entries(spec.flags)) {
    const names = (s.short ? `-${s.short}, ` : "    ") + `--${flagName(key)}${typeLabel(s)}`;
    let desc = s.description;
    if (s.type === "int" || s.type === "number") {
      if (s.min !== undefined && s.max !== undefined) desc += ` Range ${s.min}..${s.max}.`;
      else if (s.min !== undefined) desc += ` At least ${s.min}.`;
      else if (s.max !== undefined) desc += ` At most ${s.max}.`;
    }
    if (s.type === "boolean") desc += ` Turn off with --no-${flagName(key)}.`;
    rows.push([names, `${desc} (default: ${formatDefault(s)})`]);
  }
  if (spec.config !== false) {
    rows.push([
      "    --config <path>",
      "YAML file of flag values, keys are flag names (e.g. `batch-size: 64`); " +
      "flags on the command line override it. (default: none)",
    ]);
  }
  rows.push(["-h, --help", "Show this help and exit."]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  const lines = [
    `Usage: ${spec.name} [flags]`,
    "",
    spec.description.trim(),
    "",
    "Flags:",
    ...rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`),
  ];
  if (spec.examples?.length) lines.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  return lines.join("\n") + "\n";
}

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Converts one raw value for flag `s`; returns the value or a problem message (prefixed with `where`). */
function convert(s: FlagSpec, raw: unknown, where: string): { ok: true; value: number | string | boolean } | {
  ok: false;
  problem: string;
} {
  const shown = typeof raw === "string" ? JSON.stringify(raw) : String(raw);
  const bad = (what: string) => ({ ok: false as const, problem: `${where}: expected ${what}, got ${shown}` });
  if (s.type === "boolean") {
    if (typeof raw === "boolean") return { ok: true, value: raw };
    if (typeof raw === "string") {
      const l = raw.toLowerCase();
      if (["true", "1", "yes", "on"].includes(l)) return { ok: true, value: true };
      if (["false", "0", "no", "off"].includes(l)) return { ok: true, value: false };
    }
    return bad("true or false");
  }
  if (s.type === "string") {
    // A YAML list for a several-word flag (`milestones: [8000, 15000]`).
    if (s.nargs === "+" && Array.isArray(raw) && raw.length && raw.every((x) => typeof x !== "object")) {
      raw = raw.join(" ");
    }
    if (typeof raw !== "string" && typeof raw !== "number") return bad("a string");
    const v = String(raw);
    if (s.choices && !s.choices.includes(v)) return bad(`one of ${s.choices.join(", ")}`);
    return { ok: true, value: v };
  }
  let v: number;
  if (typeof raw === "number") v = raw;
  else if (typeof raw === "string" && NUMBER_RE.test(raw.trim())) v = Number(raw.trim());
  else return bad(s.type === "int" ? "an integer" : "a number");
  if (!Number.isFinite(v)) return bad("a finite number");
  if (s.type === "int" && !Number.isInteger(v)) return bad("an integer");
  if (s.min !== undefined && v < s.min) return bad(`a value ≥ ${s.min}`);
  if (s.max !== undefined && v > s.max) return bad(`a value ≤ ${s.max}`);
  return { ok: true, value: v };
}

/**
 * Parses `args` against `spec`. Returns the help text when `-h`/`--help` is given, otherwise the
 * values (defaults, then the `--config` file, then the command line). Throws {@link CliError}
 * listing every unknown flag, bad value and failed check.
 */
export function parseCli<F extends FlagSpecs>(spec: CliSpec<F>, args: string[]): CliResult<F> {
  const byName = new Map<string, [string, FlagSpec]>();
  const options: Record<string, ParseArgsOptionSpec> = { help: { type: "boolean", short: "h" } };
  for (const [key, s] of Object.entries(spec.flags)) {
    const name = flagName(key);
    byName.set(name, [key, s]);
    options[name] = {
      type: s.type === "boolean" ? "boolean" : "string",
      ...(s.short ? { short: s.short } : {}),
    };
  }
  const withConfig = spec.config !== false;
  if (withConfig) options.config = { type: "string" };
  const known = [...byName.keys(), ...(withConfig ? ["config"] : []), "help"];

  const problems: string[] = [];
  // `--lr --steps 5`: a valued flag followed by another flag is missing its value (node's parser
  // would take "--steps" as the value).
  const argv: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      argv.push(...args.slice(i));
      break;
    }
    const m = /^--([^=]+)$/.exec(a);
    const valued = m && (options[m[1]]?.type === "string");
    if (valued && (i + 1 === args.length || args[i + 1].startsWith("--"))) {
      problems.push(`${a}: expected a value`);
      continue;
    }
    const s = m ? byName.get(m[1])?.[1] : undefined;
    if (s?.type === "string" && s.nargs === "+") {
      let j = i + 1;
      while (j < args.length && !/^-[^\d.]/.test(args[j])) j++;
      argv.push(a, args.slice(i + 1, j).join(" "));
      i = j - 1;
      continue;
    }
    argv.push(a);
  }
  const { tokens } = parseArgs(argv, options);
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) {
    return { help: true, text: formatHelp(spec) };
  }

  const fromCli = new Map<string, unknown>();
  let configPath: string | null = null;
  for (const t of tokens) {
    if (t.kind === "positional") {
      problems.push(`unexpected argument ${JSON.stringify(t.value)} (flags look like --name value)`);
      continue;
    }
    if (t.kind !== "option") continue;
    if (t.name === "config" && withConfig) {
      if (t.value === undefined || t.value === "") problems.push("--config: expected a path to a YAML file");
      else configPath = t.value;
      continue;
    }
    let entry = byName.get(t.name);
    let value: unknown = t.value;
    if (!entry && t.name.startsWith("no-")) {
      const neg = byName.get(t.name.slice(3));
      if (neg && neg[1].type === "boolean") {
        if (t.value !== undefined) {
          problems.push(`${t.rawName} takes no value`);
          continue;
        }
        entry = neg;
        value = false;
      }
    }
    if (!entry) {
      problems.push(`unknown flag ${t.rawName}${t.rawName.startsWith("--") ? suggest(t.name, known) : ""}`);
      continue;
    }
    const [key, s] = entry;
    if (s.type === "boolean" && value === undefined) value = true;
    if (value === undefined) {
      problems.push(
        `--${flagName(key)}: expected ${s.type === "string" ? "a value" : `a value (${s.type})`}`,
      );
      continue;
    }
    fromCli.set(key, value);
  }

  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec.flags)) values[key] = s.default;

  if (configPath !== null) {
    let doc: unknown = undefined;
    let text: string | null = null;
    try {
      text = readTextSync(configPath);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
      problems.push(`--config ${configPath}: cannot read it (${why})`);
    }
    if (text !== null) {
      try {
        doc = parseYaml(text);
      } catch (e) {
        problems.push(`--config ${configPath}: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    if (doc !== undefined && doc !== null) {
      if (typeof doc !== "object" || Array.isArray(doc)) {
        problems.push(`--config ${configPath}: expected a mapping of flag names to values`);
      } else {
        for (const [k, raw] of Object.entries(doc as Record<string, unknown>)) {
          const entry = byName.get(k) ?? byName.get(flagName(k));
          if (!entry) {
            problems.push(
              `--config ${configPath}: unknown key "${k}"${suggest(flagName(k), [...byName.keys()])}`,
            );
            continue;
          }
          const [key, s] = entry;
          const r = convert(s, raw, `--config ${configPath}: ${k}`);
          if (r.ok) values[key] = r.value;
          else problems.push(r.problem);
        }
      }
    }
  }

  for (const [key, raw] of fromCli) {
    const s = spec.flags[key];
    const r = convert(s, raw, `--${flagName(key)}`);
    if (r.ok) values[key] = r.value;
    else problems.push(r.problem);
  }

  if (problems.length === 0 && spec.validate) {
    const more = spec.validate(values as FlagValues<F>);
    if (typeof more === "string") problems.push(more);
    else if (more) problems.push(...more);
  }
  if (problems.length) throw new CliError(spec.name, problems);
  return { help: false, values: values as FlagValues<F>, configPath };
}

/**
 * {@link parseCli} for a program's entry point: prints `--help` and exits 0, or prints the problems
 * and exits 2; otherwise returns the values.
 */
export function runCli<F extends FlagSpecs>(spec: CliSpec<F>, args: string[] = Deno.args): FlagValues<F> {
  try {
    const r = parseCli(spec, args);
    if (r.help) {
      console.log(r.text.trimEnd());
      Deno.exit(0);
    }
    return r.values;
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}

/** One line of `name=value` pairs, to log the effective settings of a run. */
export function formatValues<F extends FlagSpecs>(spec: CliSpec<F>, values: FlagValues<F>): string {
  return Object.keys(spec.flags).map((k) => `${flagName(k)}=${values[k]}`).join(" ");
}
