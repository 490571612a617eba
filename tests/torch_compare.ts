/**
 * Compares this toolkit's results with a PyTorch run's, as the two PyTorch tests do
 * (`torch_interop_test.ts`, `reference_fixture_test.ts`): every named array at float32 tolerance,
 * gradients (`grad.*`) against the largest gradient of the run.
 */
import { hostToArray, type SafetensorsFile } from "../src/io/safetensors.ts";

/**
 * Largest |a − b| relative to the largest |b|, or to `floor` when that is larger: gradients that
 * are zero in exact arithmetic (a convolution bias before a training-mode batch norm) leave only
 * float32 noise, measured against the scale of all gradients. Arrays of different lengths differ.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, m = floor;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** What {@link compareWithTorch} found. */
export interface TorchComparison {
  /** One line per name that is missing on either side or off by more than the tolerance. */
  problems: string[];
  /** The relative error of each compared name. */
  errors: Map<string, number>;
}

/**
 * Compares `ours` with every tensor of `theirs` except `skip` (inputs); names only one side has
 * are problems too.
 */
export function compareWithTorch(
  ours: Map<string, ArrayLike<number>>,
  theirs: SafetensorsFile["tensors"],
  opts: { skip?: readonly string[]; tol?: number; theirName?: string } = {},
): TorchComparison {
  const skip = new Set(opts.skip ?? []), tol = opts.tol ?? 5e-5;
  let gradScale = 0;
  for (const [k, t] of theirs) {
    if (k.startsWith("grad.")) {
      for (const v of hostToArray(k, t)) gradScale = Math.max(gradScale, Math.abs(v));
    }
  }
  const problems: string[] = [], errors = new Map<string, number>();
  for (const [k, t] of theirs) {
    if (skip.has(k)) continue;
    const a = ours.get(k);
    if (!a) {
      problems.push(`${k}: not computed here`);
      continue;
    }
    const e = relErr(a, hostToArray(k, t), k.startsWith("grad.") ? 1e-3 * gradScale : 1e-6);
    errors.set(k, e);
    if (!(e < tol)) problems.push(`${k}: relative error ${e.toExponential(2)}`);
  }
  for (const k of ours.keys()) {
    if (!theirs.has(k)) problems.push(`${k}: not in ${opts.theirName ?? "PyTorch's results"}`);
  }
  return { problems, errors };
}
