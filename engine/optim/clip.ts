/** Global gradient-norm clipping on the device (no readback). */
import { full, type Tensor } from "../tensor.ts";

/**
 * Scales all gradients by min(1, maxNorm / (‖g‖ + 1e-6)) where ‖g‖ is the global L2 norm, like
 * torch.nn.utils.clip_grad_norm_. Returns a [1] tensor holding ‖g‖² (read it later for logging,
 * or dispose it).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const withGrad = params.filter((p) => p.grad);
  const be = (withGrad[0] ?? params[0]).backend;
  const sumsq = full(be, [1], 0);
  for (const p of withGrad) be.sumSquares(p.grad!.buf, p.numel, sumsq.buf, true);
  for (const p of withGrad) be.clipByNorm(p.grad!.buf, p.numel, sumsq.buf, maxNorm);
  return sumsq;
}
