/**
 * ResNet backbones (`src/models/resnet.ts`) and ShallowWide (`src/models/shallow_wide.ts`):
 * parameter counts against the reference's numbers, output grids, torchvision state-dict names,
 * blocks' forward and gradients against float64 references with finite differences, whole
 * truncated networks against a float64 reference (train- and eval-mode BN), the lazy stem and
 * the reference's name parsing.
 */
import { assertClose, assertShape, gpuTest, type Ref, Rng, size } from "./helpers.ts";
import { moduleGradcheck, type Params, randomParams, readParams } from "./module_gradcheck.ts";
import {
  BasicBlock,
  Bottleneck,
  parseResNetType,
  prepareResnetBackbone,
  ResNet,
  resnetChannels,
  resnetOutputSize,
} from "../src/models/resnet.ts";
import { ShallowWide } from "../src/models/shallow_wide.ts";
import { fromArray, zeros } from "../src/ops/creation.ts";
import { noGrad } from "../src/tensor/autograd.ts";
import type { Module } from "../src/nn/module.ts";

// ---------------------------------------------------------------- float64 references (NCHW)

function conv2d(x: Ref, w: Ref, b: Ref | null, stride: number, pad: number, groups = 1): Ref {
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
function batchNorm(x: Ref, p: Params, prefix: string, train: boolean): Ref {
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

const relu = (x: Ref): Ref => ({ shape: x.shape, data: x.data.map((v) => Math.max(v, 0)) });
const addRef = (a: Ref, b: Ref): Ref => ({ shape: a.shape, data: a.data.map((v, i) => v + b.data[i]) });

function maxPool(x: Ref, k: number, s: number, pad: number): Ref {
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
function gluC(x: Ref): Ref {
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
function refBlock(p: Params, pre: string, x: Ref, stride: number, bottleneck: boolean, train: boolean): Ref {
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

const BLOCKS: Record<number, [boolean, number[]]> = {
  18: [false, [2, 2, 2, 2]],
  34: [false, [3, 4, 6, 3]],
  50: [true, [3, 4, 6, 3]],
  101: [true, [3, 4, 23, 3]],
  152: [true, [3, 4, 36, 3]],
};

function refResNet(p: Params, depth: number, stages: number, x: Ref, train: boolean): Ref {
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

/** Analytic parameter count (convs without bias, BN 2C), independent of the module code. */
function countParams(depth: number, stages: number, inC = 3): number {
  const [bottleneck, layers] = BLOCKS[depth];
  let n = inC * 64 * 9 + 128, inp = 64;
  for (let s = 0; s < stages; s++) {
    const p = 64 << s, out = bottleneck ? 4 * p : p;
    for (let b = 0; b < layers[s]; b++) {
      n += bottleneck ? inp * p + 9 * p * p + p * out + 4 * p + 2 * out : 9 * inp * p + 9 * p * p + 4 * p;
      if (b === 0 && (s > 0 || inp !== out)) n += inp * out + 2 * out;
      inp = out;
    }
  }
  return n;
}

/** torchvision's state-dict names of a truncated ResNet. */
function torchvisionNames(depth: number, stages: number): string[] {
  const [bottleneck, layers] = BLOCKS[depth];
  const bn = (pre: string) =>
    ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map((k) => `${pre}.${k}`);
  const names = ["conv1.weight", ...bn("bn1")];
  let inp = 64;
  for (let s = 0; s < stages; s++) {
    const out = (64 << s) * (bottleneck ? 4 : 1);
    for (let b = 0; b < layers[s]; b++) {
      const pre = `layer${s + 1}.${b}`;
      for (let k = 1; k <= (bottleneck ? 3 : 2); k++) {
        names.push(`${pre}.conv${k}.weight`, ...bn(`${pre}.bn${k}`));
      }
      if (b === 0 && (s > 0 || inp !== out)) {
        names.push(`${pre}.downsample.0.weight`, ...bn(`${pre}.downsample.1`));
      }
      inp = out;
    }
  }
  return names;
}

/**
 * BN affine parameters away from the degenerate range: γ in [0.5, 1.5), β in [−0.3, 0.3), so a
 * ReLU after the norm never kills a whole channel and every branch affects the output.
 */
function bnFriendly(p: Params, rng: Rng): Params {
  for (const [k, r] of p) {
    if (r.shape.length !== 1 || k.endsWith("conv1.bias") || /layers\.[03]\.bias/.test(k)) continue;
    const [lo, hi] = k.endsWith("weight") ? [0.5, 1.5] : [-0.3, 0.3];
    p.set(k, { shape: r.shape, data: rng.uniformArray(r.data.length, lo, hi) });
  }
  return p;
}

function randImage(rng: Rng, shape: number[]): Ref {
  return { shape, data: rng.uniformArray(size(shape), -1, 1) };
}

// ---------------------------------------------------------------- tests

gpuTest("parameter counts equal the reference's (resnet18-1 … resnet152-4) and the analytic count", () => {
  const want: [string, number][] = [
    ["resnet18-1", 149_824],
    ["resnet18-2", 675_392],
    ["resnet18-4", 11_168_832],
    ["resnet34-2", 1_340_224],
    ["resnet50-4", 23_500_352],
    ["resnet152-4", 57_015_872],
  ];
  for (const [name, n] of want) {
    const { depth, stages } = parseResNetType(name);
    if (countParams(depth, stages) !== n) {
      throw new Error(`analytic count of ${name}: ${countParams(depth, stages)} != ${n}`);
    }
    const net = prepareResnetBackbone(name);
    if (net.parameterCount() !== n) {
      throw new Error(`${name}: ${net.parameterCount()} parameters, reference ${n}`);
    }
    if (net.outChannels !== resnetChannels(depth, stages)) {
      throw new Error(`${name}: ${net.outChannels} channels`);
    }
    net.dispose();
  }
});

gpuTest("every depth and truncation builds with the analytic parameter count and width", () => {
  for (const depth of [18, 34, 50, 101] as const) {
    for (const k of [1, 2, 3]) {
      const net = prepareResnetBackbone(`resnet${depth}-${k}`);
      if (net.parameterCount() !== countParams(depth, k)) {
        throw new Error(`resnet${depth}-${k}: ${net.parameterCount()}`);
      }
      const wide = BLOCKS[depth][0] ? 4 : 1;
      if (net.outChannels !== (64 << (k - 1)) * wide) {
        throw new Error(`resnet${depth}-${k}: width ${net.outChannels}`);
      }
      net.dispose();
    }
  }
  const net = prepareResnetBackbone("resnet101-4");
  if (net.parameterCount() !== countParams(101, 4)) throw new Error(`resnet101-4: ${net.parameterCount()}`);
  net.dispose();
});

gpuTest("state-dict names follow torchvision (resnet18-2, resnet50-2)", () => {
  for (const [depth, k] of [[18, 2], [50, 2]] as const) {
    const net = new ResNet({ depth, stages: k });
    const got = [...net.stateDict().keys()], want = torchvisionNames(depth, k);
    if (got.join() !== want.join()) {
      const diff = got.find((n, i) => n !== want[i]);
      throw new Error(`resnet${depth}-${k}: names differ first at '${diff}'`);
    }
    net.dispose();
  }
});

gpuTest("output grids: CIFAR 32 → 16×16×64 (resnet18-1) and 2×2×512 (resnet18-4); size formula", async () => {
  for (const [name, shape] of [["resnet18-1", [1, 64, 16, 16]], ["resnet18-4", [1, 512, 2, 2]]] as const) {
    const net = prepareResnetBackbone(name);
    const x = zeros([1, 3, 32, 32]);
    const y = noGrad(() => net.forward(x));
    assertShape(y, shape, name);
    const v = await y.toArray();
    if (!v.every(Number.isFinite)) throw new Error(`${name}: non-finite features`);
    for (const t of [x, y]) t.dispose();
    net.dispose();
  }
  const table: [number, number, number][] = [
    [32, 1, 16],
    [32, 4, 2],
    [224, 4, 14],
    [39, 2, 10],
    [99, 2, 25],
    [39, 1, 20],
  ];
  for (const [h, k, s] of table) {
    if (resnetOutputSize(h, k) !== s) {
      throw new Error(`size ${h} after ${k} stages: ${resnetOutputSize(h, k)} != ${s}`);
    }
  }
});

gpuTest(
  "BasicBlock and Bottleneck: forward and every parameter's gradient vs float64 (train-mode BN)",
  async () => {
    const rng = new Rng(7);
    const cases: [Module, number[], number, boolean][] = [
      [new BasicBlock(3, 4, { stride: 2, rng }), [2, 3, 5, 5], 2, false],
      [new BasicBlock(4, 4, { rng }), [2, 4, 3, 3], 1, false],
      [new Bottleneck(4, 3, { stride: 2, rng }), [2, 4, 5, 5], 2, true],
      [new Bottleneck(12, 3, { rng }), [1, 12, 3, 2], 1, true],
    ];
    for (const [block, shape, stride, bottleneck] of cases) {
      const xr = randImage(rng, shape);
      const x = fromArray(Float32Array.from(xr.data), shape);
      await moduleGradcheck(
        block,
        x,
        bnFriendly(randomParams(block, rng), rng),
        (p) => refBlock(p, "", xr, stride, bottleneck, true),
        {
          atol: 1e-4,
          rtol: 1e-3,
          gradAtol: 2e-4,
          gradRtol: 2e-3,
        },
      );
      x.dispose();
      block.dispose();
    }
  },
);

gpuTest("resnet18-2 and resnet50-1 match a float64 reference in train and eval mode", async () => {
  const rng = new Rng(8);
  for (const [depth, k, shape] of [[18, 2, [2, 3, 9, 9]], [50, 1, [2, 3, 6, 5]]] as const) {
    const net = new ResNet({ depth, stages: k, rng });
    const xr = randImage(rng, [...shape]);
    const x = fromArray(Float32Array.from(xr.data), [...shape]);
    const p0 = await readParams(net);
    const y = noGrad(() => net.forward(x));
    const ref = refResNet(p0, depth, k, xr, true);
    assertShape(y, ref.shape);
    assertClose(await y.toArray(), ref.data, { atol: 1e-3, rtol: 1e-3, msg: `resnet${depth}-${k} train` });
    net.eval();
    const p1 = await readParams(net);
    const ye = noGrad(() => net.forward(x));
    assertClose(await ye.toArray(), refResNet(p1, depth, k, xr, false).data, {
      atol: 1e-3,
      rtol: 1e-3,
      msg: `resnet${depth}-${k} eval`,
    });
    for (const t of [x, y, ye]) t.dispose();
    net.dispose();
  }
});

gpuTest("the stem is lazy for channel counts other than 1 and 3; 1 and 3 build at once", () => {
  const lazy = new ResNet({ depth: 18, stages: 1, inChannels: 5 });
  if (lazy.parameterCount() !== countParams(18, 1) - 3 * 64 * 9) {
    throw new Error("the lazy stem should have no weight yet");
  }
  const x = zeros([1, 5, 6, 6]);
  const y = noGrad(() => lazy.forward(x));
  assertShape(y, [1, 64, 3, 3]);
  assertShape(lazy.stateDict().get("conv1.weight")!, [64, 5, 3, 3]);
  if (lazy.parameterCount() !== countParams(18, 1, 5)) throw new Error(`lazy count ${lazy.parameterCount()}`);
  for (const t of [x, y]) t.dispose();
  lazy.dispose();
  const gray = new ResNet({ depth: 18, stages: 1, inChannels: 1 });
  assertShape(gray.stateDict().get("conv1.weight")!, [64, 1, 3, 3]);
  gray.dispose();
});

gpuTest("resnet names are read like the reference: family by substring, stages from the suffix", () => {
  const cases: [string, number, number][] = [
    ["resnet18-1", 18, 1],
    ["resnet34-3", 34, 3],
    ["resnet50-2", 50, 2],
    ["resnet101-4", 101, 4],
    ["resnet152-4", 152, 4],
    ["none", 18, 4],
    ["shallow-wide", 18, 4],
    ["parity_backbone", 18, 4],
  ];
  for (const [name, depth, stages] of cases) {
    const r = parseResNetType(name);
    if (r.depth !== depth || r.stages !== stages) throw new Error(`${name}: got ${JSON.stringify(r)}`);
  }
  let msg = "";
  try {
    new ResNet({ depth: 18, stages: 5 });
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("stages must be")) throw new Error(`stages 5 should be refused, got '${msg}'`);
});

gpuTest(
  "ShallowWide: reference layout, names and count; small-width forward and gradients vs float64",
  async () => {
    const sw = new ShallowWide();
    const x = zeros([1, 3, 4, 4]);
    const y = noGrad(() => sw.forward(x));
    assertShape(y, [1, 2048, 2, 2]);
    const shapes = [...sw.namedParameters()].map(([k, t]) => `${k}:${t.shape.join("x")}`);
    const want = [
      "layers.0.weight:4096x3x3x3",
      "layers.0.bias:4096",
      "layers.2.weight:2048",
      "layers.2.bias:2048",
      "layers.3.weight:4096x64x3x3",
      "layers.3.bias:4096",
      "layers.5.weight:2048",
      "layers.5.bias:2048",
    ];
    if (shapes.join() !== want.join()) throw new Error(`parameters ${shapes}`);
    if (sw.parameterCount() !== 2_486_272) throw new Error(`count ${sw.parameterCount()}`);
    for (const t of [x, y]) t.dispose();
    sw.dispose();

    const rng = new Rng(9);
    const small = new ShallowWide({ inChannels: 2, width: 4, groups: 2, rng });
    const xr = randImage(rng, [2, 2, 5, 4]);
    const xs = fromArray(Float32Array.from(xr.data), xr.shape);
    const ref = (p: Params): Ref => {
      const w = (k: string) => p.get(`layers.${k}`)!;
      let h = conv2d(xr, w("0.weight"), w("0.bias"), 2, 1);
      h = batchNorm(gluC(h), p, "layers.2.", true);
      h = conv2d(h, w("3.weight"), w("3.bias"), 1, 1, 2);
      return batchNorm(gluC(h), p, "layers.5.", true);
    };
    await moduleGradcheck(small, xs, bnFriendly(randomParams(small, rng), rng), ref, {
      atol: 1e-4,
      rtol: 1e-3,
      gradAtol: 2e-4,
      gradRtol: 2e-3,
    });
    xs.dispose();
    small.dispose();
  },
);
