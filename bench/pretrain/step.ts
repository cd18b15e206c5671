/**
 * The benchmarked unit of bench/pretrain: one bicaptioning pretraining step on a synthetic batch,
 * structured like pipeline/pretrain/trainer.ts (tidy → loss.backward → optimizer.clipAndStep →
 * zeroGrad → read loss). Shared by main.ts (timing) and profile.ts (per-kernel
 * profile).
 */
import type { Backend } from "../../engine/backend.ts";
import { type LookAhead, lrFactor, type SGD } from "../../engine/optim/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import { type Batch, PretrainingModel } from "../../pipeline/model/tasks.ts";
import { optimSchema } from "../../pipeline/pretrain/config.ts";
import { buildOptimizer } from "../../pipeline/pretrain/optimizer.ts";

/** One benchmark configuration; torch_ref.py receives the same fields as flags. */
export interface BenchCase {
  key: string; // "a", "b"
  visual: string; // backbone name
  textual: string; // textual head name
  size: number; // image side in px
  batch: number; // images per step
  vocab: number; // vocabulary size
  maxLength: number; // padded caption length (T)
  /**
   * Our side's micro-batches per step (gradient accumulation, as the trainer does when memory is
   * short); PyTorch always runs the whole batch at once.
   */
  accumulate: number;
}

/** The two cases of the issue: (a) small and fast, (b) the paper's architecture. */
export const CASES: Record<string, BenchCase> = {
  a: {
    key: "a",
    visual: "resnet18",
    textual: "transdec_postnorm::L1_H512_A8_F2048",
    size: 64,
    batch: 16,
    vocab: 10000,
    maxLength: 30,
    accumulate: 1,
  },
  b: {
    key: "b",
    visual: "resnet50",
    textual: "transdec_postnorm::L1_H2048_A32_F8192",
    size: 224,
    batch: 8,
    vocab: 10000,
    maxLength: 30,
    // 187 M parameters: weights, grads, momentum and LookAhead slow weights take 3 GB of the
    // wasm32 heap's 4 GiB, and the activations of 8 images at 224 px do not fit beside them.
    accumulate: 2,
  },
  // The demo's model (pipeline/demo/plan.ts FULL_DEMO): small vocabulary and head, so the
  // ResNet dominates.
  demo: {
    key: "demo",
    visual: "resnet18",
    textual: "transdec_postnorm::L1_H128_A2_F512",
    size: 64,
    batch: 32,
    vocab: 400,
    maxLength: 30,
    accumulate: 1,
  },
};

/**
 * Caption length with [SOS] and [EOS] of caption b in batch s: 18…24 tokens (mean 21), the same
 * formula as torch_ref.py.
 */
export function captionLength(b: number, s: number): number {
  return 18 + (b * 7 + s * 3) % 7;
}

/** A deterministic synthetic host batch: images ~U(-1.7, 1.7), tokens [SOS] w… [EOS] PAD…. */
export function syntheticBatch(c: BenchCase, s: number): {
  images: Float32Array; // [B, 3, S, S]
  tokens: Int32Array; // [B, T]
  lengths: number[]; // [B]
} {
  const B = c.batch, T = c.maxLength;
  let r = (0x9e3779b9 ^ s) >>> 0;
  const next = () => (r = (Math.imul(r, 1664525) + 1013904223) >>> 0) / 4294967296;
  const images = new Float32Array(B * 3 * c.size * c.size);
  for (let i = 0; i < images.length; i++) images[i] = (next() - 0.5) * 3.4;
  const tokens = new Int32Array(B * T), lengths: number[] = [];
  for (let b = 0; b < B; b++) {
    const L = captionLength(b, s);
    lengths.push(L);
    tokens[b * T] = 1; // [SOS]
    for (let t = 1; t < L - 1; t++) tokens[b * T + t] = 4 + Math.floor(next() * (c.vocab - 4));
    tokens[b * T + L - 1] = 2; // [EOS]
  }
  return { images, tokens, lengths };
}

/** A built model + optimizer and a function running one full training step. */
export interface StepRunner {
  model: PretrainingModel;
  optimizer: SGD | LookAhead;
  parameters: number;
  /** One optimizer step on synthetic batch `s`; resolves to the loss read back to the host. */
  step(s: number): Promise<number>;
  /**
   * Records step `s` and starts its loss read without waiting (the GPU bench reads each loss a
   * step late, as the trainer does).
   */
  start(s: number): { loss: Promise<number> };
  dispose(): void;
}

/** Builds the case's bicaptioning model with the paper's optimizer (SGD + LookAhead, clip 10). */
export async function buildStep(backend: Backend, c: BenchCase): Promise<StepRunner> {
  if (!Number.isInteger(c.batch / c.accumulate)) {
    throw new Error(
      `bench/pretrain: batch ${c.batch} is not divisible by accumulate ${c.accumulate}`,
    );
  }
  const model = await PretrainingModel.create(backend, {
    task: "bicaptioning",
    visual: c.visual,
    textual: c.textual,
    vocabSize: c.vocab,
    maxLength: c.maxLength,
  });
  model.train();
  const optim = optimSchema.parse({});
  const optimizer = buildOptimizer(model.namedParameters(), optim);
  const params = optimizer.groups.flatMap((g) => g.params);
  const sched = {
    kind: optim.schedule,
    warmupSteps: optim.warmupSteps,
    totalSteps: 500000,
    milestones: optim.milestones,
    gamma: optim.gamma,
  };
  const batches = [0, 1, 2].map((s) => syntheticBatch(c, s)); // host batches, cycled
  const runner: StepRunner = {
    model,
    optimizer,
    parameters: params.reduce((a, p) => a + p.numel, 0),
    start(s: number): { loss: Promise<number> } {
      optimizer.setLrFactor(lrFactor(s, sched));
      const hb = batches[s % batches.length];
      const acc = c.accumulate, mb = c.batch / acc, T = c.maxLength, px = 3 * c.size * c.size;
      const reads: Promise<number>[] = [];
      for (let a = 0; a < acc; a++) {
        const loss = tidy(() => {
          const batch: Batch = {
            images: tensor(backend, hb.images.subarray(a * mb * px, (a + 1) * mb * px), [
              mb,
              3,
              c.size,
              c.size,
            ]),
            tokens: hb.tokens.subarray(a * mb * T, (a + 1) * mb * T),
            lengths: hb.lengths.slice(a * mb, (a + 1) * mb),
            T,
          };
          const r = model.loss(batch);
          (acc === 1 ? r.loss : ops.scale(r.loss, 1 / acc)).backward();
          return r.loss;
        });
        reads.push(loss.item()); // contents captured now, awaited by the caller
        loss.dispose();
      }
      const sumsq = optimizer.clipAndStep(optim.clipGradNorm);
      optimizer.zeroGrad();
      sumsq.dispose();
      return { loss: Promise.all(reads).then((v) => v.reduce((x, y) => x + y / acc, 0)) };
    },
    step(s: number): Promise<number> {
      return runner.start(s).loss;
    },
    dispose() {
      optimizer.dispose();
      model.dispose();
    },
  };
  return runner;
}
