/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with PyTorch's defaults and arithmetic:
 * one fused kernel per parameter per step, everything on the GPU, no host reads.
 */
import { ADAMW_WG, adamwSpec } from "../../shaders/adamw.ts";
import { f32bits, type KernelSpec } from "../gpu/kernel.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type BaseHyper, Optimizer, type ParamGroup, type ParamGroupInput } from "./optimizer.ts";

/** AdamW hyperparameters (per group). */
export interface AdamWHyper extends BaseHyper {
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas: [number, number];
  /** Added to the denominator (default 1e-8). */
  eps: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay: number;
}

let spec: KernelSpec | null = null;
let vecSpec: KernelSpec | null = null;

/**
 * AdamW. Per parameter with a gradient, with t its update count:
 * `p ← p·(1 − lr·wd)`, `m ← β1·m + (1 − β1)·g`, `v ← β2·v + (1 − β2)·g²`,
 * `p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)`.
 *
 * @example
 * ```ts
 * import { initGpu, AdamW, Linear, randn, mean, tidy } from "./mod.ts";
 * await initGpu();
 * const fc = new Linear(1, { inFeatures: 4 });
 * const opt = new AdamW(fc.parameters(), { lr: 1e-3, weightDecay: 0 });
 * tidy(() => mean(fc.forward(randn([8, 4]))).backward());
 * opt.step();
 * opt.zeroGrad();
 * ```
 */
export class AdamW extends Optimizer<AdamWHyper> {
  /** Checkpoint type tag. */
  readonly type = "AdamW";

  /** `params`: tensors or groups (e.g. a no-decay group with `weightDecay: 0`). */
  constructor(params: Tensor[] | ParamGroupInput<AdamWHyper>[], defaults: Partial<AdamWHyper> = {}) {
    const d: AdamWHyper = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, ...defaults };
    super(params, d);
    for (const g of [this.defaults, ...this.paramGroups]) checkHyper(g);
  }

  /** State tensors per parameter. */
  protected stateNames(_group: ParamGroup<AdamWHyper>): string[] {
    return ["exp_avg", "exp_avg_sq"];
  }

  /** One AdamW update of every parameter that has a gradient. */
  step(): void {
    spec ??= adamwSpec();
    vecSpec ??= adamwSpec(true);
    for (const g of this.paramGroups) {
      checkHyper(g);
      const [b1, b2] = g.betas;
      const hyper = (t: number) =>
        [1 - g.lr * g.weightDecay, 1 - b1, b2, 1 - b2, g.eps, g.lr / (1 - b1 ** t), Math.sqrt(1 - b2 ** t)]
          .map(f32bits);
      if (this.stepFlat(g, vecSpec, ADAMW_WG, hyper)) continue;
      for (const p of g.params) {
        if (!p.grad) continue;
        const st = this.stateOf(p, g);
        st.step++;
        const extra = [st.tensors.get("exp_avg")!, st.tensors.get("exp_avg_sq")!];
        this.launchUpdate(spec, ADAMW_WG, p, extra, hyper(st.step), vecSpec);
      }
    }
  }
}

function checkHyper(g: AdamWHyper): void {
  const [b1, b2] = g.betas;
  if (!(g.lr >= 0)) throw new Error(`AdamW: invalid lr ${g.lr}`);
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`AdamW: invalid betas [${g.betas}]`);
  if (!(g.eps >= 0)) throw new Error(`AdamW: invalid eps ${g.eps}`);
  if (!(g.weightDecay >= 0)) throw new Error(`AdamW: invalid weightDecay ${g.weightDecay}`);
}
