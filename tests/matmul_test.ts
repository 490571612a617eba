/**
 * Matmul, linear and groupedMatmul against float64 references: forward and finite-difference
 * gradients over odd sizes, size-1 dims, broadcast batches, transposed flags and views, with each
 * kernel variant forced; larger shapes forward only with a tolerance scaled by K.
 */
import { recorder } from "../src/gpu/recorder.ts";
import { groupedMatmul, linear, matmul, type MatmulVariant, setMatmulVariant } from "../src/ops/matmul.ts";
import { permute, transpose } from "../src/ops/views.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { sum } from "../src/ops/reduce.ts";
import {
  assertClose,
  bshape,
  gpuTest,
  gradcheck,
  randRef,
  type Ref,
  Rng,
  size,
  stridesOf,
  toGpu,
} from "./helpers.ts";

/** Transpose of the last two dims. */
function refT(x: Ref): Ref {
  const r = x.shape.length;
  const [m, n] = [x.shape[r - 2], x.shape[r - 1]];
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < x.data.length / (m * n); b++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) out[b * m * n + j * m + i] = x.data[b * m * n + i * n + j];
    }
  }
  return { shape: [...x.shape.slice(0, -2), n, m], data: out };
}

/** torch.matmul semantics in float64. */
function refMm(a: Ref, b: Ref, ta = false, tb = false): Ref {
  let A = a.shape.length === 1 ? { shape: [1, a.shape[0]], data: a.data } : a;
  let B = b.shape.length === 1 ? { shape: [b.shape[0], 1], data: b.data } : b;
  if (ta && a.shape.length > 1) A = refT(A);
  if (tb && b.shape.length > 1) B = refT(B);
  const M = A.shape[A.shape.length - 2], K = A.shape[A.shape.length - 1], N = B.shape[B.shape.length - 1];
  const ba = A.shape.slice(0, -2), bb = B.shape.slice(0, -2);
  const batch = bshape(ba, bb);
  const nb = size(batch);
  const out = new Float64Array(nb * M * N);
  const bst = stridesOf(batch);
  const offOf = (shape: number[], i: number) => {
    let off = 0, mul = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = Math.floor(i / bst[d + batch.length - shape.length]) % batch[d + batch.length - shape.length];
      off += (shape[d] === 1 ? 0 : c) * mul;
      mul *= shape[d];
    }
    return off;
  };
  for (let bi = 0; bi < nb; bi++) {
    const ao = offOf(ba, bi) * M * K, bo = offOf(bb, bi) * K * N;
    for (let i = 0; i < M; i++) {
      for (let k = 0; k < K; k++) {
        const av = A.data[ao + i * K + k];
        for (let j = 0; j < N; j++) out[bi * M * N + i * N + j] += av * B.data[bo + k * N + j];
      }
    }
  }
  let shape = [...batch, M, N];
  if (b.shape.length === 1) shape = shape.filter((_, i) => i !== shape.length - 1);
  if (a.shape.length === 1) {
    shape = shape.filter((_, i) => i !== shape.length - (b.shape.length === 1 ? 1 : 2));
  }
  return { shape, data: out };
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));
const ACTS = {
  none: (v: number) => v,
  relu: (v: number) => Math.max(v, 0),
  silu: (v: number) => v * sig(v),
  sigmoid: sig,
  tanh: Math.tanh,
} as const;

function refLinear(x: Ref, w: Ref, bias: Ref | null, act: keyof typeof ACTS): Ref {
  const y = refMm(x, refT(w));
  const n = w.shape[0];
  const data = y.data.map((v, i) => ACTS[act](v + (bias ? bias.data[i % n] : 0)));
  return { shape: x.shape.length === 1 ? [n] : y.shape, data };
}

function refGrouped(x: Ref, w: Ref, bias: Ref | null): Ref {
  const [B, N, I] = x.shape, O = w.shape[1];
  const out = new Float64Array(B * N * O);
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        let s = bias ? bias.data[n * O + o] : 0;
        for (let i = 0; i < I; i++) s += x.data[(b * N + n) * I + i] * w.data[(i * O + o) * N + n];
        out[(b * N + n) * O + o] = s;
      }
    }
  }
  return { shape: [B, N, O], data: out };
}

const VARIANTS: MatmulVariant[] = ["regblock", "tiled"];

function withVariant(v: MatmulVariant, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    setMatmulVariant(v);
    try {
      await fn();
    } finally {
      setMatmulVariant("auto");
    }
  };
}

for (const v of VARIANTS) {
  gpuTest(
    `matmul [${v}]: 2-D odd sizes and size-1 dims, forward and backward`,
    withVariant(v, async () => {
      const rng = new Rng(1);
      for (
        const [M, K, N] of [[1, 1, 1], [3, 5, 7], [17, 33, 5], [1, 6, 9], [5, 1, 4], [33, 3, 1], [2, 17, 33]]
      ) {
        await gradcheck((a, b) => matmul(a, b), (a, b) => refMm(a, b), [
          randRef(rng, [M, K]),
          randRef(rng, [K, N]),
        ]);
      }
    }),
  );

  gpuTest(
    `matmul [${v}]: broadcast batch dims and 1-D operands`,
    withVariant(v, async () => {
      const rng = new Rng(2);
      const pairs: [number[], number[]][] = [
        [[2, 1, 3, 5], [3, 5, 4]],
        [[4, 3, 5], [5, 2]],
        [[3, 5], [2, 5, 4]],
        [[2, 3, 1, 6], [1, 1, 6, 3]],
        [[5], [5, 3]],
        [[2, 3, 5], [5]],
        [[5], [5]],
        [[4], [2, 4, 3]],
      ];
      for (const [sa, sb] of pairs) {
        await gradcheck((a, b) => matmul(a, b), (a, b) => refMm(a, b), [randRef(rng, sa), randRef(rng, sb)]);
      }
    }),
  );

  gpuTest(
    `matmul [${v}]: transA/transB flags and transposed or permuted views`,
    withVariant(v, async () => {
      const rng = new Rng(3);
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = randRef(rng, ta ? [2, 5, 3] : [2, 3, 5]);
          const b = randRef(rng, tb ? [4, 5] : [5, 4]);
          await gradcheck(
            (x, y) => matmul(x, y, { transA: ta, transB: tb }),
            (x, y) => refMm(x, y, ta, tb),
            [a, b],
          );
          // The same through views instead of flags.
          await gradcheck(
            (x, y) => matmul(ta ? transpose(x) : x, tb ? transpose(y) : y),
            (x, y) => refMm(x, y, ta, tb),
            [a, b],
          );
        }
      }
      // A permuted batch view: x is [K, B, M] in memory, used as [B, M, K].
      const xr = randRef(rng, [5, 3, 4]);
      const ref = (x: Ref, y: Ref) => {
        const p = new Float64Array(x.data.length);
        for (let k = 0; k < 5; k++) {
          for (let b = 0; b < 3; b++) {
            for (let m = 0; m < 4; m++) p[(b * 4 + m) * 5 + k] = x.data[(k * 3 + b) * 4 + m];
          }
        }
        return refMm({ shape: [3, 4, 5], data: p }, y);
      };
      await gradcheck((x, y) => matmul(permute(x, [1, 2, 0]), y), ref, [xr, randRef(rng, [5, 6])]);
    }),
  );

  gpuTest(
    `matmul [${v}]: larger shapes forward vs float64`,
    withVariant(v, async () => {
      const rng = new Rng(4);
      for (
        const [sa, sb] of [[[130, 257], [257, 67]], [[3, 65, 130], [130, 33]], [[2, 33, 64], [2, 64, 20]], [[
          2,
          9000,
        ], [9000, 3]]]
      ) {
        const a = randRef(rng, sa), b = randRef(rng, sb);
        const K = sa[sa.length - 1];
        const y = matmul(toGpu(a), toGpu(b));
        assertClose(await y.toArray(), refMm(a, b).data, { atol: 2e-6 * K, rtol: 1e-4, msg: `${sa}@${sb}` });
        y.dispose();
      }
    }),
  );

  gpuTest(
    `linear [${v}]: bias and every fused activation`,
    withVariant(v, async () => {
      const rng = new Rng(5);
      for (const act of Object.keys(ACTS) as (keyof typeof ACTS)[]) {
        const x = randRef(rng, [2, 3, 6], -1.5, 1.5), w = randRef(rng, [5, 6]), b = randRef(rng, [5]);
        await gradcheck((x, w, b) => linear(x, w, b, act), (x, w, b) => refLinear(x, w, b, act), [x, w, b]);
      }
      await gradcheck((x, w) => linear(x, w), (x, w) => refLinear(x, w, null, "none"), [
        randRef(rng, [7]),
        randRef(rng, [3, 7]),
      ]);
      // Non-contiguous x (a transposed view) with an odd width.
      const xt = randRef(rng, [9, 4]);
      await gradcheck(
        (x, w, b) => linear(transpose(x), w, b, "tanh"),
        (x, w, b) => refLinear(refT(x), w, b, "tanh"),
        [xt, randRef(rng, [5, 9]), randRef(rng, [5])],
      );
    }),
  );

  gpuTest(
    `groupedMatmul [${v}]: forward and backward, bias layouts`,
    withVariant(v, async () => {
      const rng = new Rng(6);
      const [B, N, I, O] = [3, 5, 6, 7];
      await gradcheck(
        (x, w, b) => groupedMatmul(x, w, b),
        (x, w, b) => refGrouped(x, w, b),
        [randRef(rng, [B, N, I]), randRef(rng, [I, O, N]), randRef(rng, [1, N, O])],
      );
      await gradcheck(
        (x, w, b) => groupedMatmul(x, w, b),
        (x, w, b) => refGrouped(x, w, b),
        [randRef(rng, [2, 3, 1]), randRef(rng, [1, 2, 3]), randRef(rng, [3, 2])],
      );
      await gradcheck((x, w) => groupedMatmul(x, w), (x, w) => refGrouped(x, w, null), [
        randRef(rng, [4, 2, 9]),
        randRef(rng, [9, 4, 2]),
      ]);
      // A CTM-sized forward.
      const x = randRef(rng, [64, 256, 16]), w = randRef(rng, [16, 32, 256]), b = randRef(rng, [1, 256, 32]);
      const y = groupedMatmul(toGpu(x), toGpu(w), toGpu(b));
      assertClose(await y.toArray(), refGrouped(x, w, b).data, { atol: 4e-5, rtol: 1e-4 });
      y.dispose();
    }),
  );
}

for (const v of VARIANTS) {
  gpuTest(
    `matmul/linear [${v}]: aligned layouts (texture copies, batched layers, transposed forms)`,
    withVariant(v, async () => {
      const rng = new Rng(9);
      // 2-D with K % 4 = 0 and 64-aligned rows; batched contiguous (one texture layer per slice).
      for (const [sa, sb] of [[[5, 64], [64, 64]], [[3, 8, 64], [3, 64, 128]], [[2, 4, 128], [128, 64]]]) {
        const a = randRef(rng, sa), b = randRef(rng, sb);
        const y = matmul(toGpu(a), toGpu(b));
        assertClose(await y.toArray(), refMm(a, b).data, { atol: 2e-4, rtol: 1e-4, msg: `${sa}@${sb}` });
        y.dispose();
      }
      // Transposed operands whose rows are 64-aligned (copied in transposed form).
      const a = randRef(rng, [8, 64]), b = randRef(rng, [8, 128]);
      const y = matmul(toGpu(a), toGpu(b), { transA: true });
      assertClose(await y.toArray(), refMm(a, b, true).data, { atol: 2e-4, rtol: 1e-4, msg: "aᵀb" });
      y.dispose();
      await gradcheck((x, w, b) => linear(x, w, b, "silu"), (x, w, b) => refLinear(x, w, b, "silu"), [
        randRef(rng, [4, 64]),
        randRef(rng, [3, 64]),
        randRef(rng, [3]),
      ]);
    }),
  );

  gpuTest(
    `groupedMatmul [${v}]: neuron-vectorised shapes (N % 4 = 0, O ≤ 32)`,
    withVariant(v, async () => {
      const rng = new Rng(10);
      for (const [B, N, I, O] of [[5, 8, 6, 2], [3, 16, 4, 1], [17, 4, 3, 3], [3, 4, 5, 12], [2, 8, 4, 16]]) {
        await gradcheck(
          (x, w, b) => groupedMatmul(x, w, b),
          (x, w, b) => refGrouped(x, w, b),
          [randRef(rng, [B, N, I]), randRef(rng, [I, O, N]), randRef(rng, [N, O])],
        );
      }
      const x = randRef(rng, [64, 512, 32]), w = randRef(rng, [32, 2, 512]);
      const y = groupedMatmul(toGpu(x), toGpu(w));
      assertClose(await y.toArray(), refGrouped(x, w, null).data, { atol: 4e-5, rtol: 1e-4 });
      y.dispose();
    }),
  );
}

gpuTest("matmul: transposed views are read in place (no extra dispatch)", () => {
  const rng = new Rng(7);
  const a = toGpu(randRef(rng, [6, 5])), b = toGpu(randRef(rng, [6, 7]));
  const count = (fn: () => void) => {
    const d0 = recorder().stats().dispatches;
    tidy(fn);
    return recorder().stats().dispatches - d0;
  };
  const viaFlag = count(() => matmul(a, b, { transA: true }));
  const viaView = count(() => matmul(transpose(a), b));
  const plain = count(() => matmul(b, b, { transB: true }));
  if (viaFlag !== plain || viaView !== plain) {
    throw new Error(`dispatches: flag ${viaFlag}, view ${viaView}, plain ${plain}`);
  }
  a.dispose();
  b.dispose();
});

gpuTest("matmul/linear/groupedMatmul: forward + backward leak no memory", async () => {
  const rng = new Rng(8);
  const x = toGpu(randRef(rng, [4, 6]), true), w = toGpu(randRef(rng, [5, 6]), true);
  const g = toGpu(randRef(rng, [2, 3, 4]), true), gw = toGpu(randRef(rng, [4, 2, 3]), true);
  const run = () =>
    tidy(() => {
      const l = sum(linear(x, w, null, "silu"));
      const m = sum(matmul(x, w, { transB: true }));
      const q = sum(groupedMatmul(g, gw));
      for (const t of [l, m, q]) t.backward();
    });
  run();
  await recorder().sync();
  const before = memoryStats().liveBytes;
  run();
  await recorder().sync();
  const after = memoryStats().liveBytes;
  if (after !== before) throw new Error(`live bytes ${before} -> ${after}`);
  for (const t of [x, w, g, gw]) t.dispose();
});
