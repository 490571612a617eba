/**
 * The CTM bench configuration (parity length L, batch B, D = 256, d_input 64, 4 heads,
 * M = 16, H = 16 deep NLMs, n_synch 32/32 random-pairing, synapse depth 1, AdamW) and one
 * training step on it, shared by `ctm_step_bench.ts` and `fused_kernel_cost.ts`.
 */
import { Ctm } from "../src/models/ctm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { tidy } from "../src/tensor/scope.ts";
import { parityLoss } from "../src/train/losses.ts";
import { Rng } from "../src/util/rng.ts";
import { parityBatchAt } from "../tasks/parity/data.ts";

/** A bench CTM with its optimizer and a step function. */
export interface ParityBench {
  /** The model (dispose it at the end). */
  ctm: Ctm;
  /** Records one training step: forward, parity loss, backward, AdamW, zeroGrad. */
  step(): void;
}

/** Builds the bench CTM with T ticks for batch B and length L (`fused: false` for the op-by-op path). */
export function parityBench(T: number, B: number, L: number, fused = true): ParityBench {
  const ctm = new Ctm({
    iterations: T,
    dModel: 256,
    dInput: 64,
    heads: 4,
    nSynchOut: 32,
    nSynchAction: 32,
    synapseDepth: 1,
    memoryLength: 16,
    deepNlms: true,
    memoryHiddenDims: 16,
    backboneType: "parity_backbone",
    positionalEmbeddingType: "custom-rotational-1d",
    outDims: 2 * L,
    predictionReshaper: [L, 2],
    neuronSelectType: "random-pairing",
    rng: new Rng(1),
  });
  ctm.fused = fused;
  // Materialise lazy layers before building the optimizer.
  tidy(() => void ctm.forward(fromArray(new Float32Array(B * L).fill(1), [B, L])));
  const opt = new AdamW(ctm.parameters(), { lr: 1e-4, weightDecay: 0 });
  let stepNo = 0;
  const step = () => {
    const batch = parityBatchAt(0, stepNo++, B, L);
    tidy(() => {
      const out = ctm.forward(fromArray(batch.x, [B, L]));
      parityLoss(out.predictions, out.certainties, fromArray(batch.y, [B, L])).loss.backward();
      opt.step();
      opt.zeroGrad();
    });
  };
  return { ctm, step };
}
