/**
 * augment stage: decodes every image of a captioned dataset (COCO captions JSON or Flickr8k CSV),
 * resizes its short side (antialiased) and packs the pixels into uint8 shards plus index.json
 * (see pipeline/augment/shards.ts). The per-step augmentation that reads these shards lives in
 * pipeline/augment/loader.ts and runs inside pretrain / extract.
 */
import { z } from "zod";
import { decodeResized } from "../augment/pack.ts";
import { ShardWriter } from "../augment/shards.ts";
import { writeSkippedList } from "../data/errors.ts";
import type { BadRecord } from "../data/types.ts";
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

/**
 * Worker count for decoding: all cores, at most 8; $VIRTEX_WORKERS overrides (0 = decode in this
 * thread). Does not change the output.
 */
function packWorkers(): number {
  const env = Deno.env.get("VIRTEX_WORKERS");
  if (env !== undefined && Number(env) >= 0) return Math.floor(Number(env));
  return Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

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
    const skipped: BadRecord[] = [...set.skipped];
    const writer = new ShardWriter(ctx.outDir, cfg.shortSide, cfg.shardMiB * 1024 * 1024);
    const workers = packWorkers();
    ctx.log(
      `packing ${set.images.length} images at short side ${cfg.shortSide} (${workers} workers)`,
    );
    const bar = ctx.progress("pack", set.images.length, "img");
    let bytes = 0, i = 0;
    for await (const r of decodeResized(set.images.map((im) => im.file), cfg.shortSide, workers)) {
      const rec = set.images[i++];
      if ("error" in r) {
        if (!cfg.skipBad) throw new Error(`image "${rec.id}": ${r.error.message}`);
        skipped.push({ source: { file: rec.file }, reason: r.error.message, kind: "image" });
      } else {
        await writer.add(rec.id, r.image);
        bytes += r.image.data.length;
      }
      bar.tick();
    }
    bar.done();
    if (writer.count === 0) throw new Error(`${f.captions}: every image failed to decode`);
    const index = await writer.finish();
    const counts = await writeSkippedList(ctx.outDir, skipped, ctx.log);
    return {
      images: index.images.length,
      shards: index.shards.length,
      bytes,
      shortSide: cfg.shortSide,
      ...counts,
    };
  },
};
