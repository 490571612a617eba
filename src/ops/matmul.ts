/**
 * Matrix products with autograd: `matmul` (batched, broadcast, transposed operands read in place),
 * `linear` (PyTorch layout, bias and activation fused into the kernel's store) and
 * `groupedMatmul` (one small matmul per neuron, the CTM SuperLinear einsum `BNI,ION->BNO`).
 * Kernels are chosen per adapter in `matmul_kernels.ts`; see `setMatmulVariant`.
 */
import type { Activation } from "../../shaders/matmul.ts";
import { needsGrad, noGrad, record } from "../tensor/autograd.ts";
import { contiguousStrides, type Shape, Tensor } from "../tensor/tensor.ts";
import { broadcastShapes, sameShape } from "./broadcast.ts";
import { mapN } from "./map.ts";
import { runGroupedVec, runMatmul } from "./matmul_dispatch.ts";
import type { MatView } from "./matmul_kernels.ts";
import { sum, sumToShape } from "./reduce.ts";
import { contiguous, reshape, squeeze, unsqueeze } from "./views.ts";

export { type MatmulVariant, matmulVariant, setMatmulVariant } from "./matmul_kernels.ts";
export type { Activation };

const prod = (s: Shape) => s.reduce((a, b) => a * b, 1);
const shp = (s: Shape) => `[${s.join(", ")}]`;

/** Strides of `t`'s leading dims `lead` broadcast to `batch` (0 on stretched or missing dims). */
function batchStrides(t: Tensor, batch: number[]): number[] {
  const n = t.ndim - 2;
  return batch.map((d, i) => {
    const k = i - (batch.length - n);
    return k < 0 || t.shape[k] !== d || d === 1 ? 0 : t.strides[k];
  });
}

/** Merges `rows` (stride `rs`) with outer dims (sizes, strides) into one row dim, or null. */
function foldRows(rows: number, rs: number, sizes: number[], strides: number[]): [number, number] | null {
  for (let d = sizes.length - 1; d >= 0; d--) {
    if (sizes[d] === 1) continue;
    if (rows === 1) [rows, rs] = [sizes[d], strides[d]];
    else if (strides[d] === rows * rs) rows *= sizes[d];
    else return null;
  }
  return [rows, rs];
}

function view(t: Tensor, rs: number, cs: number, ss: number[] = [], off = t.offset): MatView {
  return { t, off, rs, cs, ss };
}

/**
 * `op(a) · op(b)` over broadcast batch dims without autograd (op = transpose when the flag is
 * set), as a new contiguous tensor `[...batch, M, N]`. Both operands have rank ≥ 2.
 */
function mmRaw(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor {
  const [ra, ca] = [a.ndim - 2, a.ndim - 1];
  const [rb, cb] = [b.ndim - 2, b.ndim - 1];
  const M = a.shape[ta ? ca : ra], K = a.shape[ta ? ra : ca];
  const Kb = b.shape[tb ? cb : rb], N = b.shape[tb ? rb : cb];
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (K !== Kb) {
    throw new Error(
      `matmul: inner dimensions differ: ${shp(a.shape)}${ta ? "ᵀ" : ""} @ ${shp(b.shape)}${tb ? "ᵀ" : ""} ` +
        `(${K} vs ${Kb})`,
    );
  }
  const out = Tensor.empty([...batch, M, N]);
  const A = view(a, a.strides[ta ? ca : ra], a.strides[ta ? ra : ca], batchStrides(a, batch));
  const B = view(b, b.strides[tb ? cb : rb], b.strides[tb ? rb : cb], batchStrides(b, batch));
  const folded = B.ss.every((s) => s === 0) ? foldRows(M, A.rs, batch, A.ss) : null;
  if (folded) {
    const [rows, rs] = folded;
    runMatmul({
      slices: [],
      M: rows,
      N,
      K,
      a: { ...A, rs, ss: [] },
      b: { ...B, ss: [] },
      out: view(out, N, 1),
    });
  } else {
    const os = contiguousStrides(batch).map((s) => s * M * N);
    runMatmul({ slices: batch, M, N, K, a: A, b: B, out: view(out, N, 1, os) });
  }
  return out;
}

/** Sums `g` down to `shape` (broadcast batch dims) and disposes it when a new tensor results. */
function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const r = sumToShape(g, shape);
  g.dispose();
  return r;
}

/**
 * Matrix product like `torch.matmul`: 2-D `[M,K]@[K,N]`, batched `[...,M,K]@[...,K,N]` with
 * broadcast batch dims, 1-D operands promoted to a row (left) or column (right) vector and
 * squeezed from the result. `transA`/`transB` use the transpose of an operand's last two dims;
 * transposed or permuted views are read in place (no copy) either way.
 *
 * @example
 * ```ts
 * import { initGpu, randn, matmul } from "./mod.ts";
 * await initGpu();
 * const y = matmul(randn([8, 4, 3]), randn([3, 5])); // [8, 4, 5]
 * const g = matmul(randn([4, 3]), randn([4, 5]), { transA: true }); // [3, 5]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  a.assertAlive();
  b.assertAlive();
  if (a.ndim === 0 || b.ndim === 0) throw new Error("matmul: operands must have at least one dimension");
  if (a.dtype !== "f32" || b.dtype !== "f32") throw new Error("matmul: operands must be f32");
  if (a.ndim === 1 || b.ndim === 1) {
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
    const y = matmul(a2, b2, { transA: a.ndim > 1 && opts.transA, transB: b.ndim > 1 && opts.transB });
    let r = b.ndim === 1 ? squeeze(y, -1) : y;
    if (a.ndim === 1) {
      const r2 = squeeze(r, b.ndim === 1 ? -1 : -2);
      if (r !== y) r.dispose();
      r = r2;
    }
    if (r !== y) y.dispose();
    if (a2 !== a) a2.dispose();
    if (b2 !== b) b2.dispose();
    return r;
  }
  const ta = !!opts.transA, tb = !!opts.transB;
  const out = mmRaw(a, b, ta, tb);
  const saved = [a.alias(), b.alias()];
  return record("matmul", [a, b], out, (g) => {
    const [sa, sb] = saved;
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) ga = reduceTo(ta ? mmRaw(sb, g, tb, true) : mmRaw(g, sb, false, !tb), sa.shape);
    if (b.requiresGrad) {
      if (sb.ndim === 2 && sa.ndim > 2 && !ta) {
        // Shared weight: fold the batch into the contraction instead of summing per-batch grads.
        const af = reshape(sa, [-1, sa.shape[sa.ndim - 1]]);
        const gf = reshape(g, [-1, g.shape[g.ndim - 1]]);
        gb = tb ? mmRaw(gf, af, true, false) : mmRaw(af, gf, true, false);
        af.dispose();
        gf.dispose();
      } else gb = reduceTo(tb ? mmRaw(g, sa, true, ta) : mmRaw(sa, g, !ta, false), sb.shape);
    }
    return [ga, gb];
  }, saved);
}

const ACT_GRAD: Record<Activation, string> = {
  none: "x0",
  relu: "x0 * b2f(x1 > 0.0)",
  sigmoid: "x0 * x1 * (1.0 - x1)",
  tanh: "x0 * (1.0 - x1 * x1)",
  silu: "x0 * sigm(x1) * (1.0 + x1 * (1.0 - sigm(x1)))",
};

/**
 * `act(x @ wᵀ + bias)` with PyTorch's weight layout: x `[..., in]`, w `[out, in]`, bias `[out]`.
 * Bias and activation are applied in the matmul kernel's store (one dispatch forward); this is
 * what `nn.Linear` calls.
 *
 * @example
 * ```ts
 * import { initGpu, randn, linear } from "./mod.ts";
 * await initGpu();
 * const h = linear(randn([32, 16]), randn([64, 16]), randn([64]), "relu"); // [32, 64]
 * ```
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, activation: Activation = "none"): Tensor {
  x.assertAlive();
  w.assertAlive();
  if (x.ndim < 1 || w.ndim !== 2) {
    throw new Error(`linear: need x [..., in] and w [out, in], got ${shp(x.shape)}, ${shp(w.shape)}`);
  }
  const inF = x.shape[x.ndim - 1], outF = w.shape[0];
  if (w.shape[1] !== inF) throw new Error(`linear: x ${shp(x.shape)} does not match weight ${shp(w.shape)}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`linear: bias ${shp(bias.shape)} does not match ${outF} outputs`);
  }
  const lead = x.shape.slice(0, -1);
  const rows = prod(lead);
  const inputs = bias ? [x, w, bias] : [x, w];
  const wantZ = activation === "silu" && needsGrad(...inputs);
  const cs = x.strides[x.ndim - 1];
  let x2 = x;
  let fold = foldRows(1, 0, lead, x.strides.slice(0, -1));
  if (!fold) {
    x2 = noGrad(() => contiguous(x));
    fold = [rows, inF];
  }
  const out = Tensor.empty([...lead, outF]);
  const z = wantZ ? Tensor.empty(out.shape) : undefined;
  runMatmul({
    slices: [],
    M: rows,
    N: outF,
    K: inF,
    a: view(x2, fold[1], x2 === x ? cs : 1),
    b: view(w, w.strides[1], w.strides[0]),
    out: view(out, outF, 1),
    bias: bias ? view(bias, 0, bias.strides[0]) : undefined,
    act: activation,
    z,
  });
  if (x2 !== x) x2.dispose();
  const act = activation === "none" ? [] : [z ?? out.alias()];
  const saved = [x.alias(), w.alias(), ...act];
  return record("linear", inputs, out, (g) => {
    const [sx, sw, sa] = saved;
    const gz = activation === "none" ? g : mapN(ACT_GRAD[activation], [g, sa]);
    const g2 = reshape(gz, [rows, outF]);
    const x2d = reshape(sx, [rows, inF]);
    const gx = x.requiresGrad ? mmRaw(g2, sw, false, false) : null;
    const gxr = gx && reshape(gx, x.shape);
    const gw = w.requiresGrad ? mmRaw(g2, x2d, true, false) : null;
    const gb = bias?.requiresGrad ? sum(g2, 0) : null;
    for (const t of [gx, x2d, g2]) t?.dispose();
    if (gz !== g) gz.dispose();
    return bias ? [gxr, gw, gb] : [gxr, gw];
  }, saved);
}

/**
 * Per-neuron matmul, einsum `BNI,ION->BNO`: `out[b,n,o] = Σ_i x[b,n,i]·w[i,o,n] + bias[n,o]`, with
 * x `[B,N,I]`, w `[I,O,N]` (the CTM SuperLinear layout) and optional bias `[1,N,O]` or `[N,O]`.
 *
 * @example
 * ```ts
 * import { initGpu, randn, groupedMatmul } from "./mod.ts";
 * await initGpu();
 * const y = groupedMatmul(randn([64, 256, 16]), randn([16, 32, 256])); // [64, 256, 32]
 * ```
 */
export function groupedMatmul(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  x.assertAlive();
  w.assertAlive();
  if (x.ndim !== 3 || w.ndim !== 3) {
    throw new Error(`groupedMatmul: need x [B,N,I] and w [I,O,N], got ${shp(x.shape)}, ${shp(w.shape)}`);
  }
  const [B, N, I] = x.shape;
  const O = w.shape[1];
  if (w.shape[0] !== I || w.shape[2] !== N) {
    throw new Error(
      `groupedMatmul: x ${shp(x.shape)} does not match w ${shp(w.shape)} (want [${I}, O, ${N}])`,
    );
  }
  if (bias && !(bias.size === N * O && bias.shape[bias.ndim - 1] === O && bias.shape[bias.ndim - 2] === N)) {
    throw new Error(`groupedMatmul: bias ${shp(bias.shape)} should be [1, ${N}, ${O}] or [${N}, ${O}]`);
  }
  const out = Tensor.empty([B, N, O]);
  const xs = x.strides, ws = w.strides;
  const done = ws[0] === O * ws[1] && runGroupedVec({
    B,
    N,
    I,
    O,
    x: view(x, xs[0], xs[2], [xs[1]]),
    w: view(w, ws[1], ws[2]),
    out,
    bias: bias ? view(bias, bias.strides[bias.ndim - 2], bias.strides[bias.ndim - 1]) : undefined,
  });
  if (!done) {
    runMatmul({
      slices: [N],
      M: B,
      N: O,
      K: I,
      a: view(x, xs[0], xs[2], [xs[1]]),
      b: view(w, ws[0], ws[1], [ws[2]]),
      out: view(out, N * O, 1, [O]),
      bias: bias ? view(bias, 0, bias.strides[bias.ndim - 1], [bias.strides[bias.ndim - 2]]) : undefined,
    });
  }
  const inputs = bias ? [x, w, bias] : [x, w];
  const saved = [x.alias(), w.alias()];
  return record("groupedMatmul", inputs, out, (g) => {
    const [sx, sw] = saved;
    const gs = g.strides;
    const G = view(g, gs[0], gs[2], [gs[1]]);
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty([B, N, I]);
      const Wt = view(sw, sw.strides[1], sw.strides[0], [sw.strides[2]]);
      runMatmul({ slices: [N], M: B, N: I, K: O, a: G, b: Wt, out: view(dx, N * I, 1, [I]) });
    }
    if (w.requiresGrad) {
      dw = Tensor.empty([I, O, N]);
      const Xt = view(sx, sx.strides[2], sx.strides[0], [sx.strides[1]]);
      runMatmul({ slices: [N], M: I, N: O, K: B, a: Xt, b: G, out: view(dw, O * N, N, [1]) });
    }
    if (bias?.requiresGrad) {
      const s = sum(g, 0);
      db = reshape(s, bias.shape);
      s.dispose();
    }
    return bias ? [dx, dw, db] : [dx, dw];
  }, saved);
}
