/**
 * Shared base of the optimizers: parameter groups with their own hyperparameters, per-parameter
 * state tensors kept on the GPU, `zeroGrad`, and checkpoints as JSON-able metadata plus named
 * tensors (ready for safetensors: tensors as the data, `JSON.stringify(meta)` as metadata).
 */
import { gpu } from "../gpu/device.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { zeros } from "../ops/creation.ts";
import { mapN } from "../ops/map.ts";
import { contiguous } from "../ops/views.ts";
import { keep } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { FlatGroup } from "./flat_group.ts";

/** Hyperparameters every optimizer has. */
export interface BaseHyper {
  /** Learning rate (schedulers overwrite it every step). */
  lr: number;
}

/** A parameter group: its tensors and its own hyperparameters. */
export type ParamGroup<H extends BaseHyper> = H & { params: Tensor[] };

/** A parameter group as given to a constructor: hyperparameters not given come from the defaults. */
export type ParamGroupInput<H extends BaseHyper> = Partial<H> & { params: Tensor[] };

/** JSON-able part of an optimizer checkpoint. */
export interface OptimizerMeta {
  /** Optimizer class, e.g. "AdamW". */
  type: string;
  /** Hyperparameters per group, with `params` as global parameter indices (PyTorch's layout). */
  paramGroups: Record<string, unknown>[];
  /** Step count per parameter index that has state. */
  state: Record<string, { step: number }>;
}

/** An optimizer checkpoint: metadata and the state tensors named `state.<index>.<name>`. */
export interface OptimizerStateDict {
  /** Hyperparameters and step counts (JSON-able). */
  meta: OptimizerMeta;
  /** State tensors (the optimizer's own when returned by `stateDict`: do not dispose them). */
  tensors: Map<string, Tensor>;
}

/** Per-parameter state: the number of updates applied and the state tensors. */
export interface ParamState {
  /** Updates applied to this parameter. */
  step: number;
  /** State tensors by name (e.g. `exp_avg`). */
  tensors: Map<string, Tensor>;
}

/** Anything a learning-rate scheduler can drive. */
export interface LrTarget {
  /** Groups whose `lr` the scheduler sets. */
  readonly paramGroups: { lr: number }[];
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Base class of {@link AdamW} and {@link SGD}. */
export abstract class Optimizer<H extends BaseHyper> implements LrTarget {
  /** The parameter groups (hyperparameters may be changed between steps). */
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Hyperparameters for groups that do not set their own. */
  readonly defaults: H;
  /** Per-parameter state, created on a parameter's first update. */
  protected readonly state: Map<Tensor, ParamState> = new Map();
  /** Flat arenas of groups updated in one dispatch ({@link stepFlat}). */
  #flat = new Map<ParamGroup<H>, FlatGroup>();
  /** Class name stored in checkpoints. */
  abstract readonly type: string;

  /** `params` is a list of tensors (one group) or a list of groups. */
  constructor(params: Tensor[] | ParamGroupInput<H>[], defaults: H) {
    this.defaults = { ...defaults };
    const groups = params.length > 0 && !("params" in params[0])
      ? [{ params: params as Tensor[] } as ParamGroupInput<H>]
      : (params as ParamGroupInput<H>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group; a parameter may belong to one group only. */
  addParamGroup(group: ParamGroupInput<H>): void {
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    for (const p of group.params) {
      if (seen.has(p)) {
        throw new Error(`${this.constructor.name}: a parameter appears in more than one group`);
      }
      if (p.dtype !== "f32") {
        throw new Error(`${this.constructor.name}: parameters must be f32, got ${p.dtype}`);
      }
      seen.add(p);
    }
    this.paramGroups.push({ ...this.defaults, ...group, params: [...group.params] } as ParamGroup<H>);
  }

  /** Applies one update to every parameter that has a gradient. */
  abstract step(): void;

  /** Names of the state tensors of one parameter, in order. */
  protected abstract stateNames(group: ParamGroup<H>): string[];

  /** The state of `p`, created (zero tensors) on first use. */
  protected stateOf(p: Tensor, group: ParamGroup<H>): ParamState {
    let st = this.state.get(p);
    if (!st) {
      st = { step: 0, tensors: new Map(this.stateNames(group).map((n) => [n, keep(zeros(p.shape))])) };
      this.state.set(p, st);
    }
    return st;
  }

  /**
   * Records one fused update kernel for `p`: binds `p`, its gradient and `extra` state tensors
   * and passes `params` after the element count and offsets. `vecSpec`, the same update over
   * `vec4` bindings, runs instead (counts and offsets in vec4s) when sizes and offsets allow.
   */
  protected launchUpdate(
    spec: KernelSpec,
    wg: number,
    p: Tensor,
    extra: Tensor[],
    params: number[],
    vecSpec?: KernelSpec,
  ): void {
    const grad = p.grad!;
    if (grad.size !== p.size) {
      throw new Error(
        `${this.constructor.name}: gradient ${fmt(grad.shape)} does not match parameter ${fmt(p.shape)}`,
      );
    }
    if (!p.isContiguous) throw new Error(`${this.constructor.name}: parameters must be contiguous`);
    const g = grad.isContiguous ? grad : contiguous(grad);
    const offs = [p.offset, g.offset, ...extra.map((t) => t.offset)];
    // Four elements per thread when everything is vec4-aligned: lavapipe pays per load, not per byte.
    const v = vecSpec && p.size % 4 === 0 && offs.every((o) => o % 4 === 0) ? 4 : 1;
    launch(
      v === 4 ? vecSpec! : spec,
      [p.buffer, g.buffer, ...extra.map((t) => t.buffer)],
      [p.size / v, ...offs.map((o) => o / v), ...params],
      grid1d(Math.ceil(p.size / v / wg)),
    );
    if (g !== grad) g.dispose();
  }

  /**
   * Updates all of `group` with one dispatch of `vecSpec` over flat arenas (see `flat_group.ts`)
   * when every parameter has a gradient and all have taken the same number of steps; returns
   * false, doing nothing, otherwise (the caller then updates parameter by parameter). `hyper`
   * gives the kernel parameters after the count and offsets, for the group's new step number.
   */
  protected stepFlat(
    group: ParamGroup<H>,
    vecSpec: KernelSpec,
    wg: number,
    hyper: (step: number) => number[],
  ): boolean {
    const ps = group.params;
    if (ps.length < 2 || ps.some((p) => !p.grad || p.grad.size !== p.size || !p.isContiguous)) return false;
    const steps = ps.map((p) => this.state.get(p)?.step ?? 0);
    if (steps.some((s) => s !== steps[0])) return false;
    let flat = this.#flat.get(group);
    if (
      !flat || flat.params.length !== ps.length || flat.params.some((p, i) => p !== ps[i]) || !flat.atHome()
    ) {
      const words = ps.reduce((a, p) => a + Math.ceil(p.size / 4) * 4, 0);
      if (words * 4 > gpu().limits.maxStorageBufferBindingSize || !FlatGroup.movable(ps)) return false;
      flat?.dispose();
      this.#flat.set(group, flat = FlatGroup.build(ps, this.stateNames(group)));
    }
    if (!flat.owns(ps.map((p) => this.state.get(p)))) {
      const states = flat.adopt((p) => this.state.get(p));
      ps.forEach((p, i) => this.state.set(p, states[i]));
    }
    const grads = ps.map((p) => (p.grad!.isContiguous ? p.grad! : contiguous(p.grad!)));
    flat.copyGrads(grads);
    grads.forEach((g, i) => g !== ps[i].grad && g.dispose());
    const step = steps[0] + 1;
    const names = this.stateNames(group);
    launch(
      vecSpec,
      [flat.P.buffer, flat.G.buffer, ...names.map((n) => flat.arenas.get(n)!.buffer)],
      [flat.total / 4, 0, 0, ...names.map(() => 0), ...hyper(step)],
      grid1d(Math.ceil(flat.total / 4 / wg)),
    );
    for (const p of ps) this.state.get(p)!.step = step;
    return true;
  }

  /** Drops the gradients of all parameters (sets them to null, like PyTorch's default). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** Sets the learning rate of every group. */
  setLr(lr: number): void {
    for (const g of this.paramGroups) g.lr = lr;
  }

  /** Hyperparameters, step counts and state tensors (the optimizer's own: do not dispose them). */
  stateDict(): OptimizerStateDict {
    const meta: OptimizerMeta = { type: this.type, paramGroups: [], state: {} };
    const tensors = new Map<string, Tensor>();
    let idx = 0;
    for (const g of this.paramGroups) {
      const { params, ...hyper } = g;
      const ids: number[] = [];
      for (const p of params) {
        const st = this.state.get(p);
        if (st) {
          meta.state[String(idx)] = { step: st.step };
          for (const [n, t] of st.tensors) tensors.set(`state.${idx}.${n}`, t);
        }
        ids.push(idx++);
      }
      meta.paramGroups.push({ ...structuredClone(hyper), params: ids });
    }
    return { meta, tensors };
  }

  /**
   * Restores a checkpoint taken from an optimizer over parameters of the same shapes, in the same
   * groups and order. Hyperparameters (including `lr`) are restored too. State tensors are copied.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const who = `${this.constructor.name}.loadStateDict`;
    const { meta, tensors } = sd;
    if (meta.type !== this.type) throw new Error(`${who}: checkpoint is for ${meta.type}, not ${this.type}`);
    if (meta.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `${who}: checkpoint has ${meta.paramGroups.length} parameter groups, optimizer has ${this.paramGroups.length}`,
      );
    }
    const all: [Tensor, ParamGroup<H>][] = [];
    meta.paramGroups.forEach((mg, gi) => {
      const n = (mg.params as number[]).length;
      const have = this.paramGroups[gi].params.length;
      if (n !== have) {
        throw new Error(`${who}: group ${gi} has ${n} parameters in the checkpoint, ${have} here`);
      }
      for (const p of this.paramGroups[gi].params) all.push([p, this.paramGroups[gi]]);
    });
    const restored = new Map<Tensor, ParamState>();
    const problems: string[] = [];
    const byIndex = new Map<number, Map<string, Tensor>>();
    for (const [k, t] of tensors) {
      const m = /^state\.(\d+)\.(.+)$/.exec(k);
      if (!m || !(m[1] in meta.state)) {
        problems.push(`unexpected tensor '${k}'`);
        continue;
      }
      const i = Number(m[1]);
      if (!byIndex.has(i)) byIndex.set(i, new Map());
      byIndex.get(i)!.set(m[2], t);
    }
    for (const [key, s] of Object.entries(meta.state)) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= all.length) {
        problems.push(`state for parameter ${key}, which does not exist`);
        continue;
      }
      const [p, group] = all[i];
      const st: ParamState = { step: s.step, tensors: byIndex.get(i) ?? new Map() };
      for (const n of this.stateNames(group)) {
        if (!st.tensors.has(n)) problems.push(`'state.${i}.${n}' is missing`);
      }
      for (const [n, t] of st.tensors) {
        if (t.ndim !== p.ndim || t.shape.some((d, k) => d !== p.shape[k])) {
          problems.push(`'state.${i}.${n}' has shape ${fmt(t.shape)}, parameter ${i} has ${fmt(p.shape)}`);
        }
      }
      restored.set(p, st);
    }
    if (problems.length) throw new Error(`${who}: ${problems.join("; ")}`);
    // Copy first: the sources may be this optimizer's own state tensors.
    const copied = [...restored].map(([p, st]) => {
      const copies = new Map([...st.tensors].map(([n, t]) => [n, keep(mapN("x0", [t]))]));
      return [p, { step: st.step, tensors: copies }] as const;
    });
    for (const st of this.state.values()) for (const t of st.tensors.values()) t.dispose();
    this.state.clear();
    for (const [p, st] of copied) this.state.set(p, st);
    meta.paramGroups.forEach((mg, gi) => {
      const { params: _params, ...hyper } = mg;
      Object.assign(this.paramGroups[gi], structuredClone(hyper));
    });
  }

  /** Frees the state tensors (parameters are not touched). */
  dispose(): void {
    for (const st of this.state.values()) for (const t of st.tensors.values()) t.dispose();
    this.state.clear();
    for (const f of this.#flat.values()) f.dispose();
    this.#flat.clear();
  }
}

/**
 * Splits named parameters into a decayed group and a no-decay group for names containing any of
 * `exclude` (the reference's `--weight_decay_exclusion_list`). With no exclusions or a zero decay
 * it returns one group.
 */
export function weightDecayGroups(
  named: Map<string, Tensor>,
  weightDecay: number,
  exclude: readonly string[] = [],
): { params: Tensor[]; weightDecay: number }[] {
  const all = [...named.values()];
  if (weightDecay === 0 || exclude.length === 0) return [{ params: all, weightDecay }];
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [n, p] of named) (exclude.some((e) => n.includes(e)) ? noDecay : decay).push(p);
  return [{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }];
}
