/**
 * Figures of individual test sequences in the parity analysis: for each animated sequence a GIF of
 * its per-tick frames, a PNG of its last tick and a GIF of the attention of every head, and the
 * neural dynamics of the first sequence.
 */
import { evenlySpaced, type RgbaImage } from "../../src/plot/mod.ts";
import type { ParityEval, ParityStats, SampleTracking } from "./analysis_eval.ts";
import { attentionFrames, neuralDynamics, sequenceFrames } from "./plots_frames.ts";

/** Where {@link sampleFigures} writes its figures (file stem without extension). */
export interface FigureWriter {
  /** Writes one PNG. */
  png(name: string, img: RgbaImage): Promise<void>;
  /** Writes one GIF of the frames. */
  gif(name: string, frames: RgbaImage[]): Promise<void>;
}

/** What {@link sampleFigures} draws: the test batch's evaluation and the tracked sequences. */
export interface SampleFigureOptions {
  /** The forward over the test batch (its targets are the batch's). */
  ev: ParityEval;
  /** Statistics of `ev`. */
  st: ParityStats;
  /** Internals of the first sequences of the batch (at least `nSamples`, and at least one). */
  tracking: SampleTracking;
  /** The ±1 inputs of the batch `[B, L]`. */
  inputs: Float32Array;
  /** Sequences to animate (the first ones of the batch; the tracking's sequence count when > 0). */
  nSamples: number;
  /** Neurons in the neural-dynamics figure (at most d_model). */
  nNeurons: number;
  /** The LSTM baseline (no pre-activations; its units are LSTM units). */
  isLstm: boolean;
  /** Training iteration of the checkpoint, for the titles. */
  iteration: number;
}

/**
 * Writes `sample_{s}` (GIF), `sample_{s}_last_tick` (PNG) and `attention_sample_{s}` (GIF) for each
 * animated sequence, and `neural_dynamics` (PNG, of sequence 0) when any sequence is animated.
 */
export async function sampleFigures(o: SampleFigureOptions, w: FigureWriter): Promise<void> {
  const { ev, st, tracking: tr, inputs, nSamples, isLstm, iteration: it } = o;
  const { png, gif } = w;
  const L = ev.length, T = ev.ticks;
  const ticks = Array.from({ length: T }, (_, t) => t + 1);
  const H = tr.heads, D = tr.dModel;
  for (let s = 0; s < nSamples; s++) {
    const at = (arr: ArrayLike<number>, t: number) => {
      const v = new Float32Array(L);
      for (let l = 0; l < L; l++) v[l] = arr[(s * L + l) * T + t];
      return v;
    };
    const headAtt = (t: number, h: number) =>
      tr.attention.subarray(((t * nSamples + s) * H + h) * L, ((t * nSamples + s) * H + h + 1) * L);
    const meanAtt = (t: number) => {
      const v = new Float32Array(L);
      for (let h = 0; h < H; h++) headAtt(t, h).forEach((a, l) => (v[l] += a / H));
      return v;
    };
    const accCurve = ticks.map((_, t) => at(st.correct, t).reduce((a, c) => a + c, 0) / L);
    const frames = await sequenceFrames({
      length: L,
      ticks: T,
      input: inputs.subarray(s * L, (s + 1) * L),
      target: ev.targets.subarray(s * L, (s + 1) * L),
      prob: (t) => at(st.probOdd, t),
      correct: (t) => at(st.correct, t),
      certainty: (t) => at(st.entropy, t).map((h) => 1 - h),
      attention: meanAtt,
      certaintyCurve: ticks.map((_, t) => ev.certainties[(s * 2 + 1) * T + t]),
      accuracyCurve: accCurve,
      title: `test sequence ${s} · iteration ${it}`,
    });
    await gif(`sample_${s}`, frames);
    await png(`sample_${s}_last_tick`, frames[T - 1]);
    await gif(
      `attention_sample_${s}`,
      await attentionFrames(
        (t) => Array.from({ length: H }, (_, h) => headAtt(t, h)),
        T,
        L,
        `test sequence ${s} · iteration ${it}`,
      ),
    );
  }
  if (nSamples > 0) {
    const nN = Math.min(o.nNeurons, D);
    const neurons = evenlySpaced(D, nN);
    const trace = (arr: Float32Array, n: number) => ticks.map((_, t) => arr[(t * nSamples + 0) * D + n]);
    await png(
      "neural_dynamics",
      await neuralDynamics(
        neurons,
        isLstm ? null : (n) => trace(tr.pre, n),
        (n) => trace(tr.post, n),
        `Neural dynamics of test sequence 0 (iteration ${it}, ${nN} of ${D} ${
          isLstm ? "LSTM units" : "neurons"
        })`,
      ),
    );
  }
}
