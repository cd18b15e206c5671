/** The pretrain stage's config schema: defaults are the paper's values. */
import { z } from "zod";
import { ampSupported } from "../../engine/amp.ts";
import type { Backend } from "../../engine/backend.ts";
import { DEFAULT_PARALLEL_FRACTION, TASKS } from "../model/tasks.ts";

export const optimSchema = z.strictObject({
  /** Max LR of the visual backbone. */
  cnnLr: z.number().positive().default(0.2),
  /** Max LR of everything else (textual head). */
  headLr: z.number().positive().default(1e-3),
  momentum: z.number().min(0).max(1).default(0.9),
  weightDecay: z.number().min(0).default(1e-4),
  lookaheadAlpha: z.number().min(0).max(1).default(0.5),
  /** LookAhead sync period; 0 disables LookAhead. */
  lookaheadK: z.number().int().min(0).default(5),
  warmupSteps: z.number().int().min(0).default(10000),
  schedule: z.enum(["cosine", "linear", "multistep", "constant"]).default("cosine"),
  milestones: z.array(z.number().int()).default([]),
  gamma: z.number().positive().default(0.1),
  clipGradNorm: z.number().positive().default(10),
});

export const modelSchema = z.strictObject({
  task: z.enum(TASKS).default("bicaptioning").describe(
    "pretraining task (cappa: parallel-prediction captioning, see model.parallelFraction)",
  ),
  visual: z.string().default("resnet50"),
  textual: z.string().default("transdec_postnorm::L1_H2048_A32_F8192"),
  dropout: z.number().min(0).max(1).default(0.1),
  maxLength: z.number().int().positive().default(30),
  initStd: z.number().positive().default(0.02).describe(
    "init std of the decoder's linear and attention projections (0.02 as the reference; short runs ground captions in the image sooner with more, e.g. 0.05)",
  ),
  parallelFraction: z.number().min(0).max(1).default(DEFAULT_PARALLEL_FRACTION).describe(
    "cappa: share of each batch decoded in parallel from all-[MASK] inputs (CapPa's 0.75); " +
      "the rest trains autoregressively",
  ),
});

export const trainSchema = z.strictObject({
  /** Total optimizer steps (500K in the paper for COCO; set for your data). */
  steps: z.number().int().positive().default(500000),
  /** Global batch size (images per optimizer step). */
  batchSize: z.number().int().positive().default(256),
  /** Micro-batches per step: each holds batchSize / accumulate images. */
  accumulate: z.number().int().positive().default(1),
  seed: z.number().int().default(0),
  /** Save a checkpoint every this many steps (0: only at the end). */
  checkpointEvery: z.number().int().min(0).default(2000),
  /** Compute validation loss every this many steps (0: never). */
  valEvery: z.number().int().min(0).default(0),
  /** Validation batches per evaluation. */
  valBatches: z.number().int().positive().default(4),
  /** Percentage of training images used (data-efficiency runs). */
  percentImages: z.number().min(0.01).max(100).default(100),
  /**
   * Data parallel (MPI): check every this many steps (and at the end) that the ranks' weights are
   * still bitwise equal (0: never).
   */
  distCheckEvery: z.number().int().min(0).default(50),
  /** Use only the first caption of each image. */
  oneCaptionPerImage: z.boolean().default(false),
  /** Augmentation workers (Deno Workers); 0 augments in the training thread. */
  workers: z.number().int().min(0).default(1),
  /** Mixed precision: f16 matrix products + dynamic loss scaling (see engine/amp.ts). */
  amp: z.enum(["off", "auto", "on"]).default("auto").describe(
    "mixed precision (f16 matmul/linear with f32 accumulation and master weights, dynamic loss " +
      "scaling from 2^15); auto = on where the backend has f16 (webgpu with shader-f16), off on " +
      "wasm/ref; on = error where the backend has no f16",
  ),
});

export type OptimConfig = z.infer<typeof optimSchema>;
export type ModelSection = z.infer<typeof modelSchema>;
export type TrainConfig = z.infer<typeof trainSchema>;

/** Whether a run uses AMP on `be`: "auto" follows the backend; "on" without f16 is an error. */
export function resolveAmp(mode: TrainConfig["amp"], be: Backend): boolean {
  const ok = ampSupported(be);
  if (mode === "on" && !ok) {
    throw new Error(
      `train.amp is "on" but the ${be.name} backend has no f16 support (needs webgpu with ` +
        `shader-f16); set train.amp to "auto" or "off"`,
    );
  }
  return mode !== "off" && ok;
}
