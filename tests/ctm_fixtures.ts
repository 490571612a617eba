/**
 * Shared setup for the CTM tests (`ctm_test.ts`, `ctm_grad_test.ts`): the test configurations,
 * inputs, building a model with perturbed weights and downloading them for the float64 reference
 * (`ctm_reference.ts`), float32-level closeness, and the reference's expected state dict.
 */
import { Rng } from "./helpers.ts";
import { Ctm, type CtmOptions, type CtmOutput } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { type RefInput, refSyncSize, refUnetWidths, type RefWeights } from "./ctm_reference.ts";

/** One CTM test configuration. */
export interface Case {
  /** Shown in the test names. */
  name: string;
  /** Model options. */
  cfg: CtmOptions;
  /** Batch size. */
  B: number;
  /** Input shape after the batch dim: `[L]` (parity) or `[C, ...]` (backbone none). */
  inShape: number[];
}

const base = {
  dInput: 8,
  heads: 2,
  memoryLength: 3,
  memoryHiddenDims: 2,
} as const;

/** The configurations every CTM test runs over (selections, synapse depths, NLM kinds, backbones). */
export const CASES: Case[] = [
  {
    name: "first-last, synapse depth 1, deep NLM, parity backbone + rotational-1d",
    cfg: {
      ...base,
      iterations: 4,
      dModel: 16,
      nSynchOut: 4,
      nSynchAction: 3,
      synapseDepth: 1,
      deepNlms: true,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      outDims: 8,
      predictionReshaper: [4, 2],
      neuronSelectType: "first-last",
    },
    B: 2,
    inShape: [4],
  },
  {
    name: "random, U-Net synapse depth 3, linear NLM with LayerNorm, parity backbone",
    cfg: {
      ...base,
      iterations: 3,
      dModel: 32,
      nSynchOut: 4,
      nSynchAction: 3,
      synapseDepth: 3,
      deepNlms: false,
      doLayernormNlm: true,
      backboneType: "parity_backbone",
      positionalEmbeddingType: "custom-rotational-1d",
      outDims: 8,
      predictionReshaper: [4, 2],
      neuronSelectType: "random",
    },
    B: 2,
    inShape: [4],
  },
  {
    name: "random-pairing (1 self pair), synapse depth 1, deep NLM, backbone none [C, L]",
    cfg: {
      ...base,
      iterations: 5,
      dModel: 20,
      nSynchOut: 4,
      nSynchAction: 4,
      synapseDepth: 1,
      deepNlms: true,
      backboneType: "none",
      positionalEmbeddingType: "none",
      outDims: 5,
      neuronSelectType: "random-pairing",
      nRandomPairingSelf: 1,
    },
    B: 2,
    inShape: [5, 6],
  },
  {
    name: "first-last, U-Net depth 2, deep NLM with LayerNorm, backbone none [C, H, W]",
    cfg: {
      ...base,
      iterations: 3,
      dModel: 24,
      nSynchOut: 3,
      nSynchAction: 4,
      synapseDepth: 2,
      deepNlms: true,
      doLayernormNlm: true,
      backboneType: "none",
      positionalEmbeddingType: "none",
      outDims: 6,
      predictionReshaper: [-1, 3],
      neuronSelectType: "first-last",
    },
    B: 2,
    inShape: [3, 2, 2],
  },
];

// ---------------------------------------------------------------- helpers

/** A random input for `c`: ±1 tokens for the parity backbone, U(−1, 1) for backbone `none`. */
export function makeInput(c: Case, rng: Rng): RefInput {
  const shape = [c.B, ...c.inShape];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = c.cfg.backboneType === "parity_backbone"
    ? Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1))
    : rng.uniformArray(n, -1, 1);
  return { shape, data };
}

/** Uploads a reference input as an f32 tensor. */
export const toGpuInput = (x: RefInput) => fromArray(Float32Array.from(x.data), x.shape);

/** Downloads a model's state dict as float64 (f32) / Int32Array (index buffers). */
async function download(ctm: Ctm): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const [k, t] of ctm.stateDict()) {
    const a = await t.toArray();
    w.set(k, t.dtype === "i32" ? Int32Array.from(a) : Float64Array.from(a));
  }
  return w;
}

/**
 * Builds a model, runs it once (materialising lazy layers), then perturbs every float parameter
 * (so biases, LayerNorm affines and the NLM temperatures are not at their trivial init) and sets
 * the decay parameters to U(0.1, 2); returns the model and the weights it now holds.
 */
export async function buildModel(c: Case, seed: number, x: RefInput): Promise<{ ctm: Ctm; w: RefWeights }> {
  const ctm = new Ctm({ ...c.cfg, rng: new Rng(seed) });
  tidy(() => void ctm.forward(toGpuInput(x)));
  const rng = new Rng(seed + 1000);
  const fresh = new Map<string, Tensor>();
  for (const [k, t] of ctm.stateDict()) {
    if (t.dtype !== "f32") continue;
    const a = Float64Array.from(await t.toArray());
    const v = k.startsWith("decay_params")
      ? a.map(() => rng.uniform(0.1, 2))
      : a.map((x) => x + rng.uniform(-0.2, 0.2));
    fresh.set(k, fromArray(Float32Array.from(v), t.shape));
  }
  ctm.loadStateDict(fresh, { strict: false });
  for (const t of fresh.values()) t.dispose();
  return { ctm, w: await download(ctm) };
}

/** Disposes every tensor of a model output (tracking included). */
export function disposeOutput(o: CtmOutput): void {
  o.predictions.dispose();
  o.certainties.dispose();
  o.syncOut.dispose();
  if (o.tracking) { for (const t of Object.values(o.tracking)) t.dispose(); }
}

export { close, maxAbs } from "./helpers.ts";

/** The reference's state dict (names → shape, dtype) computed from the configuration alone. */
export function expectedStateDict(
  cfg: CtmOptions,
  dBackbone: number,
): Map<string, { shape: number[]; dtype: string }> {
  const e = new Map<string, { shape: number[]; dtype: string }>();
  const f = (k: string, ...shape: number[]) => e.set(k, { shape, dtype: "f32" });
  const D = cfg.dModel, d = cfg.dInput, M = cfg.memoryLength, H = cfg.memoryHiddenDims;
  const sel = cfg.neuronSelectType ?? "random-pairing";
  const Sout = refSyncSize(sel, cfg.nSynchOut), Sact = refSyncSize(sel, cfg.nSynchAction);
  f("start_activated_state", D);
  f("start_trace", D, M);
  f("decay_params_out", Sout);
  f("decay_params_action", Sact);
  for (const s of ["out", "action"]) {
    const n = s === "out" ? cfg.nSynchOut : cfg.nSynchAction;
    for (const lr of ["left", "right"]) e.set(`${s}_neuron_indices_${lr}`, { shape: [n], dtype: "i32" });
  }
  if (cfg.backboneType === "parity_backbone") f("backbone.embedding.weight", 2, d);
  if (cfg.positionalEmbeddingType === "custom-rotational-1d") {
    f("positional_embedding.projection.weight", dBackbone, 2);
    f("positional_embedding.projection.bias", dBackbone);
  }
  f("kv_proj.0.weight", d, dBackbone);
  f("kv_proj.0.bias", d);
  f("kv_proj.1.weight", d);
  f("kv_proj.1.bias", d);
  f("q_proj.weight", d, Sact);
  f("q_proj.bias", d);
  f("attention.in_proj_weight", 3 * d, d);
  f("attention.in_proj_bias", 3 * d);
  f("attention.out_proj.weight", d, d);
  f("attention.out_proj.bias", d);
  if (cfg.synapseDepth === 1) {
    f("synapses.1.weight", 2 * D, d + D);
    f("synapses.1.bias", 2 * D);
    f("synapses.3.weight", D);
    f("synapses.3.bias", D);
  } else {
    const w = refUnetWidths(D, cfg.synapseDepth);
    f("synapses.first_projection.0.weight", w[0], d + D);
    f("synapses.first_projection.0.bias", w[0]);
    f("synapses.first_projection.1.weight", w[0]);
    f("synapses.first_projection.1.bias", w[0]);
    for (let i = 0; i < w.length - 1; i++) {
      f(`synapses.down_projections.${i}.1.weight`, w[i + 1], w[i]);
      f(`synapses.down_projections.${i}.1.bias`, w[i + 1]);
      f(`synapses.down_projections.${i}.2.weight`, w[i + 1]);
      f(`synapses.down_projections.${i}.2.bias`, w[i + 1]);
      f(`synapses.up_projections.${i}.1.weight`, w[i], w[i + 1]);
      f(`synapses.up_projections.${i}.1.bias`, w[i]);
      f(`synapses.up_projections.${i}.2.weight`, w[i]);
      f(`synapses.up_projections.${i}.2.bias`, w[i]);
      f(`synapses.skip_lns.${i}.weight`, w[i]);
      f(`synapses.skip_lns.${i}.bias`, w[i]);
    }
  }
  const superLinear = (p: string, inF: number, outF: number) => {
    f(`${p}.w1`, inF, outF, D);
    f(`${p}.b1`, 1, D, outF);
    f(`${p}.T`, 1);
    if (cfg.doLayernormNlm) {
      f(`${p}.layernorm.weight`, inF);
      f(`${p}.layernorm.bias`, inF);
    }
  };
  if (cfg.deepNlms) {
    superLinear("trace_processor.0.0", M, 2 * H);
    superLinear("trace_processor.0.2", H, 2);
  } else {
    superLinear("trace_processor.0.0", M, 2);
  }
  f("output_projector.0.weight", cfg.outDims, Sout);
  f("output_projector.0.bias", cfg.outDims);
  return e;
}

/** Formats a shape as `[a,b,c]`. */
export const fmtShape = (s: readonly number[]) => `[${s.join(",")}]`;
