/**
 * Evaluation of the parity analysis: the model of a run's config, one forward over the test batch
 * read back to the host (predictions, certainties and, for the animated sequences, activations and
 * attention), and the accuracy, certainty and thinking-time statistics computed from it.
 */
import { Ctm } from "../../src/models/ctm.ts";
import { LstmBaseline } from "../../src/models/lstm.ts";
import type { Module } from "../../src/nn/module.ts";
import { slice } from "../../src/ops/views.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { ctmOptionsFor, lstmOptionsFor, type ParityConfig, resolveParityConfig } from "./config.ts";
import type { ParitySummary, TickChoice } from "./plots_accuracy.ts";

/** The host-side results of one forward over the test batch. */
export interface ParityEval {
  /** Batch size. */
  batch: number;
  /** Sequence length. */
  length: number;
  /** Internal ticks. */
  ticks: number;
  /** Logits `[B, L, 2, T]` (the model's `[B, 2L, T]`). */
  logits: Float32Array;
  /** `[B, 2, T]`: normalised entropy and certainty. */
  certainties: Float32Array;
  /** Targets `[B, L]`. */
  targets: Int32Array;
}

/** Accuracy and thinking-time statistics of a {@link ParityEval} (the summary plus per-position details). */
export interface ParityStats extends ParitySummary {
  /** P(odd) `[B, L, T]`. */
  probOdd: Float32Array;
  /** 1 where the prediction is right, `[B, L, T]`. */
  correct: Uint8Array;
  /** Per-position normalised entropy `[B, L, T]`. */
  entropy: Float32Array;
  /** The tick each sequence's accuracy is taken at `[B]`: argmax of its certainty, or the last one. */
  chosenTick: Int32Array;
  /** Fraction of sequences right at every position at their chosen tick. */
  fullSequenceAtTick: number;
  /** Thinking time per position `[B, L]`: argmin over ticks of its normalised entropy (0-based). */
  thinkingTime: Int32Array;
}

/**
 * Accuracy, certainty and thinking-time statistics on the host. Accuracies "at the tick" use each
 * sequence's most certain tick (first maximum of its certainty), or with `tickChoice` `last` the
 * last tick, as the trainer's accuracy does for the plain LSTM.
 */
export function parityStats(e: ParityEval, tickChoice: TickChoice = "most certain"): ParityStats {
  const { batch: B, length: L, ticks: T } = e;
  const n = B * L * T;
  const probOdd = new Float32Array(n), correct = new Uint8Array(n), entropy = new Float32Array(n);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      const tgt = e.targets[b * L + l];
      for (let t = 0; t < T; t++) {
        const l0 = e.logits[((b * L + l) * 2) * T + t], l1 = e.logits[((b * L + l) * 2 + 1) * T + t];
        const p = 1 / (1 + Math.exp(l0 - l1));
        const i = (b * L + l) * T + t;
        probOdd[i] = p;
        correct[i] = (l1 > l0 ? 1 : 0) === tgt ? 1 : 0;
        const h = (q: number) => (q > 0 ? -q * Math.log(q) : 0);
        entropy[i] = (h(p) + h(1 - p)) / Math.LN2;
      }
    }
  }
  const accuracyPerTick = new Array(T).fill(0), fullSequencePerTick = new Array(T).fill(0);
  for (let t = 0; t < T; t++) {
    let right = 0, full = 0;
    for (let b = 0; b < B; b++) {
      let all = 1;
      for (let l = 0; l < L; l++) {
        const c = correct[(b * L + l) * T + t];
        right += c;
        all &= c;
      }
      full += all;
    }
    accuracyPerTick[t] = right / (B * L);
    fullSequencePerTick[t] = full / B;
  }
  const chosenTick = new Int32Array(B);
  const perPos = new Array(L).fill(0);
  let right = 0, full = 0;
  for (let b = 0; b < B; b++) {
    let best = tickChoice === "last" ? T - 1 : 0;
    for (let t = 1; t < T && tickChoice !== "last"; t++) {
      if (e.certainties[(b * 2 + 1) * T + t] > e.certainties[(b * 2 + 1) * T + best]) best = t;
    }
    chosenTick[b] = best;
    let all = 1;
    for (let l = 0; l < L; l++) {
      const c = correct[(b * L + l) * T + best];
      perPos[l] += c / B;
      right += c;
      all &= c;
    }
    full += all;
  }
  const thinkingTime = new Int32Array(B * L);
  const hist = new Array(T).fill(0), rightAt = new Array(T).fill(0);
  const ttSum = new Array(L).fill(0), ttSq = new Array(L).fill(0);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      const base = (b * L + l) * T;
      let best = 0;
      for (let t = 1; t < T; t++) if (entropy[base + t] < entropy[base + best]) best = t;
      thinkingTime[b * L + l] = best;
      hist[best]++;
      rightAt[best] += correct[base + best];
      ttSum[l] += best + 1;
      ttSq[l] += (best + 1) ** 2;
    }
  }
  return {
    probOdd,
    correct,
    entropy,
    accuracyPerTick,
    fullSequencePerTick,
    chosenTick,
    tickChoice,
    accuracyAtTick: right / (B * L),
    fullSequenceAtTick: full / B,
    accuracyPerPosition: perPos,
    thinkingTime,
    thinkingTimeHistogram: hist.map((c) => c / (B * L)),
    accuracyByThinkingTime: hist.map((c, t) => (c ? rightAt[t] / c : NaN)),
    thinkingTimePerPosition: {
      mean: ttSum.map((s) => s / B),
      std: ttSq.map((s, l) => Math.sqrt(Math.max(0, s / B - (ttSum[l] / B) ** 2))),
    },
  };
}

/** What the model recorded for the animated sequences (the first `n` of the batch). */
export interface SampleTracking {
  /** Number of tracked sequences. */
  n: number;
  /** Neurons (d_model, or LSTM units). */
  dModel: number;
  /** Attention heads. */
  heads: number;
  /** `[T, n, D]`. */
  pre: Float32Array;
  /** `[T, n, D]`. */
  post: Float32Array;
  /** `[T, n, heads, L]`. */
  attention: Float32Array;
}

/** The model of a parity config (CTM or LSTM baseline). */
export function buildModel(c: ParityConfig): Module {
  return c.model_type === "lstm" ? new LstmBaseline(lstmOptionsFor(c)) : new Ctm(ctmOptionsFor(c));
}

/** Runs the model on the batch; reads predictions, certainties and (for `track > 0`) the first sequences' internals. */
export async function evaluate(
  model: Module,
  x: Tensor,
  targets: Int32Array,
  L: number,
  track: number,
): Promise<{ ev: ParityEval; tracking: SampleTracking | null }> {
  const out = tidy(() =>
    noGrad(() => {
      const r = (model as Ctm).forward(x, { track: track > 0 });
      const tr = r.tracking;
      return {
        predictions: r.predictions,
        certainties: r.certainties,
        pre: tr ? slice(tr.preActivations, 1, 0, track) : null,
        post: tr ? slice(tr.postActivations, 1, 0, track) : null,
        attention: tr ? slice(tr.attention, 1, 0, track) : null,
      };
    })
  );
  const [B, , T] = out.predictions.shape;
  const reads = [out.predictions, out.certainties, out.pre, out.post, out.attention].map((t) => t?.toArray());
  const [pred, cert, pre, post, att] = await Promise.all(reads);
  const tracking = out.post
    ? {
      n: track,
      dModel: out.post.shape[2],
      heads: out.attention!.shape[2],
      pre: pre as Float32Array,
      post: post as Float32Array,
      attention: att as Float32Array,
    }
    : null;
  for (const t of Object.values(out)) t?.dispose();
  return {
    ev: {
      batch: B,
      length: L,
      ticks: T,
      logits: pred as Float32Array,
      certainties: cert as Float32Array,
      targets,
    },
    tracking,
  };
}

/** The model-defining part of a parity config (what must match to load another checkpoint into the model). */
export function modelOptions(raw: unknown): unknown {
  try {
    const c = resolveParityConfig((raw ?? {}) as Partial<ParityConfig>);
    return { model_type: c.model_type, ...(c.model_type === "lstm" ? lstmOptionsFor(c) : ctmOptionsFor(c)) };
  } catch (e) {
    return { invalid: (e as Error).message };
  }
}
