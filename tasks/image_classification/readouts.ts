/**
 * Host-side maths of the image-classification analysis (the reference's
 * `analysis/run_imagenet_analysis.py` plots): top-k accuracy per tick for four readouts of the
 * per-tick logits ("instant", "most certain", "average logits", "certainty-weighted logits"), the
 * fraction of samples that are right or wrong with certainty above a threshold at each tick, and
 * reliability (calibration) curves from the probabilities averaged up to a tick.
 */

/** Predictions of the analysed test images, read back to the host. */
export interface ImageEval {
  /** Images. */
  n: number;
  /** Classes C. */
  classes: number;
  /** Internal ticks T. */
  ticks: number;
  /** Logits `[N, C, T]` (the models' `predictions` layout). */
  logits: Float32Array;
  /** `[N, 2, T]`: normalised entropy and certainty (1 − normalised entropy) per tick. */
  certainties: Float32Array;
  /** True classes `[N]`. */
  labels: Int32Array;
}

/** The ways of reading a class out of ticks 1…t. */
export const READOUTS = ["instant", "most certain", "average logits", "certainty-weighted logits"] as const;

/** One readout: see {@link readoutScores}. */
export type Readout = typeof READOUTS[number];

/** Certainty of image `n` at tick `t` (0-based). */
export function certaintyAt(e: ImageEval, n: number, t: number): number {
  return e.certainties[(n * 2 + 1) * e.ticks + t];
}

/** The most certain tick among 0…t of image `n` (the first one on ties, as `argmax` picks). */
export function mostCertainTick(e: ImageEval, n: number, t: number): number {
  let best = 0;
  for (let s = 1; s <= t; s++) if (certaintyAt(e, n, s) > certaintyAt(e, n, best)) best = s;
  return best;
}

/**
 * The class scores of image `n` after ticks 0…t (0-based) under a readout:
 * - `instant`: the logits of tick t;
 * - `most certain`: the logits of the most certain tick among 0…t. (The reference's analysis
 *   computes this curve from the average-logits prediction by mistake; here it is truly the most
 *   certain tick's prediction, as the trainer's accuracy reads it.)
 * - `average logits`: the mean of the logits over ticks 0…t;
 * - `certainty-weighted logits`: `Σ c_s·logits_s / Σ c_s` over s ≤ t with `c_s` the certainty
 *   (the mean of the logits when every certainty is 0).
 */
export function readoutScores(e: ImageEval, readout: Readout, n: number, t: number): Float64Array {
  const { classes: C, ticks: T } = e;
  if (!(t >= 0 && t < T)) throw new RangeError(`tick ${t} outside [0, ${T})`);
  const out = new Float64Array(C);
  const at = (c: number, s: number) => e.logits[(n * C + c) * T + s];
  if (readout === "instant" || readout === "most certain") {
    const s = readout === "instant" ? t : mostCertainTick(e, n, t);
    for (let c = 0; c < C; c++) out[c] = at(c, s);
    return out;
  }
  let wSum = 0;
  for (let s = 0; s <= t; s++) wSum += certaintyAt(e, n, s);
  const weighted = readout === "certainty-weighted logits" && wSum > 0;
  for (let c = 0; c < C; c++) {
    let acc = 0;
    for (let s = 0; s <= t; s++) acc += weighted ? certaintyAt(e, n, s) * at(c, s) : at(c, s);
    out[c] = acc / (weighted ? wSum : t + 1);
  }
  return out;
}

/**
 * The rank of class `label` in `scores` (0 = highest): classes with a higher score, plus classes of
 * a lower index with the same score (a stable descending sort). Top-k holds when the rank is below k.
 */
export function rankOf(
  scores: ArrayLike<number>,
  label: number,
  offset = 0,
  stride = 1,
  count?: number,
): number {
  const n = count ?? scores.length;
  const v = scores[offset + label * stride];
  let r = 0;
  for (let c = 0; c < n; c++) {
    const s = scores[offset + c * stride];
    if (s > v || (s === v && c < label)) r++;
  }
  return r;
}

/** Top-1 and top-k accuracy per tick `[T]` of every readout. */
export type ReadoutAccuracy = Record<Readout, { top1: number[]; topk: number[] }>;

/**
 * Top-1 and top-`k` accuracy per tick of every {@link READOUTS readout} (k is capped at C), in one
 * pass per image with running sums over ticks.
 */
export function readoutAccuracy(e: ImageEval, k = 5): ReadoutAccuracy {
  const { n: N, classes: C, ticks: T } = e;
  const kk = Math.min(k, C);
  const out = Object.fromEntries(
    READOUTS.map((r) => [r, { top1: new Array(T).fill(0), topk: new Array(T).fill(0) }]),
  ) as ReadoutAccuracy;
  const sum = new Float64Array(C), wsum = new Float64Array(C);
  const mean = new Float64Array(C), wmean = new Float64Array(C);
  const count = (r: Readout, t: number, rank: number) => {
    if (rank < 1) out[r].top1[t]++;
    if (rank < kk) out[r].topk[t]++;
  };
  for (let n = 0; n < N; n++) {
    sum.fill(0);
    wsum.fill(0);
    let w = 0, best = 0;
    const y = e.labels[n], base = n * C * T;
    for (let t = 0; t < T; t++) {
      const ct = certaintyAt(e, n, t);
      if (ct > certaintyAt(e, n, best)) best = t;
      w += ct;
      for (let c = 0; c < C; c++) {
        const l = e.logits[base + c * T + t];
        sum[c] += l;
        wsum[c] += ct * l;
      }
      for (let c = 0; c < C; c++) {
        mean[c] = sum[c] / (t + 1);
        wmean[c] = w > 0 ? wsum[c] / w : mean[c];
      }
      count("instant", t, rankOf(e.logits, y, base + t, T, C));
      count("most certain", t, rankOf(e.logits, y, base + best, T, C));
      count("average logits", t, rankOf(mean, y));
      count("certainty-weighted logits", t, rankOf(wmean, y));
    }
  }
  for (const r of READOUTS) {
    out[r].top1 = out[r].top1.map((v) => v / N);
    out[r].topk = out[r].topk.map((v) => v / N);
  }
  return out;
}

/** Per tick, the fractions of all images that are right / wrong (instant top-1) with certainty ≥ threshold. */
export interface ThresholdFractions {
  /** The certainty threshold. */
  threshold: number;
  /** Fraction of images right at tick t with certainty ≥ threshold `[T]`. */
  correct: number[];
  /** Fraction of images wrong at tick t with certainty ≥ threshold `[T]`. */
  incorrect: number[];
}

/** The reference's `steps_versus_correct`: {@link ThresholdFractions} for each threshold. */
export function certaintyThresholds(e: ImageEval, thresholds: number[]): ThresholdFractions[] {
  const { n: N, classes: C, ticks: T } = e;
  const out = thresholds.map((threshold) => ({
    threshold,
    correct: new Array(T).fill(0),
    incorrect: new Array(T).fill(0),
  }));
  for (let n = 0; n < N; n++) {
    for (let t = 0; t < T; t++) {
      const right = rankOf(e.logits, e.labels[n], n * C * T + t, T, C) === 0;
      const c = certaintyAt(e, n, t);
      for (const o of out) if (c >= o.threshold) (right ? o.correct : o.incorrect)[t] += 1 / N;
    }
  }
  return out;
}

/** A reliability curve: per confidence bin, the mean confidence and the accuracy of its images. */
export interface CalibrationCurve {
  /** The tick (0-based) up to which probabilities are averaged. */
  tick: number;
  /** Mean confidence per bin `[bins]` (NaN for empty bins). */
  confidence: number[];
  /** Accuracy per bin `[bins]` (NaN for empty bins). */
  accuracy: number[];
  /** Images per bin `[bins]`. */
  count: number[];
  /** Expected calibration error: `Σ_b (count_b / N)·|accuracy_b − confidence_b|`. */
  ece: number;
}

/**
 * Reliability curves at the given ticks (0-based), as the reference's calibration plot computes
 * them: the class probabilities (softmax of the logits) are averaged over ticks 0…t, the predicted
 * class is their argmax and its mean probability the confidence; confidences fall into `bins`
 * equal-width bins of [0, 1] (1 goes to the last bin).
 */
export function calibrationCurves(e: ImageEval, ticks: number[], bins = 10): CalibrationCurve[] {
  const { n: N, classes: C, ticks: T } = e;
  for (const t of ticks) if (!(t >= 0 && t < T)) throw new RangeError(`tick ${t} outside [0, ${T})`);
  const acc = ticks.map(() => ({
    conf: new Float64Array(bins),
    right: new Float64Array(bins),
    count: new Float64Array(bins),
  }));
  const want = new Map<number, number[]>();
  ticks.forEach((t, i) => want.set(t, [...(want.get(t) ?? []), i]));
  const last = Math.max(-1, ...ticks);
  const psum = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    psum.fill(0);
    const base = n * C * T;
    for (let t = 0; t <= last; t++) {
      let mx = -Infinity;
      for (let c = 0; c < C; c++) mx = Math.max(mx, e.logits[base + c * T + t]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(e.logits[base + c * T + t] - mx);
      for (let c = 0; c < C; c++) psum[c] += Math.exp(e.logits[base + c * T + t] - mx) / z;
      const idx = want.get(t);
      if (!idx) continue;
      let pred = 0;
      for (let c = 1; c < C; c++) if (psum[c] > psum[pred]) pred = c;
      const conf = psum[pred] / (t + 1);
      const b = Math.min(bins - 1, Math.max(0, Math.floor(conf * bins)));
      for (const i of idx) {
        acc[i].conf[b] += conf;
        acc[i].right[b] += pred === e.labels[n] ? 1 : 0;
        acc[i].count[b]++;
      }
    }
  }
  return ticks.map((tick, i) => {
    const a = acc[i];
    const confidence = Array.from(a.conf, (s, b) => (a.count[b] ? s / a.count[b] : NaN));
    const accuracy = Array.from(a.right, (s, b) => (a.count[b] ? s / a.count[b] : NaN));
    let ece = 0;
    for (let b = 0; b < bins; b++) {
      if (a.count[b]) ece += (a.count[b] / N) * Math.abs(accuracy[b] - confidence[b]);
    }
    return { tick, confidence, accuracy, count: Array.from(a.count), ece };
  });
}

/** Softmax of the logits of image `n` at tick `t` `[C]`. */
export function probabilitiesAt(e: ImageEval, n: number, t: number): Float64Array {
  const { classes: C, ticks: T } = e;
  const p = new Float64Array(C);
  let mx = -Infinity;
  for (let c = 0; c < C; c++) mx = Math.max(mx, e.logits[(n * C + c) * T + t]);
  let z = 0;
  for (let c = 0; c < C; c++) z += p[c] = Math.exp(e.logits[(n * C + c) * T + t] - mx);
  for (let c = 0; c < C; c++) p[c] /= z;
  return p;
}
