/**
 * Deterministic freeing: {@link tidy} disposes every tensor created inside it except those it
 * returns or that were passed to {@link keep}.
 */

/** Anything that can be disposed by a scope. */
export interface Disposable {
  /** Frees the object. */
  dispose(): void;
  /** Set when kept: scopes never dispose it. */
  kept: boolean;
}

const stack: Set<Disposable>[] = [];

/** Registers a freshly created tensor with the innermost scope (internal). */
export function track(t: Disposable): void {
  const s = stack[stack.length - 1];
  if (s) s.add(t);
}

/** Removes a tensor from every scope so that it outlives them (parameters, optimizer state, grads). */
export function keep<T extends Disposable>(t: T): T {
  t.kept = true;
  for (const s of stack) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<unknown>, depth = 0): void {
  if (v === null || typeof v !== "object" || depth > 3) return;
  if ("dispose" in v && "kept" in v) {
    out.add(v);
    return;
  }
  const vals = Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : Object.values(v);
  for (const x of vals) collect(x, out, depth + 1);
}

/**
 * Runs `fn` and disposes every tensor created during it, except those reachable from its return
 * value (tensors, arrays, maps or plain objects of them, three levels deep), which move to the
 * enclosing scope.
 *
 * @example
 * ```ts
 * import { initGpu, tidy, randn, matmul } from "./mod.ts";
 * await initGpu();
 * const y = tidy(() => matmul(randn([4, 8]), randn([8, 2]))); // the two inputs are freed
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new Error("tidy() takes a synchronous function");
  const survivors = new Set<unknown>();
  collect(result, survivors);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}
