/**
 * scenes stage: the embedded default dataset — synthetic captioned scenes (COCO captions layout)
 * plus VOC2007-style downstream sets — generated deterministically from a seed into the cache, so
 * every later stage can key on it and a second demo is served from the cache.
 *
 * Artifact: data/captions/{train2017,val2017}/, data/captions/annotations/*.json,
 * data/voc/VOC2007/, data/voc-shapecolor/VOC2007/, data/preview.png, data/dataset.json.
 */
import { join } from "node:path";
import { z } from "zod";
import { generateDataset, GENERATOR_VERSION } from "../../fixtures/scenes/dataset.ts";
import type { Stage } from "../stage.ts";

const schema = z.strictObject({
  seed: z.number().int().default(0),
  train: z.number().int().min(1).default(2000).describe("captioned training images"),
  val: z.number().int().min(1).default(500).describe("captioned validation images"),
  vocTrain: z.number().int().min(1).default(1000).describe("VOC-style trainval images"),
  vocTest: z.number().int().min(1).default(1000).describe("VOC-style test images"),
  size: z.number().int().min(32).max(1024).default(64).describe("image width and height"),
});

/** The scenes stage's config (after defaults). */
export type ScenesConfig = z.infer<typeof schema>;

/** The scenes stage (see module doc). */
export const scenesStage: Stage<ScenesConfig> = {
  name: "scenes",
  version: `1+${GENERATOR_VERSION}`,
  module: import.meta.url,
  schema,
  inputs() {
    return { artifacts: {}, files: {} };
  },
  run(ctx) {
    const c = ctx.config;
    const total = c.train + c.val + c.vocTrain + c.vocTest;
    const bar = ctx.progress("generate", total, "img");
    let last = 0, lastLabel = "";
    const summary = generateDataset({
      out: join(ctx.outDir, "data"),
      seed: c.seed,
      train: c.train,
      val: c.val,
      vocTrain: c.vocTrain,
      vocTest: c.vocTest,
      size: c.size,
      onProgress: (label, done) => {
        if (label !== lastLabel) [last, lastLabel] = [0, label];
        bar.tick(done - last);
        last = done;
      },
    });
    bar.done();
    return Promise.resolve({
      images: summary.images,
      captions: summary.captions,
      leftRightCaptionShare: summary.leftRightCaptionShare,
      meanObjectsPerImage: summary.meanObjectsPerImage,
    });
  },
};
