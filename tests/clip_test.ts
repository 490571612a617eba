/**
 * Gradient clipping: global-norm clipping and per-parameter quantile clipping against float64
 * references, over gathered gradient arenas (several chunks, odd sizes, strided gradients,
 * skipped parameters), with ties and wrapped histories, and checkpoint restore.
 */
import { recorder } from "../src/gpu/recorder.ts";
import { fromArray } from "../src/ops/creation.ts";
import { transpose } from "../src/ops/views.ts";
import { clipGradNorm, QuantileClip } from "../src/optim/clip.ts";
import { GRAD_CHUNK } from "../src/optim/grad_arena.ts";
import { keep } from "../src/tensor/scope.ts";
import { assertClose, expectThrow, gpuTest, param, Rng, setGrad } from "./helpers.ts";

/** q-quantile with linear interpolation (torch.quantile's default). */
function quantile(h: number[], q: number): number {
  const s = [...h].sort((a, b) => a - b);
  const r = q * (s.length - 1), lo = Math.floor(r), hi = Math.ceil(r);
  return s[lo] + (s[hi] - s[lo]) * (r - lo);
}

const norm64 = (g: number[]) => Math.sqrt(g.reduce((a, x) => a + x * x, 0));

gpuTest("clipGradNorm matches a float64 computation, on the GPU without reads", async () => {
  const rng = new Rng(4);
  const sizes = [7, 300_000, 1000];
  const ps = sizes.map((n) => param(new Float32Array(n)));
  const gs = sizes.map((n) => Array.from(rng.uniformArray(n, -1, 1)));
  const run = async (maxNorm: number) => {
    ps.forEach((p, i) => setGrad(p, gs[i]));
    const extra = param([5]); // no gradient: skipped
    const before = ps.map((p) => p.grad), s0 = recorder().stats();
    const norm = clipGradNorm([...ps, extra], maxNorm);
    const s1 = recorder().stats();
    if (s1.readbacks !== s0.readbacks) throw new Error("clipGradNorm read from the GPU");
    if (s1.dispatches - s0.dispatches !== 3) {
      throw new Error(`${s1.dispatches - s0.dispatches} dispatches, not 3`);
    }
    if (ps.some((p, i) => p.grad !== before[i])) throw new Error("clipping replaced a gradient tensor");
    let ss = 0;
    for (const g of gs) for (const x of g) ss += Math.fround(x) ** 2;
    const n = Math.sqrt(ss);
    assertClose([await norm.item()], [n], { rtol: 1e-5, msg: "norm" });
    const c = Math.min(1, maxNorm / (n + 1e-6));
    for (let i = 0; i < ps.length; i++) {
      assertClose(await ps[i].grad!.toArray(), gs[i].map((x) => Math.fround(x) * c), {
        atol: 1e-7,
        rtol: 1e-5,
      });
    }
    norm.dispose();
    extra.dispose();
  };
  await run(10); // clips (norm ≈ 316)
  await run(1e4); // leaves the gradients alone
  const none = clipGradNorm([param([1])], 1);
  assertClose([await none.item()], [0]);
  for (const p of ps) p.dispose();
});

gpuTest(
  "QuantileClip with a full 1000-norm history (sort over 1024 slots) and checkpoint restore",
  async () => {
    const rng = new Rng(6);
    const p = param(new Float32Array(10));
    const clip = new QuantileClip([p], { quantile: 0.9 });
    const hist = Array.from(rng.uniformArray(1000, 0.5, 3), Math.fround);
    const src = fromArray(Float32Array.from(hist));
    clip.loadStateDict({
      meta: { counts: [1234], quantile: 0.9, historyLength: 1000 },
      tensors: new Map([["history.0", src]]),
    });
    src.dispose();
    const g = Array.from(rng.uniformArray(10, -2, 2), Math.fround);
    setGrad(p, g);
    clip.step();
    const sorted = [...hist].sort((a, b) => a - b);
    const r = Math.fround(0.9 * 999), lo = Math.floor(r), w = r - lo;
    const thr = sorted[lo] + w * (sorted[lo + 1] - sorted[lo]);
    const n = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
    const c = Math.min(1, thr / (n + 1e-6));
    if (!(c < 1)) throw new Error("test setup: expected clipping");
    assertClose(await p.grad!.toArray(), g.map((x) => x * c), { atol: 1e-6, rtol: 1e-5 });
    const sd = clip.stateDict();
    const h = await sd.tensors.get("history.0")!.toArray();
    assertClose([h[1234 % 1000]], [n], { rtol: 1e-5, msg: "norm recorded at the ring position" });
    if (sd.meta.counts[0] !== 1235) throw new Error("count");
    expectThrow(() => new QuantileClip([p], { historyLength: 5000 }), "historyLength");
    clip.dispose();
    p.dispose();
  },
);

for (const q of [0.6, 0, 1]) {
  gpuTest(
    `QuantileClip at quantile ${q} over several chunks, odd sizes, a strided gradient, ties, a skipped parameter and a wrapped history`,
    async () => {
      const rng = new Rng(7);
      const L = 4;
      const sizes = [5, 2 * GRAD_CHUNK + 11, 6];
      const ps = sizes.map((n, i) =>
        i === 2 ? keep(fromArray(new Float32Array(n), [2, 3]).requireGrad()) : param(new Float32Array(n))
      );
      const clip = new QuantileClip(ps, { quantile: q, historyLength: L });
      const hist: number[][] = sizes.map(() => []);
      let gs: number[][] = [];
      for (let step = 0; step < 12; step++) {
        // Steps 5 and 6 repeat step 4's gradients (equal norms in the window).
        if (step < 5 || step > 6) {
          gs = sizes.map((n) =>
            Array.from(rng.uniformArray(n, -1, 1), (x) => Math.fround(x * (1 + 4 * rng.next())))
          );
        }
        const skip = step === 3 ? 1 : -1; // parameter 1 has no gradient at step 3
        ps.forEach((p, i) => {
          p.grad?.dispose();
          p.grad = null;
          if (i === skip) return;
          if (i === 2) {
            // [2, 3] gradient as a transposed view of a [3, 2] tensor, so not contiguous
            const t = fromArray(Float32Array.from([0, 3, 1, 4, 2, 5].map((k) => gs[2][k])), [3, 2]);
            p.grad = keep(transpose(t, 0, 1));
            t.dispose();
          } else setGrad(p, gs[i]);
        });
        const before = ps.map((p) => p.grad);
        clip.step();
        for (let i = 0; i < ps.length; i++) {
          if (i === skip) {
            if (ps[i].grad !== null) throw new Error("a parameter without gradient got one");
            continue;
          }
          if (ps[i].grad !== before[i]) throw new Error(`step ${step}: p${i}.grad was replaced`);
          const n = norm64(gs[i]);
          const thr = hist[i].length ? quantile(hist[i], q) : Infinity;
          const c = Math.min(1, thr / (n + 1e-6));
          assertClose(await ps[i].grad!.toArray(), gs[i].map((x) => x * c), {
            atol: 1e-6,
            rtol: 1e-4,
            msg: `step ${step} p${i}`,
          });
          hist[i] = [...hist[i], n].slice(-L);
        }
      }
      if (clip.stateDict().meta.counts.join() !== "12,11,12") throw new Error("counts");
      // Contiguous gradients: three dispatches for any number of parameters.
      ps.forEach((p, i) => setGrad(p, gs[i]));
      const d0 = recorder().stats().dispatches;
      clip.step();
      const d = recorder().stats().dispatches - d0;
      if (d !== 3) throw new Error(`QuantileClip.step took ${d} dispatches, not 3`);
      clip.dispose();
      for (const p of ps) p.dispose();
    },
  );
}

gpuTest("QuantileClip restored into a new clipper continues exactly like the original", async () => {
  const rng = new Rng(8);
  const L = 5;
  const ps = [param(new Float32Array(9)), param(new Float32Array(300))];
  const a = new QuantileClip(ps, { quantile: 0.8, historyLength: L });
  const grads = () =>
    ps.map((p) => Array.from(rng.uniformArray(p.size, -1, 1), (x) => x * (1 + 3 * rng.next())));
  for (let s = 0; s < 8; s++) { // wraps the 5-entry history
    const gs = grads();
    ps.forEach((p, i) => setGrad(p, gs[i]));
    a.step();
  }
  const b = new QuantileClip(ps, { quantile: 0.8, historyLength: L });
  const sd = a.stateDict();
  b.loadStateDict({ meta: sd.meta, tensors: new Map([...sd.tensors].map(([k, t]) => [k, t])) });
  for (let s = 0; s < 6; s++) {
    const gs = grads();
    const out: ArrayLike<number>[][] = [];
    for (const c of [a, b]) {
      ps.forEach((p, i) => setGrad(p, gs[i]));
      c.step();
      out.push(await Promise.all(ps.map((p) => p.grad!.toArray())));
    }
    out[0].forEach((x, i) => assertClose(out[1][i], x, { atol: 0, rtol: 0, msg: `step ${s} p${i}` }));
  }
  expectThrow(
    () => b.loadStateDict({ meta: { ...sd.meta, counts: [1] }, tensors: sd.tensors }),
    "checkpoint has 1 parameters",
  );
  a.dispose();
  b.dispose();
  for (const p of ps) p.dispose();
});
