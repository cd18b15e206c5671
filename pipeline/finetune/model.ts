/**
 * The fine-tuning model: a visual backbone (parameter names `visual.*`, as the pretraining model,
 * so pretrained weights load unchanged) with a new linear layer `head` on its global-average-pooled
 * features. Single-label data trains with softmax cross-entropy, multi-label data with binary
 * cross-entropy per class. `frozen` (the linear probe) keeps the backbone in eval mode and runs it
 * without gradients: only the head trains, on raw pooled features.
 */
import type { Backend } from "../../engine/backend.ts";
import { initConstant, initNormal } from "../../engine/init.ts";
import { Linear, Module } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { noGrad } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { createBackbone, type ResNetBackbone } from "../model/backbones.ts";
import type { Batch } from "../model/tasks.ts";
import type { TrainableModel } from "../pretrain/trainer.ts";

/** What FinetuneModel is built from. */
export interface FinetuneModelOptions {
  arch: string; // backbone name, e.g. "resnet50"
  classes: number;
  /** Multi-label targets (BCE per class) instead of one class per image (softmax CE). */
  multiLabel: boolean;
  /** Backbone frozen in eval mode (linear probe). */
  frozen: boolean;
  /** Std of the head's N(0, std²) weight init (bias 0). */
  headInitStd: number;
}

/** Backbone + new linear head (see module doc). */
export class FinetuneModel extends Module implements TrainableModel {
  readonly visual: ResNetBackbone;
  readonly head: Linear;

  constructor(backend: Backend, readonly options: FinetuneModelOptions) {
    super(backend);
    this.visual = this.registerModule("visual", createBackbone(backend, options.arch));
    this.head = this.registerModule(
      "head",
      new Linear(backend, this.visual.featureSize, options.classes),
    );
    initNormal(this.head.weight, options.headInitStd);
    initConstant(this.head.bias!, 0);
    if (options.frozen) this.visual.eval();
  }

  /** The parameters the optimizer updates: the head alone when frozen, else all. */
  trainableParameters(): [string, Tensor][] {
    return this.options.frozen ? this.head.namedParameters("head.") : this.namedParameters();
  }

  /** Sets training mode; a frozen backbone stays in eval mode (its BN statistics fixed). */
  override train(on = true): this {
    super.train(on);
    if (this.options.frozen) this.visual.eval();
    return this;
  }

  /** images [B, 3, S, S] -> logits [B, K]. */
  logits(images: Tensor): Tensor {
    const pooled = this.options.frozen
      ? noGrad(() => ops.globalAvgPool(this.visual.forward(images))) // [B, C], no graph
      : ops.globalAvgPool(this.visual.forward(images)); // [B, C]
    return this.head.forward(pooled); // [B, K]
  }

  /** Loss of a batch whose `labels` are 0/1 targets [B, K] (one-hot for single-label data). */
  loss(batch: Batch): { loss: Tensor; parts: Record<string, Tensor> } {
    if (!batch.labels) throw new Error("finetune: batch without labels");
    const logits = this.logits(batch.images); // [B, K]
    const K = this.options.classes, B = logits.shape[0];
    if (this.options.multiLabel) {
      const l = ops.bceWithLogits(logits, tensor(this.backend, batch.labels, [B, K]));
      return { loss: l, parts: { bce: l } };
    }
    const targets = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const k = batch.labels.subarray(b * K, (b + 1) * K).indexOf(1);
      if (k < 0) throw new Error(`finetune: image ${b} of the batch has no class`);
      targets[b] = k;
    }
    const l = ops.crossEntropy(logits, targets);
    return { loss: l, parts: { ce: l } };
  }

  /** No host-side state beyond the tensors. */
  extraState(): Record<string, number> {
    return {};
  }
  loadExtraState(): void {}
}
