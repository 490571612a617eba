/**
 * Positional embeddings of the reference (`models/modules.py`): learnable Fourier features of the
 * 2-D grid coordinates, a softmax-weighted mix of ten of them, and the rotational embeddings (2-D
 * for square feature maps, 1-D for sequences). Each takes the backbone features and returns an
 * embedding broadcastable to them (batch dim 1, the same for every sample). Parameter names match
 * the reference state dict.
 */
import { mul } from "../ops/arith.ts";
import { fromArray } from "../ops/creation.ts";
import { linear } from "../ops/matmul.ts";
import { sum } from "../ops/reduce.ts";
import { softmax } from "../ops/softmax.ts";
import { cos, sin } from "../ops/unary.ts";
import { concat, expand, permute, reshape, stack, unsqueeze } from "../ops/views.ts";
import { ModuleList, Sequential } from "../nn/containers.ts";
import { constant_, initRng, normal_ } from "../nn/init.ts";
import { GLU, LayerNorm } from "../nn/layers.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Rng } from "../util/rng.ts";

/** Disposes every tensor in `ts` (skipping duplicates). */
function free(...ts: Tensor[]): void {
  for (const t of new Set(ts)) t.dispose();
}

/** The `[B, C, H, W]` shape check shared by the 2-D embeddings. */
function grid2d(x: Tensor, who: string): [number, number] {
  if (x.ndim !== 4) {
    throw new Error(
      `${who}: expects backbone features [B, C, H, W], got [${x.shape.join(", ")}]; use ` +
        `'custom-rotational-1d' for [B, C, L] sequences`,
    );
  }
  return [x.shape[2], x.shape[3]];
}

/**
 * Grid coordinates `[H·W, 2]`, row-major over (row, col): (col/(W−1), row/(H−1)), the reference's
 * `add_coord_dim`. A size-1 axis gives 0 (the reference would divide 0 by 0).
 */
export function gridCoordinates(H: number, W: number): Float32Array {
  const c = new Float32Array(H * W * 2);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      c[2 * (i * W + j)] = W > 1 ? j / (W - 1) : 0;
      c[2 * (i * W + j) + 1] = H > 1 ? i / (H - 1) : 0;
    }
  }
  return c;
}

/** Angles in radians of `linspace(0°, 180°, n)`, as the rotational embeddings use them. */
export function rotationAngles(n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = ((n === 1 ? 0 : (180 * i) / (n - 1)) * Math.PI) / 180;
  return a;
}

/** Options of {@link LearnableFourierPositionalEncoding}. */
export interface LearnableFourierOptions {
  /** Fourier feature width F (default 256): F/2 frequencies, each giving a cosine and a sine. */
  fDim?: number;
  /** Hidden width of the MLP before its GLU (default 128). */
  hDim?: number;
  /** Frequency scale: `Wr` is drawn from N(0, gamma⁻²) (default 1/2.5, i.e. std 6.25). */
  gamma?: number;
  /** Generator for the initial values. */
  rng?: Rng;
}

/**
 * Learnable Fourier features of the grid coordinates (Li et al. 2021, G = 1, M = 2):
 * `F = [cos(X·Wrᵀ), sin(X·Wrᵀ)] / √F`, then `Linear(F → H) → GLU → Linear(H/2 → D) → LayerNorm(D)`.
 * Parameters `Wr.weight` `[F/2, 2]` and `mlp.{0,2,3}.*`. Output `[1, D, H, W]`.
 */
export class LearnableFourierPositionalEncoding extends Module {
  /** Output width D. */
  readonly dModel: number;
  /** Fourier feature width F. */
  readonly fDim: number;
  /** The frequency projection (no bias). */
  readonly wr: Linear;
  /** The MLP: Linear, GLU, Linear, LayerNorm. */
  readonly mlp: Sequential;

  /** Creates the encoder for `dModel` channels. */
  constructor(dModel: number, opts: LearnableFourierOptions = {}) {
    super();
    const F = opts.fDim ?? 256, H = opts.hDim ?? 128, gamma = opts.gamma ?? 1 / 2.5;
    if (!Number.isInteger(F) || F < 2 || F % 2 !== 0) {
      throw new Error(`fDim must be an even integer >= 2, got ${F}`);
    }
    if (!Number.isInteger(H) || H < 2 || H % 2 !== 0) {
      throw new Error(`hDim must be an even integer >= 2, got ${H}`);
    }
    if (!(gamma > 0)) throw new Error(`gamma must be positive, got ${gamma}`);
    const rng = opts.rng ?? initRng();
    this.dModel = dModel;
    this.fDim = F;
    this.wr = this.registerModule("Wr", new Linear(F / 2, { inFeatures: 2, bias: false, rng }));
    normal_(this.wr.weight, 0, gamma ** -2, rng);
    this.mlp = this.registerModule(
      "mlp",
      new Sequential(
        new Linear(H, { inFeatures: F, rng }),
        new GLU(-1),
        new Linear(dModel, { inFeatures: H / 2, rng }),
        new LayerNorm(dModel),
      ),
    );
  }

  /** The embedding for features `x [B, C, H, W]`: `[1, D, H, W]`. */
  override forward(x: Tensor): Tensor {
    const [H, W] = grid2d(x, "LearnableFourierPositionalEncoding");
    const coords = fromArray(gridCoordinates(H, W), [H * W, 2]);
    const proj = this.wr.forward(coords);
    const c = cos(proj), s = sin(proj);
    const cs = concat([c, s], -1);
    const f = mul(cs, 1 / Math.sqrt(this.fDim));
    const y = this.mlp.forward(f);
    const y4 = reshape(y, [1, H, W, this.dModel]);
    const out = permute(y4, [0, 3, 1, 2]);
    free(coords, proj, c, s, cs, f, y, y4);
    return out;
  }
}

/** Options of {@link MultiLearnableFourierPositionalEncoding}. */
export interface MultiLearnableFourierOptions extends Omit<LearnableFourierOptions, "gamma"> {
  /** First and last gamma of the encoders, spaced linearly (default [1.0, 0.1]). */
  gammaRange?: [number, number];
  /** Number of encoders (default 10). */
  n?: number;
}

/**
 * `n` learnable Fourier encoders with gammas spaced linearly over `gammaRange`, mixed with weights
 * `softmax(combination)` (`combination` learned, initialised to ones). Children `embedders.{i}`.
 */
export class MultiLearnableFourierPositionalEncoding extends Module {
  /** The encoders. */
  readonly embedders: ModuleList<LearnableFourierPositionalEncoding>;

  /** Creates the `n` encoders and the mixing logits. */
  constructor(dModel: number, opts: MultiLearnableFourierOptions = {}) {
    super();
    const n = opts.n ?? 10;
    const [g0, g1] = opts.gammaRange ?? [1.0, 0.1];
    if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
    const rng = opts.rng ?? initRng();
    const list: LearnableFourierPositionalEncoding[] = [];
    for (let i = 0; i < n; i++) {
      const gamma = n === 1 ? g0 : g0 + ((g1 - g0) * i) / (n - 1);
      list.push(new LearnableFourierPositionalEncoding(dModel, { ...opts, gamma, rng }));
    }
    this.embedders = this.registerModule("embedders", new ModuleList(list));
    this.registerParameter("combination", constant_(Tensor.empty([n]), 1));
  }

  /** The mixed embedding for features `x [B, C, H, W]`: `[1, D, H, W]`. */
  override forward(x: Tensor): Tensor {
    const embs = [...this.embedders].map((e) => e.forward(x));
    const st = stack(embs, 0);
    const n = embs.length;
    const w = softmax(this.getParameter("combination"), -1);
    const w5 = reshape(w, [n, 1, 1, 1, 1]);
    const weighted = mul(st, w5);
    const out = sum(weighted, 0);
    free(...embs, st, w, w5, weighted);
    return out;
  }
}

/**
 * Learned 2-D rotational positions for square maps: `start_vector` (init [0, 1]) rotated by the
 * angles `linspace(0°, 180°, W)` gives `rot [W, 2]`; position (i, j) gets `[rot[i], rot[j]]`
 * projected by `projection.0` (`Linear(4 → D)`). Output `[1, D, W, W]`.
 */
export class CustomRotationalEmbedding extends Module {
  /** Output width D. */
  readonly dModel: number;
  /** The projection, `Sequential(Linear(4 → D))`. */
  readonly projection: Sequential;

  /** Creates the start vector and projection. */
  constructor(dModel: number, opts: { rng?: Rng } = {}) {
    super();
    this.dModel = dModel;
    this.registerParameter("start_vector", fromArray(new Float32Array([0, 1])));
    this.projection = this.registerModule(
      "projection",
      new Sequential(new Linear(dModel, { inFeatures: 4, rng: opts.rng ?? initRng() })),
    );
  }

  /** The embedding for square features `x [B, C, W, W]`: `[1, D, W, W]`. */
  override forward(x: Tensor): Tensor {
    const [H, W] = grid2d(x, "CustomRotationalEmbedding");
    if (H !== W) {
      throw new Error(
        `CustomRotationalEmbedding: needs a square feature map (the reference builds a W×W grid), ` +
          `got ${H}×${W}; use 'learnable-fourier' or 'none' for non-square inputs`,
      );
    }
    // rot[j] = R(θ_j)·v with R = [[cos, −sin], [sin, cos]]: one small matmul against v.
    const th = rotationAngles(W);
    const r = new Float32Array(W * 4);
    for (let j = 0; j < W; j++) {
      r.set([Math.cos(th[j]), -Math.sin(th[j]), Math.sin(th[j]), Math.cos(th[j])], 4 * j);
    }
    const rm = fromArray(r, [2 * W, 2]);
    const v = unsqueeze(this.getParameter("start_vector"), 0);
    const rv = linear(rm, v);
    const rot = reshape(rv, [W, 2]);
    const ri = reshape(rot, [W, 1, 2]), rj = reshape(rot, [1, W, 2]);
    const ei = expand(ri, [W, W, 2]), ej = expand(rj, [W, W, 2]);
    const key = concat([ei, ej], -1);
    const pe = this.projection.forward(key);
    const p = permute(pe, [2, 0, 1]);
    const out = unsqueeze(p, 0);
    free(rm, v, rv, rot, ri, rj, ei, ej, key, pe, p);
    return out;
  }
}

/**
 * Fixed 1-D rotational positions: the vector [0, 1] rotated by the angles `linspace(0°, 180°, L)`,
 * projected by a learned `Linear(2 → d)` (`projection`). Output `[1, d, L]`.
 */
export class CustomRotationalEmbedding1D extends Module {
  /** The learned projection. */
  readonly projection: Linear;

  /** Creates the projection. */
  constructor(dModel: number, opts: { rng?: Rng } = {}) {
    super();
    this.projection = this.registerModule(
      "projection",
      new Linear(dModel, { inFeatures: 2, rng: opts.rng ?? initRng() }),
    );
  }

  /** Positions for features `x [B, d, L]`, broadcastable to it: `[1, d, L]`. */
  override forward(x: Tensor): Tensor {
    if (x.ndim !== 3) {
      throw new Error(
        `CustomRotationalEmbedding1D: expects features [B, C, L], got [${x.shape.join(", ")}]`,
      );
    }
    const L = x.shape[2];
    const th = rotationAngles(L);
    const rot = new Float32Array(L * 2);
    for (let i = 0; i < L; i++) {
      rot[2 * i] = -Math.sin(th[i]);
      rot[2 * i + 1] = Math.cos(th[i]);
    }
    const v = fromArray(rot, [L, 2]);
    const pe = this.projection.forward(v);
    const t = permute(pe, [1, 0]);
    const out = unsqueeze(t, 0);
    free(v, pe, t);
    return out;
  }
}
