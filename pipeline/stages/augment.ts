/**
 * augment stage: decodes every image of a captioned dataset (COCO captions JSON or Flickr8k CSV),
 * resizes its short side (antialiased) and packs the pixels into uint8 shards plus index.json
 * (see pipeline/augment/shards.ts). The per-step augmentation that reads these shards lives in
 * pipeline/augment/loader.ts and runs inside pretrain / extract.
 */
import { z } from "zod";
import { packImages, packWorkers } from "../augment/pack.ts";
import { writeSkippedList } from "../data/errors.ts";
import type { Stage } from "../stage.ts";
import { captionSourceFields, imagesDirOf, readCaptions } from "./ingest.ts";

const schema = z.strictObject({
  ...captionSourceFields,
  shortSide: z.number().int().min(8).max(4096).default(256).describe(
    "images are resized so their short side is this many pixels",
  ),
  shardMiB: z.number().int().min(1).max(4096).default(256).describe("maximum shard file size"),
  skipBad: z.boolean().default(false).describe("skip and count bad records instead of failing"),
});

/** The augment stage's config (after defaults). */
export type AugmentConfig = z.infer<typeof schema>;

/** The augment stage (see module doc). */
export const augmentStage: Stage<AugmentConfig> = {
  name: "augment",
  version: "1",
  module: import.meta.url,
  schema,
  inputs(cfg) {
    const files: Record<string, string> = { captions: cfg.captions };
    const images = imagesDirOf(cfg); // decoded: its files are part of the key
    if (images) files.images = images;
    if (cfg.split) files.split = cfg.split;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const cfg = ctx.config, f = ctx.inputFiles;
    ctx.log(`reading ${f.captions}`);
    // Images are decoded below, which finds missing and corrupt files with their names.
    const set = await readCaptions({ ...cfg, checkImages: "none" }, {
      captions: f.captions,
      images: f.images,
      split: f.split,
    });
    if (set.images.length === 0) throw new Error(`${f.captions}: no images with captions`);
    ctx.log(
      `packing ${set.images.length} images at short side ${cfg.shortSide} ` +
        `(${packWorkers()} workers)`,
    );
    const bar = ctx.progress("pack", set.images.length, "img");
    const { index, bytes, skipped } = await packImages({
      images: set.images,
      dir: ctx.outDir,
      shortSide: cfg.shortSide,
      shardBytes: cfg.shardMiB * 1024 * 1024,
      skipBad: cfg.skipBad,
      onImage: () => bar.tick(),
    });
    bar.done();
    if (index.images.length === 0) throw new Error(`${f.captions}: every image failed to decode`);
    const counts = await writeSkippedList(ctx.outDir, [...set.skipped, ...skipped], ctx.log);
    return {
      images: index.images.length,
      shards: index.shards.length,
      bytes,
      shortSide: cfg.shortSide,
      ...counts,
    };
  },
};
