/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with PyTorch's defaults and arithmetic:
 * one fused kernel for up to eight parameters per dispatch, everything on the GPU, no host reads.
 */
import { ADAMW_WG, adamwSpec } from "../../shaders/adamw.ts";
import { gpu } from "../gpu/device.ts";
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
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

const specs = new Map<number, KernelSpec>();

/** Parameters per AdamW dispatch: four storage buffers each, at most 8. */
function perDispatch(): number {
  return Math.max(1, Math.min(8, Math.floor(gpu().limits.maxStorageBuffersPerShaderStage / 4)));
}

/** One parameter's update: its buffers and uniforms (see `ADAMW_FIELDS`). */
interface Update {
  buffers: GPUBuffer[];
  uniforms: number[];
  workgroups: number;
}

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

  /** One AdamW update of every parameter that has a gradient (a few parameters per dispatch). */
  step(): void {
    const updates: Update[] = [];
    const temps: Tensor[] = [];
    for (const g of this.paramGroups) {
      checkHyper(g);
      const [b1, b2] = g.betas;
      for (const p of g.params) {
        if (!p.grad) continue;
        const grad = this.checkedGrad(p);
        if (grad !== p.grad) temps.push(grad);
        const st = this.stateOf(p, g);
        st.step++;
        const t = st.step;
        const m = st.tensors.get("exp_avg")!, v = st.tensors.get("exp_avg_sq")!;
        const hyper = [1 - g.lr * g.weightDecay, 1 - b1, b2, 1 - b2, g.eps, g.lr / (1 - b1 ** t)];
        hyper.push(Math.sqrt(1 - b2 ** t));
        updates.push({
          buffers: [p.buffer, grad.buffer, m.buffer, v.buffer],
          uniforms: [p.size, 0, p.offset, grad.offset, m.offset, v.offset, ...hyper.map(f32bits)],
          workgroups: Math.ceil(p.size / ADAMW_WG),
        });
      }
    }
    const K = perDispatch();
    let batch: Update[] = [];
    const flush = () => {
      if (!batch.length) return;
      const n = batch.length;
      let spec = specs.get(n);
      if (!spec) specs.set(n, spec = adamwSpec(n));
      let wg = 0;
      const uniforms: number[] = [];
      for (const u of batch) {
        uniforms.push(u.uniforms[0], wg, ...u.uniforms.slice(2));
        wg += u.workgroups;
      }
      launch(spec, batch.flatMap((u) => u.buffers), uniforms, grid1d(wg));
      batch = [];
    };
    const written = new Set<GPUBuffer>(), read = new Set<GPUBuffer>();
    for (const u of updates) {
      // A buffer may not be bound both read-only (a gradient) and writable in one dispatch.
      const [p, g, m, v] = u.buffers;
      const clash = written.has(g) || [p, m, v].some((b) => read.has(b)) || g === p;
      if (clash || batch.length === K) {
        flush();
        written.clear();
        read.clear();
      }
      batch.push(u);
      [p, m, v].forEach((b) => written.add(b));
      read.add(g);
    }
    flush();
    for (const t of temps) t.dispose();
  }
}

function checkHyper(g: AdamWHyper): void {
  const [b1, b2] = g.betas;
  if (!(g.lr >= 0)) throw new Error(`AdamW: invalid lr ${g.lr}`);
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`AdamW: invalid betas [${g.betas}]`);
  if (!(g.eps >= 0)) throw new Error(`AdamW: invalid eps ${g.eps}`);
  if (!(g.weightDecay >= 0)) throw new Error(`AdamW: invalid weightDecay ${g.weightDecay}`);
}
