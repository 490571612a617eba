/**
 * The CTM's tick selection loss as one op (kernels in `shaders/ctm_ticks.ts`): per sample, the
 * minimum-loss tick and the most certain tick (or the last), and `½·mean_b(ℓ[b, t_min] +
 * ℓ[b, t*])`, differentiable with respect to the per-tick loss `ℓ`.
 */
import { TICK_WG, tickSelectGradSpec, tickSelectSpec } from "../../shaders/ctm_ticks.ts";
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { record } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { contiguous } from "./views.ts";

/** The loss and the ticks it chose. */
export interface TickSelection {
  /** Scalar loss. */
  loss: Tensor;
  /** `[B]` (i32): each sample's minimum-loss tick. */
  tMin: Tensor;
  /** `[B]` (i32): each sample's most certain tick (or the last tick). */
  tStar: Tensor;
}

let fwdSpec: KernelSpec | null = null;
let bwdSpec: KernelSpec | null = null;

/**
 * `½·(mean_b ℓ[b, argmin_t ℓ[b, t]] + mean_b ℓ[b, t*])` for `perTick` `[B, T]`, with `t*` the
 * argmax over t of `certainties[b, 1, t]` (`[B, 2, T]`) when `useMostCertain`, else `T − 1`.
 * Ties pick the first tick, as `torch.argmin`/`argmax` do. The gradient reaches `perTick` only.
 */
export function tickSelectLoss(perTick: Tensor, certainties: Tensor, useMostCertain = true): TickSelection {
  if (perTick.ndim !== 2) {
    throw new Error(`tickSelectLoss: per-tick loss must be [B, T], got [${perTick.shape}]`);
  }
  const [B, T] = perTick.shape;
  const cs = certainties.shape;
  if (cs.length !== 3 || cs[0] !== B || cs[1] < 2 || cs[2] !== T) {
    throw new Error(`tickSelectLoss: certainties must be [${B}, 2, ${T}], got [${cs}]`);
  }
  if (B === 0 || T === 0) throw new Error("tickSelectLoss: needs at least one sample and one tick");
  const l = perTick.isContiguous ? perTick.alias() : contiguous(perTick);
  const idx = Tensor.empty([2 * B], "i32");
  const loss = Tensor.empty([]);
  const c = certainties;
  fwdSpec ??= tickSelectSpec();
  launch(fwdSpec, [l.buffer, c.buffer, idx.buffer, loss.buffer], [
    B,
    T,
    l.offset,
    c.offset + c.strides[1],
    c.strides[0],
    c.strides[2],
    useMostCertain ? 0 : 1,
  ], [1]);
  l.dispose();
  const tMin = idx.alias([B], [1], 0, true), tStar = idx.alias([B], [1], B, true);
  const saved = [idx.alias()];
  idx.dispose();
  const out = record("tickSelectLoss", [perTick], loss, (g) => {
    const dl = Tensor.empty([B, T]);
    bwdSpec ??= tickSelectGradSpec();
    const grid = grid1d(Math.ceil((B * T) / TICK_WG));
    launch(bwdSpec, [saved[0].buffer, g.buffer, dl.buffer], [B, T, g.offset], grid);
    return [dl];
  }, saved);
  return { loss: out, tMin, tStar };
}
