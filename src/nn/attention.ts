/**
 * Multi-head attention with PyTorch's parameterisation (`in_proj_weight [3E, E]`,
 * `in_proj_bias [3E]`, `out_proj`), batch-first, returning per-head attention weights.
 * Keys and values can be projected once ({@link MultiheadAttention.projectKV}) and attended to
 * many times, as the CTM does on every internal tick.
 */
import { mul } from "../ops/arith.ts";
import { linear, matmul } from "../ops/matmul.ts";
import { dropout } from "../ops/random.ts";
import { softmax } from "../ops/softmax.ts";
import { permute, reshape, slice } from "../ops/views.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { constant_, constantTensor, initRng, uniformTensor } from "./init.ts";
import { Linear } from "./linear.ts";
import { Module } from "./module.ts";

/** Keys and values split into heads: `[B, heads, L, E/heads]` each. */
export interface ProjectedKV {
  /** Projected keys. */
  k: Tensor;
  /** Projected values. */
  v: Tensor;
}

/** Attention output `[B, Lq, E]` and weights `[B, heads, Lq, L]`. */
export interface AttentionResult {
  /** The attended values after `out_proj`. */
  out: Tensor;
  /** Softmax weights per head (after dropout, as PyTorch returns them). */
  weights: Tensor;
}

/**
 * `torch.nn.MultiheadAttention(E, heads, dropout, batch_first=True)` with
 * `need_weights=True, average_attn_weights=False`.
 *
 * @example
 * ```ts
 * import { initGpu, randn, MultiheadAttention } from "./mod.ts";
 * await initGpu();
 * const mha = new MultiheadAttention(16, 4);
 * const { out, weights } = mha.forward(randn([2, 1, 16]), randn([2, 10, 16]), randn([2, 10, 16]));
 * // out [2, 1, 16], weights [2, 4, 1, 10]
 * ```
 */
export class MultiheadAttention extends Module {
  /** Embedding width E. */
  readonly embedDim: number;
  /** Number of heads. */
  readonly numHeads: number;
  /** Dropout on the attention weights. */
  readonly p: number;
  /** Output projection E → E. */
  readonly outProj: Linear;

  /** Creates the layer with PyTorch's initialisation (xavier in-projection, zero biases). */
  constructor(embedDim: number, numHeads: number, opts: { dropout?: number; rng?: Rng } = {}) {
    super();
    if (embedDim % numHeads !== 0) {
      throw new Error(`MultiheadAttention: embedDim ${embedDim} is not divisible by ${numHeads} heads`);
    }
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.p = opts.dropout ?? 0;
    const rng = opts.rng ?? initRng();
    const bound = Math.sqrt(6 / (embedDim + 3 * embedDim));
    this.registerParameter("in_proj_weight", uniformTensor([3 * embedDim, embedDim], -bound, bound, rng));
    this.registerParameter("in_proj_bias", constantTensor([3 * embedDim], 0));
    this.outProj = this.registerModule("out_proj", new Linear(embedDim, { inFeatures: embedDim, rng }));
    constant_(this.outProj.bias!, 0);
  }

  #proj(x: Tensor, part: number): Tensor {
    const E = this.embedDim;
    const w = slice(this.getParameter("in_proj_weight"), 0, part * E, (part + 1) * E);
    const b = slice(this.getParameter("in_proj_bias"), 0, part * E, (part + 1) * E);
    const y = linear(x, w, b);
    w.dispose();
    b.dispose();
    return y;
  }

  #heads(x: Tensor): Tensor {
    const [B, L] = x.shape;
    const r = reshape(x, [B, L, this.numHeads, this.embedDim / this.numHeads]);
    const p = permute(r, [0, 2, 1, 3]);
    r.dispose();
    return p;
  }

  /** Projects keys `[B, L, E]` and values `[B, L, E]` into heads, once for many queries. */
  projectKV(key: Tensor, value: Tensor): ProjectedKV {
    const k = this.#proj(key, 1);
    const v = this.#proj(value, 2);
    const kh = this.#heads(k);
    const vh = this.#heads(v);
    k.dispose();
    v.dispose();
    return { k: kh, v: vh };
  }

  /**
   * Projects one tensor `[B, L, E]` used as both keys and values, without the head split, in one
   * matmul: `[B, L, 2E]`, keys in columns 0…E-1 and values in E…2E-1 (head h owns columns
   * h·E/heads … of each), for kernels that take that layout.
   */
  projectKVPacked(x: Tensor): Tensor {
    const E = this.embedDim;
    const w = slice(this.getParameter("in_proj_weight"), 0, E, 3 * E);
    const b = slice(this.getParameter("in_proj_bias"), 0, E, 3 * E);
    const y = linear(x, w, b);
    w.dispose();
    b.dispose();
    return y;
  }

  /** Attends queries `[B, Lq, E]` to projected keys and values. */
  attend(query: Tensor, kv: ProjectedKV): AttentionResult {
    const [B, Lq] = query.shape;
    const q = this.#proj(query, 0);
    const qh = this.#heads(q);
    q.dispose();
    const qs = mul(qh, 1 / Math.sqrt(this.embedDim / this.numHeads));
    qh.dispose();
    const scores = matmul(qs, kv.k, { transB: true });
    qs.dispose();
    const sm = softmax(scores, -1);
    scores.dispose();
    const weights = this.p > 0 ? dropout(sm, this.p, this.training) : sm;
    if (weights !== sm) sm.dispose();
    const o = matmul(weights, kv.v);
    const op = permute(o, [0, 2, 1, 3]);
    o.dispose();
    const merged = reshape(op, [B, Lq, this.embedDim]);
    op.dispose();
    const out = this.outProj.forward(merged);
    merged.dispose();
    return { out, weights };
  }

  /** Full attention of `query` over `key`/`value` (all `[B, L, E]`). */
  override forward(query: Tensor, key: Tensor, value: Tensor): AttentionResult {
    const kv = this.projectKV(key, value);
    const r = this.attend(query, kv);
    kv.k.dispose();
    kv.v.dispose();
    return r;
  }
}
