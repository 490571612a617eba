/**
 * Neural synchronisation, the CTM's latent representation: neuron-pair selection (`first-last`,
 * `random`, `random-pairing`) and the decaying recurrence
 * `α ← r·α + zᵢzⱼ`, `β ← r·β + 1`, `S = α / √β` with `r = exp(−θ)` learned per pair.
 */
import { add, div, mul } from "../ops/arith.ts";
import { fromArray } from "../ops/creation.ts";
import { indexSelect } from "../ops/indexing.ts";
import { sqrt } from "../ops/unary.ts";
import { identity } from "../nn/layers.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";

/** The neuron-selection schemes of the reference. */
export const NEURON_SELECT_TYPES = ["first-last", "random", "random-pairing"] as const;
/** One neuron-selection scheme. */
export type NeuronSelectType = typeof NEURON_SELECT_TYPES[number];

/** Size of the synchronisation representation for `n` selected neurons. */
export function syncSize(type: NeuronSelectType, n: number): number {
  return type === "random-pairing" ? n : (n * (n + 1)) / 2;
}

/**
 * Left and right neuron indices (each of length `n`) as the reference draws them: `first-last`
 * takes the first `n` neurons for `out` and the last `n` for `action`; `random` draws both sides
 * with replacement; `random-pairing` draws the left side, then reuses its first `nSelf` entries
 * on the right and draws the rest.
 */
export function selectNeurons(
  type: NeuronSelectType,
  D: number,
  n: number,
  kind: "out" | "action",
  rng: Rng,
  nSelf = 0,
): { left: Int32Array; right: Int32Array } {
  if (type === "first-last") {
    const start = kind === "out" ? 0 : D - n;
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    return { left: idx, right: idx.slice() };
  }
  const draw = (k: number) => Int32Array.from({ length: k }, () => rng.int(D));
  if (type === "random") {
    const left = draw(n);
    return { left, right: draw(n) };
  }
  if (n > 0 && !(n > nSelf)) {
    throw new Error(`random-pairing needs n_synch (${n}) > n_random_pairing_self (${nSelf})`);
  }
  const left = draw(n);
  const right = new Int32Array(n);
  right.set(left.subarray(0, nSelf));
  right.set(draw(n - nSelf), nSelf);
  return { left, right };
}

/** Row and column indices of the upper triangle (diagonal included) of an n×n matrix, row-major. */
export function triuIndices(n: number): { rows: Int32Array; cols: Int32Array } {
  const S = (n * (n + 1)) / 2;
  const rows = new Int32Array(S), cols = new Int32Array(S);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      rows[k] = i;
      cols[k++] = j;
    }
  }
  return { rows, cols };
}

/** Per-pair neuron indices for one synchronisation, `[S]` each, derived from the buffers. */
export interface PairIndices {
  /** Neuron of the left factor of each pair. */
  left: Tensor;
  /** Neuron of the right factor of each pair. */
  right: Tensor;
}

/**
 * Expands the stored `left`/`right` buffers to one index per pair (on the GPU, so it also holds
 * after a state dict was loaded): for `random-pairing` the buffers themselves; otherwise the
 * upper triangle of the left × right outer product.
 */
export function pairIndices(type: NeuronSelectType, left: Tensor, right: Tensor): PairIndices {
  if (type === "random-pairing") return { left: identity(left), right: identity(right) };
  const { rows, cols } = triuIndices(left.shape[0]);
  const r = fromArray(rows), c = fromArray(cols);
  const out = { left: indexSelect(left, 0, r), right: indexSelect(right, 0, c) };
  r.dispose();
  c.dispose();
  return out;
}

/** The running sums of one synchronisation. */
export interface SyncState {
  /** Decayed sum of pair products `[B, S]`. */
  alpha: Tensor;
  /** Decayed count `[S]` (the same for every sample). */
  beta: Tensor;
}

/**
 * One step of the recurrence for post-activations `z [B, D]`: returns the synchronisation
 * `S [B, S]` and the new state. With no previous state, `α = zᵢzⱼ` and `β = 1`.
 */
export function syncStep(
  z: Tensor,
  pairs: PairIndices,
  decay: Tensor | null,
  prev: SyncState | null,
): { sync: Tensor; state: SyncState } {
  const zl = indexSelect(z, 1, pairs.left);
  const zr = indexSelect(z, 1, pairs.right);
  const pp = mul(zl, zr);
  zl.dispose();
  zr.dispose();
  if (!prev || !decay) {
    const beta = fromArray(new Float32Array(pairs.left.shape[0]).fill(1));
    return { sync: identity(pp), state: { alpha: pp, beta } };
  }
  const ra = mul(decay, prev.alpha);
  const alpha = add(ra, pp);
  const rb = mul(decay, prev.beta);
  const beta = add(rb, 1);
  const sb = sqrt(beta);
  const sync = div(alpha, sb);
  for (const t of [ra, pp, rb, sb]) t.dispose();
  return { sync, state: { alpha, beta } };
}
