/**
 * The paper's optimizer: SGD (momentum 0.9, weight decay 1e-4 except LayerNorm weights and biases
 * of the textual head) in two LR groups (CNN 0.2, head 1e-3), wrapped in LookAhead(0.5, 5).
 */
import { LookAhead, paramGroups, SGD } from "../../engine/optim/index.ts";
import type { Tensor } from "../../engine/tensor.ts";
import type { OptimConfig } from "./config.ts";

/**
 * No weight decay on the textual head's LayerNorm parameters and biases inside its embedding and
 * transformer (the reference's `.*textual.(embedding|transformer).*(norm.*|bias)`).
 */
export function isHeadNoDecay(name: string): boolean {
  return /^(backward_)?textual\.(embedding|transformer)\..*(norm|bias)/.test(name);
}

/** Builds SGD (+ LookAhead when k > 0) over named parameters; `visual.*` is the CNN. */
export function buildOptimizer(named: [string, Tensor][], c: OptimConfig): SGD | LookAhead {
  const isCnn = (n: string) => n.startsWith("visual.");
  const groups = paramGroups(named, {
    lr: c.headLr,
    momentum: c.momentum,
    weightDecay: c.weightDecay,
    name: "head",
  }, [
    { name: "cnn", match: isCnn, lr: c.cnnLr, weightDecay: c.weightDecay },
    { name: "head_no_decay", match: isHeadNoDecay, lr: c.headLr, weightDecay: 0 },
  ]);
  const sgd = new SGD(groups);
  return c.lookaheadK > 0 ? new LookAhead(sgd, c.lookaheadAlpha, c.lookaheadK) : sgd;
}
