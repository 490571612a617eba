/**
 * `BatchNorm2d`: batch normalisation of `[B, C, H, W]` feature maps with PyTorch's parameters
 * (`weight`, `bias`) and buffers (`running_mean`, `running_var`, `num_batches_tracked`), so state
 * dicts move to and from the reference unchanged.
 */
import { batchNorm2d } from "../ops/batchnorm.ts";
import { mapInto } from "../ops/map.ts";
import { zeros } from "../ops/creation.ts";
import { noGrad } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { constant_ } from "./init.ts";
import { Module } from "./module.ts";

/** Options of {@link BatchNorm2d}. */
export interface BatchNorm2dOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * Weight of each batch in the running statistics (default 0.1); null: their plain average over
   * the training batches since construction or {@link BatchNorm2d.resetRunningStats} (PyTorch's
   * `momentum=None`).
   */
  momentum?: number | null;
  /** Learn a per-channel `weight` (init 1) and `bias` (init 0); default true. */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval mode uses batch statistics. */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation over the channels of `[B, C, H, W]`, like `torch.nn.BatchNorm2d`. In
 * training mode (the default; see {@link Module.train}) it normalises with the batch statistics
 * and updates `running_mean`, `running_var` (unbiased) and `num_batches_tracked` in place on the
 * GPU; in eval mode it uses the running statistics.
 *
 * `num_batches_tracked` is an i32 scalar (PyTorch: int64); save with `{ int: "I64" }` for a file
 * PyTorch loads with the same dtype.
 *
 * @example
 * ```ts
 * import { initGpu, randn, BatchNorm2d } from "./mod.ts";
 * await initGpu();
 * const bn = new BatchNorm2d(3);
 * const y = bn.forward(randn([2, 3, 4, 4])); // updates the running statistics
 * bn.eval();
 * const z = bn.forward(randn([2, 3, 4, 4])); // uses them
 * ```
 */
export class BatchNorm2d extends Module {
  /** Number of channels C. */
  readonly numFeatures: number;
  /** Variance epsilon. */
  readonly eps: number;
  /**
   * Running-average momentum, or null for the plain average of the training batches since the
   * last reset (may be changed between forwards, like PyTorch's `bn.momentum`).
   */
  momentum: number | null;
  /** Whether `weight` and `bias` exist. */
  readonly affine: boolean;
  /** Whether the running statistics exist. */
  readonly trackRunningStats: boolean;

  /** Creates the layer for `numFeatures` channels. */
  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`BatchNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    if (!(this.eps > 0)) throw new Error(`BatchNorm2d: eps must be positive, got ${this.eps}`);
    checkMomentum(this.momentum);
    if (this.affine) {
      this.registerParameter("weight", constant_(Tensor.empty([numFeatures]), 1));
      this.registerParameter("bias", constant_(Tensor.empty([numFeatures]), 0));
    }
    if (this.trackRunningStats) {
      this.registerBuffer("running_mean", constant_(Tensor.empty([numFeatures]), 0));
      this.registerBuffer("running_var", constant_(Tensor.empty([numFeatures]), 1));
      this.registerBuffer("num_batches_tracked", zeros([], "i32"));
    }
  }

  /** γ `[C]`, or null without affine parameters. */
  get weight(): Tensor | null {
    return this.findParameter("weight");
  }

  /** β `[C]`, or null. */
  get bias(): Tensor | null {
    return this.findParameter("bias");
  }

  /** Running mean `[C]`, or null without running statistics. */
  get runningMean(): Tensor | null {
    return this.trackRunningStats ? this.getBuffer("running_mean") : null;
  }

  /** Running variance `[C]`, or null. */
  get runningVar(): Tensor | null {
    return this.trackRunningStats ? this.getBuffer("running_var") : null;
  }

  /** Number of training batches seen (i32 scalar), or null. */
  get numBatchesTracked(): Tensor | null {
    return this.trackRunningStats ? this.getBuffer("num_batches_tracked") : null;
  }

  /** Training batches since construction or the last reset (host count, for `momentum: null`). */
  #sinceReset = 0;

  /** Resets the running statistics (mean 0, variance 1, count 0), like PyTorch's `reset_running_stats()`. */
  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    this.#sinceReset = 0;
    noGrad(() => {
      mapInto(this.getBuffer("running_mean"), "0.0", []);
      mapInto(this.getBuffer("running_var"), "1.0", []);
      mapInto(this.getBuffer("num_batches_tracked"), "0", []);
    });
  }

  #run(x: Tensor, relu: boolean): Tensor {
    if (x.ndim !== 4) {
      throw new Error(`BatchNorm2d: expected a 4-D input [B, C, H, W], got shape [${x.shape}]`);
    }
    if (x.shape[1] !== this.numFeatures) {
      throw new Error(`BatchNorm2d: input has ${x.shape[1]} channels, the layer expects ${this.numFeatures}`);
    }
    const track = this.trackRunningStats;
    checkMomentum(this.momentum);
    if (this.training && track) this.#sinceReset++;
    return batchNorm2d(x, this.weight, this.bias, {
      training: this.training || !track,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      numBatchesTracked: this.training ? this.numBatchesTracked : null,
      momentum: this.momentum ?? 1 / Math.max(1, this.#sinceReset),
      eps: this.eps,
      relu,
    });
  }

  /** Normalises `x` `[B, C, H, W]`. */
  override forward(x: Tensor): Tensor {
    return this.#run(x, false);
  }

  /** `relu(forward(x))` in the same kernel (one dispatch fewer, no intermediate tensor). */
  forwardRelu(x: Tensor): Tensor {
    return this.#run(x, true);
  }
}

function checkMomentum(m: number | null): void {
  if (m !== null && !(m >= 0 && m <= 1)) {
    throw new Error(`BatchNorm2d: momentum must be in [0, 1] or null (plain average), got ${m}`);
  }
}
