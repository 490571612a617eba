import * as A from "../src/ops/arith.ts";
import * as U from "../src/ops/unary.ts";
import { gpuTest, gradcheck, randRef, type Ref, refMap, Rng } from "./helpers.ts";

const sig = (x: number) => 1 / (1 + Math.exp(-x));

const binaries: [string, (a: never, b: never) => unknown, (a: number, b: number) => number][] = [
  ["add", A.add, (a, b) => a + b],
  ["sub", A.sub, (a, b) => a - b],
  ["mul", A.mul, (a, b) => a * b],
  ["div", A.div, (a, b) => a / b],
  ["maximum", A.maximum, Math.max],
  ["minimum", A.minimum, Math.min],
];

const shapePairs: [number[], number[]][] = [
  [[5, 3], [5, 3]],
  [[4, 1, 3], [2, 1]],
  [[1], [3, 7]],
  [[6, 5, 1, 3], [5, 4, 1]],
  [[257], [257]],
];

for (const [name, op, f] of binaries) {
  gpuTest(`binary ${name}: forward and backward with broadcasting`, async () => {
    const rng = new Rng(1);
    for (const [sa, sb] of shapePairs) {
      const a = randRef(rng, sa, 0.5, 2);
      const b = randRef(rng, sb, -2, -0.5);
      await gradcheck(
        (x, y) => (op as (a: unknown, b: unknown) => never)(x, y),
        (x: Ref, y: Ref) => refMap([x, y], f),
        [a, b],
      );
    }
    // scalar on either side
    const a = randRef(rng, [3, 4], 0.5, 2);
    await gradcheck(
      (x) => (op as (a: unknown, b: unknown) => never)(x, 1.5),
      (x: Ref) => refMap([x], (v) => f(v, 1.5)),
      [a],
    );
    await gradcheck(
      (x) => (op as (a: unknown, b: unknown) => never)(0.7, x),
      (x: Ref) => refMap([x], (v) => f(0.7, v)),
      [a],
    );
  });
}

gpuTest("pow with tensor and scalar exponents, negative bases", async () => {
  const rng = new Rng(2);
  await gradcheck(A.pow, (x: Ref, y: Ref) => refMap([x, y], Math.pow), [
    randRef(rng, [3, 4], 0.5, 2),
    randRef(rng, [4], -2, 2),
  ]);
  await gradcheck((x) => A.pow(x, 3), (x: Ref) => refMap([x], (v) => v ** 3), [randRef(rng, [5], -2, 2)]);
});

const unaries: [string, (t: never) => unknown, (x: number) => number, number, number][] = [
  ["neg", U.neg, (x) => -x, -2, 2],
  ["exp", U.exp, Math.exp, -2, 2],
  ["expNeg", U.expNeg, (x) => Math.exp(-x), -2, 2],
  ["log", U.log, Math.log, 0.2, 3],
  ["sqrt", U.sqrt, Math.sqrt, 0.2, 3],
  ["rsqrt", U.rsqrt, (x) => 1 / Math.sqrt(x), 0.2, 3],
  ["square", U.square, (x) => x * x, -2, 2],
  ["abs", U.abs, Math.abs, -2, 2],
  ["sin", U.sin, Math.sin, -3, 3],
  ["cos", U.cos, Math.cos, -3, 3],
  ["relu", U.relu, (x) => Math.max(x, 0), -2, 2],
  ["sigmoid", U.sigmoid, sig, -4, 4],
  ["tanh", U.tanh, Math.tanh, -3, 3],
  ["silu", U.silu, (x) => x * sig(x), -4, 4],
];

for (const [name, op, f, lo, hi] of unaries) {
  gpuTest(`unary ${name}: forward and backward`, async () => {
    const rng = new Rng(3);
    for (const shape of [[1], [7], [3, 5], [2, 3, 129]]) {
      await gradcheck((x) => (op as (t: unknown) => never)(x), (x: Ref) => refMap([x], f), [
        randRef(rng, shape, lo, hi),
      ], {
        rtol: 2e-4,
      });
    }
  });
}

gpuTest("clamp passes the gradient inside the range only", async () => {
  const rng = new Rng(4);
  await gradcheck(
    (x) => U.clamp(x, -0.5, 0.3),
    (x: Ref) => refMap([x], (v) => Math.min(Math.max(v, -0.5), 0.3)),
    [
      randRef(rng, [4, 9]),
    ],
  );
});

gpuTest("glu on every axis", async () => {
  const rng = new Rng(5);
  const x = randRef(rng, [4, 6, 2], -2, 2);
  for (const axis of [0, 1, 2, -1]) {
    const ax = (axis + 3) % 3;
    const ref = (r: Ref): Ref => {
      const shape = [...r.shape];
      const h = shape[ax] / 2;
      shape[ax] = h;
      const out = new Float64Array(r.data.length / 2);
      const st = [r.shape[1] * r.shape[2], r.shape[2], 1];
      let k = 0;
      for (let i = 0; i < shape[0]; i++) {
        for (let j = 0; j < shape[1]; j++) {
          for (let l = 0; l < shape[2]; l++) {
            const base = i * st[0] + j * st[1] + l * st[2];
            out[k++] = r.data[base] * sig(r.data[base + h * st[ax]]);
          }
        }
      }
      return { shape, data: out };
    };
    await gradcheck((t) => U.glu(t, axis), ref, [x]);
  }
});

gpuTest("where and comparisons", async () => {
  const rng = new Rng(6);
  const c = refMap([randRef(rng, [3, 1])], (v) => (v > 0 ? 1 : 0));
  const a = randRef(rng, [3, 4]);
  const b = randRef(rng, [4]);
  await gradcheck(
    (cc, x, y) => A.where(cc, x, y),
    (cc: Ref, x: Ref, y: Ref) => refMap([cc, x, y], (k, u, v) => (k ? u : v)),
    [
      c,
      a,
      b,
    ],
    { wrt: [1, 2] },
  );
  for (
    const [op, f] of [[A.gt, (u: number, v: number) => u > v], [
      A.le,
      (u: number, v: number) => u <= v,
    ]] as const
  ) {
    await gradcheck((x, y) => op(x, y), (x: Ref, y: Ref) => refMap([x, y], (u, v) => (f(u, v) ? 1 : 0)), [
      a,
      b,
    ], {
      wrt: [],
    });
  }
});

gpuTest("mapN/mapInto: four elements per thread where aligned, one elsewhere, same results", async () => {
  const { mapN, mapInto } = await import("../src/ops/map.ts");
  const { fromArray } = await import("../src/ops/creation.ts");
  const base = fromArray(Float32Array.from({ length: 26 }, (_, k) => k * 0.5 - 3));
  const ints = fromArray(Int32Array.from({ length: 26 }, (_, k) => k - 7), [26], "i32");
  // Views at offsets 4 (vec4-aligned) and 2 (not), lengths 16 and 12 and 14.
  for (const [off, n] of [[4, 16], [2, 12], [4, 14], [0, 24]]) {
    const a = base.alias([n], [1], off), b = ints.alias([n], [1], off);
    const y = mapN("x0 * f32(x1) + f32(i) + s0", [a, b], [0.25]);
    const got = await y.toArray();
    for (let k = 0; k < n; k++) {
      const want = ((off + k) * 0.5 - 3) * (off + k - 7) + k + 0.25;
      if (Math.abs(got[k] - want) > 1e-5) throw new Error(`off ${off} n ${n} [${k}]: ${got[k]} vs ${want}`);
    }
    const yi = mapN("x0 * 2 + i32(i)", [b], [], "i32");
    const gi = await yi.toArray();
    for (let k = 0; k < n; k++) if (gi[k] !== (off + k - 7) * 2 + k) throw new Error(`i32 off ${off} [${k}]`);
    // In place on a view: only the view's elements change.
    const c = mapN("x0", [base]);
    mapInto(c.alias([n], [1], off), "x0 + 100.0", [c.alias([n], [1], off)]);
    const gc = await c.toArray();
    for (let k = 0; k < 26; k++) {
      const want = k * 0.5 - 3 + (k >= off && k < off + n ? 100 : 0);
      if (gc[k] !== want) throw new Error(`in place off ${off} n ${n} [${k}]: ${gc[k]} vs ${want}`);
    }
    for (const t of [a, b, y, yi, c]) t.dispose();
  }
  base.dispose();
  ints.dispose();
});

gpuTest(
  "mapN: inputs broadcast along leading dims only take the four-per-thread path, same results",
  async () => {
    const { mapN } = await import("../src/ops/map.ts");
    const { fromArray } = await import("../src/ops/creation.ts");
    const rng = new Rng(31);
    // [out, tiled input]: blocks of 24, 8 and 4 elements (vec4 tiles), and one of 6 (scalar path);
    // the first also mixes a same-shape input and a scalar broadcast.
    for (const [os, ts] of [[[5, 3, 8], [3, 8]], [[2, 6, 8], [1, 1, 8]], [[7, 4], [4]], [[4, 6], [1, 6]]]) {
      const n = os.reduce((a, b) => a * b, 1), m = ts.reduce((a, b) => a * b, 1);
      const xa = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
      const xb = Float32Array.from({ length: m }, () => rng.uniform(-1, 1));
      const a = fromArray(xa, os), b = fromArray(xb, ts), c = fromArray([0.5], [1]);
      const y = mapN("x0 * x1 + x2 + f32(i)", [a, b, c]);
      const got = await y.toArray();
      for (let k = 0; k < n; k++) {
        const want = xa[k] * xb[k % m] + 0.5 + k;
        if (Math.abs(got[k] - want) > 1e-5) {
          throw new Error(
            `[${os}] over [${ts}] [${k}]: ${got[k]} vs ${want}`,
          );
        }
      }
      for (const t of [a, b, c, y]) t.dispose();
    }
    // Backward of a broadcast add through the same path.
    const x = randRef(rng, [3, 2, 8]), bias = randRef(rng, [2, 8]);
    await gradcheck((p, q) => A.add(p, q), (p: Ref, q: Ref) => refMap([p, q], (u, v) => u + v), [x, bias]);
  },
);
