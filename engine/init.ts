/** Seeded host-side parameter initialisation (uniform, normal, PyTorch's default schemes). */
import { SeededRng } from "./rng.ts";
import type { Tensor } from "./tensor.ts";

/** Process-wide default initialisation stream; reseed with `setInitSeed`. */
export let initRng: SeededRng = new SeededRng(0);

/** Reseeds the default initialisation stream. */
export function setInitSeed(seed: number): void {
  initRng = new SeededRng(seed);
}

/** Fills t with U(-bound, bound). */
export function initUniform(t: Tensor, bound: number, rng: SeededRng = initRng): void {
  const a = new Float32Array(t.numel);
  for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
  t.backend.write(t.buf, a);
}

/** Fills t with N(mean, std^2). */
export function initNormal(t: Tensor, std: number, mean = 0, rng: SeededRng = initRng): void {
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
export function initKaimingNormalFanOut(t: Tensor, rng: SeededRng = initRng): void {
  initNormal(t, Math.sqrt(2 / fans(t.shape).fanOut), 0, rng);
}

/** Xavier-uniform (torch MultiheadAttention in_proj_weight). */
export function initXavierUniform(t: Tensor, rng: SeededRng = initRng): void {
  const { fanIn, fanOut } = fans(t.shape);
  initUniform(t, Math.sqrt(6 / (fanIn + fanOut)), rng);
}

/** PyTorch's default Linear/Conv init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)). */
export function initTorchDefault(t: Tensor, fanIn: number, rng: SeededRng = initRng): void {
  initUniform(t, fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0, rng);
}
