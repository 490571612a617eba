import { fromArray } from "../src/ops/creation.ts";
import { mean, sum } from "../src/ops/reduce.ts";
import { mul, sub } from "../src/ops/arith.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { Module } from "../src/nn/module.ts";
import { Linear } from "../src/nn/linear.ts";
import { Dropout, Embedding, GLU, Identity, LayerNorm, ReLU, SiLU, Squeeze } from "../src/nn/layers.ts";
import { ModuleList, Sequential } from "../src/nn/containers.ts";
import { seedInit } from "../src/nn/init.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { assertClose, assertShape, gpuTest, Rng } from "./helpers.ts";

function expectThrow(f: () => unknown, ...texts: string[]): void {
  try {
    f();
  } catch (e) {
    if (texts.every((t) => String(e).includes(t))) return;
    throw new Error(`expected [${texts.join(" | ")}], got ${e}`);
  }
  throw new Error(`expected an error containing [${texts.join(" | ")}]`);
}

/** A small model shaped like the CTM's pieces (names as in a PyTorch state dict). */
class Toy extends Module {
  backbone = this.registerModule(
    "backbone",
    new Sequential(new Linear(8, { inFeatures: 4 }), new LayerNorm(8), new SiLU()),
  );
  synapses = this.registerModule(
    "synapses",
    new Sequential(new Dropout(0.5), new Linear(6), new GLU(), new LayerNorm(3)),
  );
  emb = this.registerModule("emb", new Embedding(5, 4));
  heads = this.registerModule(
    "heads",
    new ModuleList([new Linear(2, { inFeatures: 3, bias: false }), new Identity()]),
  );

  constructor() {
    super();
    this.registerParameter("start_state", fromArray([0.5, -0.5, 1]));
    this.registerBuffer("idx", fromArray(new Int32Array([3, 1])));
    this.registerBuffer("scratch", fromArray([0, 0]), false);
  }

  override forward(x: Tensor): Tensor {
    const h = this.backbone.forward(x);
    const s = this.synapses.forward(h);
    h.dispose();
    const o = (this.heads.at(0) as Linear).forward(s);
    s.dispose();
    return o;
  }
}

const shapes = (m: Map<string, Tensor>) => [...m].map(([k, t]) => `${k}:${t.shape.join("x")}`).join(" ");

gpuTest("state-dict names, order and shapes follow PyTorch; lazy Linear appears after forward", () => {
  const m = new Toy();
  const before = shapes(m.stateDict());
  const want0 =
    "start_state:3 idx:2 backbone.0.weight:8x4 backbone.0.bias:8 backbone.1.weight:8 backbone.1.bias:8 " +
    "synapses.3.weight:3 synapses.3.bias:3 emb.weight:5x4 heads.0.weight:2x3";
  if (before !== want0) throw new Error(`before forward:\n${before}\nwanted\n${want0}`);
  const y = tidy(() => m.forward(fromArray(new Float32Array(8), [2, 4])));
  assertShape(y, [2, 2]);
  y.dispose();
  const after = shapes(m.stateDict());
  const want1 = want0.replace(
    "synapses.3.weight",
    "synapses.1.weight:6x8 synapses.1.bias:6 synapses.3.weight",
  );
  if (after !== want1) throw new Error(`after forward:\n${after}\nwanted\n${want1}`);
  if ([...m.namedBuffers().keys()].join() !== "idx,scratch") throw new Error("namedBuffers");
  const params = [...m.namedParameters().keys()];
  if (params[0] !== "start_state" || params.includes("idx")) throw new Error("namedParameters");
  const lin = m.backbone.at(0) as Linear;
  if (!lin.weight.requiresGrad || !lin.weight.kept) throw new Error("parameters must be kept grad leaves");
  const count = 3 + 8 * 4 + 8 + 16 + 6 * 8 + 6 + 6 + 5 * 4 + 2 * 3;
  if (m.parameterCount() !== count) throw new Error(`parameterCount ${m.parameterCount()} != ${count}`);
  if ([...m.namedModules().keys()].slice(0, 3).join() !== ",backbone,backbone.0") {
    throw new Error("namedModules");
  }
  m.dispose();
});

gpuTest("train()/eval() propagate; Dropout is the identity in eval mode", async () => {
  const m = new Toy();
  const mods = [...m.namedModules().values()];
  m.eval();
  if (mods.some((x) => x.training)) throw new Error("eval did not propagate");
  const drop = m.synapses.at(0);
  const x = fromArray([1, 2, 3, 4]);
  const y = drop.forward(x);
  assertClose(await y.toArray(), [1, 2, 3, 4]);
  m.train();
  if (mods.some((x) => !x.training)) throw new Error("train did not propagate");
  const big = fromArray(new Float32Array(4000).fill(1));
  const z = drop.forward(big);
  const zs = await z.toArray();
  const zeros = zs.filter((v) => v === 0).length;
  if (zeros < 1700 || zeros > 2300 || zs.some((v) => v !== 0 && Math.abs(v - 2) > 1e-6)) {
    throw new Error("dropout in train");
  }
  for (const t of [x, y, big, z]) t.dispose();
  m.dispose();
});

gpuTest("Linear matches float64 forward and backward; lazy input checks", async () => {
  const rng = new Rng(7);
  const fc = new Linear(3, { rng });
  if (fc.isMaterialized) throw new Error("should be lazy");
  expectThrow(() => fc.weight, "lazy");
  const xs = Array.from(rng.uniformArray(2 * 5));
  const x = fromArray(Float32Array.from(xs), [2, 5]);
  const y = fc.forward(x);
  assertShape(fc.weight, [3, 5]);
  const w = await fc.weight.toArray(), b = await fc.bias!.toArray();
  const ref: number[] = [];
  for (let i = 0; i < 2; i++) {
    for (let o = 0; o < 3; o++) {
      let s = b[o];
      for (let k = 0; k < 5; k++) s += xs[i * 5 + k] * w[o * 5 + k];
      ref.push(s);
    }
  }
  assertClose(await y.toArray(), ref, { atol: 1e-5 });
  tidy(() => sum(y).backward());
  const gw: number[] = [];
  for (let o = 0; o < 3; o++) for (let k = 0; k < 5; k++) gw.push(xs[k] + xs[5 + k]);
  assertClose(await fc.weight.grad!.toArray(), gw, { atol: 1e-5 });
  assertClose(await fc.bias!.grad!.toArray(), [2, 2, 2]);
  expectThrow(() => fc.forward(fromArray(new Float32Array(4), [1, 4])), "4 features", "expects 5");
  const nb = new Linear(2, { inFeatures: 3, bias: false });
  if (nb.bias !== null || nb.stateDict().size !== 1) throw new Error("bias: false");
  x.dispose();
  y.dispose();
  fc.dispose();
  nb.dispose();
});

gpuTest("default initialisation: PyTorch ranges and statistics, seeded", async () => {
  seedInit(42);
  const fc = new Linear(64, { inFeatures: 100 });
  const emb = new Embedding(200, 50);
  const ln = new LayerNorm([4, 5]);
  const w = await fc.weight.toArray(), b = await fc.bias!.toArray();
  const bound = 1 / Math.sqrt(100);
  for (const [name, a] of [["weight", w], ["bias", b]] as const) {
    if (a.some((v) => Math.abs(v) > bound)) throw new Error(`Linear ${name} outside ±1/√fanIn`);
  }
  const stats = (a: ArrayLike<number>) => {
    let s = 0, q = 0;
    for (let i = 0; i < a.length; i++) s += a[i];
    const m = s / a.length;
    for (let i = 0; i < a.length; i++) q += (a[i] - m) ** 2;
    return { m, v: q / a.length };
  };
  const sw = stats(w);
  if (Math.abs(sw.m) > 0.004 || Math.abs(sw.v - bound * bound / 3) > 0.0004) {
    throw new Error(`Linear stats ${JSON.stringify(sw)}`);
  }
  const se = stats(await emb.weight.toArray());
  if (Math.abs(se.m) > 0.04 || Math.abs(Math.sqrt(se.v) - 1) > 0.03) {
    throw new Error(`Embedding stats ${JSON.stringify(se)}`);
  }
  assertClose(await ln.weight!.toArray(), new Array(20).fill(1));
  assertClose(await ln.bias!.toArray(), new Array(20).fill(0));
  seedInit(42);
  const again = new Linear(64, { inFeatures: 100 });
  assertClose(await again.weight.toArray(), w, { atol: 0, rtol: 0 });
  seedInit(43);
  const other = new Linear(64, { inFeatures: 100 });
  if ((await other.weight.toArray())[0] === w[0]) throw new Error("seed had no effect");
  for (const m of [fc, emb, ln, again, other]) m.dispose();
});

gpuTest("loadStateDict copies, materialises lazy layers, and names every problem", async () => {
  const a = new Toy();
  tidy(() => a.forward(fromArray(new Float32Array(4), [1, 4])));
  const b = new Toy(); // synapses.1 still lazy
  b.loadStateDict(a.stateDict());
  const key = "synapses.1.weight";
  assertClose(await b.stateDict().get(key)!.toArray(), await a.stateDict().get(key)!.toArray(), {
    atol: 0,
    rtol: 0,
  });
  assertClose(await b.getBuffer("idx").toArray(), [3, 1]);
  const sd = new Map(a.stateDict());
  sd.delete("emb.weight");
  sd.set("extra.bias", fromArray([1]));
  expectThrow(
    () => b.loadStateDict(sd),
    "missing from the state dict: emb.weight",
    "unexpected in the state dict: extra.bias",
  );
  const res = b.loadStateDict(sd, { strict: false });
  if (res.missingKeys.join() !== "emb.weight" || res.unexpectedKeys.join() !== "extra.bias") {
    throw new Error("non-strict result");
  }
  const before = await b.stateDict().get("start_state")!.toArray();
  const bad = new Map(a.stateDict());
  bad.set("backbone.0.weight", fromArray(new Float32Array(12), [4, 3]));
  bad.set("start_state", fromArray([9, 9, 9]));
  expectThrow(
    () => b.loadStateDict(bad, { strict: false }),
    "'backbone.0.weight' has shape [4, 3] in the state dict but [8, 4]",
  );
  assertClose(await b.stateDict().get("start_state")!.toArray(), before, { atol: 0, rtol: 0 }); // nothing copied
  const lazy = new Toy();
  const wrong = new Map(a.stateDict());
  wrong.set(key, fromArray(new Float32Array(8), [1, 8]));
  expectThrow(
    () => lazy.loadStateDict(wrong),
    `'${key}' has shape [1, 8] but the lazy Linear expects [6, in]`,
  );
  for (const m of [a, b, lazy]) m.dispose();
});

gpuTest("parameter-free layers; Sequential frees intermediates; dispose releases memory", async () => {
  const x = fromArray([[-1, 2, 0.5, -3]]);
  assertClose(await new ReLU().forward(x).toArray(), [0, 2, 0.5, 0]);
  const s = (v: number) => v / (1 + Math.exp(-v));
  assertClose(await new SiLU().forward(x).toArray(), [-1, 2, 0.5, -3].map(s));
  const sg = (v: number) => 1 / (1 + Math.exp(-v));
  assertClose(await new GLU().forward(x).toArray(), [-1 * sg(0.5), 2 * sg(-3)]);
  assertShape(new Squeeze(0).forward(x), [4]);
  assertShape(new Squeeze(1).forward(x), [1, 4]);
  const id = new Identity().forward(x.requireGrad());
  if (id === x || !id.requiresGrad) throw new Error("Identity must be a new handle in the graph");
  const start = memoryStats().liveBytes;
  const m = new Sequential(new Linear(32, { inFeatures: 4 }), new ReLU(), new Linear(4), new LayerNorm(4));
  const y = tidy(() => m.forward(fromArray(new Float32Array(4 * 8), [8, 4])));
  y.dispose();
  m.dispose();
  if (memoryStats().liveBytes !== start) throw new Error(`leak: ${memoryStats().liveBytes - start} bytes`);
});

gpuTest("a module trains with AdamW (loss decreases)", async () => {
  seedInit(1);
  const rng = new Rng(11);
  const model = new Sequential(new Linear(16, { inFeatures: 3 }), new SiLU(), new Linear(1));
  const xs = Float32Array.from(rng.uniformArray(64 * 3));
  const ys = Float32Array.from({ length: 64 }, (_, i) => Math.sin(xs[3 * i]) + xs[3 * i + 1] * xs[3 * i + 2]);
  const x = fromArray(xs, [64, 3]), t = fromArray(ys, [64, 1]);
  tidy(() => model.forward(x)); // materialise the lazy layer before building the optimizer
  const opt = new AdamW(model.parameters(), { lr: 0.02, weightDecay: 0 });
  const losses: number[] = [];
  for (let i = 0; i < 60; i++) {
    const loss = tidy(() => {
      const d = sub(model.forward(x), t);
      const l = mean(mul(d, d));
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    if (i % 20 === 0 || i === 59) losses.push(await loss.item());
    loss.dispose();
  }
  if (!(losses[losses.length - 1] < 0.5 * losses[0])) throw new Error(`loss did not drop: ${losses}`);
  opt.dispose();
  model.dispose();
  x.dispose();
  t.dispose();
});
