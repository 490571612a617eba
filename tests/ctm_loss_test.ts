/**
 * The CTM's tick-selection loss (`src/ops/tick_select.ts`) and the parity and image losses built
 * on it (`src/train/losses.ts`) against float64 references: minimum-loss and most certain (or
 * last) ticks with ties (the first tick wins, as in `torch.argmin`/`argmax`), more samples than
 * the kernel's threads, strided certainties, gradients by finite differences, input errors and
 * no leaked memory.
 */
import { assertClose, gpuTest, gradcheck, randRef, type Ref, Rng, toGpu } from "./helpers.ts";
import { fromArray } from "../src/ops/creation.ts";
import { tickSelectLoss } from "../src/ops/tick_select.ts";
import { permute } from "../src/ops/views.ts";
import { imageClassificationLoss, parityLoss } from "../src/train/losses.ts";
import { tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";

/** Float64 tick selection: loss, minimum-loss ticks and chosen ticks. */
function refSelect(
  l: Ref,
  c: Ref,
  useMostCertain: boolean,
): { loss: number; tMin: number[]; tStar: number[] } {
  const [B, T] = l.shape;
  const tMin: number[] = [], tStar: number[] = [];
  let s = 0;
  for (let b = 0; b < B; b++) {
    let im = 0, ic = 0;
    for (let t = 1; t < T; t++) {
      if (l.data[b * T + t] < l.data[b * T + im]) im = t;
      if (c.data[(b * 2 + 1) * T + t] > c.data[(b * 2 + 1) * T + ic]) ic = t;
    }
    if (!useMostCertain) ic = T - 1;
    tMin.push(im);
    tStar.push(ic);
    s += l.data[b * T + im] / B + l.data[b * T + ic] / B;
  }
  return { loss: s / 2, tMin, tStar };
}

/** Values from a small set, so that ties are common. */
const tied = (rng: Rng, shape: number[]): Ref => ({
  shape,
  data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(4) / 2),
});

gpuTest("tickSelectLoss: loss and ticks with ties, more samples than threads, both tick rules", async () => {
  const rng = new Rng(41);
  for (const [B, T] of [[1, 1], [3, 5], [70, 4], [2, 32]]) {
    for (const useMostCertain of [true, false]) {
      const l = tied(rng, [B, T]), c = tied(rng, [B, 2, T]);
      const want = refSelect(l, c, useMostCertain);
      const lt = toGpu(l), ct = toGpu(c);
      const got = tickSelectLoss(lt, ct, useMostCertain);
      const msg = `B=${B} T=${T} mostCertain=${useMostCertain}`;
      assertClose(await got.loss.toArray(), [want.loss], { atol: 1e-6, rtol: 1e-6, msg });
      assertClose(await got.tMin.toArray(), want.tMin, { atol: 0, rtol: 0, msg: `${msg}: t_min` });
      assertClose(await got.tStar.toArray(), want.tStar, { atol: 0, rtol: 0, msg: `${msg}: t*` });
      for (const t of [lt, ct, got.loss, got.tMin, got.tStar]) t.dispose();
    }
  }
});

gpuTest("tickSelectLoss: strided certainties and the gradient by finite differences", async () => {
  const rng = new Rng(42);
  const B = 5, T = 6;
  // Certainties as a [B, T, 2] tensor viewed as [B, 2, T].
  const c = randRef(rng, [B, 2, T]);
  const cbt = new Float32Array(B * T * 2);
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < 2; k++) {
      for (let t = 0; t < T; t++) cbt[(b * T + t) * 2 + k] = c.data[(b * 2 + k) * T + t];
    }
  }
  const cStored = fromArray(cbt, [B, T, 2]);
  const cView = permute(cStored, [0, 2, 1]);
  const ref = (l: Ref): Ref => ({ shape: [], data: Float64Array.of(refSelect(l, c, true).loss) });
  // Distinct values: the chosen ticks do not move under the finite-difference steps.
  await gradcheck((l) => tickSelectLoss(l, cView).loss, ref, [randRef(rng, [B, T], 0, 4)]);
  for (const t of [cView, cStored]) t.dispose();
});

gpuTest("parity and image-classification losses match float64 references, with gradients", async () => {
  const rng = new Rng(43);
  const B = 3, L = 4, T = 5, C = 3;
  const c = randRef(rng, [B, 2, T], 0, 1);
  const ct = toGpu(c);
  /** Cross-entropy of the logits at (b, classes…, t) for class y. */
  const ce = (x: Ref, idx: (k: number) => number, n: number, y: number) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, x.data[idx(k)]);
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(x.data[idx(k)] - m);
    return m + Math.log(s) - x.data[idx(y)];
  };
  const py = Int32Array.from({ length: B * L }, () => rng.int(2));
  const pyt = fromArray(py, [B, L]);
  const parityRef = (x: Ref): Ref => {
    const per: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let p = 0; p < L; p++) s += ce(x, (k) => ((b * L + p) * 2 + k) * T + t, 2, py[b * L + p]) / L;
        per.push(s);
      }
    }
    return {
      shape: [],
      data: Float64Array.of(refSelect({ shape: [B, T], data: Float64Array.from(per) }, c, true).loss),
    };
  };
  await gradcheck((x) => parityLoss(x, ct, pyt).loss, parityRef, [randRef(rng, [B, 2 * L, T], -2, 2)]);
  const iy = Int32Array.from({ length: B }, () => rng.int(C));
  const iyt = fromArray(iy, [B]);
  const imageRef = (x: Ref): Ref => {
    const per: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) per.push(ce(x, (k) => (b * C + k) * T + t, C, iy[b]));
    }
    return {
      shape: [],
      data: Float64Array.of(refSelect({ shape: [B, T], data: Float64Array.from(per) }, c, true).loss),
    };
  };
  await gradcheck((x) => imageClassificationLoss(x, ct, iyt).loss, imageRef, [
    randRef(rng, [B, C, T], -2, 2),
  ]);
  for (const t of [ct, pyt, iyt]) t.dispose();
});

gpuTest("tickSelectLoss: clear errors for bad shapes; no leaked memory", async () => {
  const l = fromArray(new Float32Array(6), [2, 3]), c = fromArray(new Float32Array(12), [2, 2, 3]);
  const bad = fromArray(new Float32Array(12), [2, 3, 2]);
  let msg = "";
  try {
    tickSelectLoss(l, bad);
  } catch (e) {
    msg = String(e);
  }
  if (!msg.includes("certainties must be [2, 2, 3]")) throw new Error(`unexpected: ${msg}`);
  const before = memoryStats().liveBytes;
  const lg = fromArray(Float32Array.of(1, 0, 2, 3, 1, 1), [2, 3]).requireGrad();
  tidy(() => tickSelectLoss(lg, c).loss.backward());
  await lg.grad!.toArray();
  lg.dispose();
  if (memoryStats().liveBytes !== before) throw new Error(`leaked ${memoryStats().liveBytes - before} bytes`);
  for (const t of [l, c, bad]) t.dispose();
});
