/**
 * Reverse-mode automatic differentiation over a tape of nodes.
 *
 * Each differentiable op calls {@link record} with its inputs, output and a backward closure. A
 * node holds the tensors it saved and its parent nodes by reference count, so a graph lives
 * exactly as long as some tensor computed from it, and `backward()` frees it (as PyTorch does
 * without `retain_graph`).
 */
import { hooks, type Tensor } from "./tensor.ts";
import { keep } from "./scope.ts";

let gradEnabled = true;
let nextNodeId = 1;

/** Gradient of one op: receives the output gradient, returns one gradient (or null) per input. */
export type BackwardFn = (grad: Tensor) => (Tensor | null)[];

/**
 * Gradient of a multi-output op: receives one gradient per output (null where no gradient
 * reached that output), returns one gradient (or null) per input.
 */
export type MultiBackwardFn = (grads: (Tensor | null)[]) => (Tensor | null)[];

/** One recorded op. */
export class Node {
  /** Creation order; a valid topological order of the graph. */
  readonly id = nextNodeId++;
  /** Parent nodes (for computed inputs) or leaf tensors (for leaves that require grad), per input. */
  readonly parents: ({ node: Node; index: number } | { leaf: Tensor } | null)[];
  /** Number of outputs (1 for ordinary ops). */
  readonly nOutputs: number;
  /** The gradient function over all outputs. */
  readonly multiFn: MultiBackwardFn;
  #saved: Tensor[];
  #refs = 1;
  #freed = false;

  /**
   * Creates a node (use {@link record} instead).
   * @param name op name, for error messages
   * @param inputs the op's inputs
   * @param fn maps the output gradient to input gradients
   * @param saved tensors kept alive for `fn`
   */
  constructor(
    readonly name: string,
    inputs: Tensor[],
    fn: BackwardFn | { multi: MultiBackwardFn; outputs: number },
    saved: Tensor[],
  ) {
    if (typeof fn === "function") {
      this.nOutputs = 1;
      this.multiFn = (gs) => fn(gs[0]!);
    } else {
      this.nOutputs = fn.outputs;
      this.multiFn = fn.multi;
    }
    this.parents = inputs.map((t) => {
      if (!t.requiresGrad) return null;
      if (t.node) {
        t.node.retain();
        return { node: t.node, index: t.outputIndex };
      }
      return { leaf: t };
    });
    this.#saved = saved;
  }

  /** True once backward ran through this node or it was released. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Adds a reference (a tensor or a child node). */
  retain(): void {
    this.#refs++;
  }

  /** Drops a reference; the last one frees saved tensors and releases parents. */
  release(): void {
    if (--this.#refs > 0) return;
    this.freeSaved();
    for (const p of this.parents) if (p && "node" in p) p.node.release();
  }

  /** Frees the tensors saved for backward. */
  freeSaved(): void {
    for (const t of this.#saved) t.dispose();
    this.#saved = [];
    this.#freed = true;
  }
}

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording the graph (evaluation, optimizer updates).
 *
 * @example
 * ```ts
 * import { noGrad } from "./mod.ts";
 * const y = noGrad(() => 1 + 1);
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: Tensor[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t.requiresGrad) return true;
  return false;
}

/**
 * Records an op: `out` was computed from `inputs`; `backward` maps dL/dout to dL/dinputs.
 * `saved` tensors are retained for backward (pass fresh handles from `t.alias()` or tensors the
 * op owns exclusively). Returns `out`. Does nothing when no input requires grad.
 */
export function record(
  name: string,
  inputs: Tensor[],
  out: Tensor,
  backward: BackwardFn,
  saved: Tensor[] = [],
): Tensor {
  if (!needsGrad(...inputs)) {
    for (const s of saved) s.dispose();
    return out;
  }
  out.requiresGrad = true;
  out.node = new Node(name, inputs, backward, saved);
  return out;
}

/**
 * Records an op with several outputs (e.g. a fused kernel writing two tensors); `backward`
 * receives one gradient per output (null where none arrived). Returns `outs`.
 */
export function recordMulti(
  name: string,
  inputs: Tensor[],
  outs: Tensor[],
  backward: MultiBackwardFn,
  saved: Tensor[] = [],
): Tensor[] {
  if (!needsGrad(...inputs)) {
    for (const s of saved) s.dispose();
    return outs;
  }
  const node = new Node(name, inputs, { multi: backward, outputs: outs.length }, saved);
  outs.forEach((o, i) => {
    if (i > 0) node.retain();
    o.requiresGrad = true;
    o.node = node;
    o.outputIndex = i;
  });
  return outs;
}

/** Detaches a tensor from the graph: a new handle on the same data that requires no grad. */
export function detach(t: Tensor): Tensor {
  return t.alias(t.shape, t.strides, t.offset, true);
}

let addFn: ((a: Tensor, b: Tensor) => Tensor) | null = null;
let sumNFn: ((ts: Tensor[]) => Tensor) | null = null;
let maxTerms = 2;
let onesLikeFn: ((t: Tensor) => Tensor) | null = null;

/**
 * Wires in the ops that backward needs (internal; done by the ops modules): `add`, `sumN` (the
 * sum of up to `maxN` same-shaped tensors in one dispatch, left to right) and `onesLike`.
 */
export function setAutogradOps(
  add: (a: Tensor, b: Tensor) => Tensor,
  onesLike: (t: Tensor) => Tensor,
  sumN?: (ts: Tensor[]) => Tensor,
  maxN = 2,
): void {
  addFn = add;
  onesLikeFn = onesLike;
  sumNFn = sumN ?? null;
  maxTerms = sumN ? Math.max(2, maxN) : 2;
}

function accumulate(prev: Tensor | undefined, g: Tensor): Tensor {
  if (!prev) return g;
  const sum = addFn!(prev, g);
  prev.dispose();
  g.dispose();
  return sum;
}

/** Gradients this large are summed as they arrive instead of waiting for more terms. */
const DEFER_MAX_ELEMENTS = 1 << 20;

/**
 * Gradient terms of one tensor, summed lazily: a weight used at every tick of a recurrence gets a
 * term per tick, and summing up to `maxTerms` of them in one dispatch instead of one `add` each
 * saves most of those dispatches. Terms are summed left to right, so the result has the bits of
 * adding them one by one in arrival order.
 */
function pushTerm(terms: Tensor[], g: Tensor): void {
  terms.push(g);
  if (terms.length >= maxTerms || (terms.length > 1 && g.size >= DEFER_MAX_ELEMENTS)) {
    terms.splice(0, terms.length, sumTerms(terms));
  }
}

/** The sum of `terms` (consumed) as one tensor. */
function sumTerms(terms: Tensor[]): Tensor {
  if (terms.length === 1) return terms[0];
  if (terms.length === 2 || !sumNFn) return terms.reduce((a, b) => accumulate(a, b));
  const sum = sumNFn(terms);
  for (const t of terms) t.dispose();
  return sum;
}

function checkShape(op: string, g: Tensor, t: Tensor): void {
  if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
    throw new Error(
      `internal: '${op}' backward gave a gradient of shape [${g.shape}] for an input of shape [${t.shape}]`,
    );
  }
}

function runBackward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error("backward(): the tensor does not require grad");
  if (!grad && root.size !== 1) {
    throw new Error(`backward() without a gradient needs a scalar; got shape [${root.shape.join(", ")}]`);
  }
  if (grad && grad.size !== root.size) throw new Error("backward(): gradient shape does not match");
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const seed = grad
      ? hooks.contiguous!(grad).alias(root.shape, undefined, undefined, true)
      : onesLikeFn!(root);
    if (!root.node) {
      root.grad = keep(accumulate(root.grad ?? undefined, seed));
      return;
    }
    // Collect reachable nodes.
    const nodes: Node[] = [];
    const seen = new Set<Node>();
    const stack = [root.node];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      if (n.freed) {
        throw new Error(
          `backward() through '${n.name}' a second time: the graph was freed by the first backward`,
        );
      }
      seen.add(n);
      nodes.push(n);
      for (const p of n.parents) if (p && "node" in p) stack.push(p.node);
    }
    nodes.sort((a, b) => b.id - a.id);
    // Gradient terms per node output and per leaf, summed lazily (see pushTerm).
    const grads = new Map<Node, Tensor[][]>();
    const leafTerms = new Map<Tensor, Tensor[]>();
    const slot = (n: Node) => {
      let s = grads.get(n);
      if (!s) grads.set(n, s = Array.from({ length: n.nOutputs }, () => []));
      return s;
    };
    try {
      slot(root.node)[root.outputIndex].push(seed);
      for (const n of nodes) {
        const terms = grads.get(n);
        if (!terms || terms.every((t) => t.length === 0)) continue;
        grads.delete(n);
        const gs = terms.map((t) => (t.length ? sumTerms(t) : null));
        const ins = n.multiFn(gs);
        for (const g of gs) g?.dispose();
        n.freeSaved();
        n.parents.forEach((p, i) => {
          const gi = ins[i];
          if (!gi) return;
          if (!p) {
            gi.dispose();
            return;
          }
          if ("node" in p) {
            pushTerm(slot(p.node)[p.index], gi);
          } else {
            const leaf = p.leaf;
            if (leaf.disposed) {
              gi.dispose();
              return;
            }
            checkShape(n.name, gi, leaf);
            let t = leafTerms.get(leaf);
            if (!t) {
              // The terms own the current gradient until the sum replaces it below.
              leafTerms.set(leaf, t = leaf.grad ? [leaf.grad] : []);
              leaf.grad = null;
            }
            pushTerm(t, gi);
          }
        });
      }
      for (const [leaf, t] of leafTerms) {
        leafTerms.delete(leaf);
        leaf.grad = keep(sumTerms(t));
      }
    } finally {
      for (const ts of grads.values()) for (const t of ts) for (const g of t) g.dispose();
      for (const t of leafTerms.values()) for (const g of t) g.dispose();
    }
  } finally {
    gradEnabled = prev;
  }
}

hooks.backward = runBackward;
