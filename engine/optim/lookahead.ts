/** LookAhead (Zhang et al. 2019): every k inner steps, slow += alpha (fast - slow); fast = slow. */
import type { FlatBuf } from "../backend.ts";
import { empty, type Tensor } from "../tensor.ts";
import { mirrorBucket } from "./flat.ts";
import { nameOf, SGD, type SgdState } from "./sgd.ts";

export interface LookAheadState {
  counter: number;
  alpha: number;
  k: number;
  slow: Map<string, Tensor>;
  inner: SgdState;
}

/**
 * LookAhead around SGD. When the inner SGD holds its parameters in flat arenas, the slow weights
 * get arenas of the same layout and a sync is one kernel per arena.
 */
export class LookAhead {
  private readonly slow = new Map<Tensor, Tensor>();
  /** Slow-weight arenas paired with the inner optimizer's parameter arenas (flat mode). */
  private readonly flatSlow: { fast: FlatBuf; slow: FlatBuf }[] = [];
  /** Inner steps since construction (sync when counter % k === 0). */
  counter = 0;

  constructor(readonly inner: SGD, readonly alpha = 0.5, readonly k = 5) {
    for (const f of inner.flat) {
      const be = f.bucket.params[0].backend;
      const m = mirrorBucket(be, f.bucket, true);
      f.bucket.params.forEach((p, i) => this.slow.set(p, m.tensors[i]));
      this.flatSlow.push({ fast: f.bucket.p, slow: m.flat });
    }
    for (const p of inner.params()) {
      if (this.slow.has(p)) continue;
      const s = empty(p.backend, p.shape).persist();
      p.backend.axpby({ x: p.buf, y: s.buf, alpha: 1, beta: 0, n: p.numel });
      this.slow.set(p, s);
    }
  }

  get groups() {
    return this.inner.groups;
  }

  setLrFactor(f: number): void {
    this.inner.setLrFactor(f);
  }

  step(): void {
    this.inner.step();
    this.afterInnerStep();
  }

  /** Clipped inner step (see SGD.clipAndStep), then the LookAhead bookkeeping; returns ‖g‖². */
  clipAndStep(maxNorm: number): Tensor {
    const sumsq = this.inner.clipAndStep(maxNorm);
    this.afterInnerStep();
    return sumsq;
  }

  private afterInnerStep(): void {
    this.counter++;
    if (this.counter % this.k !== 0) return;
    if (this.flatSlow.length > 0) {
      const be = this.inner.flat[0].bucket.params[0].backend;
      for (const { fast, slow } of this.flatSlow) {
        be.lookaheadSync(fast.whole, slow.whole, fast.whole.numel, this.alpha);
      }
      return;
    }
    for (const [p, s] of this.slow) p.backend.lookaheadSync(p.buf, s.buf, p.numel, this.alpha);
  }

  zeroGrad(): void {
    this.inner.zeroGrad();
  }

  stateDict(): LookAheadState {
    const slow = new Map<string, Tensor>();
    for (const [p, s] of this.slow) slow.set(nameOf(p), s);
    return {
      counter: this.counter,
      alpha: this.alpha,
      k: this.k,
      slow,
      inner: this.inner.stateDict(),
    };
  }

  loadStateDict(s: {
    counter: number;
    slow: Map<string, Float32Array>;
    inner: Parameters<SGD["loadStateDict"]>[0];
  }): void {
    this.counter = s.counter;
    for (const [p, t] of this.slow) {
      const d = s.slow.get(nameOf(p));
      if (!d) throw new Error(`LookAhead state: no slow weights for ${nameOf(p)}`);
      if (d.length !== p.numel) throw new Error(`LookAhead state: slow ${nameOf(p)} size`);
      p.backend.write(t.buf, d);
    }
    this.inner.loadStateDict(s.inner);
  }

  dispose(): void {
    for (const s of this.slow.values()) s.dispose();
    this.slow.clear();
    for (const f of this.flatSlow) this.inner.flat[0].bucket.params[0].backend.free(f.slow.whole);
    this.flatSlow.length = 0;
    this.inner.dispose();
  }
}
