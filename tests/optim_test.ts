import { fromArray } from "../src/ops/creation.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { pipelineCount } from "../src/gpu/kernel.ts";
import { keep } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { SGD } from "../src/optim/sgd.ts";
import { weightDecayGroups } from "../src/optim/optimizer.ts";
import { CosineLR, LinearWarmupLR, WarmupCosineLR, WarmupMultiStepLR } from "../src/optim/schedulers.ts";
import { assertClose, expectThrow, gpuTest, param, Rng, setGrad } from "./helpers.ts";

/** Float64 AdamW state of one parameter. */
interface AdamRef {
  p: number[];
  m: number[];
  v: number[];
  t: number;
}

function adamRef(s: AdamRef, g: number[], lr: number, b1: number, b2: number, eps: number, wd: number): void {
  s.t++;
  const bc1 = 1 - b1 ** s.t, bc2 = 1 - b2 ** s.t;
  for (let i = 0; i < s.p.length; i++) {
    s.p[i] *= 1 - lr * wd;
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    s.p[i] -= (lr / bc1) * s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(bc2) + eps);
  }
}

gpuTest("AdamW matches float64 over steps, with groups, decay and skipped parameters", async () => {
  const rng = new Rng(1);
  const init = [rng.uniformArray(5), rng.uniformArray(3), rng.uniformArray(4)].map((a) => Array.from(a));
  const ps = init.map(param);
  const opt = new AdamW([
    { params: [ps[0], ps[1]], lr: 1e-2, weightDecay: 0.1 },
    { params: [ps[2]], lr: 5e-3, weightDecay: 0, betas: [0.8, 0.99], eps: 1e-6 },
  ]);
  const refs: AdamRef[] = init.map((p) => ({ p: [...p], m: p.map(() => 0), v: p.map(() => 0), t: 0 }));
  const hyper = [[1e-2, 0.9, 0.999, 1e-8, 0.1], [1e-2, 0.9, 0.999, 1e-8, 0.1], [5e-3, 0.8, 0.99, 1e-6, 0]];
  for (let step = 0; step < 4; step++) {
    ps.forEach((p, i) => {
      if (i === 1 && step === 1) { // no gradient: skipped, its step count does not advance
        p.grad?.dispose();
        p.grad = null;
        return;
      }
      const g = Array.from(rng.uniformArray(p.size, -2, 2));
      setGrad(p, g);
      const [lr, b1, b2, eps, wd] = hyper[i];
      adamRef(refs[i], g, lr, b1, b2, eps, wd);
    });
    opt.step();
  }
  for (let i = 0; i < ps.length; i++) {
    assertClose(await ps[i].toArray(), refs[i].p, { atol: 1e-6, rtol: 1e-5, msg: `param ${i}` });
  }
  const sd = opt.stateDict();
  assertClose(await sd.tensors.get("state.2.exp_avg_sq")!.toArray(), refs[2].v, { atol: 1e-7, rtol: 1e-5 });
  if (sd.meta.state["1"].step !== 3 || sd.meta.state["0"].step !== 4) throw new Error("step counts");
  opt.dispose();
  for (const p of ps) p.dispose();
});

gpuTest(
  "AdamW updates a group in one dispatch, bit-identical to per-parameter updates; its checkpoints restore exactly",
  async () => {
    const rng = new Rng(7);
    const shapes = [[5], [3], [2, 4], [1]]; // a 2-D one: state views keep the parameter's shape
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const init = sizes.map((n) => Array.from(rng.uniformArray(n)));
    const make = (i: number, data: ArrayLike<number>) =>
      keep(fromArray(Float32Array.from(data), shapes[i]).requireGrad());
    const grads = [0, 1, 2, 3].map(() => sizes.map((n) => Array.from(rng.uniformArray(n, -2, 2))));
    const hyper = { lr: 1e-2, weightDecay: 0.1 };
    const flatPs = init.map((d, i) => make(i, d)), eachPs = init.map((d, i) => make(i, d));
    const flat = new AdamW([{ params: flatPs, ...hyper }]); // one group: flat arenas
    const each = new AdamW(eachPs.map((p) => ({ params: [p], ...hyper }))); // one parameter per group
    let later: [Tensor[], AdamW] | null = null;
    for (let step = 0; step < 4; step++) {
      if (step === 2) {
        // Restore the flat optimizer's checkpoint into a fresh one over copies of its parameters.
        const ps = await Promise.all(flatPs.map(async (p, i) => make(i, await p.toArray())));
        const o = new AdamW([{ params: ps, ...hyper }]);
        const sd = flat.stateDict();
        o.loadStateDict({ meta: JSON.parse(JSON.stringify(sd.meta)), tensors: sd.tensors });
        later = [ps, o];
      }
      for (
        const [ps, o] of [[flatPs, flat], [eachPs, each], ...(later ? [later] : [])] as [Tensor[], AdamW][]
      ) {
        ps.forEach((p, i) => setGrad(p, grads[step][i]));
        const d0 = recorder().stats().dispatches;
        o.step();
        const n = recorder().stats().dispatches - d0;
        // After the step that builds the arenas (or restores a checkpoint into them): one dispatch.
        const settled = (o === flat && step > 0) || (o === later?.[1] && step > 2);
        if (settled && n !== 1) throw new Error(`a flat step took ${n} dispatches`);
      }
    }
    for (let i = 0; i < sizes.length; i++) {
      const want = await eachPs[i].toArray();
      assertClose(await flatPs[i].toArray(), want, { atol: 0, rtol: 0, msg: `flat param ${i}` });
      assertClose(await later![0][i].toArray(), want, { atol: 0, rtol: 0, msg: `restored param ${i}` });
    }
    const a = flat.stateDict(), b = each.stateDict();
    for (const [k, t] of b.tensors) {
      assertClose(await a.tensors.get(k)!.toArray(), await t.toArray(), { atol: 0, rtol: 0, msg: k });
    }
    for (const o of [flat, each, later![1]]) o.dispose();
    for (const p of [...flatPs, ...eachPs, ...later![0]]) p.dispose();
  },
);

gpuTest("AdamW: changing lr compiles nothing; zeroGrad drops gradients; defaults like PyTorch", async () => {
  const p = param([1, -1]);
  const opt = new AdamW([p]);
  const g0 = opt.paramGroups[0];
  if (
    g0.lr !== 1e-3 || g0.betas[0] !== 0.9 || g0.betas[1] !== 0.999 || g0.eps !== 1e-8 ||
    g0.weightDecay !== 0.01
  ) {
    throw new Error("AdamW defaults differ from PyTorch");
  }
  setGrad(p, [1, 1]);
  opt.step();
  const before = pipelineCount();
  for (const lr of [0.1, 0.05, 0.3]) {
    opt.setLr(lr);
    setGrad(p, [0.5, -0.5]);
    const reads = recorder().stats().readbacks;
    const dispatches = recorder().stats().dispatches;
    opt.step();
    if (recorder().stats().readbacks !== reads) throw new Error("step read from the GPU");
    if (recorder().stats().dispatches !== dispatches + 1) {
      throw new Error("expected one fused dispatch per parameter");
    }
  }
  if (pipelineCount() !== before) throw new Error("a new pipeline was compiled for a new lr");
  opt.zeroGrad();
  if (p.grad !== null) throw new Error("zeroGrad did not drop the gradient");
  await p.toArray();
  opt.dispose();
  p.dispose();
});

gpuTest("SGD matches float64: momentum with dampening, Nesterov, weight decay, plain", async () => {
  const rng = new Rng(2);
  const cases = [
    { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false },
    { lr: 0.05, momentum: 0.8, dampening: 0, weightDecay: 0.02, nesterov: true },
    { lr: 0.2, momentum: 0, dampening: 0, weightDecay: 0.05, nesterov: false },
  ];
  // 6 elements: one per thread; 8: four per thread (vec4 kernels).
  for (const [h, n] of cases.flatMap((h) => [[h, 6], [h, 8]] as const)) {
    const init = Array.from(rng.uniformArray(n));
    const p = param(init);
    const opt = new SGD([p], h);
    const ref = [...init];
    let buf: number[] | null = null;
    for (let step = 0; step < 4; step++) {
      const g = Array.from(rng.uniformArray(n, -1, 1));
      setGrad(p, g);
      opt.step();
      const d = g.map((x, i) => x + h.weightDecay * ref[i]);
      let dir = d;
      if (h.momentum) {
        buf = buf === null ? [...d] : buf.map((b, i) => h.momentum * b + (1 - h.dampening) * d[i]);
        dir = h.nesterov ? d.map((x, i) => x + h.momentum * buf![i]) : buf;
      }
      for (let i = 0; i < ref.length; i++) ref[i] -= h.lr * dir[i];
    }
    assertClose(await p.toArray(), ref, { atol: 1e-6, rtol: 1e-5, msg: JSON.stringify(h) });
    opt.dispose();
    p.dispose();
  }
  expectThrow(() => new SGD([], { nesterov: true }), "Nesterov");
});

gpuTest(
  "optimizer checkpoints: JSON metadata + tensors restore the exact trajectory; clear errors",
  async () => {
    const rng = new Rng(3);
    const a0 = Array.from(rng.uniformArray(4)), b0 = Array.from(rng.uniformArray(2));
    const grads = [0, 1, 2].map(() => [Array.from(rng.uniformArray(4)), Array.from(rng.uniformArray(2))]);
    for (
      const make of [
        (ps: Tensor[]) => new AdamW([{ params: [ps[0]] }, { params: [ps[1]], weightDecay: 0 }]),
        (ps: Tensor[]) => new SGD([{ params: [ps[0]] }, { params: [ps[1]] }], { momentum: 0.9, lr: 0.1 }),
      ]
    ) {
      const A = [param(a0), param(b0)];
      const optA = make(A);
      for (const [ga, gb] of grads.slice(0, 2)) {
        setGrad(A[0], ga);
        setGrad(A[1], gb);
        optA.step();
      }
      optA.paramGroups[0].lr = 0.0123;
      const sd = optA.stateDict();
      const meta = JSON.parse(JSON.stringify(sd.meta));
      const B = [param(await A[0].toArray()), param(await A[1].toArray())];
      const optB = make(B);
      optB.loadStateDict({ meta, tensors: sd.tensors });
      if (optB.paramGroups[0].lr !== 0.0123) throw new Error("lr not restored");
      for (const [P, opt] of [[A, optA], [B, optB]] as const) {
        setGrad(P[0], grads[2][0]);
        setGrad(P[1], grads[2][1]);
        opt.step();
      }
      assertClose(await B[0].toArray(), await A[0].toArray(), { atol: 0, rtol: 0 });
      assertClose(await B[1].toArray(), await A[1].toArray(), { atol: 0, rtol: 0 });
      optB.loadStateDict(optB.stateDict()); // loading its own state is a no-op
      const C = make([param([1]), param(b0)]);
      expectThrow(() => C.loadStateDict(sd), "has shape [4], parameter 0 has [1]");
      const D = new AdamW([param(a0)]);
      expectThrow(() => D.loadStateDict({ ...sd, meta: { ...sd.meta, type: "AdamW" } }), "parameter groups");
      for (const o of [optA, optB, C, D]) o.dispose();
    }
  },
);

gpuTest("weightDecayGroups splits by name substrings", () => {
  const named = new Map([["fc.weight", param([1])], ["fc.bias", param([2])], ["ln.weight", param([3])]]);
  const groups = weightDecayGroups(named, 0.1, ["bias", "ln."]);
  if (groups.length !== 2 || groups[0].params.length !== 1 || groups[1].params.length !== 2) {
    throw new Error("split");
  }
  if (groups[1].weightDecay !== 0) throw new Error("no-decay group");
  if (weightDecayGroups(named, 0, ["bias"]).length !== 1) throw new Error("zero decay: one group");
  for (const p of named.values()) p.dispose();
});

gpuTest("schedules match hand-computed values and drive the optimizer's groups", () => {
  const close = (a: number, e: number, msg: string) => {
    if (Math.abs(a - e) > 1e-12 * Math.max(1, Math.abs(e))) {
      throw new Error(`${msg}: got ${a}, expected ${e}`);
    }
  };
  const lw = new LinearWarmupLR(0.1, 4);
  [0, 0.025, 0.05, 0.075, 0.1, 0.1].forEach((e, t) => {
    close(lw.lr, e, `warmup t=${t}`);
    lw.step();
  });
  // Warmup + cosine, base 1, W = 5, Mx = 15: hand values.
  const wc = new WarmupCosineLR(1, { warmupSteps: 5, maxSteps: 15 });
  const want: Record<number, number> = {
    0: 1e-20,
    1: 0.25,
    2: 0.5,
    4: 1,
    5: 1,
    10: 0.5 + 0.5e-7,
    15: 1e-7,
    20: 0.5 + 0.5e-7,
    25: 1,
    6: 1e-7 + (1 - 1e-7) * (1 + Math.cos(Math.PI / 10)) / 2,
  };
  for (let t = 0; t <= 25; t++) {
    if (t in want) close(wc.lr, want[t], `cosine t=${t}`);
    wc.step();
  }
  // The recursive original (as described in the reference notes), stepped in float64.
  for (const [W, Mx] of [[5, 15], [1, 9], [0, 8], [7, 30]]) {
    const s = new WarmupCosineLR(2, { warmupSteps: W, maxSteps: Mx });
    let lr = 0;
    const last = W === 0 ? Mx : 3 * Mx; // with W = 0 the original diverges from any closed form past Mx
    for (let t = 0; t <= last; t++) {
      if (t === 0) lr = 1e-20;
      else if (t < W) lr += (2 - 1e-20) / (W - 1);
      else if (t === W) lr = 2;
      else if ((t - 1 - Mx) % (2 * (Mx - W)) === 0) lr += (2 - 1e-7) * (1 - Math.cos(Math.PI / (Mx - W))) / 2;
      else {
        const c = (k: number) => 1 + Math.cos(Math.PI * (k - W) / (Mx - W));
        lr = c(t) / c(t - 1) * (lr - 1e-7) + 1e-7;
      }
      if (Math.abs(s.lr - lr) > 1e-12 + 1e-9 * Math.abs(lr)) {
        throw new Error(`W=${W} Mx=${Mx} t=${t}: ${s.lr} vs recursive ${lr}`);
      }
      s.step();
    }
  }
  const ms = new WarmupMultiStepLR(0.1, { warmupSteps: 3, milestones: [5, 8], gamma: 0.5 });
  [0, 0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025].forEach((e, t) => {
    close(ms.lr, e, `multistep t=${t}`);
    ms.step();
  });
  const cos = new CosineLR(1, { maxSteps: 10, etaMin: 0.1 });
  for (let i = 0; i < 5; i++) cos.step();
  close(cos.lr, 0.55, "cosine half way");
  // Driving two groups with their own base rates; checkpoint round trip.
  const p1 = param([1]), p2 = param([2]);
  const opt = new AdamW([{ params: [p1], lr: 1 }, { params: [p2], lr: 0.5 }]);
  const sch = new WarmupMultiStepLR(opt, { warmupSteps: 2, milestones: [3] });
  close(opt.paramGroups[0].lr, 0, "group lr at 0");
  sch.step();
  close(opt.paramGroups[0].lr, 0.5, "group 0 lr at 1");
  close(opt.paramGroups[1].lr, 0.25, "group 1 lr at 1");
  sch.step();
  sch.step();
  const saved = JSON.parse(JSON.stringify(sch.stateDict()));
  const sch2 = new WarmupMultiStepLR(opt, { warmupSteps: 2, milestones: [3] });
  sch2.loadStateDict(saved);
  if (sch2.lastStep !== 3) throw new Error("step not restored");
  close(opt.paramGroups[1].lr, 0.05, "group 1 lr at 3 after load");
  expectThrow(() => new WarmupCosineLR(1, { warmupSteps: 5, maxSteps: 5 }), "must exceed");
  opt.dispose();
  p1.dispose();
  p2.dispose();
});
