/**
 * Backward of the fused CTM recurrence (`fused_ctm.ts`): five kernels per tick on the critical
 * path (NLM, GLU + LayerNorm, synapse, attention, synchronisation), then the parameter gradients
 * summed over all ticks in single passes (synapse and query outer products, biases, dK/dV,
 * LayerNorm affine, NLM weights, start trace).
 */
import { type CtmDims, derived, rowPitch } from "../../shaders/fused_ctm.ts";
import { attnBwdSpec, dzAsmSpec, lnBwdSpec, synBwdSpec, synBwdThreads } from "../../shaders/fused_ctm_bwd.ts";
import {
  colSumSpec,
  dkvSpec,
  dlnSpec,
  dstSpec,
  type OuterOpts,
  outerSpec,
  outerThreads,
} from "../../shaders/fused_ctm_grads.ts";
import { nlmBwdSpec, nlmGradBlocks, nlmGradSpec, nlmThreads } from "../../shaders/fused_ctm_nlm.ts";
import { Tensor } from "../tensor/tensor.ts";
import { zeros } from "./creation.ts";
import { sum } from "./reduce.ts";
import { acquire, cached, copyRowsToTexture, release, run, type Tex } from "./fused_ctm_run.ts";
import { contiguous } from "./views.ts";

/** Register block [rows, texels] of the per-tick synapse backward (rows a multiple of 4). */
export const SYN_BWD: [number, number] = [8, 4];

/** What the forward keeps for the backward. */
export interface FwdState {
  /** Forward textures (see `shaders/fused_ctm.ts`; decay rates and β histories in `DecA`, `DecO`). */
  X: Record<string, Tex>;
  /** α histories `[T, B, Sa]`, `[T+1, B, So]`. */
  AlA: Tensor;
  AlO: Tensor;
  /** NLM temperatures. */
  t1: Tensor;
  t2: Tensor;
}

/**
 * Gradients of every input of the fused op from the incoming `gIn` (`[T, B, So]`), in the order
 * kv, wq, bq, ws (its z columns only: the caller writes the attention columns from wsA's gradient,
 * see `fused_ctm_fold.ts`), wsA, bs, lnw, lnb, w1, b1, t1, w2, b2, t2
 * (placeholders when shallow), start state, start trace, rOut, rAct.
 */
export function backward(c: CtmDims, key: string, gIn: Tensor, s: FwdState): Tensor[] {
  const dv = derived(c);
  const { Dq, dq, Lq, SaQ, O1, Bq, Bp } = dv;
  const { B, D, d, T, M, Sa, So } = c;
  const { X, t1, t2 } = s;
  const g = contiguous(gIn);
  const DZ = zeros([D * Bp]);
  const CAO = Tensor.empty([B, So]), CBO = Tensor.empty([B, So]);
  const CAA = Tensor.empty([B, Sa]), CBA = Tensor.empty([B, Sa]);
  // The sync backward writes DRO at j = T and DRA at j = T − 1 before adding to them, so only
  // DRA with T = 1 (never written) needs zeros.
  const DRO = Tensor.empty([B, So]), DRA = T > 1 ? Tensor.empty([B, Sa]) : zeros([B, Sa]);
  const Y = {
    Dpre: acquire(D, Bq, T),
    C: acquire(D, Bq * Math.max(M - 1, 1), 1),
    DU: acquire(2 * Dq, B, T),
    DO: acquire(dq, B, T),
    DQ: acquire(dq, B, T),
    DS: acquire(Lq, B * c.nh, T),
    DAG: acquire(D, Bq, 2 * T),
    DSP: acquire(SaQ, B * c.nh, 1),
  };
  // Four synchronisation pairs per storage access where sizes and offsets allow.
  const v4 = Sa % 4 === 0 && So % 4 === 0 && g.offset % 4 === 0;
  const V = v4 ? 4 : 1;
  const dzAsm = cached(`dzasm${v4}${key}`, () => dzAsmSpec(c, v4));
  const nlmBwd = cached(`nlmb${key}`, () => nlmBwdSpec(c));
  const lnBwd = cached(`lnb${key}`, () => lnBwdSpec(c));
  const synBwd = cached(`synb${key}`, () => synBwdSpec(c, ...SYN_BWD));
  const attnBwd = cached(`attnb${key}`, () => attnBwdSpec(c));
  const asm = (j: number) =>
    run(
      dzAsm,
      [
        s.AlO.buffer,
        s.AlA.buffer,
        g.buffer,
        CAO.buffer,
        CBO.buffer,
        CAA.buffer,
        CBA.buffer,
        DRO.buffer,
        DRA.buffer,
        DZ.buffer,
      ],
      [X.Z, X.IdxO, X.IdxA, X.DecO, X.DecA, Y.DSP],
      [j, g.offset / V],
      B,
    );
  asm(T);
  const nlmTex = [X.Pre, X.ST, X.W1, X.B1, ...(c.deep ? [X.W2, X.B2] : [])];
  // Pending trace gradients: written to a buffer, copied into texture C for the next tick.
  const pitch = rowPitch(D), pendRows = Bq * Math.max(M - 1, 1);
  const pend = Tensor.empty([pendRows * pitch * 4]), dag = Tensor.empty([2 * T * Bq * pitch * 4]);
  for (let t = T - 1; t >= 0; t--) {
    const first = t === T - 1 ? 1 : 0;
    run(nlmBwd, [DZ.buffer, pend.buffer, dag.buffer], [...nlmTex, Y.C, Y.Dpre], [t, first], nlmThreads(c));
    if (M > 1) copyRowsToTexture(pend, Y.C, D, pendRows);
    run(lnBwd, [], [X.U, X.Ln, Y.Dpre, X.Stats, Y.DU], [t], Bq);
    run(synBwd, [DZ.buffer], [Y.DU, X.Wn, Y.DO], [t], synBwdThreads(c, ...SYN_BWD));
    run(attnBwd, [], [Y.DO, X.W, X.K, X.V, X.Wq, Y.DQ, Y.DS, Y.DSP], [t], B * c.nh);
    asm(t);
  }
  // After the loop C holds the pending trace gradients of tick 0.
  copyRowsToTexture(dag, Y.DAG, D, Bq, 0, 2 * T);
  // Parameter gradients summed over ticks: dW' = Σ dUᵀ·[O | Z] (the O part into gwsA, the Z
  // part into the z columns of gws), dWq' = Σ S_actᵀ·dq, biases.
  // gws: z columns here, attention columns from the out_proj fold (fused_ctm_fold.ts).
  const gws = Tensor.empty([2 * D, d + D]), gwsA = Tensor.empty([2 * D, d]), gbs = Tensor.empty([2 * D]);
  const gwq = Tensor.empty([Sa, d]), gbq = Tensor.empty([d]);
  const outer = (tag: string, A: Tex, Bt: Tex, G: Tensor, off: number, o: OuterOpts) =>
    run(
      cached(`${tag}${key}`, () => outerSpec(`ctm dW ${tag}`, c, o)),
      [G.buffer],
      [A, Bt],
      [off],
      outerThreads(o),
    );
  const K = d + D;
  outer("synapse (attn part)", X.O, Y.DU, gwsA, 0, {
    M4: dq,
    N4: 2 * Dq,
    TM4: 8,
    TN4: 8,
    Mrows: d,
    Ncols: 2 * D,
    sm: 1,
    sn: d,
  });
  outer("synapse (z part)", X.Z, Y.DU, gws, d, {
    M4: D,
    N4: 2 * Dq,
    TM4: 16,
    TN4: 8,
    Mrows: D,
    Ncols: 2 * D,
    sm: 1,
    sn: K,
    quadA: true,
  });
  outer("query", X.S, Y.DQ, gwq, 0, { M4: SaQ, N4: dq, TM4: 2, TN4: 4, Mrows: Sa, Ncols: d, sm: d, sn: 1 });
  const colSum = (tag: string, Bt: Tex, G: Tensor, N4: number, N: number) =>
    run(cached(`cs${tag}${key}`, () => colSumSpec(`ctm db ${tag}`, c, N4, N)), [G.buffer], [Bt], [], N4);
  colSum("synapse", Y.DU, gbs, 2 * Dq, 2 * D);
  colSum("query", Y.DQ, gbq, dq, d);
  const gkv = Tensor.empty([B, c.L, 2 * d]);
  run(
    cached(`dkv${key}`, () => dkvSpec(c)),
    [gkv.buffer],
    [X.W, Y.DS, Y.DO, X.Q],
    [],
    B * c.nh * Lq,
  );
  const glnw = Tensor.empty([D]), glnb = Tensor.empty([D]);
  run(cached(`dln${key}`, () => dlnSpec(c)), [glnw.buffer, glnb.buffer], [X.U, Y.Dpre, X.Stats], [], Dq);
  const gw1 = Tensor.empty([M, O1, D]), gb1 = Tensor.empty([1, D, O1]);
  const gw2 = Tensor.empty(c.deep ? [c.H, 2, D] : [1]), gb2 = Tensor.empty(c.deep ? [1, D, 2] : [1]);
  const nB = nlmGradBlocks(c);
  const gtp = Tensor.empty([2, nB * D]);
  for (let bI = 0; bI < nB; bI++) {
    run(
      cached(`nlmg${bI}${key}`, () => nlmGradSpec(c, bI)),
      [t1.buffer, t2.buffer, gw1.buffer, gb1.buffer, gw2.buffer, gb2.buffer, gtp.buffer],
      [...nlmTex, Y.DAG],
      [t1.offset, t2.offset],
      D,
    );
  }
  const gT = sum(gtp, 1);
  const gst = Tensor.empty([D, M]);
  run(cached(`dst${key}`, () => dstSpec(c)), [gst.buffer], [Y.C], [M > 1 ? 1 : 0], M * D);
  const dz2 = DZ.alias([D, Bp], [Bp, 1]);
  const gss = sum(dz2, 1);
  const grO = sum(DRO, 0), grA = sum(DRA, 0);
  const gt1 = gT.alias([1], [1], 0, true), gt2 = gT.alias([1], [1], 1, true);
  for (const t of [g, dz2, DZ, pend, dag, CAO, CBO, CAA, CBA, DRO, DRA, gT, gtp]) t.dispose();
  for (const t of Object.values(Y)) release(t);
  return [gkv, gwq, gbq, gws, gwsA, gbs, glnw, glnb, gw1, gb1, gt1, gw2, gb2, gt2, gss, gst, grO, grA];
}
