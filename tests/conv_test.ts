/**
 * conv2d and the Conv2d module against float64 references: forward and finite-difference
 * gradients of x, weight and bias on small cases (odd sizes, 1×1 / 2×3 / 3×3 / 5×5, stride,
 * padding, dilation, groups incl. depthwise, batch 1) with each kernel family forced; larger shapes
 * (channels off the tile sizes) and every chunking path against an analytic float64 backward;
 * errors; the module's names, init range and lazy mode.
 */
import { type MatmulVariant, setMatmulVariant } from "../src/ops/matmul.ts";
import { conv2d, type Conv2dOptions } from "../src/ops/conv.ts";
import { setConvTextureBudget } from "../src/ops/conv_regblock.ts";
import { Conv2d } from "../src/nn/conv.ts";
import { seedInit } from "../src/nn/init.ts";
import { sum } from "../src/ops/reduce.ts";
import { mul } from "../src/ops/arith.ts";
import { randn } from "../src/ops/random.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import {
  assertClose,
  assertShape,
  gpuTest,
  gradcheck,
  randRef,
  type Ref,
  Rng,
  size,
  toGpu,
} from "./helpers.ts";

type P2 = [number, number];
const pair = (v: number | P2 | undefined, d: number): P2 =>
  v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v;

/** Visits every (output, input, weight) index triple of torch.nn.functional.conv2d. */
function convLoops(
  xs: number[],
  ws: number[],
  o: Conv2dOptions,
  f: (oi: number, xi: number, wi: number) => void,
) {
  const [B, Cin, H, W] = xs;
  const [Cout, Cg, kH, kW] = ws;
  const G = o.groups ?? 1, Og = Cout / G;
  const [sH, sW] = pair(o.stride, 1), [pH, pW] = pair(o.padding, 0), [dH, dW] = pair(o.dilation, 1);
  const Ho = Math.floor((H + 2 * pH - dH * (kH - 1) - 1) / sH) + 1;
  const Wo = Math.floor((W + 2 * pW - dW * (kW - 1) - 1) / sW) + 1;
  for (let n = 0; n < B; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / Og);
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const oi = ((n * Cout + co) * Ho + oh) * Wo + ow;
          for (let ci = 0; ci < Cg; ci++) {
            for (let kh = 0; kh < kH; kh++) {
              const ih = oh * sH - pH + kh * dH;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = ow * sW - pW + kw * dW;
                if (iw < 0 || iw >= W) continue;
                f(oi, ((n * Cin + g * Cg + ci) * H + ih) * W + iw, ((co * Cg + ci) * kH + kh) * kW + kw);
              }
            }
          }
        }
      }
    }
  }
  return [B, Cout, Ho, Wo];
}

/** torch.nn.functional.conv2d in float64 (plain loops: finite differences call it often). */
function refConv(x: Ref, w: Ref, b: Ref | null, o: Conv2dOptions = {}): Ref {
  const [B, Cin, H, W] = x.shape;
  const [Cout, Cg, kH, kW] = w.shape;
  const G = o.groups ?? 1, Og = Cout / G;
  const [sH, sW] = pair(o.stride, 1), [pH, pW] = pair(o.padding, 0), [dH, dW] = pair(o.dilation, 1);
  const Ho = Math.floor((H + 2 * pH - dH * (kH - 1) - 1) / sH) + 1;
  const Wo = Math.floor((W + 2 * pW - dW * (kW - 1) - 1) / sW) + 1;
  const out = new Float64Array(B * Cout * Ho * Wo);
  const xd = x.data, wd = w.data;
  for (let n = 0; n < B; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / Og);
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let s = b ? b.data[co] : 0;
          for (let ci = 0; ci < Cg; ci++) {
            const xc = (n * Cin + g * Cg + ci) * H, wc = (co * Cg + ci) * kH;
            for (let kh = 0; kh < kH; kh++) {
              const ih = oh * sH - pH + kh * dH;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = ow * sW - pW + kw * dW;
                if (iw >= 0 && iw < W) s += xd[(xc + ih) * W + iw] * wd[(wc + kh) * kW + kw];
              }
            }
          }
          out[((n * Cout + co) * Ho + oh) * Wo + ow] = s;
        }
      }
    }
  }
  return { shape: [B, Cout, Ho, Wo], data: out };
}

/** Analytic float64 gradients of sum(conv2d(x, w, b) · gy). */
function refConvGrads(x: Ref, w: Ref, gy: Float64Array, o: Conv2dOptions) {
  const dx = new Float64Array(x.data.length), dw = new Float64Array(w.data.length);
  const shape = convLoops(x.shape, w.shape, o, (oi, xi, wi) => {
    dx[xi] += w.data[wi] * gy[oi];
    dw[wi] += x.data[xi] * gy[oi];
  });
  const db = new Float64Array(shape[1]);
  const P = shape[2] * shape[3];
  for (let i = 0; i < gy.length; i++) db[Math.floor(i / P) % shape[1]] += gy[i];
  return { dx, dw, db };
}

interface Case {
  x: number[];
  w: number[];
  bias: boolean;
  o: Conv2dOptions;
}

const SMALL: Case[] = [
  { x: [2, 3, 7, 9], w: [5, 3, 3, 3], bias: true, o: { padding: 1 } },
  { x: [1, 4, 6, 5], w: [6, 4, 1, 1], bias: false, o: {} },
  { x: [2, 3, 8, 7], w: [4, 3, 5, 5], bias: true, o: { padding: 2 } },
  { x: [3, 6, 9, 8], w: [4, 6, 3, 3], bias: true, o: { stride: 2, padding: 1 } },
  { x: [2, 3, 10, 9], w: [5, 3, 3, 3], bias: false, o: { dilation: 2, padding: 2 } },
  { x: [2, 6, 7, 7], w: [4, 3, 3, 3], bias: true, o: { groups: 2, padding: 1 } },
  { x: [2, 5, 8, 6], w: [5, 1, 3, 3], bias: true, o: { groups: 5, padding: 1, stride: 2 } },
  { x: [1, 3, 9, 7], w: [2, 3, 2, 3], bias: true, o: { stride: [2, 3], padding: [0, 2], dilation: [1, 2] } },
  { x: [2, 4, 5, 5], w: [3, 4, 1, 1], bias: false, o: { stride: 2 } },
  { x: [1, 2, 4, 4], w: [3, 2, 3, 3], bias: true, o: { stride: 3, padding: 1, dilation: 2 } },
];

const label = (c: Case) => `x[${c.x}] w[${c.w}] ${JSON.stringify(c.o)}`;

async function withVariant(v: MatmulVariant, fn: () => Promise<void>): Promise<void> {
  setMatmulVariant(v);
  try {
    await fn();
  } finally {
    setMatmulVariant("auto");
  }
}

/** Forward and all gradients of one case against the float64 forward and analytic backward. */
async function checkCase(rng: Rng, c: Case): Promise<void> {
  const xr = randRef(rng, c.x), wr = randRef(rng, c.w), br = randRef(rng, [c.w[0]]);
  const ref = refConv(xr, wr, c.bias ? br : null, c.o);
  const gy = rng.uniformArray(ref.data.length, -1, 1);
  const grads = refConvGrads(xr, wr, gy, c.o);
  const [x, w, b] = [toGpu(xr, true), toGpu(wr, true), toGpu(br, true)];
  const y = tidy(() => {
    const out = conv2d(x, w, c.bias ? b : null, c.o);
    sum(mul(out, toGpu({ shape: ref.shape, data: gy }))).backward();
    return out;
  });
  assertShape(y, ref.shape, label(c));
  const K = c.w[1] * c.w[2] * c.w[3];
  const tol = (n: number) => ({ atol: 3e-6 * n, rtol: 1e-4 });
  assertClose(await y.toArray(), ref.data, { ...tol(K), msg: `${label(c)} forward` });
  const BP = size(ref.shape) / c.w[0];
  assertClose(await x.grad!.toArray(), grads.dx, { ...tol(c.w[0] * c.w[2] * c.w[3]), msg: `${label(c)} dx` });
  assertClose(await w.grad!.toArray(), grads.dw, { ...tol(BP), msg: `${label(c)} dw` });
  if (c.bias) assertClose(await b.grad!.toArray(), grads.db, { ...tol(BP), msg: `${label(c)} db` });
  for (const t of [y, x.grad!, w.grad!, b.grad, x, w, b]) t?.dispose();
}

for (const variant of ["regblock", "tiled"] as MatmulVariant[]) {
  gpuTest(`conv2d forward and finite-difference gradients (${variant})`, async () => {
    await withVariant(variant, async () => {
      const rng = new Rng(7);
      for (const c of variant === "regblock" ? SMALL : SMALL.filter((_, i) => i % 2 === 0 || i === 9)) {
        const inputs = [randRef(rng, c.x), randRef(rng, c.w), ...(c.bias ? [randRef(rng, [c.w[0]])] : [])];
        await gradcheck(
          (x, w, b) => conv2d(x, w, b ?? null, c.o),
          (x, w, b) => refConv(x, w, b ?? null, c.o),
          inputs,
          { atol: 1e-4, gradAtol: 2e-4 },
        ).catch((e) => {
          throw new Error(`${label(c)}: ${e.message}`);
        });
      }
    });
  });

  gpuTest(`conv2d larger shapes, forward and analytic gradients (${variant})`, async () => {
    await withVariant(variant, async () => {
      const rng = new Rng(11);
      const cases: Case[] = [
        { x: [2, 64, 13, 11], w: [70, 64, 3, 3], bias: true, o: { padding: 1 } },
        { x: [3, 33, 17, 9], w: [65, 33, 1, 1], bias: true, o: { stride: 2 } },
        { x: [2, 48, 12, 13], w: [96, 12, 3, 3], bias: false, o: { groups: 4, padding: 1, stride: 2 } },
        { x: [2, 37, 9, 10], w: [37, 1, 3, 3], bias: true, o: { groups: 37, padding: 2, dilation: 2 } },
      ];
      // The tiled kernel also splits a contraction over 32 768 (the weight gradient over 40 000 pixels).
      const tiled = [...cases.slice(1), {
        x: [1, 2, 200, 200],
        w: [2, 2, 3, 3],
        bias: false,
        o: { padding: 1 },
      }];
      for (const c of variant === "regblock" ? cases : tiled) await checkCase(rng, c);
    });
  });
}

gpuTest("conv2d chunking: taps, columns, rows, contraction, groups and multi-layer textures", async () => {
  await withVariant("regblock", async () => {
    const rng = new Rng(5);
    const cases: Case[] = [
      // 4096 channels per group: a 3×3 forward runs as two tap chunks, the data gradient too.
      { x: [1, 4096, 3, 3], w: [4, 4096, 3, 3], bias: true, o: { padding: 1 } },
      { x: [1, 4, 3, 3], w: [4096, 4, 3, 3], bias: false, o: { padding: 1 } },
      // 8200 output channels: forward column chunks, weight-gradient row chunks.
      { x: [1, 1, 2, 3], w: [8200, 1, 1, 1], bias: true, o: {} },
      // 40 000 pixels: the weight gradient's contraction runs as two chunks.
      { x: [1, 3, 200, 200], w: [2, 3, 3, 3], bias: false, o: { padding: 1 } },
    ];
    for (const c of cases) await checkCase(rng, c);
    // A tiny texture budget: one group per gathered texture.
    const old = setConvTextureBudget(1024);
    try {
      await checkCase(rng, {
        x: [2, 12, 6, 5],
        w: [12, 2, 3, 3],
        bias: true,
        o: { groups: 6, padding: 1, stride: 2 },
      });
    } finally {
      setConvTextureBudget(old);
    }
    // 8.4 M input elements: flat textures span two layers; 17 contraction chunks.
    await checkCase(rng, { x: [1, 4, 1025, 2049], w: [2, 4, 1, 1], bias: false, o: { stride: 2 } });
  });
});

gpuTest("conv2d rejects bad shapes with clear errors", () => {
  const x = randn([2, 4, 8, 8]);
  const expectErr = (f: () => unknown, re: RegExp) => {
    let msg = "";
    try {
      f();
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!re.test(msg)) throw new Error(`expected ${re}, got '${msg}'`);
  };
  expectErr(() => conv2d(randn([4, 8, 8]), randn([3, 4, 3, 3])), /input must be \[B, C, H, W\]/);
  expectErr(() => conv2d(x, randn([3, 5, 3, 3])), /expects 5 input channels/);
  expectErr(() => conv2d(x, randn([3, 2, 3, 3]), null, { groups: 2 }), /divisible by groups=2/);
  expectErr(() => conv2d(x, randn([3, 4, 3, 3]), randn([4])), /bias must be \[3\]/);
  expectErr(() => conv2d(x, randn([3, 4, 9, 9])), /too small/);
  expectErr(() => conv2d(x, randn([3, 4, 3, 3]), null, { stride: 0 }), /stride must be/);
  expectErr(() => new Conv2d(8, { kernelSize: 3, groups: 3 }), /groups \(3\)/);
  expectErr(() => new Conv2d(8, { kernelSize: 3, inChannels: 4 }).forward(randn([1, 5, 6, 6])), /expects 4/);
  x.dispose();
});

gpuTest("conv2d on an empty batch gives empty outputs and zero weight gradients", async () => {
  for (const v of ["regblock", "tiled"] as MatmulVariant[]) {
    await withVariant(v, async () => {
      const x = toGpu({ shape: [0, 3, 5, 5], data: new Float64Array(0) }, true);
      const w = randn([4, 3, 3, 3]).requireGrad(), b = randn([4]).requireGrad();
      const y = tidy(() => {
        const out = conv2d(x, w, b, { padding: 1 });
        out.backward(toGpu({ shape: [0, 4, 5, 5], data: new Float64Array(0) }));
        return out;
      });
      assertShape(y, [0, 4, 5, 5]);
      assertShape(x.grad!, [0, 3, 5, 5]);
      assertClose(await w.grad!.toArray(), new Float64Array(108), { msg: `${v} dw` });
      assertClose(await b.grad!.toArray(), new Float64Array(4), { msg: `${v} db` });
      for (const t of [y, x.grad!, w.grad!, b.grad!, x, w, b]) t.dispose();
    });
  }
});

gpuTest("conv2d backward frees its temporaries", async () => {
  const before = memoryStats().liveBytes;
  const x = randn([2, 3, 6, 6]).requireGrad(), w = randn([4, 3, 3, 3]).requireGrad();
  tidy(() => sum(conv2d(x, w, null, { stride: 2, padding: 1 })).backward());
  await x.grad!.toArray();
  for (const t of [x.grad!, w.grad!, x, w]) t.dispose();
  if (memoryStats().liveBytes !== before) throw new Error(`leak: ${memoryStats().liveBytes - before} bytes`);
});

gpuTest("Conv2d: PyTorch names and init range, lazy in-channels, state dicts", async () => {
  seedInit(3);
  const conv = new Conv2d(6, { inChannels: 4, kernelSize: [3, 2], stride: 2, padding: 1, groups: 2 });
  const names = [...conv.stateDict().entries()].map(([n, t]) => `${n}[${t.shape}]`);
  if (names.join(" ") !== "weight[6,2,3,2] bias[6]") throw new Error(`state dict ${names}`);
  const bound = 1 / Math.sqrt(2 * 3 * 2);
  for (const t of [conv.weight, conv.bias!]) {
    const a = await t.toArray();
    if (a.some((v) => Math.abs(v) > bound)) throw new Error("init outside ±1/√fanIn");
    if (Math.max(...a.map(Math.abs)) < bound / 2) throw new Error("init range too narrow");
  }
  // The module computes conv2d with its own parameters.
  const x = randn([2, 4, 7, 6]);
  const y = conv.forward(x);
  const ref = refConv(
    { shape: x.shape as number[], data: Float64Array.from(await x.toArray()) },
    { shape: [6, 2, 3, 2], data: Float64Array.from(await conv.weight.toArray()) },
    { shape: [6], data: Float64Array.from(await conv.bias!.toArray()) },
    { stride: 2, padding: 1, groups: 2 },
  );
  assertShape(y, ref.shape);
  assertClose(await y.toArray(), ref.data, { atol: 1e-5 });
  // Lazy: no parameters until the first forward, then weight [out, C/groups, k, k].
  const lazy = new Conv2d(5, { kernelSize: 1, bias: false });
  if (lazy.isMaterialized || lazy.parameters().length !== 0) throw new Error("lazy layer has parameters");
  const z = lazy.forward(randn([1, 3, 4, 4]));
  assertShape(z, [1, 5, 4, 4]);
  assertShape(lazy.weight, [5, 3, 1, 1]);
  if (lazy.bias !== null || lazy.inChannels !== 3) throw new Error("lazy layer state");
  // Loading a state dict materialises a lazy layer from the weight's shape.
  const other = new Conv2d(6, { kernelSize: [3, 2], stride: 2, padding: 1, groups: 2 });
  other.loadStateDict(conv.stateDict());
  if (other.inChannels !== 4) throw new Error(`loaded inChannels ${other.inChannels}`);
  assertClose(await other.forward(x).toArray(), ref.data, { atol: 1e-5 });
  for (const t of [x, y, z]) t.dispose();
});
