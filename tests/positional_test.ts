/**
 * Positional embeddings (`src/models/positional.ts`) against independent float64 references:
 * forward values, and the gradient of every parameter against central finite differences of the
 * reference (tiny sizes); initial values, state-dict names, and input errors.
 */
import { assertClose, assertShape, gpuTest, type Ref, Rng, size } from "./helpers.ts";
import { moduleGradcheck, type Params, randomParams, readParams } from "./module_gradcheck.ts";
import {
  CustomRotationalEmbedding,
  CustomRotationalEmbedding1D,
  gridCoordinates,
  LearnableFourierPositionalEncoding,
  MultiLearnableFourierPositionalEncoding,
  rotationAngles,
} from "../src/models/positional.ts";
import { zeros } from "../src/ops/creation.ts";

/** Root mean square of an array. */
function rms(a: ArrayLike<number>): number {
  return Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);
}

/** y = W·x + b for one row (`W [out, in]`). */
function affine(w: Ref, b: Ref | null, x: number[]): number[] {
  const [O, I] = w.shape;
  return Array.from({ length: O }, (_, o) => {
    let s = b ? b.data[o] : 0;
    for (let i = 0; i < I; i++) s += w.data[o * I + i] * x[i];
    return s;
  });
}

function layerNorm(y: number[], w: Ref, b: Ref): number[] {
  const mu = y.reduce((a, v) => a + v, 0) / y.length;
  const v = y.reduce((a, x) => a + (x - mu) ** 2, 0) / y.length;
  return y.map((x, d) => ((x - mu) / Math.sqrt(v + 1e-5)) * w.data[d] + b.data[d]);
}

/** Float64 learnable Fourier encoding `[1, D, H, W]` with parameters under `prefix`. */
function refFourier(p: Params, prefix: string, H: number, W: number): Ref {
  const g = (k: string) => p.get(prefix + k)!;
  const wr = g("Wr.weight"), F = 2 * wr.shape[0], D = g("mlp.2.weight").shape[0];
  const out = new Float64Array(D * H * W);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const X = [W > 1 ? j / (W - 1) : 0, H > 1 ? i / (H - 1) : 0];
      const proj = affine(wr, null, X);
      const f = [...proj.map(Math.cos), ...proj.map(Math.sin)].map((v) => v / Math.sqrt(F));
      const h = affine(g("mlp.0.weight"), g("mlp.0.bias"), f);
      const half = h.length / 2;
      const gl = h.slice(0, half).map((a, k) => a / (1 + Math.exp(-h[half + k])));
      const y = layerNorm(affine(g("mlp.2.weight"), g("mlp.2.bias"), gl), g("mlp.3.weight"), g("mlp.3.bias"));
      for (let d = 0; d < D; d++) out[(d * H + i) * W + j] = y[d];
    }
  }
  return { shape: [1, D, H, W], data: out };
}

/** Float64 2-D rotational embedding `[1, D, W, W]`. */
function refRotational(p: Params, W: number): Ref {
  const v = p.get("start_vector")!.data, w = p.get("projection.0.weight")!, b = p.get("projection.0.bias")!;
  const th = rotationAngles(W);
  const rot = Array.from(
    th,
    (t) => [Math.cos(t) * v[0] - Math.sin(t) * v[1], Math.sin(t) * v[0] + Math.cos(t) * v[1]],
  );
  const D = w.shape[0];
  const out = new Float64Array(D * W * W);
  for (let i = 0; i < W; i++) {
    for (let j = 0; j < W; j++) {
      const y = affine(w, b, [...rot[i], ...rot[j]]);
      for (let d = 0; d < D; d++) out[(d * W + i) * W + j] = y[d];
    }
  }
  return { shape: [1, D, W, W], data: out };
}

gpuTest("grid coordinates are (col/(W−1), row/(H−1)) and size-1 axes give 0", () => {
  const c = gridCoordinates(3, 2);
  assertClose(c, [0, 0, 1, 0, 0, 0.5, 1, 0.5, 0, 1, 1, 1], { atol: 0, rtol: 0 });
  assertClose(gridCoordinates(1, 1), [0, 0], { atol: 0, rtol: 0 });
  assertClose(rotationAngles(3), [0, Math.PI / 2, Math.PI], { atol: 1e-15, rtol: 0 });
});

gpuTest("learnable Fourier: forward and every parameter's gradient vs float64 (tiny sizes)", async () => {
  const rng = new Rng(1);
  for (const [H, W, D] of [[3, 2, 3], [1, 4, 2]]) {
    const m = new LearnableFourierPositionalEncoding(D, { fDim: 4, hDim: 4, rng });
    const p = randomParams(m, rng);
    const x = zeros([2, 5, H, W]);
    await moduleGradcheck(m, x, p, (q) => refFourier(q, "", H, W));
    x.dispose();
    m.dispose();
  }
});

gpuTest(
  "learnable Fourier at the reference sizes (F 256, H 128): forward vs float64; init and names",
  async () => {
    const rng = new Rng(2);
    const m = new LearnableFourierPositionalEncoding(16, { rng });
    const names = [...m.stateDict().keys()];
    const want = [
      "Wr.weight",
      "mlp.0.weight",
      "mlp.0.bias",
      "mlp.2.weight",
      "mlp.2.bias",
      "mlp.3.weight",
      "mlp.3.bias",
    ];
    if (names.join() !== want.join()) throw new Error(`state dict names ${names}`);
    const shapes = [...m.stateDict().values()].map((t) => t.shape.join("x"));
    if (shapes.join() !== "128x2,128x256,128,16x64,16,16,16") throw new Error(`shapes ${shapes}`);
    // Wr ~ N(0, 6.25²): the sample std of 256 draws is within 15% of 6.25.
    const std = rms(await m.wr.weight.toArray());
    if (Math.abs(std - 6.25) > 0.15 * 6.25) throw new Error(`Wr std ${std}, expected about 6.25`);
    const p = await readParams(m);
    const x = zeros([1, 3, 5, 7]);
    const out = m.forward(x);
    const exp = refFourier(p, "", 5, 7);
    assertShape(out, exp.shape);
    assertClose(await out.toArray(), exp.data, { atol: 2e-4, rtol: 1e-3 });
    for (const t of [x, out]) t.dispose();
    m.dispose();
  },
);

gpuTest("multi learnable Fourier: softmax mix of n encoders, forward and gradients vs float64", async () => {
  const rng = new Rng(3);
  const n = 3, H = 2, W = 3, D = 3;
  const m = new MultiLearnableFourierPositionalEncoding(D, { fDim: 4, hDim: 4, n, rng });
  const names = [...m.stateDict().keys()];
  if (
    !names.includes("combination") || !names.includes("embedders.2.mlp.3.bias") || names.length !== 7 * n + 1
  ) {
    throw new Error(`state dict names ${names}`);
  }
  assertClose(await m.getParameter("combination").toArray(), [1, 1, 1], { atol: 0, rtol: 0 });
  // Gammas linspace(1.0, 0.1, n): 1.0, 0.55, 0.1 give Wr std 1, 3.3, 100.
  const stds = await Promise.all([...m.embedders].map(async (e) => rms(await e.wr.weight.toArray())));
  if (!(stds[0] < 4 && stds[2] > 15)) throw new Error(`Wr stds ${stds} do not follow gamma⁻²`);
  const p = randomParams(m, rng);
  const ref = (q: Params): Ref => {
    const c = q.get("combination")!.data;
    const mx = Math.max(...c);
    const e = Array.from(c, (v) => Math.exp(v - mx));
    const z = e.reduce((a, v) => a + v, 0);
    const parts = Array.from({ length: n }, (_, k) => refFourier(q, `embedders.${k}.`, H, W));
    const data = new Float64Array(size(parts[0].shape));
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < data.length; i++) data[i] += (e[k] / z) * parts[k].data[i];
    }
    return { shape: parts[0].shape, data };
  };
  const x = zeros([2, 1, H, W]);
  await moduleGradcheck(m, x, p, ref);
  x.dispose();
  m.dispose();
});

gpuTest("custom rotational 2-D: learned start vector, forward and gradients vs float64", async () => {
  const rng = new Rng(4);
  const m = new CustomRotationalEmbedding(3, { rng });
  if ([...m.stateDict().keys()].join() !== "start_vector,projection.0.weight,projection.0.bias") {
    throw new Error(`names ${[...m.stateDict().keys()]}`);
  }
  assertClose(await m.getParameter("start_vector").toArray(), [0, 1], { atol: 0, rtol: 0 });
  for (const W of [1, 4]) {
    const x = zeros([2, 5, W, W]);
    await moduleGradcheck(m, x, randomParams(m, rng), (q) => refRotational(q, W));
    x.dispose();
  }
  const bad = zeros([1, 2, 3, 4]);
  let msg = "";
  try {
    m.forward(bad);
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("square")) throw new Error(`non-square map should be refused, got '${msg}'`);
  bad.dispose();
  m.dispose();
});

gpuTest(
  "custom rotational 1-D: fixed angles, learned projection, forward and gradients vs float64",
  async () => {
    const rng = new Rng(6);
    const m = new CustomRotationalEmbedding1D(4, { rng });
    for (const L of [1, 5]) {
      const ref = (q: Params): Ref => {
        const w = q.get("projection.weight")!, b = q.get("projection.bias")!;
        const th = rotationAngles(L);
        const out = new Float64Array(4 * L);
        for (let l = 0; l < L; l++) {
          const y = affine(w, b, [-Math.sin(th[l]), Math.cos(th[l])]);
          for (let d = 0; d < 4; d++) out[d * L + l] = y[d];
        }
        return { shape: [1, 4, L], data: out };
      };
      const x = zeros([3, 4, L]);
      await moduleGradcheck(m, x, randomParams(m, rng), ref);
      x.dispose();
    }
    m.dispose();
  },
);

gpuTest("2-D embeddings refuse sequence features with a clear message", () => {
  const x = zeros([1, 4, 6]);
  for (
    const m of [
      new LearnableFourierPositionalEncoding(4, { fDim: 4, hDim: 4 }),
      new CustomRotationalEmbedding(4),
    ]
  ) {
    let msg = "";
    try {
      m.forward(x);
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.includes("[B, C, H, W]")) throw new Error(`expected a shape error, got '${msg}'`);
    m.dispose();
  }
  x.dispose();
});
