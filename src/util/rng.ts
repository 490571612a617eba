/**
 * Seeded random numbers on the host (splitmix32): neuron selections, data generation, tests.
 * The GPU generator ({@link import("../ops/random.ts")}) is separate and counter-based.
 */

/** A small, fast, seedable PRNG with a serialisable state. */
export class Rng {
  #s: number;

  /** Creates a generator from any 32-bit integer seed. */
  constructor(seed = 0) {
    this.#s = seed >>> 0;
  }

  /** The state, for checkpoints. */
  get state(): number {
    return this.#s;
  }

  set state(v: number) {
    this.#s = v >>> 0;
  }

  /** Next 32 random bits. */
  nextU32(): number {
    this.#s = (this.#s + 0x9e3779b9) >>> 0;
    let z = this.#s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A Float64Array of `n` uniforms in [lo, hi). */
  uniformArray(n: number, lo = -1, hi = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}
