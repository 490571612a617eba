/**
 * The CTM recurrence as one differentiable op: all internal ticks (action synchronisation,
 * attention, synapses + GLU + LayerNorm, neuron-level models, output synchronisation) run as four
 * fused kernels per tick, and the backward as five per tick plus a handful of kernels for the
 * parameter gradients, which are summed over ticks in single passes instead of per tick
 * (`fused_ctm_bwd.ts`).
 *
 * Intermediate state lives in `rgba32float` textures (see `shaders/fused_ctm.ts` for why and for
 * the layouts). The op never reads anything back to the host.
 *
 * Supported: synapse depth 1, (deep or shallow) NLMs without the history LayerNorm, no active
 * dropout, D, d_input and the head width multiples of 4. `Ctm` falls back to its op-by-op path
 * otherwise.
 */
import { certaintySpec, type CtmDims, derived } from "../../shaders/fused_ctm.ts";
import {
  attendSpec,
  lnFwdSpec,
  syncOutSpec,
  synFwdSpec,
  synFwdThreads,
} from "../../shaders/fused_ctm_fwd.ts";
import { nlmFwdSpec, nlmThreads } from "../../shaders/fused_ctm_nlm.ts";
import { betasSpec } from "../../shaders/fused_ctm.ts";
import { gpu } from "../gpu/device.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { keep } from "../tensor/scope.ts";
import { Tensor } from "../tensor/tensor.ts";
import { backward, type FwdState } from "./fused_ctm_bwd.ts";
import { disposeFold, foldOutProj, unfoldGrads } from "./fused_ctm_fold.ts";
import {
  acquire,
  cached,
  dummy,
  forceReadMode,
  pack,
  packRows,
  packT,
  release,
  repeat,
  run,
  startCounting,
  stopCounting,
  type Tex,
  trimPools,
} from "./fused_ctm_run.ts";
import { contiguous } from "./views.ts";

export type { CtmDims };

/** Register block [rows, value texels] of the per-tick synapse forward (rows a multiple of 4). */
export const SYN_FWD: [number, number] = [16, 2];

/** Inputs of {@link fusedCtmRecurrence} (f32 unless noted). */
export interface FusedCtmInputs {
  /** Projected keys and values side by side, `[B, L, 2d]` (keys in columns 0…d-1, before the head split). */
  kv: Tensor;
  /** Query map `q = S_act · wq + bq` (q_proj and the attention's query projection folded): `[Sa, d]`, `[d]`. */
  wq: Tensor;
  bq: Tensor;
  /**
   * The synapse weight `[2D, d + D]` and bias `bsyn` `[2D]` as the model holds them, and the
   * attention's out_proj (`wout` `[d, d]`, `bout` `[d]`), which the op folds into the synapse's
   * first d columns (see `fused_ctm_fold.ts`).
   */
  ws: Tensor;
  bsyn: Tensor;
  wout: Tensor;
  bout: Tensor;
  /** Synapse LayerNorm affine `[D]`. */
  lnw: Tensor;
  lnb: Tensor;
  /** First SuperLinear: `w1 [M, O1, D]`, `b1 [1, D, O1]`, `t1 [1]`. */
  w1: Tensor;
  b1: Tensor;
  t1: Tensor;
  /** Second SuperLinear (deep NLMs): `w2 [H, 2, D]`, `b2 [1, D, 2]`, `t2 [1]`. */
  w2?: Tensor;
  b2?: Tensor;
  t2?: Tensor;
  /** `[D]` and `[D, M]`. */
  startState: Tensor;
  startTrace: Tensor;
  /** Decay rates `[So]`, `[Sa]`. */
  rOut: Tensor;
  rAct: Tensor;
  /** Pair indices (i32) `[So]` ×2 and `[Sa]` ×2. */
  outLeft: Tensor;
  outRight: Tensor;
  actLeft: Tensor;
  actRight: Tensor;
}

/** Per-tick internals recorded with `track` (no gradient). */
export interface FusedCtmTracking {
  /** `[T, B, Sa]`. */
  syncAction: Tensor;
  /** `[T, B, heads, L]`. */
  attention: Tensor;
  /** `[T, B, D]`. */
  preActivations: Tensor;
  /** `[T, B, D]`. */
  postActivations: Tensor;
}

/** Whether a configuration can run fused (see the module doc). */
export function fusedCtmSupported(c: CtmDims): boolean {
  const dv = derived(c);
  const lim = gpu().limits;
  const maxTex = Math.min(lim.maxTextureDimension2D, 8192), maxLayers = lim.maxTextureArrayLayers;
  return c.D % 4 === 0 && c.d % 4 === 0 && c.d % c.nh === 0 && (c.d / c.nh) % 4 === 0 && c.Sa > 0 &&
    c.So > 0 && c.T >= 1 && c.M >= 1 && c.T * c.B <= 60000 && 2 * c.T <= maxLayers && c.B <= maxLayers &&
    c.B * c.nh <= maxTex && dv.Bq * Math.max(c.M - 1, 1) <= maxTex && c.D * dv.nChunks <= maxTex &&
    c.d + c.D <= maxTex && 2 * c.D <= maxTex;
}

/** Packs the weights of one forward into textures. */
function packInputs(inp: Record<string, Tensor>, X: Record<string, Tex>, c: CtmDims): void {
  const { d, D, M, B } = c;
  const dv = derived(c);
  // Synapse weight: rows (k) 0…d-1 of Wt and texel columns 0…d/4-1 of Wn from wsA, the rest
  // from the z columns of ws.
  const wsZ = inp.ws.alias([2 * D, D], [d + D, 1], inp.ws.offset + d);
  if (!packT(inp.wsA, X.Wt, { N: d, E: 2 * D, es: d, swap: true })) {
    packRows(inp.wsA, X.Wt, { R: d, C: 2 * D, rs: 1, cs: d });
  }
  if (!packT(wsZ, X.Wt, { N: D, E: 2 * D, es: d + D, swap: true, nOff: d })) {
    packRows(wsZ, X.Wt, { R: D, C: 2 * D, rs: 1, cs: d + D, rowOff: d });
  }
  packRows(inp.wsA, X.Wn, { R: 2 * D, C: d, rs: d, cs: 1 });
  packRows(wsZ, X.Wn, { R: 2 * D, C: D, rs: d + D, cs: 1, colOff: d / 4 });
  wsZ.dispose();
  packRows(inp.bs, X.Bs, { R: 1, C: 2 * D, rs: 0, cs: 1 });
  packRows(inp.wq, X.Wq, { R: c.Sa, C: d, rs: d, cs: 1 });
  packRows(inp.bq, X.Bq, { R: 1, C: d, rs: 0, cs: 1 });
  const vView = inp.kv.alias([B, c.L, d], [2 * c.L * d, 2 * d, 1], inp.kv.offset + d);
  packRows(inp.kv, X.K, { R: c.L, C: d, rs: 2 * d, cs: 1, ls: 2 * c.L * d, NL: B });
  packRows(vView, X.V, { R: c.L, C: d, rs: 2 * d, cs: 1, ls: 2 * c.L * d, NL: B });
  vView.dispose();
  // NLM weights per neuron, entry r at texel (n, r/4); temperatures folded in: (x·w + b)/T.
  const perNeuron = (src: Tensor, out: Tex, R: number, lim: number, xs: number, qs: number, div: Tensor) =>
    pack(src, out, { W: D, R, xs, ys: 4 * qs, qs, vx: 0, vy: 1, lim, div });
  if (!packT(inp.w1, X.W1, { N: D, E: M * dv.O1, es: D, div: inp.t1 })) {
    perNeuron(inp.w1, X.W1, dv.W1q, M * dv.O1, 1, D, inp.t1);
  }
  perNeuron(inp.b1, X.B1, dv.B1q, dv.O1, dv.O1, 1, inp.t1);
  if (c.deep) {
    if (!packT(inp.w2, X.W2, { N: D, E: 2 * c.H, es: D, div: inp.t2 })) {
      perNeuron(inp.w2, X.W2, dv.W2q, 2 * c.H, 1, D, inp.t2);
    }
    perNeuron(inp.b2, X.B2, 1, 2, 2, 1, inp.t2);
  }
  packRows(inp.lnw, X.Ln, { R: 1, C: D, rs: 0, cs: 1 });
  packRows(inp.lnb, X.Ln, { R: 1, C: D, rs: 0, cs: 1, rowOff: 1 });
  // start trace slot m of neuron n, splat over the four rows
  pack(inp.st, X.ST, { W: D, R: M, xs: M, ys: 1, qs: 0, vx: 0, vy: 0, lim: 4 });
  packRows(inp.al, X.IdxA, { R: 1, C: c.Sa, rs: 0, cs: 1 });
  packRows(inp.ar, X.IdxA, { R: 1, C: c.Sa, rs: 0, cs: 1, rowOff: 1 });
  packRows(inp.ol, X.IdxO, { R: 1, C: c.So, rs: 0, cs: 1 });
  packRows(inp.or, X.IdxO, { R: 1, C: c.So, rs: 0, cs: 1, rowOff: 1 });
  // layer 0 of Z: the start state for every row (rows past B zero)
  pack(inp.ss, X.Z, { W: D, R: dv.Bq, xs: 1, ys: 0, qs: 0, vx: 0, vy: 1, lim: B });
}

/**
 * Runs every tick of the CTM recurrence. Returns the output synchronisation of each tick
 * `[T, B, So]` (differentiable w.r.t. every float input) and, with `track`, the per-tick
 * internals.
 */
export function fusedCtmRecurrence(
  inp: FusedCtmInputs,
  c: CtmDims,
  track = false,
): { sOut: Tensor; tracking?: FusedCtmTracking } {
  const dv = derived(c);
  const { Dq, dq, Lq, SaQ, SoQ, Bq } = dv;
  const { B, D, d, T, M, Sa, So } = c;
  const key = JSON.stringify(c);
  const ct: Tensor[] = [];
  const cont = (t: Tensor) => {
    const x = noGrad(() => contiguous(t));
    ct.push(x);
    return x;
  };
  const fo = noGrad(() => foldOutProj(inp.ws, inp.wout, inp.bout, inp.bsyn, d));
  ct.push(fo.wsA, fo.bs);
  const packed: Record<string, Tensor> = {
    kv: cont(inp.kv),
    wq: cont(inp.wq),
    bq: cont(inp.bq),
    ws: cont(inp.ws),
    wsA: fo.wsA,
    bs: fo.bs,
    lnw: cont(inp.lnw),
    lnb: cont(inp.lnb),
    w1: cont(inp.w1),
    b1: cont(inp.b1),
    t1: inp.t1,
    ss: cont(inp.startState),
    st: cont(inp.startTrace),
    al: cont(inp.actLeft),
    ar: cont(inp.actRight),
    ol: cont(inp.outLeft),
    or: cont(inp.outRight),
  };
  if (c.deep) Object.assign(packed, { w2: cont(inp.w2!), b2: cont(inp.b2!), t2: inp.t2! });

  // Textures that live until backward (or the end of the forward without grad).
  const X: Record<string, Tex> = {
    Z: acquire(D, Bq, T + 1),
    Pre: acquire(D, Bq, T),
    O: acquire(dq, B, T),
    U: acquire(2 * Dq, B, T),
    Q: acquire(dq, B, T),
    S: acquire(SaQ, B, T),
    W: acquire(Lq, B * c.nh, T),
    Stats: acquire(2, Bq, T),
    Wt: acquire(2 * Dq, d + D, 1),
    Wn: acquire(dq + Dq, 2 * D, 1),
    Wq: acquire(dq, Sa, 1),
    Bq: acquire(dq, 1, 1),
    Bs: acquire(2 * Dq, 1, 1),
    K: acquire(dq, c.L, B),
    V: acquire(dq, c.L, B),
    W1: acquire(D, dv.W1q, 1),
    B1: acquire(D, dv.B1q, 1),
    W2: acquire(D, dv.W2q, 1),
    B2: acquire(D, 1, 1),
    Ln: acquire(Dq, 2, 1),
    ST: acquire(D, M, 1),
    IdxA: acquire(SaQ, 2, 1),
    IdxO: acquire(SoQ, 2, 1),
    DecA: acquire(SaQ, T + 1, 1),
    DecO: acquire(SoQ, T + 2, 1),
  };
  // Buffers kept for backward.
  const kb = (shape: number[]) => keep(Tensor.empty(shape));
  const AlA = kb([T, B, Sa]), AlO = kb([T + 1, B, So]);
  const sOut = Tensor.empty([T, B, So]);
  const tr = track
    ? {
      syncAction: Tensor.empty([T, B, Sa]),
      attention: Tensor.empty([T, B, c.nh, c.L]),
      preActivations: Tensor.empty([T, B, D]),
      postActivations: Tensor.empty([T, B, D]),
    }
    : undefined;

  packInputs(packed, X, c);
  const rA = inp.rAct, rO = inp.rOut, t1 = inp.t1, t2 = inp.t2 ?? inp.t1;
  // Decay rates (row 0) and β_j (rows 1…) as texels: the synchronisation kernels read them per
  // pair, and storage-buffer loads are per-lane loops on lavapipe.
  run(cached(`betas${key}`, () => betasSpec(c)), [rA.buffer, rO.buffer], [X.DecA, X.DecO], [
    rA.offset,
    rO.offset,
  ], SaQ + SoQ);

  const attend = cached(`attend${key}`, () => attendSpec(c));
  const synFwd = cached(`synf${key}`, () => synFwdSpec(c, ...SYN_FWD));
  const lnFwd = cached(`lnf${key}`, () => lnFwdSpec(c));
  const nlmFwd = cached(`nlmf${key}`, () => nlmFwdSpec(c));
  const nlmTex = [X.Pre, X.ST, X.W1, X.B1, ...(c.deep ? [X.W2, X.B2] : [])];
  const trk = track ? 1 : 0;
  for (let t = 0; t < T; t++) {
    run(
      attend,
      [AlA.buffer, tr?.syncAction.buffer ?? dummy(0), tr?.attention.buffer ?? dummy(1)],
      [X.Z, X.IdxA, X.DecA, X.Wq, X.Bq, X.K, X.V, X.S, X.Q, X.W, X.O],
      [t, trk],
      B * c.nh,
    );
    run(synFwd, [], [X.O, X.Z, X.Wt, X.Bs, X.U], [t], synFwdThreads(c, ...SYN_FWD));
    run(lnFwd, [tr?.preActivations.buffer ?? dummy(0)], [X.U, X.Ln, X.Pre, X.Stats], [t, trk], Bq);
    run(nlmFwd, [tr?.postActivations.buffer ?? dummy(0)], [...nlmTex, X.Z], [t, trk], nlmThreads(c));
  }
  run(
    cached(`syncout${key}`, () => syncOutSpec(c)),
    [AlO.buffer, sOut.buffer],
    [X.Z, X.IdxO, X.DecO],
    [],
    B * So,
  );
  for (const t of ct) t.dispose();

  let released = false;
  const releaseAll = () => {
    if (released) return;
    released = true;
    for (const t of Object.values(X)) release(t);
    for (const t of [AlA, AlO]) t.dispose();
  };
  const sentinel = keep(Tensor.empty([1]));
  const disposeSentinel = sentinel.dispose.bind(sentinel);
  sentinel.dispose = () => {
    releaseAll();
    disposeSentinel();
  };
  const inputs = [
    inp.kv,
    inp.wq,
    inp.bq,
    inp.ws,
    inp.wout,
    inp.bout,
    inp.bsyn,
    inp.lnw,
    inp.lnb,
    inp.w1,
    inp.b1,
    inp.t1,
    ...(c.deep ? [inp.w2!, inp.b2!, inp.t2!] : []),
    inp.startState,
    inp.startTrace,
    inp.rOut,
    inp.rAct,
  ];
  const { fold } = fo;
  const saved = [sentinel, t1.alias(), t2.alias(), fold.wSa, fold.wout, fold.bout];
  const st: FwdState = { X, AlA, AlO, t1: saved[1], t2: saved[2] };
  const out = record("fusedCtm", inputs, sOut, (g) => {
    const grads = backward(c, key, g, st);
    const [gkv, gwq, gbq, gws, gwsA, gbs, glnw, glnb, gw1, gb1, gt1, gw2, gb2, gt2, gss, gst, grO, grA] =
      grads;
    const { gwout, gbout } = unfoldGrads(fold, gws, gwsA, gbs);
    gwsA.dispose();
    const deep = c.deep ? [gw2, gb2, gt2] : [gw2, gb2, gt2].map((t) => (t.dispose(), null)).filter((x) => x);
    return [gkv, gwq, gbq, gws, gwout, gbout, gbs, glnw, glnb, gw1, gb1, gt1, ...deep, gss, gst, grO, grA];
  }, saved);
  if (!out.node) {
    releaseAll();
    disposeFold(fold);
  }
  return { sOut: out, tracking: tr };
}

/**
 * Certainty of logits `[T, B, out]` (classes = the last `C` entries of each group): `[B, 2, T]`
 * with normalised entropy and 1 − it, in one kernel (no gradient).
 */
export function fusedCertainty(logits: Tensor, C: number): Tensor {
  const [T, B, out] = logits.shape;
  const x = noGrad(() => contiguous(logits));
  const y = Tensor.empty([B, 2, T]);
  run(cached(`cert${T},${B},${out},${C}`, () => certaintySpec(T, B, out, C)), [x.buffer, y.buffer], [], [
    x.offset,
  ], T * B);
  x.dispose();
  return y;
}

/**
 * Forces how the fused kernels read textures (default: read-only storage textures when the device
 * allows 12 per stage, else sampled). Call before the first fused forward.
 */
export function setFusedTextureReadMode(mode: "storage" | "sampled"): void {
  forceReadMode(mode);
}

/** Starts counting fused-kernel dispatches by name (profiling). */
export function startFusedProfile(): void {
  startCounting();
}

/** Stops counting; returns counts per kernel name. */
export function stopFusedProfile(): [string, number][] {
  return stopCounting();
}

/** Frees pooled textures (tests, long-lived processes switching configurations). */
export function trimFusedCtm(): void {
  trimPools();
}

/**
 * Internals for kernel micro-benchmarks (not part of the API). `repeat` maps a kernel name to a
 * number of extra identical dispatches: the cost of a kernel is the step-time difference divided
 * by that number (GPU timestamps are not reliable for these kernels on lavapipe).
 */
export const _fusedInternals: {
  acquire: typeof acquire;
  release: typeof release;
  run: typeof run;
  repeat: Map<string, number>;
} = { acquire, release, run, repeat };
