/**
 * The project's one seeded host-side generator (mulberry32: 32-bit state, uniform floats with 32
 * random bits). Used for parameter initialisation, decoding, probes, benchmarks and test data; a
 * string seed is hashed (FNV-1a) so tests can name their streams.
 */
export class SeededRng {
  private s: number;

  constructor(seed: number | string = 0) {
    if (typeof seed === "string") {
      let h = 2166136261;
      for (const c of seed) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
      seed = h;
    }
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller on two uniforms). */
  normal(): number {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * Counter-based random stream for dropout: each draw of n values takes the counters
 * [offset, offset + n) of one seed, so the state is two integers (saved with checkpoints for
 * exact resume) and every backend draws the same mask (backend.dropoutMask).
 */
export class CounterRng {
  constructor(public seed: number, public offset = 0) {}

  /** Reserves n counters; returns the first. */
  take(n: number): number {
    const at = this.offset;
    this.offset = (this.offset + n) % 2 ** 32;
    return at;
  }

  state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }

  load(s: { seed: number; offset: number }): void {
    this.seed = s.seed;
    this.offset = s.offset;
  }
}

/** The process-wide default stream used when a module is given none. */
export const defaultRng: CounterRng = new CounterRng(0);
