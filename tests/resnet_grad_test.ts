/**
 * ResNet blocks and backbones (`src/models/resnet.ts`) and ShallowWide (`src/models/shallow_wide.ts`)
 * against float64 references: blocks' forward and every parameter's gradient with finite differences,
 * whole truncated networks in train- and eval-mode BN, and ShallowWide's layout, count and gradients.
 */
import { assertClose, assertShape, gpuTest, type Ref, Rng } from "./helpers.ts";
import { moduleGradcheck, type Params, randomParams, readParams } from "./module_gradcheck.ts";
import { batchNorm, bnFriendly, conv2d, gluC, randImage, refBlock, refResNet } from "./resnet_fixtures.ts";
import { BasicBlock, Bottleneck, ResNet } from "../src/models/resnet.ts";
import { ShallowWide } from "../src/models/shallow_wide.ts";
import { fromArray, zeros } from "../src/ops/creation.ts";
import { noGrad } from "../src/tensor/autograd.ts";
import type { Module } from "../src/nn/module.ts";

gpuTest(
  "BasicBlock and Bottleneck: forward, every parameter's and the input's gradient vs float64 (train-mode BN)",
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
      const x = fromArray(Float32Array.from(xr.data), shape).requireGrad();
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
        // The input's gradient too: through the convolutions and the shortcut.
        { x: xr, ref: (p, xi) => refBlock(p, "", xi, stride, bottleneck, true) },
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
