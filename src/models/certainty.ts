/**
 * Certainty of a prediction: 1 − normalised entropy of its softmax over the last dim of
 * `[B, ...predictionReshaper]`, averaged over the other positions. No gradient flows through it.
 */
import { mapN } from "../ops/map.ts";
import { mean, sum } from "../ops/reduce.ts";
import { logSoftmax } from "../ops/softmax.ts";
import { reshape, stack } from "../ops/views.ts";
import { noGrad } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Normalised entropy `[B]` of logits `[B, ...reshaper]` (classes on the last dim). */
export function normalizedEntropy(logits: Tensor, reshaper: readonly number[]): Tensor {
  return noGrad(() => {
    const B = logits.shape[0];
    const r = reshape(logits, [B, ...reshaper]);
    const C = r.shape[r.ndim - 1];
    const lp = logSoftmax(r, -1);
    const plogp = mapN("-exp(x0) * x0 * s0", [lp], [1 / Math.log(C)]);
    const ent = sum(plogp, -1);
    const flat = reshape(ent, [B, -1]);
    const ne = mean(flat, 1);
    for (const t of [r, lp, plogp, ent, flat]) t.dispose();
    return ne;
  });
}

/** `[B, 2]`: normalised entropy and certainty (1 − it), as the reference stacks them. */
export function computeCertainty(logits: Tensor, reshaper: readonly number[]): Tensor {
  return noGrad(() => {
    const ne = normalizedEntropy(logits, reshaper);
    const c = mapN("1.0 - x0", [ne]);
    const out = stack([ne, c], -1);
    ne.dispose();
    c.dispose();
    return out;
  });
}
