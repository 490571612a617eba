/**
 * `LSTM`: a multi-layer long short-term memory with `torch.nn.LSTM`'s parameters, names, gate
 * order (i, f, g, o), initialisation and inter-layer dropout, plus a single-step API for models
 * that interleave one recurrent step with other work (the CTM's LSTM baseline).
 *
 * Each cell step is three dispatches: the input and hidden projections (two matmuls with their
 * biases fused, PyTorch's layout) and one fused elementwise kernel that forms the gates and writes
 * both the new cell and the new hidden state. The backward is likewise one kernel for the whole
 * cell update (it recomputes the gates from the saved pre-activations). The cell itself
 * (`lstmCell`, `lstmCellUpdate` and their kernels) lives in `./lstm_cell.ts` and is re-exported here.
 */
import { zeros } from "../ops/creation.ts";
import { dropout } from "../ops/random.ts";
import { reshape, slice, stack } from "../ops/views.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";
import { initRng, uniformTensor } from "./init.ts";
import { lstmCell, type LstmLayerWeights } from "./lstm_cell.ts";
import { Module } from "./module.ts";

export { lstmCell, lstmCellUpdate, type LstmLayerWeights } from "./lstm_cell.ts";

/** Per-layer recurrent state: `h[k]`, `c[k]` are layer k's `[B, H]`. */
export interface LstmState {
  /** Hidden states, one per layer (bottom first). */
  h: Tensor[];
  /** Cell states, one per layer. */
  c: Tensor[];
}

/** Options of {@link LSTM}. */
export interface LstmOptions {
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Whether the layers have `bias_ih`/`bias_hh` (default true). */
  bias?: boolean;
  /** Sequences as `[B, T, in]` (true) or `[T, B, in]` (false, PyTorch's default). Default false. */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode (default 0). */
  dropout?: number;
  /** Generator for the initial values (default: the process-wide one). */
  rng?: Rng;
}

/** Result of {@link LSTM.forward}. */
export interface LstmResult {
  /** Top-layer hidden states for every step: `[B, T, H]` (batch first) or `[T, B, H]`. */
  output: Tensor;
  /** Final hidden states `[numLayers, B, H]`. */
  h: Tensor;
  /** Final cell states `[numLayers, B, H]`. */
  c: Tensor;
}

/**
 * `torch.nn.LSTM(inputSize, hiddenSize, numLayers, bias, batch_first, dropout)` (unidirectional,
 * no projection). Parameters `weight_ih_l{k}` `[4H, in_k]`, `weight_hh_l{k}` `[4H, H]`,
 * `bias_ih_l{k}`, `bias_hh_l{k}` `[4H]`, gate order (i, f, g, o), all drawn from U(±1/√H) in that
 * order, layer by layer.
 *
 * @example
 * ```ts
 * import { initGpu, randn, LSTM } from "./mod.ts";
 * await initGpu();
 * const lstm = new LSTM(8, 16, { numLayers: 2, batchFirst: true });
 * const { output, h, c } = lstm.forward(randn([4, 5, 8])); // [4, 5, 16], [2, 4, 16], [2, 4, 16]
 * let s = lstm.zeroState(4);
 * s = lstm.step(randn([4, 8]), s);                          // one step; s.h[1] is the top output
 * ```
 */
export class LSTM extends Module {
  /** Input width of the first layer. */
  readonly inputSize: number;
  /** Hidden width H. */
  readonly hiddenSize: number;
  /** Number of stacked layers. */
  readonly numLayers: number;
  /** Whether the layers have biases. */
  readonly hasBias: boolean;
  /** Layout of sequences in {@link LSTM.forward}. */
  readonly batchFirst: boolean;
  /** Inter-layer dropout probability. */
  readonly dropout: number;

  /** Creates the layers with PyTorch's initialisation. */
  constructor(inputSize: number, hiddenSize: number, opts: LstmOptions = {}) {
    super();
    const L = opts.numLayers ?? 1;
    for (const [k, v] of [["inputSize", inputSize], ["hiddenSize", hiddenSize], ["numLayers", L]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`LSTM: ${k} must be a positive integer, got ${v}`);
    }
    const p = opts.dropout ?? 0;
    if (!(p >= 0 && p <= 1)) throw new Error(`LSTM: dropout must be in [0, 1], got ${p}`);
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.numLayers = L;
    this.hasBias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = p;
    const rng = opts.rng ?? initRng();
    const H = hiddenSize, b = 1 / Math.sqrt(H);
    for (let k = 0; k < L; k++) {
      const inK = k === 0 ? inputSize : H;
      this.registerParameter(`weight_ih_l${k}`, uniformTensor([4 * H, inK], -b, b, rng));
      this.registerParameter(`weight_hh_l${k}`, uniformTensor([4 * H, H], -b, b, rng));
      if (this.hasBias) {
        this.registerParameter(`bias_ih_l${k}`, uniformTensor([4 * H], -b, b, rng));
        this.registerParameter(`bias_hh_l${k}`, uniformTensor([4 * H], -b, b, rng));
      }
    }
  }

  /** Layer `k`'s weights. */
  layerWeights(k: number): LstmLayerWeights {
    return {
      wIh: this.getParameter(`weight_ih_l${k}`),
      wHh: this.getParameter(`weight_hh_l${k}`),
      bIh: this.hasBias ? this.getParameter(`bias_ih_l${k}`) : null,
      bHh: this.hasBias ? this.getParameter(`bias_hh_l${k}`) : null,
    };
  }

  /** A zero state for batch size `B` (new tensors; dispose them or let a scope do it). */
  zeroState(B: number): LstmState {
    const mk = () => Array.from({ length: this.numLayers }, () => zeros([B, this.hiddenSize]));
    return { h: mk(), c: mk() };
  }

  /**
   * One time step through all layers: `x [B, in]` and the previous state → the new state (new
   * tensors; `state` is not disposed). The top layer's output is `result.h[numLayers − 1]`.
   * Between layers, dropout is applied to the layer's output in training mode (as PyTorch does).
   */
  step(x: Tensor, state: LstmState): LstmState {
    const L = this.numLayers;
    if (x.ndim !== 2 || x.shape[1] !== this.inputSize) {
      throw new Error(`LSTM.step: input [${x.shape.join(", ")}] should be [B, ${this.inputSize}]`);
    }
    if (state.h.length !== L || state.c.length !== L) {
      throw new Error(`LSTM.step: state has ${state.h.length}/${state.c.length} layers, expected ${L}`);
    }
    const B = x.shape[0];
    for (const t of [...state.h, ...state.c]) {
      if (t.ndim !== 2 || t.shape[0] !== B || t.shape[1] !== this.hiddenSize) {
        throw new Error(
          `LSTM.step: state tensor [${t.shape.join(", ")}] should be [${B}, ${this.hiddenSize}]`,
        );
      }
    }
    const h: Tensor[] = [], c: Tensor[] = [];
    let inp = x;
    for (let k = 0; k < L; k++) {
      const [hk, ck] = lstmCell(inp, state.h[k], state.c[k], this.layerWeights(k));
      if (inp !== x && !h.includes(inp)) inp.dispose();
      h.push(hk);
      c.push(ck);
      if (k < L - 1) inp = this.dropout > 0 && this.training ? dropout(hk, this.dropout, true) : hk;
    }
    return { h, c };
  }

  /**
   * Runs a whole sequence (`[B, T, in]` with `batchFirst`, else `[T, B, in]`) from `state`
   * (`h, c` as `[numLayers, B, H]`; zeros when omitted), PyTorch's `lstm(x, (h0, c0))`.
   */
  override forward(x: Tensor, state?: { h: Tensor; c: Tensor }): LstmResult {
    if (x.ndim !== 3 || x.shape[2] !== this.inputSize) {
      throw new Error(`LSTM: input [${x.shape.join(", ")}] should be 3-D with ${this.inputSize} features`);
    }
    const tAx = this.batchFirst ? 1 : 0;
    const T = x.shape[tAx], B = x.shape[1 - tAx];
    const L = this.numLayers, H = this.hiddenSize;
    let s: LstmState;
    if (state) {
      for (const t of [state.h, state.c]) {
        if (t.ndim !== 3 || t.shape[0] !== L || t.shape[1] !== B || t.shape[2] !== H) {
          throw new Error(`LSTM: state [${t.shape.join(", ")}] should be [${L}, ${B}, ${H}]`);
        }
      }
      const rows = (t: Tensor) =>
        Array.from({ length: L }, (_, k) => {
          const v = slice(t, 0, k, k + 1);
          const r = reshape(v, [B, H]);
          v.dispose();
          return r;
        });
      s = { h: rows(state.h), c: rows(state.c) };
    } else s = this.zeroState(B);
    const outs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const v = slice(x, tAx, t, t + 1);
      const xt = reshape(v, [B, this.inputSize]);
      v.dispose();
      const next = this.step(xt, s);
      xt.dispose();
      // The previous top hidden state is kept in `outs` (when t > 0).
      for (const u of [...s.h, ...s.c]) if (!outs.includes(u)) u.dispose();
      s = next;
      outs.push(s.h[L - 1]);
    }
    const output = stack(outs, tAx);
    const h = stack(s.h, 0), c = stack(s.c, 0);
    for (const u of new Set([...outs, ...s.h, ...s.c])) u.dispose();
    return { output, h, c };
  }
}
