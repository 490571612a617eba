/**
 * The attention's output projection folded into the synapse weight of the fused CTM recurrence.
 * The synapse reads `o·Woutᵀ + bOut` in its first d input columns, so with `wSa = ws[:, :d]` the
 * op applies `wsA = wSa·Wout` to the raw attention output `o` and adds `bs = bsyn + wSa·bOut`.
 *
 * The fold runs inside the op rather than through autograd, so the backward writes the synapse
 * weight's gradient once (its z columns from the op's kernels, its attention columns here)
 * instead of a zero-filled gradient, a slice backward and two full-size accumulations.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { mapInto } from "./map.ts";
import { linear, matmul } from "./matmul.ts";

/** What the backward of the fold needs (aliases, disposed by {@link disposeFold}). */
export interface OutProjFold {
  /** `ws[:, :d]`, a strided view `[2D, d]`. */
  wSa: Tensor;
  /** out_proj weight `[d, d]` and bias `[d]`. */
  wout: Tensor;
  bout: Tensor;
}

/** `wsA = ws[:, :d]·wout` and `bs = bsyn + ws[:, :d]·bout` (no autograd: call without grad). */
export function foldOutProj(
  ws: Tensor,
  wout: Tensor,
  bout: Tensor,
  bsyn: Tensor,
  d: number,
): { wsA: Tensor; bs: Tensor; fold: OutProjFold } {
  const rows = ws.shape[0], K = ws.shape[1];
  const wSa = ws.alias([rows, d], [K, 1], ws.offset);
  const wsA = matmul(wSa, wout);
  const bs = linear(bout, wSa, bsyn);
  return { wsA, bs, fold: { wSa, wout: wout.alias(), bout: bout.alias() } };
}

/**
 * Gradients through the fold, from those of `wsA` (`gwsA [2D, d]`) and `bs` (`gbs [2D]`): writes
 * `gwsA·woutᵀ + gbs ⊗ bout` into the first d columns of `gws` (`[2D, d + D]`, z columns already
 * written) and returns the gradients of out_proj's weight (`wSaᵀ·gwsA`) and bias (`wSaᵀ·gbs`).
 * The synapse bias' gradient is `gbs` itself.
 */
export function unfoldGrads(
  f: OutProjFold,
  gws: Tensor,
  gwsA: Tensor,
  gbs: Tensor,
): { gwout: Tensor; gbout: Tensor } {
  const [rows, d] = f.wSa.shape, K = gws.shape[1];
  const t = matmul(gwsA, f.wout, { transB: true });
  const gA = gws.alias([rows, d], [K, 1], gws.offset);
  const gCol = gbs.alias([rows, 1], [1, 1]), bRow = f.bout.alias([1, d], [d, 1]);
  mapInto(gA, "x0 + x1 * x2", [t, gCol, bRow]);
  for (const x of [t, gA, gCol, bRow]) x.dispose();
  const gwout = matmul(f.wSa, gwsA, { transA: true });
  const gbout = matmul(f.wSa, gbs, { transA: true });
  return { gwout, gbout };
}

/** Releases the aliases held by a fold. */
export function disposeFold(f: OutProjFold): void {
  for (const x of [f.wSa, f.wout, f.bout]) x.dispose();
}
