/** LookAhead (Zhang et al. 2019): every k inner steps, slow += alpha (fast - slow); fast = slow. */
import { empty, type Tensor } from "../tensor.ts";
import { nameOf, SGD, type SgdState } from "./sgd.ts";

export interface LookAheadState {
  counter: number;
  alpha: number;
  k: number;
  slow: Map<string, Tensor>;
  inner: SgdState;
}

export class LookAhead {
  private readonly slow = new Map<Tensor, Tensor>();
  /** Inner steps since construction (sync when counter % k === 0). */
  counter = 0;

  constructor(readonly inner: SGD, readonly alpha = 0.5, readonly k = 5) {
    for (const p of inner.params()) {
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
    this.counter++;
    if (this.counter % this.k === 0) {
      for (const [p, s] of this.slow) p.backend.lookaheadSync(p.buf, s.buf, p.numel, this.alpha);
    }
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
    this.inner.dispose();
  }
}
