/** Global gradient-norm clipping on the device (no readback). */
import { full, type Tensor } from "../tensor.ts";

/** ‖g‖² over every parameter's gradient, as a [1] tensor on the device (no readback). */
export function gradSumSquares(params: Tensor[]): Tensor {
  const withGrad = params.filter((p) => p.grad);
  const be = (withGrad[0] ?? params[0]).backend;
  const sumsq = full(be, [1], 0);
  for (const p of withGrad) be.sumSquares(p.grad!.buf, p.numel, sumsq.buf, true);
  return sumsq;
}

/**
 * Scales all gradients by min(1, maxNorm / (‖g‖ + 1e-6)) where ‖g‖ is the global L2 norm, like
 * torch.nn.utils.clip_grad_norm_. Returns a [1] tensor holding ‖g‖² (read it later for logging,
 * or dispose it).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const sumsq = gradSumSquares(params);
  for (const p of params) {
    if (p.grad) p.backend.clipByNorm(p.grad.buf, p.numel, sumsq.buf, maxNorm);
  }
  return sumsq;
}
