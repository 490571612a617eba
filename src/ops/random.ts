/**
 * GPU random numbers from a counter-based generator (`shaders/rng.ts`): every draw takes the next
 * value of a call counter, hashes (seed, counter) into two keys on the host, and each element is a
 * hash of its index and the keys. Results depend only on (seed, counter, element index), so they
 * are reproducible after {@link manualSeed} or {@link setRngState}, whatever the launch geometry.
 *
 * Also `dropout`, fused: the keep mask is regenerated from the same keys in the backward, so no
 * mask tensor is stored.
 */
import { RNG_WG, type RngKind, rngMix, rngSpec } from "../../shaders/rng.ts";
import { f32bits, grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { noGrad, record } from "../tensor/autograd.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import { contiguous, expand } from "./views.ts";

/** Serialisable generator state (plain JSON), for checkpoints. */
export interface RngState {
  /** The seed given to `manualSeed` (a non-negative integer below 2⁵³). */
  seed: number;
  /** Number of draws made since seeding. */
  counter: number;
}

const TWO32 = 4294967296;

/** Keys `(k0, k1)` of draw number `counter` of generator `seed`. */
export function rngKeys(seed: number, counter: number): [number, number] {
  const sLo = seed >>> 0, sHi = Math.floor(seed / TWO32) >>> 0;
  const cLo = counter >>> 0, cHi = Math.floor(counter / TWO32) >>> 0;
  const s = rngMix((rngMix((sLo ^ 0x243f6a88) >>> 0) + sHi) >>> 0);
  const k0 = rngMix((rngMix((s ^ cLo) >>> 0) + cHi) >>> 0);
  const k1 = rngMix(((k0 + 0x6a09e667) >>> 0) ^ s);
  return [k0, k1];
}

function checkSeed(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new Error(`${what} must be a non-negative safe integer, got ${v}`);
  }
}

/** A counter-based GPU random generator. Most code uses the global one through the functions below. */
export class GpuGenerator {
  #seed = 0;
  #counter = 0;

  /** Creates a generator with `seed`. */
  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /** Reseeds and resets the counter. */
  manualSeed(seed: number): void {
    checkSeed(seed, "seed");
    this.#seed = seed;
    this.#counter = 0;
  }

  /** A copy of the state. */
  getState(): RngState {
    return { seed: this.#seed, counter: this.#counter };
  }

  /** Restores a state from {@link getState}. */
  setState(state: RngState): void {
    checkSeed(state.seed, "state.seed");
    checkSeed(state.counter, "state.counter");
    this.#seed = state.seed;
    this.#counter = state.counter;
  }

  /** Keys of the next draw (advances the counter). */
  nextKeys(): [number, number] {
    return rngKeys(this.#seed, this.#counter++);
  }
}

/** The process-wide generator. */
export const defaultGenerator: GpuGenerator = new GpuGenerator(0);

/** Seeds the global generator (like `torch.manual_seed`). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

/** The global generator's state, a plain JSON-able object. */
export function getRngState(): RngState {
  return defaultGenerator.getState();
}

/** Restores the global generator's state. */
export function setRngState(state: RngState): void {
  defaultGenerator.setState(state);
}

const specs = new Map<RngKind, KernelSpec>();

function draw(
  kind: RngKind,
  shape: Shape,
  a: number,
  b: number,
  gen: GpuGenerator,
  x?: Tensor,
  keys?: [number, number],
) {
  const out = Tensor.empty(shape, kind === "int" ? "i32" : "f32");
  const [k0, k1] = keys ?? gen.nextKeys();
  const n = out.size;
  if (n === 0) return out;
  let spec = specs.get(kind);
  if (!spec) specs.set(kind, spec = rngSpec(kind));
  const bufs = x ? [x.buffer, out.buffer] : [out.buffer];
  launch(spec, bufs, [n, k0, k1, a >>> 0, b >>> 0, x?.offset ?? 0], grid1d(Math.ceil(n / RNG_WG)));
  return out;
}

/**
 * Uniform floats in [0, 1) (24 random bits each).
 *
 * @example
 * ```ts
 * import { initGpu, manualSeed, rand } from "./mod.ts";
 * await initGpu();
 * manualSeed(42);
 * const u = rand([2, 3]);
 * ```
 */
export function rand(shape: Shape, gen: GpuGenerator = defaultGenerator): Tensor {
  return draw("uniform", shape, f32bits(0), f32bits(1), gen);
}

/** Uniform floats in [lo, hi) (up to f32 rounding at `hi`). */
export function uniform(shape: Shape, lo = 0, hi = 1, gen: GpuGenerator = defaultGenerator): Tensor {
  return draw("uniform", shape, f32bits(lo), f32bits(hi - lo), gen);
}

/** Standard normal floats (Box–Muller; |z| ≤ 5.8 by construction of the 24-bit uniforms). */
export function randn(shape: Shape, gen: GpuGenerator = defaultGenerator): Tensor {
  return draw("normal", shape, f32bits(0), f32bits(1), gen);
}

/** Normal floats with the given mean and standard deviation. */
export function normal(shape: Shape, mean = 0, std = 1, gen: GpuGenerator = defaultGenerator): Tensor {
  return draw("normal", shape, f32bits(mean), f32bits(std), gen);
}

/** Uniform i32 integers in [lo, hi) (multiply-shift on 32 bits: bias below (hi − lo)/2³²). */
export function randint(shape: Shape, lo: number, hi: number, gen: GpuGenerator = defaultGenerator): Tensor {
  if (
    !Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo || lo < -(2 ** 31) || hi > 2 ** 31 ||
    hi - lo >= TWO32
  ) {
    throw new Error(`randint: need integers lo < hi within the i32 range, got [${lo}, ${hi})`);
  }
  return draw("int", shape, lo | 0, hi - lo, gen);
}

/**
 * A 0/1 f32 mask, 1 with probability `p`: a number (with `shape`) or a tensor of probabilities
 * (broadcast to `shape`, which defaults to its own). Not differentiable.
 */
export function bernoulli(p: number | Tensor, shape?: Shape, gen: GpuGenerator = defaultGenerator): Tensor {
  if (typeof p === "number") {
    if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
    if (!shape) throw new Error("bernoulli: a shape is needed with a scalar p");
    return draw("bernoulli", shape, Math.round(p * 2 ** 24), 0, gen);
  }
  return noGrad(() => {
    const e = shape ? expand(p, shape) : p;
    const pc = contiguous(e);
    const out = draw("bernoulliT", pc.shape, 0, 0, gen, pc);
    pc.dispose();
    if (e !== p) e.dispose();
    return out;
  });
}

/**
 * Dropout: during training, zeroes each element with probability `p` and scales the rest by
 * 1/(1 − p), in one kernel; the identity when `!training` or `p == 0`; zeros when `p == 1`.
 * The mask comes from the generator (one draw per call) and is regenerated for the backward.
 */
export function dropout(x: Tensor, p: number, training = true, gen: GpuGenerator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) {
    const id = x.alias(x.shape, x.strides, x.offset, true);
    return record("dropout", [x], id, (g) => [g.alias(g.shape, g.strides, g.offset, true)]);
  }
  const keys = gen.nextKeys();
  const thr = Math.round(p * 2 ** 24);
  const scale = f32bits(p < 1 ? 1 / (1 - p) : 0);
  const apply = (t: Tensor) => {
    const c = noGrad(() => contiguous(t));
    const out = draw("dropout", c.shape, thr, scale, gen, c, keys);
    c.dispose();
    return out;
  };
  const out = apply(x);
  return record("dropout", [x], out, (g) => [apply(g)]);
}
