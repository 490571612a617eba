/** Top-1/top-5 accuracy per tick and at the chosen tick, against a host computation. */
import { fromArray } from "../src/ops/creation.ts";
import { classificationAccuracy } from "../src/train/losses.ts";
import { assertClose, gpuTest, Rng } from "./helpers.ts";

gpuTest("classificationAccuracy: top-1/top-5 per tick and at the chosen tick", async () => {
  const rng = new Rng(3);
  const [B, C, T] = [13, 11, 4];
  const p = new Float32Array(B * C * T).map(() => rng.uniform(-2, 2));
  const y = Int32Array.from({ length: B }, () => Math.floor(rng.uniform(0, C)));
  const tick = Int32Array.from({ length: B }, () => Math.floor(rng.uniform(0, T)));
  const rank = (b: number, t: number) => {
    let above = 0;
    for (let c = 0; c < C; c++) if (p[(b * C + c) * T + t] > p[(b * C + y[b]) * T + t]) above++;
    return above;
  };
  const want = { t1: new Array(T).fill(0), t5: new Array(T).fill(0), a1: 0, a5: 0 };
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      want.t1[t] += (rank(b, t) < 1 ? 1 : 0) / B;
      want.t5[t] += (rank(b, t) < 5 ? 1 : 0) / B;
    }
    want.a1 += (rank(b, tick[b]) < 1 ? 1 : 0) / B;
    want.a5 += (rank(b, tick[b]) < 5 ? 1 : 0) / B;
  }
  const a = classificationAccuracy(fromArray(p, [B, C, T]), fromArray(y, [B]), fromArray(tick, [B]));
  const got = {
    t1: await a.top1PerTick.toArray(),
    t5: await a.top5PerTick.toArray(),
    a1: (await a.top1.toArray())[0],
    a5: (await a.top5.toArray())[0],
  };
  assertClose(got.t1, want.t1, { msg: "top-1 per tick" });
  assertClose(got.t5, want.t5, { msg: "top-5 per tick" });
  assertClose([got.a1, got.a5], [want.a1, want.a5], { msg: "at the chosen tick" });
});
