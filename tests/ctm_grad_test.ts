/**
 * Gradients of every GPU CTM parameter against central finite differences of the float64
 * reference (`ctm_reference.ts`), for every configuration of `ctm_fixtures.ts`.
 */
import { assertClose, gpuTest, Rng } from "./helpers.ts";
import { mul } from "../src/ops/arith.ts";
import { fromArray } from "../src/ops/creation.ts";
import { sum } from "../src/ops/reduce.ts";
import { tidy } from "../src/tensor/scope.ts";
import { ctmReference, type RefWeights } from "./ctm_reference.ts";
import { buildModel, CASES, expectedStateDict, makeInput, maxAbs, toGpuInput } from "./ctm_fixtures.ts";

// ---------------------------------------------------------------- gradients

for (const [ci, c] of CASES.entries()) {
  gpuTest(`ctm gradients match finite differences of the reference: ${c.name}`, async () => {
    const rng = new Rng(100 + ci);
    const x = makeInput(c, rng);
    const { ctm, w } = await buildModel(c, 50 + ci, x);
    const T = c.cfg.iterations;
    const R = rng.uniformArray(c.B * c.cfg.outDims * T, -1, 1);
    ctm.zeroGrad();
    tidy(() => {
      const o = ctm.forward(toGpuInput(x));
      sum(mul(o.predictions, fromArray(Float32Array.from(R), o.predictions.shape))).backward();
    });
    const objective = (ww: RefWeights) => {
      const p = ctmReference(c.cfg, ww, x).predictions;
      let s = 0;
      for (let i = 0; i < p.length; i++) s += p[i] * R[i];
      return s;
    };
    const params = ctm.namedParameters();
    const expectedParams = [...expectedStateDict(c.cfg, 0).entries()].filter(([, v]) => v.dtype === "f32")
      .map(([k]) => k).sort();
    if ([...params.keys()].sort().join() !== expectedParams.join()) {
      throw new Error(`parameters ${[...params.keys()].sort()} != ${expectedParams}`);
    }
    const results: { name: string; gpu: number[]; fd: number[] }[] = [];
    for (const [name, p] of params) {
      if (!p.grad) throw new Error(`${name} got no gradient`);
      const g = await p.grad.toArray();
      const n = p.size;
      const idx = n <= 12
        ? Array.from({ length: n }, (_, i) => i)
        : Array.from({ length: 10 }, () => rng.int(n));
      const base = w.get(name) as Float64Array;
      const fd: number[] = [];
      for (const j of idx) {
        const eps = 1e-6;
        const plus = base.slice(), minus = base.slice();
        plus[j] += eps;
        minus[j] -= eps;
        const wp = new Map(w), wm = new Map(w);
        wp.set(name, plus);
        wm.set(name, minus);
        fd.push((objective(wp) - objective(wm)) / (2 * eps));
      }
      results.push({ name, gpu: idx.map((j) => g[j]), fd });
    }
    const globalMax = Math.max(...results.map((r) => maxAbs(r.fd)));
    if (!(globalMax > 1e-3)) throw new Error(`gradients vanish (max ${globalMax}): the test would be weak`);
    for (const r of results) {
      const scale = Math.max(maxAbs(r.fd), 1e-2 * globalMax);
      assertClose(r.gpu, r.fd, {
        atol: 1e-3 * scale,
        rtol: 1e-3,
        msg: `grad ${r.name} (scale ${scale.toExponential(2)})`,
      });
    }
    ctm.dispose();
  });
}
