/**
 * evaluate stage on an extract artifact (input `features`):
 * - `voc07`: per-class linear SVMs (LIBLINEAR-style dual coordinate descent in wasm), C chosen per
 *   class by 3-fold cross-validated AP, difficult labels negative in training and excluded at
 *   test; per-class AP table, mAP (non-interpolated, plus VOC 11-point), bar chart.
 * - `linear`: softmax linear classifier (SGD, cosine LR, no weight decay) on single-label
 *   features (class folders); top-1 accuracy.
 * - `zeroshot`: no features and no training: a pretrained caption model (input `model`) scores
 *   each class of a labelled set by the likelihood of its prompts (pipeline/eval/zeroshot.ts).
 * Classes without a positive example in the train or the test split cannot be scored; they are
 * listed as skipped.
 */
import { join } from "node:path";
import { z } from "zod";
import {
  bootstrapAccuracyInterval,
  bootstrapMapInterval,
  type Interval,
} from "../eval/bootstrap.ts";
import {
  defaultLinearProbeConfig,
  predictClasses,
  trainLinearProbe,
} from "../eval/linear_probe.ts";
import {
  evaluateVoc07,
  formatVoc07Table,
  type LabelledFeatures,
  scorableClasses,
  selectColumns,
  voc07Json,
} from "../eval/voc07.ts";
import { runZeroshot, zeroshotSchema } from "../eval/zeroshot.ts";
import { barChartSvg } from "../plot/mod.ts";
import { type FeatureSplit, readFeatureSplit } from "../extract/features.ts";
import type { Stage } from "../stage.ts";

const schema = z.strictObject({
  protocol: z.enum(["voc07", "linear", "zeroshot"]).default("voc07").describe(
    "voc07: SVMs on features; linear: softmax probe on features; zeroshot: caption likelihood " +
      "of class prompts under a model (no features, see zeroshot.*)",
  ),
  trainSplit: z.string().default("").describe("split to train on (default: the first extracted)"),
  testSplit: z.string().default("").describe("split to test on (default: the second extracted)"),
  costs: z.array(z.number().positive()).default([0.01, 0.1, 1, 10]).describe("SVM C candidates"),
  folds: z.number().int().min(2).default(3).describe("cross-validation folds for choosing C"),
  workers: z.number().int().min(0).default(0).describe("parallel workers (0: all cores)"),
  bootstrap: z.number().int().min(0).default(1000).describe(
    "resamples of the test images for the 95 % confidence interval (0: none; mAP: bias-shifted)",
  ),
  bootstrapSeed: z.number().int().default(0).describe("seed of the bootstrap resampling"),
  linear: z.strictObject({
    epochs: z.number().int().min(1).default(defaultLinearProbeConfig.epochs),
    batchSize: z.number().int().min(1).default(defaultLinearProbeConfig.batchSize),
    lr: z.number().positive().default(defaultLinearProbeConfig.lr),
    momentum: z.number().min(0).max(1).default(defaultLinearProbeConfig.momentum),
    seed: z.number().int().default(0),
  }).prefault({}),
  zeroshot: zeroshotSchema.prefault({}),
});

/** The evaluate stage's config (after defaults). */
export type EvaluateConfig = z.infer<typeof schema>;

async function splitNames(dir: string): Promise<string[]> {
  const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  return Object.keys((m.summary?.splits ?? {}) as Record<string, number>);
}

/** A feature split as the VOC07 protocol takes it. */
function asLabelled(s: FeatureSplit): LabelledFeatures {
  return { features: s.features, labels: s.labels, rows: s.ids.length, dim: s.dim };
}

function bootstrapOpts(cfg: EvaluateConfig) {
  return { samples: cfg.bootstrap, seed: cfg.bootstrapSeed, level: 0.95 };
}

/** [low, high] in percent. */
function percentInterval(i: Interval): [number, number] {
  return [i.low * 100, i.high * 100];
}

function ciText(ci: [number, number] | null): string {
  return ci ? ` (95 % CI ${ci[0].toFixed(2)}–${ci[1].toFixed(2)})` : "";
}

/** The evaluate stage (see module doc). */
export const evaluateStage: Stage<EvaluateConfig> = {
  name: "evaluate",
  version: "2",
  module: import.meta.url,
  schema,
  artifactInputs: {
    features: {
      kind: "extract",
      description: "frozen features of a labelled dataset (voc07, linear)",
      needed: (cfg) => cfg.protocol !== "zeroshot",
    },
    model: {
      kind: "pretrain",
      description: "zeroshot: the caption model (bicaptioning, captioning or cappa)",
      needed: (cfg) => cfg.protocol === "zeroshot",
    },
    dataset: {
      kind: "caption-labels",
      description: "zeroshot: a VOC-layout set built by caption-labels (instead of zeroshot.path)",
      needed: (cfg) => cfg.protocol === "zeroshot" && cfg.zeroshot.path === "",
    },
  },
  inputs(cfg) {
    const files: Record<string, string> = {};
    if (cfg.protocol === "zeroshot" && cfg.zeroshot.path) files.dataset = cfg.zeroshot.path;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const cfg = ctx.config;
    if (cfg.protocol === "zeroshot") {
      return await runZeroshot({
        config: cfg.zeroshot,
        modelDir: ctx.inputs.model.dir,
        datasetPath: ctx.inputFiles.dataset ?? ctx.inputs.dataset.dir,
        outDir: ctx.outDir,
        bootstrap: { samples: cfg.bootstrap, seed: cfg.bootstrapSeed },
        progress: ctx.progress,
        log: ctx.log,
      });
    }
    const art = ctx.inputs.features; // checked by the runner
    const names = await splitNames(art.dir);
    const trainName = cfg.trainSplit || names[0], testName = cfg.testSplit || names[1];
    if (!trainName || !testName) {
      throw new Error(
        `evaluate: the features artifact has splits [${names}]; name trainSplit and testSplit`,
      );
    }
    const train = await readFeatureSplit(art.dir, trainName);
    const test = await readFeatureSplit(art.dir, testName);
    if (train.classes.join() !== test.classes.join()) {
      throw new Error(`evaluate: splits ${trainName} and ${testName} have different classes`);
    }
    if (cfg.protocol === "linear") {
      const toTargets = (s: FeatureSplit) => {
        const K = s.classes.length;
        return Int32Array.from(s.ids, (_, r) => {
          for (let k = 0; k < K; k++) if (s.labels[r * K + k] === 1) return k;
          throw new Error(`evaluate linear: ${s.ids[r]} has no class (single-label data needed)`);
        });
      };
      const tr = {
        features: train.features,
        labels: toTargets(train),
        rows: train.ids.length,
        dim: train.dim,
      };
      const te = {
        features: test.features,
        labels: toTargets(test),
        rows: test.ids.length,
        dim: test.dim,
      };
      const bar = ctx.progress("linear probe", cfg.linear.epochs, "epoch");
      const res = trainLinearProbe(
        tr,
        train.classes.length,
        cfg.linear,
        (_, loss) => bar.tick(1, { loss: loss.toFixed(4) }),
      );
      bar.done();
      const pred = predictClasses(res.model, te.features, te.rows);
      const correct = Array.from(te.labels, (l, i) => pred[i] === l);
      const top1 = (correct.filter((c) => c).length / Math.max(1, te.rows)) * 100;
      const ci = cfg.bootstrap > 0 && te.rows > 0
        ? percentInterval(bootstrapAccuracyInterval(correct, bootstrapOpts(cfg)))
        : null;
      const out = {
        metric: "top1",
        top1,
        top1CI: ci,
        classes: train.classes.length,
        train: tr.rows,
        test: te.rows,
        epochLoss: res.epochLoss,
      };
      await Deno.writeTextFile(join(ctx.outDir, "linear.json"), JSON.stringify(out, null, 1));
      await Deno.writeTextFile(
        join(ctx.outDir, "report.md"),
        `# Linear probe\n\ntop-1: ${top1.toFixed(2)}%${ciText(ci)} on ${te.rows} images, ` +
          `${tr.rows} training images, ${train.classes.length} classes\n`,
      );
      ctx.log(`top-1 ${top1.toFixed(2)}%${ciText(ci)}`);
      return { protocol: "linear", top1, top1CI: ci };
    }
    const K = train.classes.length;
    const { keep, skipped } = scorableClasses(train.classes, asLabelled(train), asLabelled(test));
    if (keep.length === 0) throw new Error("evaluate: no class has positives in both splits");
    if (skipped.length) {
      ctx.log(
        `skipping ${skipped.length} class(es) without positives in both splits: ${
          skipped.join(", ")
        }`,
      );
    }
    const classes = keep.map((k) => train.classes[k]);
    const bar = ctx.progress("voc07 svm", classes.length, "class");
    const res = await evaluateVoc07(
      {
        classes,
        train: selectColumns(asLabelled(train), K, keep),
        test: selectColumns(asLabelled(test), K, keep),
      },
      {
        svm: { costs: cfg.costs, folds: cfg.folds },
        workers: cfg.workers || undefined,
        onClass: (r, name) => bar.tick(1, { class: name, ap: (r.ap * 100).toFixed(1) }),
      },
    );
    bar.done();
    const testCols = selectColumns(asLabelled(test), K, keep);
    const ci = cfg.bootstrap > 0
      ? percentInterval(bootstrapMapInterval(
        res.classes.map((c, j) => ({
          labels: Int8Array.from({ length: testCols.rows }, (_, r) =>
            testCols.labels[r * keep.length + j]),
          scores: c.testScores,
        })),
        bootstrapOpts(cfg),
      ))
      : null;
    const table = formatVoc07Table(res) +
      (ci
        ? `\nmAP 95 % CI ${ci[0].toFixed(2)} – ${
          ci[1].toFixed(2)
        } (bootstrap over ${test.ids.length} test images)`
        : "");
    const json = {
      ...voc07Json(res),
      mAPCI: ci,
      bootstrap: cfg.bootstrap,
      skippedClasses: skipped,
      trainSplit: trainName,
      testSplit: testName,
    };
    await Deno.writeTextFile(join(ctx.outDir, "voc07.txt"), table + "\n");
    await Deno.writeTextFile(join(ctx.outDir, "voc07.json"), JSON.stringify(json, null, 1));
    await Deno.writeTextFile(
      join(ctx.outDir, "ap.svg"),
      barChartSvg({
        title: `VOC07 SVM AP per class (mAP ${(res.mAP * 100).toFixed(2)})`,
        yLabel: "AP (%)",
        categories: res.classes.map((c) => c.name),
        series: [{ name: "AP", values: res.classes.map((c) => c.ap * 100) }],
      }),
    );
    ctx.log(`mAP ${(res.mAP * 100).toFixed(2)}${ciText(ci)} over ${classes.length} classes`);
    return {
      protocol: "voc07",
      mAP: res.mAP * 100,
      mAPCI: ci,
      mAP11: res.mAP11 * 100,
      classes: classes.length,
      skippedClasses: skipped.length,
    };
  },
};
