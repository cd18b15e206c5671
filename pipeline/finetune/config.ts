/**
 * The finetune stage's config. Defaults are the paper's two protocols, chosen by `mode`:
 * - `finetune` (iNaturalist 2018): every layer trains, batch norm in train mode; SGD momentum 0.9,
 *   weight decay 1e-4, LR 0.025, batch 256, 100 epochs, LR ×0.1 at epochs 70 and 90; the
 *   pretraining augmentation (random resized crop 20–100 %, colour jitter, flip; no word swap).
 * - `linear` (ImageNet linear probe): the backbone frozen in eval mode, a linear layer on its raw
 *   (not L2-normalised) pooled features; SGD momentum 0.9, LR 0.3 with a cosine decay, weight decay
 *   0, batch 256, 100 epochs; augmentation random resized crop 8–100 % and flip only.
 * Keys whose default differs by mode default to "auto"; every key can be set.
 */
import { z } from "zod";
import { DEVICE_NAMES } from "../../engine/device.ts";
import { type TransformConfig, transformSchema } from "../augment/transforms.ts";
import { checkpointSchema } from "../pretrain/backbone_weights.ts";
import { type OptimConfig, type TrainConfig, trainSchema } from "../pretrain/config.ts";

/** Dataset layouts finetune reads. */
export const FINETUNE_DATASETS = ["inat", "classfolders", "voc", "coco"] as const;
export type FinetuneDataset = typeof FINETUNE_DATASETS[number];

/** The default train and val split of each layout. */
export const FINETUNE_SPLITS: Record<FinetuneDataset, [string, string]> = {
  inat: ["train2018", "val2018"],
  classfolders: ["train", "val"],
  voc: ["trainval", "test"],
  coco: ["train2017", "val2017"],
};

const auto = <T extends z.ZodType>(t: T) => z.union([z.literal("auto"), t]).default("auto");

export const finetuneSchema = z.strictObject({
  mode: z.enum(["finetune", "linear"]).default("finetune").describe(
    "finetune: every layer trains (batch norm in train mode); linear: the paper's linear probe " +
      "(backbone frozen in eval mode, a linear layer on raw pooled features, live augmentation)",
  ),
  init: z.enum(["pretrained", "random"]).default("pretrained").describe(
    "pretrained: the `model` input's backbone (at `checkpoint`); random: random init (baseline)",
  ),
  checkpoint: checkpointSchema,
  arch: z.string().default("").describe("backbone for init=random (default: resnet50)"),
  dataset: z.enum(FINETUNE_DATASETS).default("inat").describe(
    "inat: iNaturalist 2018 JSON (<split>.json in path, file_name relative to path; top-1/top-5); " +
      "classfolders: path/<split>/<class>/ (top-1/top-5); voc: VOC2007 root, coco: annotations " +
      "folder with instances_<split>.json (multi-label, mAP)",
  ),
  path: z.string().min(1).describe("dataset root (see dataset)"),
  trainSplit: z.string().default("").describe(
    "split to train on (default: train2018 | train | trainval | train2017 by dataset)",
  ),
  valSplit: z.string().default("").describe(
    "split to evaluate on (default: val2018 | val | test | val2017 by dataset)",
  ),
  classes: z.array(z.string()).default([]).describe("voc: classes to read (default: all found)"),
  cocoClasses: z.enum(["coco80", "voc20"]).default("coco80").describe(
    "coco: the 80 categories, or the 20 VOC classes via the COCO→VOC name map",
  ),
  shortSide: z.number().int().min(8).default(256).describe(
    "images are decoded once and packed at this short side (>= transform.evalResize)",
  ),
  epochs: z.number().int().min(1).default(100).describe("passes over the training split"),
  batchSize: z.number().int().min(1).default(256).describe("images per optimizer step"),
  accumulate: z.number().int().min(1).default(1).describe("micro-batches per step"),
  lr: auto(z.number().positive()).describe("auto: 0.025 (finetune), 0.3 (linear)"),
  momentum: z.number().min(0).max(1).default(0.9).describe("SGD momentum"),
  weightDecay: auto(z.number().min(0)).describe("auto: 1e-4 (finetune), 0 (linear)"),
  schedule: z.enum(["auto", "multistep", "cosine", "constant"]).default("auto").describe(
    "LR schedule per step; auto: multistep (finetune), cosine (linear)",
  ),
  milestones: z.array(z.number().positive()).default([70, 90]).describe(
    "multistep: epochs at which the LR is multiplied by gamma",
  ),
  gamma: z.number().positive().default(0.1).describe("multistep: the LR factor at each milestone"),
  headInitStd: z.number().min(0).default(0.01).describe(
    "the new linear layer's weights ~ N(0, std²), bias 0",
  ),
  augmentation: z.enum(["auto", "pretrain", "probe"]).default("auto").describe(
    "auto: pretrain (finetune), probe (linear); pretrain: the transform keys as given (the " +
      "pretraining augmentation); probe: the same but crop scale [0.08, 1] and no colour jitter",
  ),
  transform: transformSchema.prefault({}),
  evalEvery: z.number().int().min(0).default(0).describe(
    "evaluate on the val split every this many steps (0: once per epoch); each evaluation is " +
      "checkpointed",
  ),
  checkpointEvery: z.number().int().min(0).default(0).describe(
    "also checkpoint every this many steps (0: only at evaluations and the end); older " +
      "checkpoints but the best are deleted",
  ),
  seed: z.number().int().default(0).describe("head init, data order and augmentation seed"),
  workers: z.number().int().min(0).default(1).describe(
    "augmentation workers (0: in the training thread)",
  ),
  amp: z.enum(["off", "auto", "on"]).default("auto").describe(
    "mixed precision as pretrain's train.amp",
  ),
  device: z.enum(DEVICE_NAMES).default("auto").describe(
    "compute backend; auto = webgpu on a hardware GPU, else wasm",
  ),
  skipBad: z.boolean().default(false).describe(
    "skip and count bad records and undecodable images instead of failing",
  ),
}).refine((c) => c.shortSide >= c.transform.evalResize, {
  message: "shortSide must be >= transform.evalResize",
  path: ["shortSide"],
});

/** The finetune stage's config (after defaults). */
export type FinetuneConfig = z.infer<typeof finetuneSchema>;

/** The settings a config resolves to once its mode and the data's size are known. */
export interface ResolvedFinetune {
  lr: number;
  weightDecay: number;
  schedule: "multistep" | "cosine" | "constant";
  optim: OptimConfig;
  train: TrainConfig;
  stepsPerEpoch: number;
  /** Steps between evaluations. */
  evalEvery: number;
}

/**
 * Fills the mode's optimizer defaults and turns epochs into steps (`stepsPerEpoch` optimizer
 * steps each).
 */
export function resolveFinetune(cfg: FinetuneConfig, stepsPerEpoch: number): ResolvedFinetune {
  const linear = cfg.mode === "linear";
  const lr = cfg.lr === "auto" ? (linear ? 0.3 : 0.025) : cfg.lr;
  const weightDecay = cfg.weightDecay === "auto" ? (linear ? 0 : 1e-4) : cfg.weightDecay;
  const schedule = cfg.schedule === "auto" ? (linear ? "cosine" : "multistep") : cfg.schedule;
  const steps = cfg.epochs * stepsPerEpoch;
  const optim: OptimConfig = {
    cnnLr: lr,
    headLr: lr,
    momentum: cfg.momentum,
    weightDecay,
    lookaheadAlpha: 0.5,
    lookaheadK: 0, // plain SGD
    warmupSteps: 0,
    schedule,
    milestones: cfg.milestones.map((e) => Math.round(e * stepsPerEpoch)),
    gamma: cfg.gamma,
    clipGradNorm: 0, // none
  };
  const evalEvery = cfg.evalEvery || stepsPerEpoch;
  const train = trainSchema.parse({
    steps,
    batchSize: cfg.batchSize,
    accumulate: cfg.accumulate,
    seed: cfg.seed,
    checkpointEvery: cfg.checkpointEvery,
    valEvery: 0,
    workers: cfg.workers,
    amp: cfg.amp,
  });
  return { lr, weightDecay, schedule, optim, train, stepsPerEpoch, evalEvery };
}

/**
 * The training transform: `transform` as given (the pretraining augmentation), or for the probe
 * augmentation (linear mode's default) with crop scale [0.08, 1] and no colour jitter.
 */
export function finetuneTransform(cfg: FinetuneConfig): TransformConfig {
  const probe = cfg.augmentation === "probe" ||
    (cfg.augmentation === "auto" && cfg.mode === "linear");
  return probe
    ? { ...cfg.transform, scale: [0.08, 1], jitter: { ...cfg.transform.jitter, p: 0 } }
    : cfg.transform;
}
