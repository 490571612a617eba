/**
 * ResNet backbones (`src/models/resnet.ts`): parameter counts against the reference's numbers and an
 * analytic count, torchvision state-dict names, output grids, the lazy stem and the reference's name
 * parsing. Numerical forward/gradient checks are in `resnet_grad_test.ts`.
 */
import { assertShape, gpuTest } from "./helpers.ts";
import { BLOCKS } from "./resnet_fixtures.ts";
import {
  parseResNetType,
  prepareResnetBackbone,
  ResNet,
  resnetChannels,
  resnetOutputSize,
} from "../src/models/resnet.ts";
import { zeros } from "../src/ops/creation.ts";
import { noGrad } from "../src/tensor/autograd.ts";

// ---------------------------------------------------------------- architecture references

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
