/**
 * One update dispatch for a whole parameter group. The group's parameters move into one arena
 * (each parameter tensor becomes a view of it, so every holder of the tensor follows) and its
 * state tensors (e.g. AdamW's moments) into one arena per state name; per step the gradients are
 * copied into a scratch arena (a buffer copy each, ~12 µs with its barrier on lavapipe) and one
 * kernel updates everything. A dispatch costs lavapipe's queue thread ~40 µs however small, so
 * the 29 parameters of the CTM bench took ~3 ms per step as 29 dispatches. The arithmetic per
 * element is the same kernel's: results are bit-identical.
 */
import { recorder } from "../gpu/recorder.ts";
import { zeros } from "../ops/creation.ts";
import { mapInto } from "../ops/map.ts";
import { keep } from "../tensor/scope.ts";
import { contiguousStrides, type Tensor } from "../tensor/tensor.ts";
import type { ParamState } from "./optimizer.ts";

/** Arenas of one parameter group (build with {@link FlatGroup.build}). */
export class FlatGroup {
  /** Element offsets of the parameters in every arena (multiples of 4). */
  readonly offsets: number[];
  /** Elements per arena (a multiple of 4). */
  readonly total: number;
  /** The parameters' arena and the gradients' scratch arena. */
  readonly P: Tensor;
  readonly G: Tensor;
  /** State arenas by name. */
  readonly arenas: Map<string, Tensor>;
  #views: Map<string, Tensor[]>;
  #adopted = new Map<string, Tensor[]>();

  private constructor(readonly params: Tensor[], names: string[]) {
    let off = 0;
    this.offsets = params.map((p) => {
      const o = off;
      off += Math.ceil(p.size / 4) * 4;
      return o;
    });
    this.total = Math.max(off, 4);
    this.P = keep(zeros([this.total]));
    this.G = keep(zeros([this.total]));
    this.arenas = new Map(names.map((n) => [n, keep(zeros([this.total]))]));
    const view = (a: Tensor, p: Tensor, i: number) =>
      a.alias(p.shape, contiguousStrides(p.shape), this.offsets[i]);
    this.#views = new Map(names.map((n) => [n, params.map((p, i) => view(this.arenas.get(n)!, p, i))]));
  }

  /** Whether `params` can move into an arena: contiguous, f32, none sharing its memory. */
  static movable(params: Tensor[]): boolean {
    return params.every((p) => p.isContiguous && p.dtype === "f32" && p.storage.refs === 1) &&
      new Set(params.map((p) => p.storage)).size === params.length;
  }

  /** Arenas for `params` (see {@link movable}) with state tensors `names`; the parameters move in. */
  static build(params: Tensor[], names: string[]): FlatGroup {
    const f = new FlatGroup(params, names);
    params.forEach((p, i) => {
      const home = f.P.alias(p.shape, contiguousStrides(p.shape), f.offsets[i]);
      mapInto(home, "x0", [p]);
      home.dispose();
      p.moveTo(f.P.storage, f.offsets[i]);
    });
    return f;
  }

  /** Whether the parameters still live in the arena (another optimizer may have moved them). */
  atHome(): boolean {
    return this.params.every((p, i) => p.storage === this.P.storage && p.offset === this.offsets[i]);
  }

  /** Whether `states` are the views last handed out by {@link adopt} (a checkpoint load replaces them). */
  owns(states: (ParamState | undefined)[]): boolean {
    if (this.#adopted.size !== this.#views.size) return false;
    return states.every((st, i) =>
      st !== undefined && [...this.#adopted].every(([n, vs]) => st.tensors.get(n) === vs[i])
    );
  }

  /**
   * New per-parameter states on fresh views of the arenas: `existing` state is copied in (and
   * freed), missing state starts at zero with step 0.
   */
  adopt(existing: (p: Tensor) => ParamState | undefined): ParamState[] {
    this.#adopted = new Map([...this.#views.keys()].map((n) => [n, [] as Tensor[]]));
    return this.params.map((p, i) => {
      const old = existing(p);
      const tensors = new Map<string, Tensor>();
      for (const [n, vs] of this.#views) {
        const view = keep(vs[i].alias());
        const prev = old?.tensors.get(n);
        if (prev) {
          mapInto(view, "x0", [prev]);
          prev.dispose();
        }
        tensors.set(n, view);
        this.#adopted.get(n)!.push(view);
      }
      return { step: old?.step ?? 0, tensors };
    });
  }

  /** Records copies of the gradients (contiguous) into `G`. */
  copyGrads(grads: Tensor[]): void {
    const rec = recorder();
    grads.forEach((g, i) => rec.copy(g.buffer, g.offset * 4, this.G.buffer, this.offsets[i] * 4, g.size * 4));
  }

  /** Frees the handles on the arenas; parameters and adopted state views keep their memory alive. */
  dispose(): void {
    for (const t of [this.P, this.G, ...this.arenas.values()]) t.dispose();
    for (const vs of this.#views.values()) for (const v of vs) v.dispose();
  }
}
