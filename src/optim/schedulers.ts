/**
 * Learning-rate schedules stepped once per training iteration, as the reference trainers do.
 * Each computes the rate of every parameter group from that group's base rate (its `lr` when the
 * scheduler was created) in closed form, in float64, and writes it into the optimizer's groups.
 *
 * Usage per iteration: `optimizer.step(); scheduler.step();` (the rate for iteration t is set
 * before it runs, like PyTorch's schedulers).
 */
import type { LrTarget } from "./optimizer.ts";

/** JSON-able scheduler checkpoint. */
export interface SchedulerState {
  /** Scheduler class. */
  type: string;
  /** Steps taken. */
  step: number;
  /** Base rate per group. */
  baseLrs: number[];
}

/** Base of the schedules: holds the step counter and applies `lrAt` to the optimizer. */
export abstract class LRScheduler {
  /** Base learning rate per group. */
  readonly baseLrs: number[];
  /** Class name stored in checkpoints. */
  abstract readonly type: string;
  #t = 0;
  #target: LrTarget | null;

  /** `target`: an optimizer (its group rates become the base rates), or a plain base rate. */
  constructor(target: LrTarget | number) {
    if (typeof target === "number") {
      this.#target = null;
      this.baseLrs = [target];
    } else {
      this.#target = target;
      this.baseLrs = target.paramGroups.map((g) => g.lr);
    }
  }

  /** The rate at step `t` for a group whose base rate is `base`. */
  abstract lrAt(t: number, base: number): number;

  /** Writes the current rates into the optimizer (call at the end of subclass constructors). */
  protected apply(): void {
    const groups = this.#target?.paramGroups;
    if (!groups) return;
    if (groups.length !== this.baseLrs.length) {
      throw new Error(
        `${this.type}: the optimizer has ${groups.length} groups, the scheduler ${this.baseLrs.length}`,
      );
    }
    groups.forEach((g, i) => (g.lr = this.lrAt(this.#t, this.baseLrs[i])));
  }

  /** Steps taken so far (the iteration whose rate is current). */
  get lastStep(): number {
    return this.#t;
  }

  /** Current rate of the first group. */
  get lr(): number {
    return this.lrAt(this.#t, this.baseLrs[0]);
  }

  /** Current rate of every group. */
  get lrs(): number[] {
    return this.baseLrs.map((b) => this.lrAt(this.#t, b));
  }

  /** Advances one iteration and updates the optimizer's rates. */
  step(): void {
    this.#t++;
    this.apply();
  }

  /** Step count and base rates. */
  stateDict(): SchedulerState {
    return { type: this.type, step: this.#t, baseLrs: [...this.baseLrs] };
  }

  /** Restores a checkpoint and re-applies the rate. */
  loadStateDict(s: SchedulerState): void {
    if (s.type !== this.type) throw new Error(`${this.type}.loadStateDict: checkpoint is for ${s.type}`);
    if (s.baseLrs.length !== this.baseLrs.length) {
      throw new Error(
        `${this.type}.loadStateDict: ${s.baseLrs.length} groups in the checkpoint, ${this.baseLrs.length} here`,
      );
    }
    if (!Number.isInteger(s.step) || s.step < 0) {
      throw new Error(`${this.type}.loadStateDict: bad step ${s.step}`);
    }
    this.#t = s.step;
    this.baseLrs.splice(0, this.baseLrs.length, ...s.baseLrs);
    this.apply();
  }
}

function checkSteps(name: string, v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(`${name}: ${what} must be a non-negative integer, got ${v}`);
  }
}

/** Linear warmup factor of the reference: `t/W` for `t < W`, then 1. */
export function warmupFactor(t: number, warmupSteps: number): number {
  return t < warmupSteps ? t / warmupSteps : 1;
}

/** Linear warmup then constant: `lr = base·t/W` for `t < W`, then `base` (reference `warmup` + LambdaLR). */
export class LinearWarmupLR extends LRScheduler {
  /** Checkpoint type tag. */
  readonly type = "LinearWarmupLR";
  /** Warmup steps W. */
  readonly warmupSteps: number;

  /** Creates the schedule and sets the rate for step 0. */
  constructor(target: LrTarget | number, warmupSteps: number) {
    super(target);
    checkSteps(this.type, warmupSteps, "warmupSteps");
    this.warmupSteps = warmupSteps;
    this.apply();
  }

  /** `base·t/W` below W, then base. */
  lrAt(t: number, base: number): number {
    return base * warmupFactor(t, this.warmupSteps);
  }
}

/** Options of {@link WarmupCosineLR}. */
export interface WarmupCosineOptions {
  /** Warmup steps W. */
  warmupSteps: number;
  /** Total steps Mx (> W): the cosine reaches `etaMin` there. */
  maxSteps: number;
  /** Rate at step 0 (default 1e-20, as the reference trainers pass). */
  warmupStartLr?: number;
  /** Final rate (default 1e-7, as the reference trainers pass). */
  etaMin?: number;
}

/**
 * The reference's `WarmupCosineAnnealingLR` as its trainers call it: `warmupStartLr` at step 0,
 * a linear rise reaching `base` at step W−1 (and W), then
 * `etaMin + (base − etaMin)·(1 + cos(π(t−W)/(Mx−W)))/2`, which keeps following the cosine
 * (rising again) after Mx like the recursive original. With W = 0 the original's recursion starts
 * from `warmupStartLr` instead of `base` (so the rate stays below `etaMin`); that quirk is
 * reproduced up to Mx (past Mx the original then jumps back towards `base`; not reproduced).
 */
export class WarmupCosineLR extends LRScheduler {
  /** Checkpoint type tag. */
  readonly type = "WarmupCosineLR";
  /** Warmup steps W. */
  readonly warmupSteps: number;
  /** Total steps Mx. */
  readonly maxSteps: number;
  /** Rate at step 0. */
  readonly warmupStartLr: number;
  /** Final rate. */
  readonly etaMin: number;

  /** Creates the schedule and sets the rate for step 0. */
  constructor(target: LrTarget | number, opts: WarmupCosineOptions) {
    super(target);
    checkSteps(this.type, opts.warmupSteps, "warmupSteps");
    checkSteps(this.type, opts.maxSteps, "maxSteps");
    if (opts.maxSteps <= opts.warmupSteps) {
      throw new Error(
        `${this.type}: maxSteps (${opts.maxSteps}) must exceed warmupSteps (${opts.warmupSteps})`,
      );
    }
    this.warmupSteps = opts.warmupSteps;
    this.maxSteps = opts.maxSteps;
    this.warmupStartLr = opts.warmupStartLr ?? 1e-20;
    this.etaMin = opts.etaMin ?? 1e-7;
    this.apply();
  }

  /** The closed form of the recursive original (see the class doc). */
  lrAt(t: number, base: number): number {
    const W = this.warmupSteps, s = this.warmupStartLr, e = this.etaMin;
    if (t === 0) return s;
    if (t < W) return s + (t * (base - s)) / (W - 1);
    if (t === W) return base;
    const top = W === 0 ? s : base;
    return e + ((top - e) * (1 + Math.cos((Math.PI * (t - W)) / (this.maxSteps - W)))) / 2;
  }
}

/** Options of {@link WarmupMultiStepLR}. */
export interface WarmupMultiStepOptions {
  /** Warmup steps W. */
  warmupSteps: number;
  /** Absolute steps at which the rate is multiplied by `gamma`. */
  milestones: readonly number[];
  /** Decay factor (default 0.1). */
  gamma?: number;
}

/**
 * The reference's `WarmupMultiStepLR`: `base·t/W` for `t < W`, then `base·γ^k` with k the number
 * of milestones ≤ t (a warmup LambdaLR chained with MultiStepLR(milestones − W)).
 */
export class WarmupMultiStepLR extends LRScheduler {
  /** Checkpoint type tag. */
  readonly type = "WarmupMultiStepLR";
  /** Warmup steps W. */
  readonly warmupSteps: number;
  /** Milestones (absolute steps). */
  readonly milestones: readonly number[];
  /** Decay factor. */
  readonly gamma: number;

  /** Creates the schedule and sets the rate for step 0. */
  constructor(target: LrTarget | number, opts: WarmupMultiStepOptions) {
    super(target);
    checkSteps(this.type, opts.warmupSteps, "warmupSteps");
    for (const m of opts.milestones) checkSteps(this.type, m, "milestones");
    this.warmupSteps = opts.warmupSteps;
    this.milestones = [...opts.milestones];
    this.gamma = opts.gamma ?? 0.1;
    this.apply();
  }

  /** Warmup, then step decay. */
  lrAt(t: number, base: number): number {
    if (t < this.warmupSteps) return (base * t) / this.warmupSteps;
    let k = 0;
    for (const m of this.milestones) if (m <= t) k++;
    return base * this.gamma ** k;
  }
}

/** Options of {@link CosineLR}. */
export interface CosineOptions {
  /** Steps of the half cosine period. */
  maxSteps: number;
  /** Final rate (default 0). */
  etaMin?: number;
}

/** Plain cosine annealing (PyTorch's CosineAnnealingLR closed form): `etaMin + (base − etaMin)(1 + cos(πt/T))/2`. */
export class CosineLR extends LRScheduler {
  /** Checkpoint type tag. */
  readonly type = "CosineLR";
  /** Half period T. */
  readonly maxSteps: number;
  /** Final rate. */
  readonly etaMin: number;

  /** Creates the schedule and sets the rate for step 0. */
  constructor(target: LrTarget | number, opts: CosineOptions) {
    super(target);
    checkSteps(this.type, opts.maxSteps, "maxSteps");
    if (opts.maxSteps === 0) throw new Error(`${this.type}: maxSteps must be positive`);
    this.maxSteps = opts.maxSteps;
    this.etaMin = opts.etaMin ?? 0;
    this.apply();
  }

  /** The cosine. */
  lrAt(t: number, base: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.maxSteps))) / 2;
  }
}
