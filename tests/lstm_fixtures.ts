/**
 * Shared helpers for the LSTM tests (`lstm_test.ts`, `lstm_baseline_test.ts`): float32-level
 * closeness against the float64 references, shape checks, and moving a module's weights to and
 * from the host as the references' float64 weight maps.
 */
import { fromArray } from "../src/ops/creation.ts";
import { reshape } from "../src/ops/views.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import type { RefWeights } from "./lstm_reference.ts";

export { close, maxAbs } from "./helpers.ts";

const fmt = (s: readonly number[]) => `[${s.join(",")}]`;

/** Throws unless `t` has exactly `shape`. */
export function assertShape(t: Tensor, shape: number[], what: string): void {
  if (fmt(t.shape) !== fmt(shape)) throw new Error(`${what}: shape ${fmt(t.shape)} != ${fmt(shape)}`);
}

/** Downloads the module's state dict as float64 reference weights. */
export async function download(m: { stateDict(): Map<string, Tensor> }): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const [k, t] of m.stateDict()) w.set(k, Float64Array.from(await t.toArray()));
  return w;
}

/** Loads `w` (float64) into the module. */
export function upload(m: { loadStateDict(s: Map<string, Tensor>): unknown }, w: RefWeights): void {
  const ts = new Map<string, Tensor>();
  for (const [k, v] of w) ts.set(k, fromArray(Float32Array.from(v)));
  // Shapes come from the module: reshape through its own state dict.
  const own = (m as unknown as { stateDict(): Map<string, Tensor> }).stateDict();
  const shaped = new Map<string, Tensor>();
  for (const [k, t] of ts) {
    shaped.set(k, reshape(t, own.get(k)!.shape));
    t.dispose();
  }
  m.loadStateDict(shaped);
  for (const t of shaped.values()) t.dispose();
}
