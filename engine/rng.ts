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
