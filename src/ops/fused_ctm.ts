/**
 * The CTM recurrence as one differentiable op: all internal ticks (action synchronisation,
 * attention, synapses + GLU + LayerNorm, neuron-level models, output synchronisation) run as four
 * fused kernels per tick, and the backward as five per tick plus a handful of kernels for the
 * parameter gradients, which are summed over ticks in single passes instead of per tick.
 *
 * Intermediate state lives in `rgba32float` textures (see `shaders/fused_ctm.ts` for why and for
 * the layouts). The op never reads anything back to the host.
 *
 * Supported: synapse depth 1, (deep or shallow) NLMs without the history LayerNorm, no active
 * dropout, D, d_input and the head width multiples of 4. `Ctm` falls back to its op-by-op path
 * otherwise.
 */
import {
  attendSpec,
  attnBwdSpec,
  betasSpec,
  certaintySpec,
  colSumSpec,
  type CtmDims,
  derived,
  dkvSpec,
  dlnSpec,
  dstSpec,
  dzAsmSpec,
  type FusedSpec,
  FWG,
  lnBwdSpec,
  lnFwdSpec,
  nlmBwdSpec,
  nlmFwdSpec,
  nlmGradSpec,
  nlmThreads,
  outerSpec,
  outerThreads,
  packSpec,
  setTextureReadMode,
  synBwdSpec,
  synBwdThreads,
  syncOutSpec,
  synFwdSpec,
  synFwdThreads,
} from "../../shaders/fused_ctm.ts";
import { gpu } from "../gpu/device.ts";
import { grid1d, wgsl } from "../gpu/kernel.ts";
import { recorder } from "../gpu/recorder.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { keep } from "../tensor/scope.ts";
import { Tensor } from "../tensor/tensor.ts";
import { zeros } from "./creation.ts";
import { sum } from "./reduce.ts";
import { contiguous } from "./views.ts";

export type { CtmDims };

// ---------------------------------------------------------------- textures

/** A pooled 2-D array texture. */
interface Tex {
  tex: GPUTexture;
  view: GPUTextureView;
  key: string;
}

const texPool = new Map<string, Tex[]>();
let texIds = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object) => {
  let id = texIds.get(o);
  if (id === undefined) texIds.set(o, id = nextId++);
  return id;
};

function acquire(w: number, h: number, layers0: number): Tex {
  // At least two layers: wgpu's GL backend treats a one-layer texture as plain 2-D.
  const layers = Math.max(layers0, 2);
  const key = `${w}x${h}x${layers}`;
  const hit = texPool.get(key)?.pop();
  if (hit) return hit;
  const tex = gpu().device.createTexture({
    size: [Math.max(w, 1), Math.max(h, 1), layers],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING,
  });
  return { tex, view: tex.createView({ dimension: "2d-array" }), key };
}

function release(t: Tex): void {
  let l = texPool.get(t.key);
  if (!l) texPool.set(t.key, l = []);
  l.push(t);
}

// ---------------------------------------------------------------- launching

interface Pipe {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
}
const pipes = new Map<string, Pipe>();
const pipeOfSpec = new WeakMap<FusedSpec, Pipe>();
const bindGroups = new Map<string, GPUBindGroup>();

function pipeOf(spec: FusedSpec): Pipe {
  let p = pipeOfSpec.get(spec);
  if (p) return p;
  const code = wgsl(spec);
  p = pipes.get(code);
  if (!p) {
    const { device } = gpu();
    const stage = GPUShaderStage.COMPUTE;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: stage, buffer: { type: "uniform", hasDynamicOffset: true } },
    ];
    spec.bindings.forEach((b, i) =>
      entries.push({
        binding: i + 1,
        visibility: stage,
        buffer: { type: b.access === "read" ? "read-only-storage" : "storage" },
      })
    );
    spec.textures.forEach((t, i) => {
      const binding = spec.bindings.length + 1 + i;
      if (t.kind === "r" && spec.readMode === "sampled") {
        entries.push({
          binding,
          visibility: stage,
          texture: { sampleType: "unfilterable-float", viewDimension: "2d-array" },
        });
      } else {
        entries.push({
          binding,
          visibility: stage,
          storageTexture: {
            access: t.kind === "r" ? "read-only" : "write-only",
            format: "rgba32float",
            viewDimension: "2d-array",
          },
        });
      }
    });
    const layout = device.createBindGroupLayout({ entries });
    const pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    p = { pipeline, layout, id: pipes.size };
    pipes.set(code, p);
  }
  pipeOfSpec.set(spec, p);
  return p;
}

let dummies: GPUBuffer[] = [];
/** The i-th distinct small placeholder buffer (for unused optional bindings). */
function dummy(i: number): GPUBuffer {
  while (dummies.length <= i) {
    dummies.push(gpu().device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE }));
  }
  return dummies[i];
}

/** Records one dispatch of `spec` over `threads` invocations. */
function run(spec: FusedSpec, buffers: GPUBuffer[], texs: Tex[], params: number[], threads: number): void {
  if (threads <= 0) return;
  if (buffers.length !== spec.bindings.length || texs.length !== spec.textures.length) {
    throw new Error(`internal: ${spec.name}: binding count mismatch`);
  }
  const p = pipeOf(spec);
  const rec = recorder();
  const u = rec.params(Uint32Array.from(params.length ? params : [0]));
  let key = `${p.id}:${idOf(u.buffer)}:${u.size}`;
  for (const b of buffers) key += ":" + idOf(b);
  for (const t of texs) key += ":" + idOf(t.view);
  let bg = bindGroups.get(key);
  if (!bg) {
    if (bindGroups.size > 20000) bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: u.buffer, size: u.size } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    texs.forEach((t, i) => entries.push({ binding: buffers.length + 1 + i, resource: t.view }));
    bg = gpu().device.createBindGroup({ layout: p.layout, entries });
    bindGroups.set(key, bg);
  }
  const [x, y] = grid1d(Math.ceil(threads / FWG));
  rec.dispatch(p.pipeline, bg, [u.offset], x, y, 1, spec.name ?? "");
  const rep = repeat.get(spec.name!) ?? 0;
  for (let i = 0; i < rep; i++) rec.dispatch(p.pipeline, bg, [u.offset], x, y, 1, spec.name ?? "");
  profileCount?.set(spec.name!, (profileCount.get(spec.name!) ?? 0) + 1);
}

let profileCount: Map<string, number> | null = null;
/** Extra dispatches per kernel name (cost measurement by repetition; see the step bench). */
const repeat = new Map<string, number>();

// ---------------------------------------------------------------- specs per configuration

const specCache = new Map<string, FusedSpec>();
let modeChosen = false;
function cached(key: string, make: () => FusedSpec): FusedSpec {
  if (!modeChosen) {
    // Read-only storage textures are faster on lavapipe; the attention kernel binds 10 textures.
    setTextureReadMode(gpu().limits.maxStorageTexturesPerShaderStage >= 12 ? "storage" : "sampled");
    modeChosen = true;
  }
  let s = specCache.get(key);
  if (!s) specCache.set(key, s = make());
  return s;
}

/** Register blocks of the per-tick synapse matmuls. */
const SYN_FWD: [number, number] = [8, 4];
const SYN_BWD: [number, number] = [8, 4];

/** Packs `[R, C]` (strides rs, cs; per layer ls) of a tensor into texture rows. */
function pack(
  src: Tensor,
  out: Tex,
  o: {
    R: number;
    C: number;
    rs: number;
    cs: number;
    ls?: number;
    NL?: number;
    rowOff?: number;
    layerOff?: number;
    off?: number;
    div?: Tensor;
  },
): void {
  const W = Math.ceil(o.C / 4), NL = o.NL ?? 1;
  const spec = cached(`pack${src.dtype}${!!o.div}`, () => packSpec(src.dtype === "i32", !!o.div));
  run(
    spec,
    o.div ? [src.buffer, o.div.buffer] : [src.buffer],
    [out],
    [
      src.offset + (o.off ?? 0),
      o.ls ?? 0,
      o.rs,
      o.cs,
      o.R,
      o.C,
      W,
      NL,
      o.rowOff ?? 0,
      o.layerOff ?? 0,
      ...(o.div ? [o.div.offset] : []),
    ],
    W * o.R * NL,
  );
}

// ---------------------------------------------------------------- the op

/** Inputs of {@link fusedCtmRecurrence} (f32 unless noted). */
export interface FusedCtmInputs {
  /** Projected keys and values `[B, L, d]` (before the head split). */
  k: Tensor;
  v: Tensor;
  /** Query map `q = S_act · wq + bq` (q_proj and the attention's query projection folded): `[Sa, d]`, `[d]`. */
  wq: Tensor;
  bq: Tensor;
  /** Synapse weight with out_proj folded in, `[2D, d + D]`, and bias `[2D]`. */
  ws: Tensor;
  bs: Tensor;
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
  return c.D % 4 === 0 && c.d % 4 === 0 && c.d % c.nh === 0 && (c.d / c.nh) % 4 === 0 && c.Sa > 0 &&
    c.So > 0 && c.T >= 1 && c.M >= 1 && c.T * c.B <= 60000 && c.T + 1 <= 2048 &&
    c.B * c.nh <= 8192 && c.B * Math.max(c.M - 1, 1) <= 8192;
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
  const { Dq, dq, Lq, SaQ, SoQ, O1 } = dv;
  const { B, D, d, T, M, Sa, So } = c;
  const key = JSON.stringify(c);
  const ct: Tensor[] = [];
  const cont = (t: Tensor) => {
    const x = noGrad(() => contiguous(t));
    ct.push(x);
    return x;
  };
  const k = cont(inp.k), v = cont(inp.v), wq = cont(inp.wq), bq = cont(inp.bq), ws = cont(inp.ws);
  const bs = cont(inp.bs), lnw = cont(inp.lnw), lnb = cont(inp.lnb), w1 = cont(inp.w1), b1 = cont(inp.b1);
  const w2 = c.deep ? cont(inp.w2!) : null, b2 = c.deep ? cont(inp.b2!) : null;
  const ss = cont(inp.startState), st = cont(inp.startTrace);
  const idx = [inp.actLeft, inp.actRight, inp.outLeft, inp.outRight].map(cont);

  // Textures that live until backward (or the end of the forward without grad).
  const X = {
    Z: acquire(Dq, B, T + 1),
    Pre: acquire(Dq, B, T),
    O: acquire(dq, B, T),
    U: acquire(2 * Dq, B, T),
    Q: acquire(dq, B, T),
    S: acquire(SaQ, B, T),
    W: acquire(Lq, B * c.nh, T),
    Stats: acquire(1, B, T),
    Wt: acquire(2 * Dq, d + D, 1),
    Wn: acquire(dq + Dq, 2 * D, 1),
    Wq: acquire(dq, Sa, 1),
    Bq: acquire(dq, 1, 1),
    Bs: acquire(2 * Dq, 1, 1),
    K: acquire(dq, c.L, B),
    V: acquire(dq, c.L, B),
    W1: acquire(Dq, M * O1, 1),
    B1: acquire(Dq, O1, 1),
    W2: acquire(Dq, c.deep ? 2 * c.H : 1, 1),
    B2: acquire(Dq, 2, 1),
    Ln: acquire(Dq, 2, 1),
    ST: acquire(Dq, M, 1),
    IdxA: acquire(SaQ, 2, 1),
    IdxO: acquire(SoQ, 2, 1),
  };
  // Buffers kept for backward.
  const kb = (shape: number[]) => keep(Tensor.empty(shape));
  const AlA = kb([T, B, Sa]), BA = kb([T, Sa]), AlO = kb([T + 1, B, So]), BO = kb([T + 1, So]);
  const sOut = Tensor.empty([T, B, So]);
  const tr = track
    ? {
      syncAction: Tensor.empty([T, B, Sa]),
      attention: Tensor.empty([T, B, c.nh, c.L]),
      preActivations: Tensor.empty([T, B, D]),
      postActivations: Tensor.empty([T, B, D]),
    }
    : undefined;

  // Weights into textures.
  pack(ws, X.Wt, { R: d + D, C: 2 * D, rs: 1, cs: d + D });
  pack(ws, X.Wn, { R: 2 * D, C: d + D, rs: d + D, cs: 1 });
  pack(bs, X.Bs, { R: 1, C: 2 * D, rs: 0, cs: 1 });
  pack(wq, X.Wq, { R: Sa, C: d, rs: d, cs: 1 });
  pack(bq, X.Bq, { R: 1, C: d, rs: 0, cs: 1 });
  pack(k, X.K, { R: c.L, C: d, rs: d, cs: 1, ls: c.L * d, NL: B });
  pack(v, X.V, { R: c.L, C: d, rs: d, cs: 1, ls: c.L * d, NL: B });
  // The NLM temperatures are folded into the packed weights: (x·w + b)/T = x·(w/T) + b/T.
  pack(w1, X.W1, { R: M * O1, C: D, rs: D, cs: 1, div: inp.t1 });
  pack(b1, X.B1, { R: O1, C: D, rs: 1, cs: O1, div: inp.t1 });
  if (c.deep) {
    pack(w2!, X.W2, { R: 2 * c.H, C: D, rs: D, cs: 1, div: inp.t2 });
    pack(b2!, X.B2, { R: 2, C: D, rs: 1, cs: 2, div: inp.t2 });
  }
  pack(lnw, X.Ln, { R: 1, C: D, rs: 0, cs: 1 });
  pack(lnb, X.Ln, { R: 1, C: D, rs: 0, cs: 1, rowOff: 1 });
  pack(st, X.ST, { R: M, C: D, rs: 1, cs: M });
  pack(idx[0], X.IdxA, { R: 1, C: Sa, rs: 0, cs: 1 });
  pack(idx[1], X.IdxA, { R: 1, C: Sa, rs: 0, cs: 1, rowOff: 1 });
  pack(idx[2], X.IdxO, { R: 1, C: So, rs: 0, cs: 1 });
  pack(idx[3], X.IdxO, { R: 1, C: So, rs: 0, cs: 1, rowOff: 1 });
  pack(ss, X.Z, { R: B, C: D, rs: 0, cs: 1 });

  const rA = inp.rAct, rO = inp.rOut, t1 = inp.t1, t2 = inp.t2 ?? inp.t1;
  void t1;
  run(cached(`betas${key}`, () => betasSpec(c)), [rA.buffer, rO.buffer, BA.buffer, BO.buffer], [], [
    rA.offset,
    rO.offset,
  ], Sa + So);

  const attend = cached(`attend${key}`, () => attendSpec(c));
  const synFwd = cached(`synf${key}`, () => synFwdSpec(c, ...SYN_FWD));
  const lnFwd = cached(`lnf${key}`, () => lnFwdSpec(c));
  const nlmFwd = cached(`nlmf${key}`, () => nlmFwdSpec(c));
  const nlmTex = [X.Pre, X.ST, X.W1, X.B1, ...(c.deep ? [X.W2, X.B2] : [])];
  const trk = track ? 1 : 0;
  for (let t = 0; t < T; t++) {
    run(
      attend,
      [rA.buffer, AlA.buffer, BA.buffer, tr?.syncAction.buffer ?? dummy(0), tr?.attention.buffer ?? dummy(1)],
      [X.Z, X.IdxA, X.Wq, X.Bq, X.K, X.V, X.S, X.Q, X.W, X.O],
      [t, rA.offset, trk],
      B * c.nh,
    );
    run(synFwd, [], [X.O, X.Z, X.Wt, X.Bs, X.U], [t], synFwdThreads(c, ...SYN_FWD));
    run(lnFwd, [tr?.preActivations.buffer ?? dummy(0)], [X.U, X.Ln, X.Pre, X.Stats], [t, trk], B);
    run(nlmFwd, [tr?.postActivations.buffer ?? dummy(0)], [...nlmTex, X.Z], [t, trk], nlmThreads(c));
  }
  run(
    cached(`syncout${key}`, () => syncOutSpec(c)),
    [rO.buffer, BO.buffer, AlO.buffer, sOut.buffer],
    [X.Z, X.IdxO],
    [rO.offset],
    B * So,
  );
  for (const t of ct) t.dispose();

  let released = false;
  const releaseAll = () => {
    if (released) return;
    released = true;
    for (const t of Object.values(X)) release(t);
    for (const t of [AlA, BA, AlO, BO]) t.dispose();
  };
  const sentinel = keep(Tensor.empty([1]));
  const disposeSentinel = sentinel.dispose.bind(sentinel);
  sentinel.dispose = () => {
    releaseAll();
    disposeSentinel();
  };
  const inputs = [
    inp.k,
    inp.v,
    inp.wq,
    inp.bq,
    inp.ws,
    inp.bs,
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
  const saved = [sentinel, rA.alias(), rO.alias(), t1.alias(), t2.alias()];
  const out = record("fusedCtm", inputs, sOut, (g) => {
    const grads = backward(c, key, g, X, { AlA, BA, AlO, BO }, saved[1], saved[2], saved[3], saved[4]);
    const [gk, gv, gwq, gbq, gws, gbs, glnw, glnb, gw1, gb1, gt1, gw2, gb2, gt2, gss, gst, grO, grA] = grads;
    return [
      gk,
      gv,
      gwq,
      gbq,
      gws,
      gbs,
      glnw,
      glnb,
      gw1,
      gb1,
      gt1,
      ...(c.deep ? [gw2, gb2, gt2] : [gw2, gb2, gt2].map((t) => (t.dispose(), null)).filter((x) => x)),
      gss,
      gst,
      grO,
      grA,
    ];
  }, saved);
  if (!out.node) releaseAll();
  return { sOut: out, tracking: tr };
}

interface Saved {
  AlA: Tensor;
  BA: Tensor;
  AlO: Tensor;
  BO: Tensor;
}

function backward(
  c: CtmDims,
  key: string,
  gIn: Tensor,
  X: Record<string, Tex>,
  s: Saved,
  rA: Tensor,
  rO: Tensor,
  t1: Tensor,
  t2: Tensor,
): Tensor[] {
  const dv = derived(c);
  const { Dq, dq, Lq, SaQ, O1, accRows, nChunks } = dv;
  const { B, D, d, T, M, Sa, So } = c;
  const g = contiguous(gIn);
  const DZ = Tensor.empty([B, D]);
  const CAO = Tensor.empty([B, So]), CBO = Tensor.empty([B, So]);
  const CAA = Tensor.empty([B, Sa]), CBA = Tensor.empty([B, Sa]);
  const DRO = zeros([B, So]), DRA = zeros([B, Sa]);
  const DSP = Tensor.empty([B, c.nh, Sa]);
  const Y = {
    Dpre: acquire(Dq, B, T),
    C0: acquire(Dq, B * Math.max(M - 1, 1), 1),
    C1: acquire(Dq, B * Math.max(M - 1, 1), 1),
    DU: acquire(2 * Dq, B, T),
    DO: acquire(dq, B, T),
    DQ: acquire(dq, B, T),
    DS: acquire(Lq, B * c.nh, T),
    A0: acquire(Dq * nChunks, accRows, 1),
    A1: acquire(Dq * nChunks, accRows, 1),
  };
  const dzAsm = cached(`dzasm${key}`, () => dzAsmSpec(c));
  const nlmBwd = cached(`nlmb${key}`, () => nlmBwdSpec(c));
  const lnBwd = cached(`lnb${key}`, () => lnBwdSpec(c));
  const synBwd = cached(`synb${key}`, () => synBwdSpec(c, ...SYN_BWD));
  const attnBwd = cached(`attnb${key}`, () => attnBwdSpec(c));
  const asm = (j: number) =>
    run(
      dzAsm,
      [
        rO.buffer,
        rA.buffer,
        s.AlO.buffer,
        s.AlA.buffer,
        s.BO.buffer,
        s.BA.buffer,
        g.buffer,
        DSP.buffer,
        CAO.buffer,
        CBO.buffer,
        CAA.buffer,
        CBA.buffer,
        DRO.buffer,
        DRA.buffer,
        DZ.buffer,
      ],
      [X.Z, X.IdxO, X.IdxA],
      [j, rO.offset, rA.offset, g.offset],
      B,
    );
  asm(T);
  const nlmTex = [X.Pre, X.ST, X.W1, X.B1, ...(c.deep ? [X.W2, X.B2] : [])];
  let cIn = Y.C0, cOut = Y.C1, aIn = Y.A0, aOut = Y.A1;
  for (let t = T - 1; t >= 0; t--) {
    const first = t === T - 1 ? 1 : 0;
    run(nlmBwd, [DZ.buffer], [...nlmTex, cIn, aIn, cOut, aOut, Y.Dpre], [t, first], nlmThreads(c));
    [cIn, cOut] = [cOut, cIn];
    [aIn, aOut] = [aOut, aIn];
    run(lnBwd, [], [X.U, X.Ln, Y.Dpre, X.Stats, Y.DU], [t], B);
    run(synBwd, [DZ.buffer], [Y.DU, X.Wn, Y.DO], [t], synBwdThreads(c, ...SYN_BWD));
    run(attnBwd, [DSP.buffer], [Y.DO, X.W, X.K, X.V, X.Wq, Y.DQ, Y.DS], [t], B * c.nh);
    asm(t);
  }
  // After the loop: cIn holds the pending trace gradients of tick 0, aIn the NLM accumulators.
  // Parameter gradients summed over ticks: dW' = Σ dUᵀ·[O | Z], dWq' = Σ S_actᵀ·dq, biases.
  const gws = Tensor.empty([2 * D, d + D]), gbs = Tensor.empty([2 * D]);
  const gwq = Tensor.empty([Sa, d]), gbq = Tensor.empty([d]);
  const outer = (
    tag: string,
    A: Tex,
    Bt: Tex,
    G: Tensor,
    off: number,
    o: {
      M4: number;
      N4: number;
      TM4: number;
      TN4: number;
      Mrows: number;
      Ncols: number;
      sm: number;
      sn: number;
    },
  ) =>
    run(
      cached(`${tag}${key}`, () => outerSpec(`ctm dW ${tag}`, c, o)),
      [G.buffer],
      [A, Bt],
      [off],
      outerThreads(o),
    );
  const K = d + D;
  outer("synapse (attn part)", X.O, Y.DU, gws, 0, {
    M4: dq,
    N4: 2 * Dq,
    TM4: 8,
    TN4: 8,
    Mrows: d,
    Ncols: 2 * D,
    sm: 1,
    sn: K,
  });
  outer("synapse (z part)", X.Z, Y.DU, gws, d, {
    M4: Dq,
    N4: 2 * Dq,
    TM4: 8,
    TN4: 8,
    Mrows: D,
    Ncols: 2 * D,
    sm: 1,
    sn: K,
  });
  outer("query", X.S, Y.DQ, gwq, 0, { M4: SaQ, N4: dq, TM4: 2, TN4: 4, Mrows: Sa, Ncols: d, sm: d, sn: 1 });
  const colSum = (tag: string, Bt: Tex, G: Tensor, N4: number, N: number) =>
    run(cached(`cs${tag}${key}`, () => colSumSpec(`ctm db ${tag}`, c, N4, N)), [G.buffer], [Bt], [], N4);
  colSum("synapse", Y.DU, gbs, 2 * Dq, 2 * D);
  colSum("query", Y.DQ, gbq, dq, d);
  const gk = Tensor.empty([B, c.L, d]), gv = Tensor.empty([B, c.L, d]);
  run(
    cached(`dkv${key}`, () => dkvSpec(c)),
    [gk.buffer, gv.buffer],
    [X.W, Y.DS, Y.DO, X.Q],
    [],
    B * c.nh * Lq,
  );
  const glnw = Tensor.empty([D]), glnb = Tensor.empty([D]);
  run(cached(`dln${key}`, () => dlnSpec(c)), [glnw.buffer, glnb.buffer], [X.U, Y.Dpre, X.Stats], [], Dq);
  const gw1 = Tensor.empty([M, O1, D]), gb1 = Tensor.empty([1, D, O1]);
  const gw2 = Tensor.empty(c.deep ? [c.H, 2, D] : [1]), gb2 = Tensor.empty(c.deep ? [1, D, 2] : [1]);
  const gT = Tensor.empty([2]);
  run(
    cached(`nlmg${key}`, () => nlmGradSpec(c)),
    [t1.buffer, t2.buffer, gw1.buffer, gb1.buffer, gw2.buffer, gb2.buffer, gT.buffer],
    [aIn],
    [t1.offset, t2.offset],
    accRows * Dq,
  );
  const gst = Tensor.empty([D, M]);
  run(cached(`dst${key}`, () => dstSpec(c)), [gst.buffer], [cIn], [M > 1 ? 1 : 0], M * Dq);
  const gss = sum(DZ, 0);
  const grO = sum(DRO, 0), grA = sum(DRA, 0);
  const gt1 = gT.alias([1], [1], 0, true), gt2 = gT.alias([1], [1], 1, true);
  for (const t of [g, DZ, CAO, CBO, CAA, CBA, DRO, DRA, DSP, gT]) t.dispose();
  for (const t of Object.values(Y)) release(t);
  return [gk, gv, gwq, gbq, gws, gbs, glnw, glnb, gw1, gb1, gt1, gw2, gb2, gt2, gss, gst, grO, grA];
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
  setTextureReadMode(mode);
  modeChosen = true;
}

/** Starts counting fused-kernel dispatches by name (profiling). */
export function startFusedProfile(): void {
  profileCount = new Map();
}

/** Stops counting; returns counts per kernel name. */
export function stopFusedProfile(): [string, number][] {
  const r = [...(profileCount ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);
  profileCount = null;
  return r;
}

/** Frees pooled textures (tests, long-lived processes switching configurations). */
export function trimFusedCtm(): void {
  for (const l of texPool.values()) for (const t of l) t.tex.destroy();
  texPool.clear();
  bindGroups.clear();
  texIds = new WeakMap();
  for (const b of dummies) b.destroy();
  dummies = [];
}

/**
 * Internals for kernel micro-benchmarks (not part of the API). `repeat` maps a kernel name to a
 * number of extra identical dispatches: the cost of a kernel is the step-time difference divided
 * by that number (GPU timestamps are not reliable for these kernels on lavapipe).
 */
export const _fusedInternals = { acquire, release, run, repeat };
