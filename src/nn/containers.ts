/**
 * Containers: `Sequential` (children named "0", "1", … and applied in order) and `ModuleList`
 * (numbered children without a forward), so state-dict keys read like PyTorch's
 * (`synapses.1.weight`, `down_projections.0.1.bias`).
 */
import type { Tensor } from "../tensor/tensor.ts";
import { Module } from "./module.ts";

/** A module whose forward maps one tensor to one tensor. */
export type UnaryModule = { forward(x: Tensor): Tensor } & Module;

/**
 * Applies its children in order; intermediate results are freed as it goes.
 *
 * @example
 * ```ts
 * import { initGpu, Sequential, Linear, LayerNorm, SiLU } from "./mod.ts";
 * await initGpu();
 * const block = new Sequential(new Linear(32), new LayerNorm(32), new SiLU());
 * // state-dict keys after the first forward: 0.weight, 0.bias, 1.weight, 1.bias
 * ```
 */
export class Sequential extends Module {
  #layers: UnaryModule[] = [];

  /** Creates the container from its layers (named "0", "1", …). */
  constructor(...layers: UnaryModule[]) {
    super();
    for (const l of layers) this.append(l);
  }

  /** Adds a layer at the end (named by its index); returns this. */
  append(layer: UnaryModule): this {
    this.registerModule(String(this.#layers.length), layer);
    this.#layers.push(layer);
    return this;
  }

  /** Number of layers. */
  get length(): number {
    return this.#layers.length;
  }

  /** Layer `i` (negative counts from the end). */
  at(i: number): UnaryModule {
    const l = this.#layers.at(i);
    if (!l) throw new Error(`Sequential: no layer ${i} (length ${this.#layers.length})`);
    return l;
  }

  /** Runs the layers in order; intermediates (not `x` nor the result) are disposed. */
  override forward(x: Tensor): Tensor {
    let h = x;
    for (const l of this.#layers) {
      const next = l.forward(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }

  /** Iterates over the layers. */
  [Symbol.iterator](): Iterator<UnaryModule> {
    return this.#layers[Symbol.iterator]();
  }
}

/** A numbered list of modules (PyTorch's `ModuleList`); it has no forward of its own. */
export class ModuleList<M extends Module = Module> extends Module {
  #items: M[] = [];

  /** Creates the list. */
  constructor(items: readonly M[] = []) {
    super();
    for (const m of items) this.append(m);
  }

  /** Adds a module at the end (named by its index); returns this. */
  append(m: M): this {
    this.registerModule(String(this.#items.length), m);
    this.#items.push(m);
    return this;
  }

  /** Number of modules. */
  get length(): number {
    return this.#items.length;
  }

  /** Module `i` (negative counts from the end). */
  at(i: number): M {
    const m = this.#items.at(i);
    if (!m) throw new Error(`ModuleList: no module ${i} (length ${this.#items.length})`);
    return m;
  }

  /** Not callable: iterate over the modules instead. */
  override forward(): never {
    throw new Error("ModuleList has no forward; call its modules");
  }

  /** Iterates over the modules. */
  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }
}
