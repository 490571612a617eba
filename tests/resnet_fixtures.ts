/**
 * Float64 NCHW references for the ResNet and ShallowWide tests (`resnet_test.ts`,
 * `resnet_grad_test.ts`): convolution, batch norm, max-pool, channel GLU, torchvision-named residual
 * blocks and truncated ResNets, plus the block table per depth, BN-friendly parameters and random images.
 */
import { type Ref, type Rng, size } from "./helpers.ts";
import type { Params } from "./module_gradcheck.ts";

// ---------------------------------------------------------------- float64 references (NCHW)

/** Float64 2-D convolution of `[B, C, H, W]` by `[O, C/groups, kh, kw]` with optional bias. */
export function conv2d(x: Ref, w: Ref, b: Ref | null, stride: number, pad: number, groups = 1): Ref {
  const [B, C, H, W] = x.shape, [O, Cg, kh, kw] = w.shape;
  const OH = Math.floor((H + 2 * pad - kh) / stride) + 1, OW = Math.floor((W + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(B * O * OH * OW), Og = O / groups;
  for (let n = 0; n < B; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let s = b ? b.data[o] : 0;
          for (let c = 0; c < Cg; c++) {
            const ci = g * Cg + c;
            for (let u = 0; u < kh; u++) {
              const y = i * stride - pad + u;
              if (y < 0 || y >= H) continue;
              for (let v = 0; v < kw; v++) {
                const xx = j * stride - pad + v;
                if (xx < 0 || xx >= W) continue;
                s += x.data[((n * C + ci) * H + y) * W + xx] * w.data[((o * Cg + c) * kh + u) * kw + v];
              }
            }
          }
          out[((n * O + o) * OH + i) * OW + j] = s;
        }
      }
    }
  }
  return { shape: [B, O, OH, OW], data: out };
}

/** Batch norm with batch statistics (train) or the given running statistics (eval). */
export function batchNorm(x: Ref, p: Params, prefix: string, train: boolean): Ref {
  const [B, C, H, W] = x.shape, hw = H * W, n = B * hw;
  const w = p.get(prefix + "weight")!.data, b = p.get(prefix + "bias")!.data;
  const out = new Float64Array(x.data.length);
  for (let c = 0; c < C; c++) {
    let mu: number, v: number;
    if (train) {
      mu = 0;
      for (let k = 0; k < B; k++) for (let s = 0; s < hw; s++) mu += x.data[(k * C + c) * hw + s];
      mu /= n;
      v = 0;
      for (let k = 0; k < B; k++) for (let s = 0; s < hw; s++) v += (x.data[(k * C + c) * hw + s] - mu) ** 2;
      v /= n;
    } else {
      mu = p.get(prefix + "running_mean")!.data[c];
      v = p.get(prefix + "running_var")!.data[c];
    }
    for (let k = 0; k < B; k++) {
      for (let s = 0; s < hw; s++) {
        const i = (k * C + c) * hw + s;
        out[i] = ((x.data[i] - mu) / Math.sqrt(v + 1e-5)) * w[c] + b[c];
      }
    }
  }
  return { shape: x.shape, data: out };
}

/** Element-wise ReLU. */
export const relu = (x: Ref): Ref => ({ shape: x.shape, data: x.data.map((v) => Math.max(v, 0)) });

/** Element-wise sum of two same-shaped references. */
export const addRef = (a: Ref, b: Ref): Ref => ({
  shape: a.shape,
  data: a.data.map((v, i) => v + b.data[i]),
});

/** Max-pool with a `k`×`k` window, stride `s` and padding `pad` (padding never wins). */
export function maxPool(x: Ref, k: number, s: number, pad: number): Ref {
  const [B, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * pad - k) / s) + 1, OW = Math.floor((W + 2 * pad - k) / s) + 1;
  const out = new Float64Array(B * C * OH * OW);
  for (let bc = 0; bc < B * C; bc++) {
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) {
        let m = -Infinity;
        for (let u = 0; u < k; u++) {
          for (let v = 0; v < k; v++) {
            const y = i * s - pad + u, xx = j * s - pad + v;
            if (y >= 0 && y < H && xx >= 0 && xx < W) m = Math.max(m, x.data[(bc * H + y) * W + xx]);
          }
        }
        out[(bc * OH + i) * OW + j] = m;
      }
    }
  }
  return { shape: [B, C, OH, OW], data: out };
}

/** GLU over the channel dim of `[B, 2C, H, W]`. */
export function gluC(x: Ref): Ref {
  const [B, C2, H, W] = x.shape, C = C2 / 2, hw = H * W;
  const out = new Float64Array(B * C * hw);
  for (let n = 0; n < B; n++) {
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < hw; s++) {
        const a = x.data[(n * C2 + c) * hw + s], g = x.data[(n * C2 + C + c) * hw + s];
        out[(n * C + c) * hw + s] = a / (1 + Math.exp(-g));
      }
    }
  }
  return { shape: [B, C, H, W], data: out };
}

/** One residual block by torchvision names under `pre` (basic or bottleneck). */
export function refBlock(
  p: Params,
  pre: string,
  x: Ref,
  stride: number,
  bottleneck: boolean,
  train: boolean,
): Ref {
  const cv = (name: string, h: Ref, s: number, pad: number) =>
    conv2d(h, p.get(pre + name + ".weight")!, null, s, pad);
  const bn = (name: string, h: Ref) => batchNorm(h, p, `${pre}${name}.`, train);
  let h: Ref;
  if (bottleneck) {
    h = relu(bn("bn1", cv("conv1", x, 1, 0)));
    h = relu(bn("bn2", cv("conv2", h, stride, 1)));
    h = bn("bn3", cv("conv3", h, 1, 0));
  } else {
    h = relu(bn("bn1", cv("conv1", x, stride, 1)));
    h = bn("bn2", cv("conv2", h, 1, 1));
  }
  const sc = p.has(pre + "downsample.0.weight")
    ? batchNorm(
      conv2d(x, p.get(pre + "downsample.0.weight")!, null, stride, 0),
      p,
      pre + "downsample.1.",
      train,
    )
    : x;
  return relu(addRef(h, sc));
}

/** Per depth: whether blocks are bottlenecks, and the number of blocks in each of the four stages. */
export const BLOCKS: Record<number, [boolean, number[]]> = {
  18: [false, [2, 2, 2, 2]],
  34: [false, [3, 4, 6, 3]],
  50: [true, [3, 4, 6, 3]],
  101: [true, [3, 4, 23, 3]],
  152: [true, [3, 4, 36, 3]],
};

/** A ResNet truncated after `stages` stages (3×3 stride-1 stem, max-pool), by torchvision names. */
export function refResNet(p: Params, depth: number, stages: number, x: Ref, train: boolean): Ref {
  const [bottleneck, layers] = BLOCKS[depth];
  let h = relu(batchNorm(conv2d(x, p.get("conv1.weight")!, null, 1, 1), p, "bn1.", train));
  h = maxPool(h, 3, 2, 1);
  for (let s = 0; s < stages; s++) {
    for (let b = 0; b < layers[s]; b++) {
      h = refBlock(p, `layer${s + 1}.${b}.`, h, b === 0 && s > 0 ? 2 : 1, bottleneck, train);
    }
  }
  return h;
}

/**
 * BN affine parameters away from the degenerate range: γ in [0.5, 1.5), β in [−0.3, 0.3), so a
 * ReLU after the norm never kills a whole channel and every branch affects the output.
 */
export function bnFriendly(p: Params, rng: Rng): Params {
  for (const [k, r] of p) {
    if (r.shape.length !== 1 || k.endsWith("conv1.bias") || /layers\.[03]\.bias/.test(k)) continue;
    const [lo, hi] = k.endsWith("weight") ? [0.5, 1.5] : [-0.3, 0.3];
    p.set(k, { shape: r.shape, data: rng.uniformArray(r.data.length, lo, hi) });
  }
  return p;
}

/** A random image reference of `shape` with values uniform in [−1, 1). */
export function randImage(rng: Rng, shape: number[]): Ref {
  return { shape, data: rng.uniformArray(size(shape), -1, 1) };
}
