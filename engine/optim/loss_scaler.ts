/**
 * Dynamic loss scaling for mixed-precision training (engine/amp.ts): the loss is multiplied by
 * S before backward so small gradients survive f16 rounding; afterwards the gradients are checked
 * for Inf/NaN on the device (one sum of squares, one readback per step), then either unscaled
 * (× 1/S) for the optimizer step, or the step is skipped and S halved. S doubles after
 * `growthInterval` finite steps in a row.
 */
import { scale as scaleOp } from "../ops/elementwise.ts";
import { full, type Tensor } from "../tensor.ts";

export interface LossScalerOptions {
  /** Starting scale (default 2^15). */
  initScale?: number;
  /** Multiplier after `growthInterval` finite steps in a row (default 2). */
  growthFactor?: number;
  /** Multiplier after an overflow (default 0.5). */
  backoffFactor?: number;
  /** Finite steps in a row before the scale grows (default 2000). */
  growthInterval?: number;
}

/** What a checkpoint keeps of a LossScaler. */
export interface LossScalerState {
  scale: number;
  goodSteps: number;
}

/** Result of `unscale`. */
export interface UnscaleResult {
  /** True when every gradient was finite (they are now unscaled); false: skip the step. */
  finite: boolean;
  /** Sum of squares of the unscaled gradients (Inf/NaN when not finite). */
  sumsq: number;
}

/** Dynamic loss scaler (see module doc). */
export class LossScaler {
  scale: number;
  /** Finite steps since the last overflow or growth. */
  goodSteps = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  constructor(opts: LossScalerOptions = {}) {
    this.scale = opts.initScale ?? 2 ** 15;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(this.scale > 0) || !(this.growthFactor >= 1) || !(this.backoffFactor > 0)) {
      throw new Error("LossScaler: initScale > 0, growthFactor >= 1, backoffFactor > 0 required");
    }
  }

  /** loss × scale × factor as a recorded op: its backward yields scaled gradients. */
  scaleLoss(loss: Tensor, factor = 1): Tensor {
    return scaleOp(loss, this.scale * factor);
  }

  /**
   * Checks the gradients of `params` for Inf/NaN (device reduction, one readback); when all are
   * finite, divides them by the scale in place. Does not change the scale (see `update`).
   */
  async unscale(params: Tensor[]): Promise<UnscaleResult> {
    const withGrad = params.filter((p) => p.grad);
    if (withGrad.length === 0) return { finite: true, sumsq: 0 };
    const be = withGrad[0].backend;
    const sumsq = full(be, [1], 0);
    for (const p of withGrad) be.sumSquares(p.grad!.buf, p.numel, sumsq.buf, true);
    const s = await sumsq.item();
    sumsq.dispose();
    if (!Number.isFinite(s)) return { finite: false, sumsq: s };
    const inv = 1 / this.scale;
    if (inv !== 1) {
      // grad = inv * grad through a scratch buffer (kernels never alias an input and the output)
      const maxN = Math.max(...withGrad.map((p) => p.numel));
      const tmp = be.alloc(maxN);
      try {
        for (const p of withGrad) {
          be.axpby({ x: p.grad!.buf, y: tmp, alpha: inv, beta: 0, n: p.numel });
          be.axpby({ x: tmp, y: p.grad!.buf, alpha: 1, beta: 0, n: p.numel });
        }
      } finally {
        be.free(tmp);
      }
    }
    return { finite: true, sumsq: s * inv * inv };
  }

  /** Records a step's outcome: backs off after an overflow, grows after enough finite steps. */
  update(finite: boolean): void {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
      return;
    }
    this.goodSteps++;
    if (this.goodSteps >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.goodSteps = 0;
    }
  }

  /** The scaler's state for a checkpoint. */
  state(): LossScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps };
  }

  /** Restores `state()`; `where` names the source in errors. */
  load(s: LossScalerState, where = "loss scaler state"): void {
    if (
      typeof s?.scale !== "number" || !(s.scale > 0) || !Number.isFinite(s.scale) ||
      !Number.isInteger(s.goodSteps) || s.goodSteps < 0
    ) {
      throw new Error(`${where}: expected {scale > 0, goodSteps >= 0}, got ${JSON.stringify(s)}`);
    }
    this.scale = s.scale;
    this.goodSteps = s.goodSteps;
  }
}
