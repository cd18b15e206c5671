/**
 * caption-labels stage: a PASCAL VOC-layout multi-label set whose classes are caption words, built
 * from a captioned split (pipeline/data/captions_to_voc.ts): positive when at least `minMentions`
 * of an image's captions use the word or a synonym, difficult when one fewer does. The artifact is
 * the VOC folder itself (images copied in), so `extract --input dataset=<key>` reads it and a
 * pipeline file can build its own downstream set from a split it never pretrains on.
 */
import { z } from "zod";
import { captionsToVoc, DEFAULT_CAPTION_CLASSES } from "../data/captions_to_voc.ts";
import type { Stage } from "../stage.ts";
import { captionSourceFields, imagesDirOf, readCaptions } from "./ingest.ts";

const schema = z.strictObject({
  ...captionSourceFields,
  classes: z.record(z.string().regex(/^[\w-]+$/), z.array(z.string().min(1)).min(1))
    .default(DEFAULT_CAPTION_CLASSES as Record<string, string[]>).describe(
      `class -> words/phrases counting as a mention (default: ${
        Object.keys(DEFAULT_CAPTION_CLASSES).join(", ")
      })`,
    ),
  minMentions: z.number().int().min(1).default(2).describe(
    "captions that must use a class word for a positive (one fewer: difficult)",
  ),
  testFraction: z.number().gt(0).lt(1).default(0.5).describe("share of images in the test split"),
  seed: z.number().int().default(0).describe("seed of the trainval/test division"),
});

/** The caption-labels stage's config (after defaults). */
export type CaptionLabelsConfig = z.infer<typeof schema>;

/** The caption-labels stage (see module doc). */
export const captionLabelsStage: Stage<CaptionLabelsConfig> = {
  name: "caption-labels",
  version: "1",
  module: import.meta.url,
  seedKey: "seed",
  schema,
  inputs(cfg) {
    const files: Record<string, string> = { captions: cfg.captions };
    const images = imagesDirOf(cfg);
    if (images) files.images = images;
    if (cfg.split) files.split = cfg.split;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const cfg = ctx.config, f = ctx.inputFiles;
    const set = await readCaptions(
      { ...cfg, checkImages: "exists", skipBad: false },
      { captions: f.captions, images: f.images, split: f.split },
    );
    const r = await captionsToVoc({
      set,
      outDir: ctx.outDir,
      classes: cfg.classes,
      testFraction: cfg.testFraction,
      minMentions: cfg.minMentions,
      seed: cfg.seed,
      copy: true,
      force: true, // ctx.outDir is this build's own (empty) folder
    });
    for (const split of Object.keys(r.images)) {
      ctx.log(
        `${split}: ${r.images[split]} images; positives ${
          r.classes.map((c) => `${c} ${r.positives[split][c]}`).join(", ")
        }`,
      );
    }
    return { classes: r.classes, images: r.images, positives: r.positives, difficult: r.difficult };
  },
};
