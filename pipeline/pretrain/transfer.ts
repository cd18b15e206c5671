/**
 * Checkpoint selection by transfer (as the paper picks its checkpoints): during pretraining, every
 * `transfer.evalEvery` steps the current backbone runs the VOC07 SVM protocol on a small
 * downstream set in the VOC layout — frozen features (eval transform, global average pool, L2
 * norm) of its train and test splits, one linear SVM per class with C chosen by cross-validation —
 * and the mAP goes into metrics.jsonl; the pretrain artifact records the best step.
 */
import { z } from "zod";
import { readLabelledSplits } from "../extract/datasets.ts";
import { embedImages } from "../extract/embed.ts";
import { evaluateVoc07, scorableClasses, selectColumns } from "../eval/voc07.ts";
import type { LabelSet } from "../data/types.ts";
import { DataError } from "../data/errors.ts";
import type { ResNetBackbone } from "../model/backbones.ts";

export const transferSchema = z.strictObject({
  path: z.string().default("").describe(
    "VOC2007-layout downstream set scored during training (VOC07 SVM mAP; empty: none)",
  ),
  evalEvery: z.number().int().min(0).default(1000).describe(
    "steps between transfer evaluations (and after the last); each is checkpointed",
  ),
  trainSplit: z.string().default("trainval").describe("split the SVMs train on"),
  testSplit: z.string().default("test").describe("split the mAP is measured on"),
  classes: z.array(z.string()).default([]).describe("classes to read (default: all found)"),
  size: z.number().int().min(0).default(0).describe("centre crop (0: transform.size)"),
  resize: z.number().int().min(0).default(0).describe(
    "short side before the crop (0: transform.evalResize)",
  ),
  costs: z.array(z.number().positive()).default([0.01, 0.1, 1, 10]).describe("SVM C candidates"),
  folds: z.number().int().min(2).default(3).describe("cross-validation folds for choosing C"),
  batchSize: z.number().int().min(1).default(32).describe("feature extraction batch"),
});

/** The pretrain stage's `transfer` section. */
export type TransferConfig = z.infer<typeof transferSchema>;

/** The downstream set, read once, scored on the current backbone on demand. */
export class TransferProbe {
  private constructor(
    private readonly cfg: TransferConfig,
    private readonly train: LabelSet,
    private readonly test: LabelSet,
    private readonly keep: number[],
    private readonly size: number,
    private readonly resize: number,
  ) {}

  /**
   * Reads the splits' labels (checking them before any training). `size`/`resize` default to the
   * pretraining eval transform's.
   */
  static async open(
    cfg: TransferConfig,
    path: string,
    eval_: { size: number; resize: number },
    log: (m: string) => void,
  ): Promise<TransferProbe> {
    const [train, test] = await readLabelledSplits(
      "voc",
      path,
      [cfg.trainSplit, cfg.testSplit],
      cfg.classes.length ? cfg.classes : undefined,
    );
    const rows = (s: LabelSet) => ({ labels: s.labels, rows: s.images.length });
    const { keep, skipped } = scorableClasses(train.classes, rows(train), rows(test));
    if (keep.length === 0) {
      throw new DataError({ file: path }, "transfer: no class has positives in both splits");
    }
    if (skipped.length) log(`transfer: ${skipped.length} class(es) without positives left out`);
    const size = cfg.size || eval_.size, resize = cfg.resize || eval_.resize;
    if (resize < size) {
      throw new DataError({ file: path }, `transfer: resize ${resize} < size ${size}`);
    }
    log(
      `transfer: VOC07 SVMs on ${train.images.length} ${cfg.trainSplit} / ${test.images.length} ` +
        `${cfg.testSplit} images, ${keep.length} classes, every ${cfg.evalEvery} steps`,
    );
    return new TransferProbe(cfg, train, test, keep, size, resize);
  }

  /** { mAP } in percent of the backbone's frozen features (leaves it in eval mode). */
  async evaluate(net: ResNetBackbone): Promise<{ mAP: number }> {
    const features = (s: LabelSet) =>
      embedImages({
        net,
        files: s.images.map((im) => im.file),
        size: this.size,
        resize: this.resize,
        batchSize: this.cfg.batchSize,
        normalize: true,
      });
    const K = this.train.classes.length, dim = net.featureSize;
    const split = async (s: LabelSet) =>
      selectColumns(
        { features: await features(s), labels: s.labels, rows: s.images.length, dim },
        K,
        this.keep,
      );
    const res = await evaluateVoc07({
      classes: this.keep.map((k) => this.train.classes[k]),
      train: await split(this.train),
      test: await split(this.test),
    }, { svm: { costs: this.cfg.costs, folds: this.cfg.folds } });
    return { mAP: res.mAP * 100 };
  }
}
