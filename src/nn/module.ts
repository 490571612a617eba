/**
 * `Module`: the PyTorch-like base of every layer. A module owns named parameters (leaf tensors
 * with gradients), named buffers (state without gradients, e.g. index tables) and named child
 * modules; their dotted names (`synapses.1.weight`) are the keys of its state dict, which is how
 * weights move to and from the PyTorch reference.
 */
import { mapInto } from "../ops/map.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep } from "../tensor/scope.ts";
import type { Shape, Tensor } from "../tensor/tensor.ts";

/** A state dict given as a Map or a plain record of tensors. */
export type TensorMapLike = Map<string, Tensor> | Record<string, Tensor>;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** When true (default), missing and unexpected names are errors; shape mismatches always are. */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did not load (always empty when strict). */
export interface LoadStateDictResult {
  /** Names the module has but the state dict lacks. */
  missingKeys: string[];
  /** Names in the state dict the module does not have. */
  unexpectedKeys: string[];
}

/** Turns a Map or record of tensors into a Map. */
export function toTensorMap(m: TensorMapLike): Map<string, Tensor> {
  return m instanceof Map ? m : new Map(Object.entries(m));
}

const fmt = (s: Shape) => `[${s.join(", ")}]`;

function checkName(kind: string, name: string): void {
  if (!name || name.includes(".")) {
    throw new Error(`${kind} name '${name}' must be non-empty and contain no '.'`);
  }
}

/**
 * Base class of layers and models. Subclasses register their parameters, buffers and children in
 * the constructor (names as in the PyTorch reference) and implement `forward`.
 *
 * @example
 * ```ts
 * import { initGpu, Module, Linear, type Tensor } from "./mod.ts";
 * await initGpu();
 * class Head extends Module {
 *   fc = this.registerModule("fc", new Linear(10, { inFeatures: 4 }));
 *   override forward(x: Tensor): Tensor { return this.fc.forward(x); }
 * }
 * const names = [...new Head().stateDict().keys()]; // ["fc.weight", "fc.bias"]
 * ```
 */
export abstract class Module {
  /** True in training mode (dropout active); set through {@link Module.train} / {@link Module.eval}. */
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #nonPersistent = new Set<string>();
  readonly #children = new Map<string, Module>();

  /** Runs the module. Subclasses narrow the signature, e.g. `forward(x: Tensor): Tensor`. */
  abstract forward(...args: unknown[]): unknown;

  #checkFree(kind: string, name: string): void {
    checkName(kind, name);
    const taken = (this.#params.has(name) && kind !== "parameter") ||
      (this.#buffers.has(name) && kind !== "buffer") || (this.#children.has(name) && kind !== "module");
    if (taken) throw new Error(`${kind} name '${name}' is already used by another member of this module`);
  }

  /**
   * Registers (or replaces) a parameter: marks `t` as a gradient leaf and `keep`s it so scopes
   * never free it. Returns `t`.
   */
  registerParameter(name: string, t: Tensor): Tensor {
    this.#checkFree("parameter", name);
    const old = this.#params.get(name);
    if (old && old !== t) old.dispose();
    this.#params.set(name, keep(t.requireGrad()));
    return t;
  }

  /** Registers (or replaces) a buffer; non-persistent buffers stay out of the state dict. Returns `t`. */
  registerBuffer(name: string, t: Tensor, persistent = true): Tensor {
    this.#checkFree("buffer", name);
    const old = this.#buffers.get(name);
    if (old && old !== t) old.dispose();
    this.#buffers.set(name, keep(t));
    if (persistent) this.#nonPersistent.delete(name);
    else this.#nonPersistent.add(name);
    return t;
  }

  /** Registers a child module under `name` (its state-dict prefix). Returns the child. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.#checkFree("module", name);
    this.#children.set(name, m);
    return m;
  }

  /** This module's own parameter `name` (not a child's); throws if absent. */
  getParameter(name: string): Tensor {
    const t = this.#params.get(name);
    if (!t) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return t;
  }

  /** This module's own parameter `name`, or null. */
  findParameter(name: string): Tensor | null {
    return this.#params.get(name) ?? null;
  }

  /** This module's own buffer `name`; throws if absent. */
  getBuffer(name: string): Tensor {
    const t = this.#buffers.get(name);
    if (!t) throw new Error(`${this.constructor.name} has no buffer '${name}'`);
    return t;
  }

  /** Direct children by name, in registration order. */
  namedChildren(): Map<string, Module> {
    return new Map(this.#children);
  }

  /** This module (name "") and all descendants by dotted name, pre-order. */
  namedModules(prefix = ""): Map<string, Module> {
    const out = new Map<string, Module>([[prefix, this]]);
    for (const [n, c] of this.#children) {
      for (const [k, m] of c.namedModules(prefix ? `${prefix}.${n}` : n)) out.set(k, m);
    }
    return out;
  }

  /** All parameters by dotted name: each module's own first, then its children's (PyTorch order). */
  namedParameters(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.#params) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.set(mp ? `${mp}.${n}` : n, t);
      }
    }
    return out;
  }

  /** All buffers by dotted name (including non-persistent ones). */
  namedBuffers(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.#buffers) out.set(mp ? `${mp}.${n}` : n, t);
    }
    return out;
  }

  /** All parameters (unique), e.g. for an optimizer. Lazy layers appear after their first forward. */
  parameters(): Tensor[] {
    return [...this.namedParameters().values()];
  }

  /** Total number of parameter elements. */
  parameterCount(): number {
    let n = 0;
    for (const t of this.parameters()) n += t.size;
    return n;
  }

  /**
   * Parameters and persistent buffers by dotted name, each module's parameters then its buffers,
   * then its children (PyTorch's order). The tensors are the module's own: do not dispose them.
   */
  stateDict(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
    for (const [n, t] of this.#params) out.set(key(n), t);
    for (const [n, t] of this.#buffers) if (!this.#nonPersistent.has(n)) out.set(key(n), t);
    for (const [n, c] of this.#children) for (const [k, t] of c.stateDict(key(n))) out.set(k, t);
    return out;
  }

  /**
   * Hook for lazy modules: called by {@link Module.loadStateDict} with this module's prefix (with a
   * trailing dot, or "") before names are compared, so a lazy layer can materialise its parameters
   * from the shapes found in the state dict. The default does nothing.
   */
  protected prepareLoad(_prefix: string, _state: Map<string, Tensor>): void {}

  /**
   * Copies tensors into this module's parameters and buffers (on the GPU; the sources may be
   * disposed afterwards). Everything is checked before anything is copied: wrong shapes are
   * always an error, missing and unexpected names are errors when `strict` (the default). Errors
   * name every offending tensor.
   */
  loadStateDict(state: TensorMapLike, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const src = toTensorMap(state);
    for (const [p, m] of this.namedModules()) m.prepareLoad(p ? `${p}.` : "", src);
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    for (const [k, dst] of own) {
      const s = src.get(k);
      if (!s) continue;
      if (s.disposed) problems.push(`'${k}' in the state dict was disposed`);
      else if (s.shape.length !== dst.shape.length || s.shape.some((d, i) => d !== dst.shape[i])) {
        problems.push(
          `'${k}' has shape ${fmt(s.shape)} in the state dict but ${fmt(dst.shape)} in the model`,
        );
      }
    }
    if (strict && missingKeys.length) problems.push(`missing from the state dict: ${missingKeys.join(", ")}`);
    if (strict && unexpectedKeys.length) {
      problems.push(`unexpected in the state dict: ${unexpectedKeys.join(", ")}`);
    }
    if (problems.length) {
      throw new Error(`loadStateDict into ${this.constructor.name}: ${problems.join("; ")}`);
    }
    noGrad(() => {
      for (const [k, dst] of own) {
        const s = src.get(k);
        if (!s) continue;
        mapInto(dst, s.dtype === dst.dtype ? "x0" : `${dst.dtype}(x0)`, [s]);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and all descendants; returns this. */
  train(mode = true): this {
    for (const m of this.namedModules().values()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode (`train(false)`); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Drops the gradients of all parameters (sets them to null, like PyTorch's default). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees all parameters, buffers (and their gradients) of this module and its descendants. */
  dispose(): void {
    for (const m of this.namedModules().values()) {
      for (const t of m.#params.values()) t.dispose();
      for (const t of m.#buffers.values()) t.dispose();
    }
  }

  /** Short description with the parameter count. */
  toString(): string {
    return `${this.constructor.name}(${this.parameterCount()} parameters)`;
  }
}
