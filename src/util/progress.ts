/**
 * A terminal progress bar for long runs: step count, loss, accuracy (and any other metric),
 * steps per second and the estimated time left.
 *
 * On a terminal it redraws one line in place (at most every `redrawMs`); elsewhere (CI logs, files)
 * it prints a plain line every `every` steps. Metrics can arrive later than steps (they are read
 * back from the GPU asynchronously): {@link Progress.update} takes the step, and metrics when known.
 *
 * @example
 * ```ts
 * import { Progress } from "./src/util/progress.ts";
 * const bar = new Progress({ total: 1000, label: "train" });
 * for (let step = 1; step <= 1000; step++) bar.update(step, step % 50 === 0 ? { loss: 1 / step } : undefined);
 * bar.done();
 * ```
 */

/** Metric values by name; `loss` and `acc` (a fraction, shown as a percentage) are formatted specially. */
export type Metrics = Record<string, number>;

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Number of steps of the whole run. */
  total: number;
  /** Short name printed before the bar. */
  label?: string;
  /** Without a terminal: print one line every this many steps (default: about 20 lines per run). */
  every?: number;
  /** Output function (default: write to stderr). */
  write?: (text: string) => void;
  /** Whether to redraw in place (default: stderr is a terminal). */
  tty?: boolean;
  /** Terminal width in columns (default: the console's, or 100). */
  columns?: number;
  /** Clock in milliseconds (default: `performance.now`), for tests. */
  now?: () => number;
  /** Minimum time between two redraws on a terminal (default 100 ms). */
  redrawMs?: number;
  /** Steps already done when the bar starts (resumed runs): rates count only the new ones. */
  start?: number;
}

const encoder = new TextEncoder();

function defaultWrite(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns || 100;
  } catch {
    return 100;
  }
}

/** `75` → `"1m15s"`, `3725` → `"1h02m"`, `9.4` → `"9s"`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(s / 3600);
  return `${h}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Formats one metric: `loss 0.1234`, `acc 97.5%`, others with 4 significant digits. */
export function formatMetric(name: string, v: number): string {
  if (!Number.isFinite(v)) return `${name} ${v}`;
  if (name === "acc" || name.endsWith("_acc") || name.endsWith("Acc")) {
    return `${name} ${(v * 100).toFixed(1)}%`;
  }
  if (name === "loss" || name.endsWith("_loss") || name.endsWith("Loss")) return `${name} ${v.toFixed(4)}`;
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return `${name} ${v.toExponential(2)}`;
  return `${name} ${Number(v.toPrecision(4))}`;
}

function formatRate(r: number): string {
  if (!Number.isFinite(r) || r <= 0) return "- it/s";
  if (r >= 100) return `${r.toFixed(0)} it/s`;
  if (r >= 1) return `${r.toFixed(1)} it/s`;
  return `${(1 / r).toFixed(1)} s/it`;
}

/** A progress bar; see the module documentation. */
export class Progress {
  /** Number of steps of the whole run. */
  readonly total: number;
  /** Name printed before the bar. */
  readonly label: string;
  /** Without a terminal: steps between two printed lines. */
  readonly every: number;
  /** Whether the bar redraws in place. */
  readonly tty: boolean;
  #write: (text: string) => void;
  #columns: number;
  #now: () => number;
  #redrawMs: number;
  #start: number;
  #startStep: number;
  #step: number;
  #metrics: Metrics = {};
  #lastDraw = -Infinity;
  #lastPrinted: number;
  #samples: [number, number][] = [];
  #finished = false;
  #drawn = false;

  /** Starts the clock; nothing is printed until the first {@link Progress.update}. */
  constructor(opts: ProgressOptions) {
    if (!(opts.total >= 0)) throw new Error(`Progress: total must be ≥ 0, got ${opts.total}`);
    this.total = opts.total;
    this.label = opts.label ?? "";
    this.every = Math.max(1, Math.floor(opts.every ?? Math.ceil(opts.total / 20)));
    this.tty = opts.tty ?? isTerminal();
    this.#write = opts.write ?? defaultWrite;
    this.#columns = opts.columns ?? (this.tty ? consoleColumns() : 100);
    this.#now = opts.now ?? (() => performance.now());
    this.#redrawMs = opts.redrawMs ?? 100;
    this.#start = this.#now();
    this.#startStep = this.#step = opts.start ?? 0;
    this.#lastPrinted = this.#step;
    this.#samples.push([this.#start, this.#step]);
  }

  /** The last step reported. */
  get step(): number {
    return this.#step;
  }

  /** The latest value of every metric reported so far. */
  get metrics(): Metrics {
    return { ...this.#metrics };
  }

  /** Seconds since the bar was created. */
  get elapsed(): number {
    return (this.#now() - this.#start) / 1000;
  }

  /** Steps per second over the last few seconds (over the whole run early on). */
  get rate(): number {
    const t = this.#now();
    const first = this.#samples[0];
    const dt = (t - first[0]) / 1000;
    if (dt <= 0) return 0;
    return (this.#step - first[1]) / dt;
  }

  /** Estimated seconds until `total` at the current rate. */
  get eta(): number {
    const r = this.rate;
    return r > 0 ? (this.total - this.#step) / r : Infinity;
  }

  /** Reports that `step` steps are done, with metrics when known (they stay shown until replaced). */
  update(step: number, metrics?: Metrics): void {
    if (this.#finished) return;
    const now = this.#now();
    if (step !== this.#step) {
      this.#step = step;
      this.#samples.push([now, step]);
      // Keep a window of about 5 s (at least two samples) for the rate.
      while (this.#samples.length > 2 && now - this.#samples[1][0] > 5000) this.#samples.shift();
    }
    if (metrics) Object.assign(this.#metrics, metrics);
    if (this.tty) {
      if (now - this.#lastDraw >= this.#redrawMs) {
        this.#lastDraw = now;
        this.#redraw();
      }
    } else if (Math.floor(step / this.every) > Math.floor(this.#lastPrinted / this.every)) {
      this.#lastPrinted = step;
      this.#write(this.line() + "\n");
    }
  }

  /** Updates the metrics without advancing (e.g. a late readback of an earlier step). */
  setMetrics(metrics: Metrics): void {
    Object.assign(this.#metrics, metrics);
    if (this.tty) this.update(this.#step);
  }

  /** Prints a message above the bar without breaking it. */
  log(message: string): void {
    if (this.tty && this.#drawn) this.#write("\r\x1b[K" + message + "\n");
    else this.#write(message + "\n");
    if (this.tty && this.#drawn) this.#redraw();
  }

  /** Finishes the bar: draws the final state and a summary, then ends the line. */
  done(metrics?: Metrics): void {
    if (this.#finished) return;
    if (metrics) Object.assign(this.#metrics, metrics);
    this.#finished = true;
    const steps = this.#step - this.#startStep;
    const secs = this.elapsed;
    const summary = `${this.label ? this.label + " " : ""}done: ${this.#step}/${this.total} steps in ` +
      `${formatDuration(secs)} (${formatRate(secs > 0 ? steps / secs : 0)})` + this.#metricText();
    if (this.tty) this.#write("\r\x1b[K" + summary + "\n");
    else this.#write(summary + "\n");
  }

  #metricText(): string {
    const parts = Object.entries(this.#metrics).map(([k, v]) => formatMetric(k, v));
    return parts.length ? " | " + parts.join(" | ") : "";
  }

  /** The status as one plain line (what non-terminal output prints). */
  line(): string {
    const pct = this.total > 0 ? Math.min(100, (100 * this.#step) / this.total) : 100;
    const w = String(this.total).length;
    return `${this.label ? this.label + " " : ""}step ${String(this.#step).padStart(w)}/${this.total} ` +
      `(${pct.toFixed(0).padStart(3)}%)${this.#metricText()} | ${formatRate(this.rate)} | ` +
      `ETA ${formatDuration(this.eta)}`;
  }

  /** The bar as drawn on a terminal, fitted to `columns`. */
  bar(): string {
    const frac = this.total > 0 ? Math.min(1, this.#step / this.total) : 1;
    const w = String(this.total).length;
    const head = `${this.label ? this.label + " " : ""}`;
    const tail = ` ${String(this.#step).padStart(w)}/${this.total} ${(frac * 100).toFixed(0).padStart(3)}%` +
      `${this.#metricText()} | ${formatRate(this.rate)} | ETA ${formatDuration(this.eta)}`;
    const room = this.#columns - 1 - head.length - tail.length - 2;
    if (room < 10) return (head + tail.trimStart()).slice(0, this.#columns - 1);
    const width = Math.min(30, room);
    const full = Math.floor(frac * width);
    const bar = "█".repeat(full) + (full < width ? "░".repeat(width - full) : "");
    return `${head}[${bar}]${tail}`;
  }

  #redraw(): void {
    this.#drawn = true;
    this.#write("\r\x1b[K" + this.bar());
  }
}
