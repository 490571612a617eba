import { add, mul, sub } from "../src/ops/arith.ts";
import { fromArray, ones, onesLike } from "../src/ops/creation.ts";
import { mapInto } from "../src/ops/map.ts";
import { GRAD_SUM_TERMS, gradSum } from "../src/ops/setup.ts";
import { recorder } from "../src/gpu/recorder.ts";
import { mean, sum } from "../src/ops/reduce.ts";
import { exp, tanh } from "../src/ops/unary.ts";
import { permute, slice } from "../src/ops/views.ts";
import { detach, isGradEnabled, noGrad, setAutogradOps } from "../src/tensor/autograd.ts";
import { keep, tidy } from "../src/tensor/scope.ts";
import { memoryStats } from "../src/tensor/storage.ts";
import { assertClose, expectThrow, gpuTest } from "./helpers.ts";

gpuTest("gradients accumulate over backward calls and reuse of a tensor", async () => {
  const x = keep(fromArray([1, 2, 3]).requireGrad());
  tidy(() => sum(mul(x, x)).backward()); // 2x
  tidy(() => sum(add(x, x)).backward()); // + 2
  assertClose(await x.grad!.toArray(), [4, 6, 8]);
  // a tensor used by two branches of one graph
  const y = keep(fromArray([0.5, -1]).requireGrad());
  tidy(() => {
    const e = exp(y);
    sum(add(mul(e, 2), e)).backward(); // 3 e^y
  });
  assertClose(await y.grad!.toArray(), [3 * Math.exp(0.5), 3 * Math.exp(-1)], { rtol: 1e-5 });
  x.dispose();
  y.dispose();
});

gpuTest("backward with an explicit gradient for non-scalars; scalar required otherwise", async () => {
  const x = keep(fromArray([[1, 2], [3, 4]]).requireGrad());
  tidy(() => {
    const y = mul(permute(x, [1, 0]), 3);
    expectThrow(() => y.backward(), "needs a scalar");
    y.backward(fromArray([[1, 0], [0, 2]]));
  });
  assertClose(await x.grad!.toArray(), [3, 0, 0, 6]);
  x.dispose();
});

gpuTest("noGrad records nothing; detach cuts the graph", async () => {
  const x = keep(fromArray([1, 2]).requireGrad());
  tidy(() => {
    const y = noGrad(() => {
      if (isGradEnabled()) throw new Error("grad should be off");
      return mul(x, 2);
    });
    if (y.requiresGrad || y.node) throw new Error("noGrad output must not require grad");
    const d = detach(mul(x, 2));
    if (d.requiresGrad) throw new Error("detach output must not require grad");
    sum(add(mul(d, x), 0)).backward();
  });
  assertClose(await x.grad!.toArray(), [2, 4]);
  x.dispose();
});

gpuTest("a second backward through a freed graph is a clear error", () => {
  const x = keep(fromArray([1, 2]).requireGrad());
  tidy(() => {
    const l = sum(tanh(x));
    l.backward();
    expectThrow(() => l.backward(), "a second time");
  });
  x.dispose();
});

gpuTest("use after dispose is a clear error; tidy keeps what it returns", async () => {
  const kept = tidy(() => {
    const a = fromArray([1, 2, 3]);
    const b = add(a, 1);
    return { b };
  });
  assertClose(await kept.b.toArray(), [2, 3, 4]);
  const t = fromArray([1]);
  t.dispose();
  expectThrow(() => add(t, 1), "after dispose");
  {
    using u = fromArray([5]);
    assertClose(await u.toArray(), [5]);
  }
  kept.b.dispose();
});

gpuTest("memory stays flat over many training steps", async () => {
  const w = keep(fromArray(new Float32Array(4096).fill(0.01), [64, 64]).requireGrad());
  const x = keep(ones([8, 64]));
  const step = () =>
    tidy(() => {
      const h = tanh(mul(slice(x, 0, 0, 8), 0.5));
      const y = mean(mul(sub(h, 0.1), sum(w, 0)));
      y.backward();
      noGrad(() => mapInto(w, "x0 - s0 * x1", [w, w.grad!], [0.01]));
      w.grad!.dispose();
      w.grad = null;
    });
  for (let i = 0; i < 5; i++) step();
  await w.toArray();
  const before = memoryStats();
  for (let i = 0; i < 300; i++) step();
  await w.toArray();
  const after = memoryStats();
  if (after.liveBytes !== before.liveBytes || after.liveBuffers !== before.liveBuffers) {
    throw new Error(`live memory grew: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  }
  if (after.totalBytes > before.totalBytes) {
    throw new Error(`pool grew: ${before.totalBytes} -> ${after.totalBytes}`);
  }
  // a forward without backward frees its graph when its output is disposed
  const live0 = memoryStats().liveBytes;
  tidy(() => {
    mean(mul(tanh(w), 2));
  });
  if (memoryStats().liveBytes !== live0) throw new Error("an abandoned graph leaked memory");
  w.dispose();
  x.dispose();
});

gpuTest("contiguous() of a contiguous tensor still passes gradients", async () => {
  const { contiguous } = await import("../src/ops/views.ts");
  const x = keep(fromArray([1, 2, 3]).requireGrad());
  tidy(() => {
    const c = contiguous(x);
    if (!c.requiresGrad) throw new Error("contiguous dropped requiresGrad");
    sum(mul(c, 2)).backward();
  });
  assertClose(await x.grad!.toArray(), [2, 2, 2]);
  x.dispose();
});

gpuTest("multi-output ops get one gradient per output (null where none arrived)", async () => {
  const { recordMulti } = await import("../src/tensor/autograd.ts");
  const { mapN } = await import("../src/ops/map.ts");
  const x = keep(fromArray([1, 2]).requireGrad());
  const twoOuts = (t: typeof x) => {
    const [a, b] = [mapN("x0 * 2.0", [t]), mapN("x0 * 3.0", [t])];
    return recordMulti("double-triple", [t], [a, b], ([ga, gb]) => {
      if (ga && gb) return [mapN("x0 * 2.0 + x1 * 3.0", [ga, gb])];
      if (ga) return [mapN("x0 * 2.0", [ga])];
      return [mapN("x0 * 3.0", [gb!])];
    });
  };
  tidy(() => {
    const [a, b] = twoOuts(x);
    sum(add(mul(a, a), b)).backward(); // d/dx (4x² + 3x) = 8x + 3
  });
  assertClose(await x.grad!.toArray(), [11, 19]);
  x.grad!.dispose();
  x.grad = null;
  tidy(() => {
    const [, b] = twoOuts(x);
    sum(b).backward();
  });
  assertClose(await x.grad!.toArray(), [3, 3]);
  x.dispose();
});

gpuTest(
  "many gradient terms are summed a few per dispatch, with the bits of adding them in order",
  async () => {
    const n = 20;
    const cs = Array.from({ length: n }, (_, k) => [0.1 * k + 0.013, -0.7 + 0.37 * k, 1 / (k + 3)]);
    const run = () => {
      const x = keep(fromArray([1, 2, 3]).requireGrad());
      const d0 = recorder().stats().dispatches;
      tidy(() => {
        const h = mul(x, 2); // an intermediate used n times, then a leaf used n more times
        let y = mul(h, fromArray(cs[0]));
        for (let k = 1; k < n; k++) y = add(y, mul(h, fromArray(cs[k])));
        for (let k = 0; k < n; k++) y = add(y, mul(x, fromArray(cs[k])));
        sum(y).backward();
      });
      return { x, dispatches: recorder().stats().dispatches - d0 };
    };
    const lazy = run();
    setAutogradOps(add, onesLike); // one add per term, as before
    const eager = run();
    setAutogradOps(add, onesLike, gradSum, GRAD_SUM_TERMS);
    // Expected: the terms added one by one in f32, in arrival order (last use first).
    const want = [0, 1, 2].map((j) => {
      let viaH = 0;
      for (let k = n - 1; k >= 0; k--) viaH = Math.fround(viaH + cs[k][j]);
      let g = Math.fround(viaH * 2);
      for (let k = n - 1; k >= 0; k--) g = Math.fround(g + cs[k][j]);
      return g;
    });
    const a = await lazy.x.grad!.toArray(), b = await eager.x.grad!.toArray();
    assertClose(a, b, { atol: 0, rtol: 0, msg: "lazy vs one-by-one sums" });
    assertClose(a, want, { atol: 1e-6, rtol: 1e-6, msg: "vs host" });
    if (eager.dispatches - lazy.dispatches < 25) {
      throw new Error(`lazy sums saved only ${eager.dispatches - lazy.dispatches} dispatches`);
    }
    lazy.x.dispose();
    eager.x.dispose();
  },
);
