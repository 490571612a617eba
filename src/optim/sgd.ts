/**
 * SGD with optional momentum, dampening, Nesterov and (coupled) weight decay, with PyTorch's
 * semantics: one fused kernel per parameter per step, no host reads.
 */
import { SGD_WG, sgdSpec } from "../../shaders/sgd.ts";
import { f32bits, type KernelSpec } from "../gpu/kernel.ts";
import { zeros } from "../ops/creation.ts";
import { keep } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type BaseHyper, Optimizer, type ParamGroup, type ParamGroupInput } from "./optimizer.ts";

/** SGD hyperparameters (per group). */
export interface SGDHyper extends BaseHyper {
  /** Momentum factor (default 0: no buffer). */
  momentum: number;
  /** Dampening of the momentum (default 0). */
  dampening: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov: boolean;
}

const specs = new Map<string, KernelSpec>();

/** The cached update kernel with or without a momentum buffer, scalar or four elements a thread. */
function specOf(withMomentum: boolean, vec4: boolean): KernelSpec {
  const key = `${withMomentum}|${vec4}`;
  let s = specs.get(key);
  if (!s) specs.set(key, s = sgdSpec(withMomentum, vec4));
  return s;
}

/**
 * SGD. Per parameter with a gradient: `d = g + wd·p`; with momentum, `b = d` on the first step,
 * else `b = μ·b + (1 − dampening)·d`, and `d = d + μ·b` (Nesterov) or `d = b`; then `p −= lr·d`.
 */
export class SGD extends Optimizer<SGDHyper> {
  /** Checkpoint type tag. */
  readonly type = "SGD";

  /** `params`: tensors or groups. */
  constructor(params: Tensor[] | ParamGroupInput<SGDHyper>[], defaults: Partial<SGDHyper> = {}) {
    const d: SGDHyper = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...defaults };
    super(params, d);
    for (const g of [this.defaults, ...this.paramGroups]) checkHyper(g);
  }

  /** Required state tensors: none (the momentum buffer appears on the first step with momentum). */
  protected stateNames(_group: ParamGroup<SGDHyper>): string[] {
    return [];
  }

  /** One SGD update of every parameter that has a gradient. */
  step(): void {
    for (const g of this.paramGroups) {
      checkHyper(g);
      const withMomentum = g.momentum !== 0;
      const spec = specOf(withMomentum, false), vecSpec = specOf(withMomentum, true);
      for (const p of g.params) {
        if (!p.grad) continue;
        const st = this.stateOf(p, g);
        st.step++;
        if (!withMomentum) {
          this.launchUpdate(spec, SGD_WG, p, [], [f32bits(g.lr), f32bits(g.weightDecay)], vecSpec);
          continue;
        }
        let buf = st.tensors.get("momentum_buffer");
        const first = !buf; // PyTorch: the buffer starts as a copy of the first direction
        if (!buf) st.tensors.set("momentum_buffer", buf = keep(zeros(p.shape)));
        const flags = (first ? 1 : 0) | (g.nesterov ? 2 : 0);
        const params = [
          f32bits(g.lr),
          f32bits(g.weightDecay),
          f32bits(g.momentum),
          f32bits(1 - g.dampening),
          flags,
        ];
        this.launchUpdate(spec, SGD_WG, p, [buf], params, vecSpec);
      }
    }
  }
}

function checkHyper(g: SGDHyper): void {
  if (!(g.lr >= 0)) throw new Error(`SGD: invalid lr ${g.lr}`);
  if (!(g.momentum >= 0)) throw new Error(`SGD: invalid momentum ${g.momentum}`);
  if (!(g.weightDecay >= 0)) throw new Error(`SGD: invalid weightDecay ${g.weightDecay}`);
  if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
    throw new Error("SGD: Nesterov momentum needs momentum > 0 and zero dampening");
  }
}
