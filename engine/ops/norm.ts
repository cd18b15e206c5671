/** Batch norm (2d) and layer norm. */
import { isGradEnabled } from "../scope.ts";
import { empty, full, record, type Tensor } from "../tensor.ts";
import { add, addScalar, mul, relu as reluOp, rsqrt, sub } from "./elementwise.ts";
import { reshape } from "./shape.ts";
import { needF32 } from "./util.ts";

export interface BatchNormOptions {
  training: boolean;
  momentum?: number; // default 0.1 (PyTorch)
  eps?: number; // default 1e-5
  /** Fuse a following ReLU (one kernel on GPUs, same values as relu(batchNorm2d(...))). */
  relu?: boolean;
}

/**
 * Batch norm over [N, C, H, W] (or [N, C]). Training: normalizes with batch statistics and
 * updates runningMean / runningVar in place (unbiased variance, like PyTorch). Eval: uses the
 * running statistics.
 */
export function batchNorm2d(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  opts: BatchNormOptions,
): Tensor {
  needF32("batchNorm2d", x, gamma, beta);
  const [N, C] = x.shape;
  const HW = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const eps = opts.eps ?? 1e-5, momentum = opts.momentum ?? 0.1;
  const relu = opts.relu ?? false;
  const be = x.backend;
  if (gamma.numel !== C || beta.numel !== C) {
    throw new Error(`batchNorm2d: gamma/beta must have ${C} elements for ${x.describe()}`);
  }
  if (!opts.training) {
    const needsGrad = isGradEnabled() &&
      (x.requiresGrad || gamma.requiresGrad || beta.requiresGrad);
    if (!needsGrad) {
      const y = empty(be, x.shape);
      be.batchNormApply({
        x: x.buf,
        mean: runningMean.buf,
        variance: runningVar.buf,
        gamma: gamma.buf,
        beta: beta.buf,
        y: y.buf,
        N,
        C,
        HW,
        eps,
        relu,
      });
      return y;
    }
    // Differentiable composite: y = x * sc + (beta - mean * sc), sc = gamma / sqrt(var + eps).
    const sc = mul(gamma, rsqrt(addScalar(runningVar, eps)));
    const sh = sub(beta, mul(runningMean, sc));
    const bshape = [C, ...x.shape.slice(2).map(() => 1)];
    const out = add(mul(x, reshape(sc, bshape)), reshape(sh, bshape));
    return relu ? reluOp(out) : out;
  }
  const mean = empty(be, [C]), variance = empty(be, [C]);
  be.batchNormStats({ x: x.buf, mean: mean.buf, variance: variance.buf, N, C, HW });
  const y = empty(be, x.shape);
  be.batchNormApply({
    x: x.buf,
    mean: mean.buf,
    variance: variance.buf,
    gamma: gamma.buf,
    beta: beta.buf,
    y: y.buf,
    N,
    C,
    HW,
    eps,
    relu,
  });
  const cnt = N * HW;
  be.axpby({ x: mean.buf, y: runningMean.buf, alpha: momentum, beta: 1 - momentum, n: C });
  be.axpby({
    x: variance.buf,
    y: runningVar.buf,
    alpha: momentum * cnt / Math.max(cnt - 1, 1),
    beta: 1 - momentum,
    n: C,
  });
  const out = record(y, relu ? "batchNorm2dRelu" : "batchNorm2d", [x, gamma, beta], (g) => {
    const gx = empty(be, x.shape);
    const gg = full(be, [C], 0), gb = full(be, [C], 0);
    be.batchNormBackward({
      x: x.buf,
      mean: mean.buf,
      variance: variance.buf,
      gamma: gamma.buf,
      dy: g.buf,
      dx: gx.buf,
      dgamma: gg.buf,
      dbeta: gb.buf,
      N,
      C,
      HW,
      eps,
      reluOut: relu ? y.buf : undefined,
    });
    return [x.requiresGrad ? gx : (gx.dispose(), null), gg, gb];
  });
  if (!out.requiresGrad) {
    mean.dispose();
    variance.dispose();
  }
  return out;
}

/** Layer norm over the last axis: x [..., D], gamma/beta [D]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  needF32("layerNorm", x, gamma, beta);
  const cols = x.shape[x.rank - 1], rows = x.numel / cols;
  if (gamma.numel !== cols || beta.numel !== cols) {
    throw new Error(`layerNorm: gamma/beta must have ${cols} elements for ${x.describe()}`);
  }
  const be = x.backend;
  const y = empty(be, x.shape), mean = empty(be, [rows]), rstd = empty(be, [rows]);
  be.layerNorm({
    x: x.buf,
    gamma: gamma.buf,
    beta: beta.buf,
    y: y.buf,
    mean: mean.buf,
    rstd: rstd.buf,
    rows,
    cols,
    eps,
  });
  const out = record(y, "layerNorm", [x, gamma, beta], (g) => {
    const gx = empty(be, x.shape);
    const gg = full(be, [cols], 0), gb = full(be, [cols], 0);
    be.layerNormBackward({
      x: x.buf,
      gamma: gamma.buf,
      mean: mean.buf,
      rstd: rstd.buf,
      dy: g.buf,
      dx: gx.buf,
      dgamma: gg.buf,
      dbeta: gb.buf,
      rows,
      cols,
    });
    return [gx, gg, gb];
  });
  if (!out.requiresGrad) {
    mean.dispose();
    rstd.dispose();
  }
  return out;
}
