/**
 * The project's small standard library: paths, files, command-line tokens and YAML.
 *
 * Everything here wraps `node:` built-ins, Deno APIs or `npm:yaml`, so that the rest of the code
 * imports one module; moving to `@std/*` later changes only this file.
 */
import * as nodePath from "node:path";
import { parseArgs as nodeParseArgs } from "node:util";
import { parse as yamlParse, stringify as yamlStringify } from "yaml";

// ---------------------------------------------------------------- paths

/** Joins path segments and normalises the result (`join("a", "../b")` → `"b"`). */
export function join(...parts: string[]): string {
  return nodePath.join(...parts);
}

/** The directory part of a path (`dirname("a/b/c.txt")` → `"a/b"`). */
export function dirname(path: string): string {
  return nodePath.dirname(path);
}

/** The last part of a path, without `ext` when it ends with it (`basename("a/b.yaml", ".yaml")` → `"b"`). */
export function basename(path: string, ext?: string): string {
  return nodePath.basename(path, ext);
}

/** Resolves segments to an absolute path against the current directory. */
export function resolve(...parts: string[]): string {
  return nodePath.resolve(...parts);
}

// ---------------------------------------------------------------- files

/** True when `path` exists (file, directory or anything else); false when it does not. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Synchronous {@link exists}. */
export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Creates a directory and its parents if missing (no error when it already exists). */
export async function ensureDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true });
}

/** Reads a UTF-8 text file. */
export function readText(path: string): Promise<string> {
  return Deno.readTextFile(path);
}

/** Synchronous {@link readText}. */
export function readTextSync(path: string): string {
  return Deno.readTextFileSync(path);
}

/** Writes a UTF-8 text file, creating its directory when missing. */
export async function writeText(path: string, text: string): Promise<void> {
  await ensureDir(dirname(path));
  await Deno.writeTextFile(path, text);
}

/**
 * Writes a file atomically: the data goes to a temporary file beside `path`, which is then renamed
 * over it, so readers see either the old or the new content, never a half-written file (an
 * interrupted checkpoint save leaves the previous checkpoint intact).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await ensureDir(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

// ---------------------------------------------------------------- command line

/** Options of {@link parseArgs} (those of `node:util`'s `parseArgs`). */
export interface ParseArgsOptionSpec {
  /** `boolean` options take no value; `string` options take one. */
  type: "string" | "boolean";
  /** One-letter alias (`-h`). */
  short?: string;
  /** Whether the option may repeat (values become an array). */
  multiple?: boolean;
}

/** One token of a parsed command line (see {@link parseArgs}). */
export type ArgToken =
  | {
    kind: "option";
    index: number;
    name: string;
    rawName: string;
    value: string | undefined;
    inlineValue: boolean | undefined;
  }
  | { kind: "positional"; index: number; value: string }
  | { kind: "option-terminator"; index: number };

/** What {@link parseArgs} returns. */
export interface ParsedArgs {
  /** Option values by name. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** Arguments that are not options. */
  positionals: string[];
  /** Every token in order, for callers that validate themselves. */
  tokens: ArgToken[];
}

/**
 * Splits command-line arguments into options, positionals and tokens (`node:util` `parseArgs` in
 * non-strict mode: callers validate unknown options and values themselves, see `src/util/cli.ts`).
 */
export function parseArgs(args: string[], options: Record<string, ParseArgsOptionSpec>): ParsedArgs {
  const r = nodeParseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  return {
    values: r.values as ParsedArgs["values"],
    positionals: r.positionals,
    tokens: (r.tokens ?? []) as ArgToken[],
  };
}

// ---------------------------------------------------------------- YAML

/** Parses YAML text (a YAML syntax error throws with line and column). */
export function parseYaml(text: string): unknown {
  return yamlParse(text);
}

/** Serialises a value as YAML. */
export function stringifyYaml(value: unknown): string {
  return yamlStringify(value);
}
