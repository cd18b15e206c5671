/** Seeded host-side parameter initialisation (uniform, normal, PyTorch's default schemes). */
import type { Tensor } from "./tensor.ts";

/** Small seeded PRNG (mulberry32) for parameter initialisation on the host. */
export class InitRng {
  private s: number;
  constructor(seed = 0) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** Process-wide default initialisation stream; reseed with `setInitSeed`. */
export let initRng: InitRng = new InitRng(0);

/** Reseeds the default initialisation stream. */
export function setInitSeed(seed: number): void {
  initRng = new InitRng(seed);
}

/** Fills t with U(-bound, bound). */
export function initUniform(t: Tensor, bound: number, rng: InitRng = initRng): void {
  const a = new Float32Array(t.numel);
  for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
  t.backend.write(t.buf, a);
}

/** Fills t with N(mean, std^2). */
export function initNormal(t: Tensor, std: number, mean = 0, rng: InitRng = initRng): void {
  const a = new Float32Array(t.numel);
  for (let i = 0; i < a.length; i++) a[i] = mean + std * rng.normal();
  t.backend.write(t.buf, a);
}

/** Fills t with a constant. */
export function initConstant(t: Tensor, value: number): void {
  t.backend.fill(t.buf, value);
}

/** fan_in / fan_out of a weight [out, in, ...kernel]. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const rf = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * rf, fanOut: shape[0] * rf };
}

/** Kaiming-normal, fan_out, ReLU gain (torchvision ResNet convs). */
export function initKaimingNormalFanOut(t: Tensor, rng: InitRng = initRng): void {
  initNormal(t, Math.sqrt(2 / fans(t.shape).fanOut), 0, rng);
}

/** Xavier-uniform (torch MultiheadAttention in_proj_weight). */
export function initXavierUniform(t: Tensor, rng: InitRng = initRng): void {
  const { fanIn, fanOut } = fans(t.shape);
  initUniform(t, Math.sqrt(6 / (fanIn + fanOut)), rng);
}

/** PyTorch's default Linear/Conv init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)). */
export function initTorchDefault(t: Tensor, fanIn: number, rng: InitRng = initRng): void {
  initUniform(t, fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0, rng);
}
