/**
 * The CTM losses of the reference (`utils/losses.py`): a per-tick loss `ℓ[b, t]` is reduced by
 * averaging the loss at each sample's minimum-loss tick and at its most certain tick (or the last
 * tick). Also the matching accuracy metrics, all computed on the GPU.
 */
import { eq, gt, lt } from "../ops/arith.ts";
import { gather } from "../ops/indexing.ts";
import { crossEntropy } from "../ops/loss.ts";
import { argmax, mean, min, sum } from "../ops/reduce.ts";
import { tickSelectLoss } from "../ops/tick_select.ts";
import { expand, reshape } from "../ops/views.ts";
import { noGrad } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** A CTM loss and the tick chosen per sample for accuracy. */
export interface CtmLoss {
  /** Scalar loss. */
  loss: Tensor;
  /** `[B]` (i32): most certain tick per sample (or the last tick). */
  tickIndex: Tensor;
}

/**
 * `½(mean_b ℓ[b, argmin_t ℓ] + mean_b ℓ[b, t*])` with `t*` the most certain tick
 * (`certainties[:, 1]` argmax) when `useMostCertain`, else the last tick.
 */
export function combineTicks(perTick: Tensor, certainties: Tensor, useMostCertain = true): CtmLoss {
  const { loss, tMin, tStar } = tickSelectLoss(perTick, certainties, useMostCertain);
  tMin.dispose();
  return { loss, tickIndex: tStar };
}

/**
 * Image-classification loss: predictions `[B, C, T]`, certainties `[B, 2, T]`, targets `[B]` (i32).
 */
export function imageClassificationLoss(
  predictions: Tensor,
  certainties: Tensor,
  targets: Tensor,
  useMostCertain = true,
): CtmLoss {
  const [B, , T] = predictions.shape;
  const tgt = expand(reshape(targets, [B, 1]), [B, T]);
  const perTick = crossEntropy(predictions, tgt, { axis: 1, reduction: "none" });
  return combineTicks(perTick, certainties, useMostCertain);
}

/**
 * Parity loss: predictions `[B, L·2, T]`, targets `[B, L]` (i32 0/1); the per-tick loss is the
 * cross-entropy averaged over positions.
 */
export function parityLoss(
  predictions: Tensor,
  certainties: Tensor,
  targets: Tensor,
  useMostCertain = true,
): CtmLoss {
  const [B, , T] = predictions.shape;
  const L = targets.shape[1];
  const p = reshape(predictions, [B, L, 2, T]);
  const tgt = expand(reshape(targets, [B, L, 1]), [B, L, T]);
  const ce = crossEntropy(p, tgt, { axis: 2, reduction: "none" });
  const perTick = mean(ce, 1);
  return combineTicks(perTick, certainties, useMostCertain);
}

/** Accuracy metrics of a parity batch (all `f32` GPU tensors, no gradient). */
export interface ParityAccuracy {
  /** `[T]`: per-tick accuracy over positions and samples. */
  perTick: Tensor;
  /** Scalar: per-position accuracy at each sample's chosen tick. */
  atTick: Tensor;
  /** Scalar: fraction of samples whose whole sequence is right at the chosen tick. */
  fullSequence: Tensor;
}

/** Parity accuracies from predictions `[B, L·2, T]`, targets `[B, L]` and chosen ticks `[B]`. */
export function parityAccuracy(predictions: Tensor, targets: Tensor, tickIndex: Tensor): ParityAccuracy {
  return noGrad(() => {
    const [B, , T] = predictions.shape;
    const L = targets.shape[1];
    const p = reshape(predictions, [B, L, 2, T]);
    const cls = argmax(p, 2);
    const tgt = reshape(targets, [B, L, 1]);
    const correct = eq(cls, tgt);
    const perTick = mean(correct, [0, 1]);
    const idx = expand(reshape(tickIndex, [B, 1, 1]), [B, L, 1]);
    const chosen = gather(correct, 2, idx);
    const atTick = mean(chosen);
    const fullSequence = mean(min(chosen, [1, 2]));
    return { perTick, atTick, fullSequence };
  });
}

/** Top-1 and top-5 accuracies of a classification batch (all `f32` GPU tensors, no gradient). */
export interface ClassificationAccuracy {
  /** `[T]`: top-1 accuracy per tick. */
  top1PerTick: Tensor;
  /** `[T]`: top-5 accuracy per tick. */
  top5PerTick: Tensor;
  /** Scalar: top-1 accuracy at each sample's chosen tick. */
  top1: Tensor;
  /** Scalar: top-5 accuracy at each sample's chosen tick. */
  top5: Tensor;
}

/**
 * Top-k accuracies from predictions `[B, C, T]`, targets `[B]` (i32) and chosen ticks `[B]` (i32).
 * A sample is top-k correct when fewer than k classes score strictly above its target (ties go to
 * the target).
 */
export function classificationAccuracy(
  predictions: Tensor,
  targets: Tensor,
  tickIndex: Tensor,
): ClassificationAccuracy {
  return noGrad(() => {
    const [B, , T] = predictions.shape;
    const tgt = expand(reshape(targets, [B, 1, 1]), [B, 1, T]);
    const tgtScore = gather(predictions, 1, tgt);
    const above = sum(gt(predictions, tgtScore), 1);
    const c1 = lt(above, 1), c5 = lt(above, 5);
    const at = reshape(tickIndex, [B, 1]);
    return {
      top1PerTick: mean(c1, 0),
      top5PerTick: mean(c5, 0),
      top1: mean(gather(c1, 1, at)),
      top5: mean(gather(c5, 1, at)),
    };
  });
}
