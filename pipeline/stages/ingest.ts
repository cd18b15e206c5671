/**
 * ingest stage: reads a captioned dataset (COCO captions JSON or Flickr8k-style CSV), checks it,
 * and writes a normalised `captions.jsonl` artifact: one {"image", "file", "caption"} per line,
 * images in dataset order. Bad records fail the stage (naming file and line/field) or, with
 * skipBad, are skipped and listed in `skipped.jsonl`.
 */
import { join } from "node:path";
import { z } from "zod";
import { cocoImagesDir, readCocoCaptions } from "../data/coco.ts";
import { writeSkippedList } from "../data/errors.ts";
import { flickrImagesDir, readFlickrCaptions, readSplitList } from "../data/flickr.ts";
import type { CaptionSet, ReadReport } from "../data/types.ts";
import type { Stage } from "../stage.ts";

/** The config keys of every stage that reads a captioned dataset. */
export const captionSourceFields = {
  captions: z.string().min(1).describe("captions file: COCO captions JSON or Flickr8k CSV"),
  format: z.enum(["auto", "coco", "flickr"]).default("auto").describe(
    "input format; auto = by extension (.json → coco, else flickr)",
  ),
  images: z.string().default("").describe(
    "image folder (default: COCO <json dir>/../<split>, Flickr images/ beside the CSV)",
  ),
  split: z.string().default("").describe("optional file listing the image ids to keep"),
};

const schema = z.strictObject({
  ...captionSourceFields,
  checkImages: z.enum(["none", "exists", "decode"]).default("exists").describe(
    "how to check each image (decode finds corrupt files; slower)",
  ),
  skipBad: z.boolean().default(false).describe("skip and count bad records instead of failing"),
});

/** The ingest stage's config (after defaults). */
export type IngestConfig = z.infer<typeof schema>;

/** Detects the captions format from the file name. */
export function detectFormat(path: string): "coco" | "flickr" {
  return path.toLowerCase().endsWith(".json") ? "coco" : "flickr";
}

/**
 * The image folder a captions config reads: `images` when set, else the dataset's default place
 * (Flickr: images/ beside the CSV; COCO: <json dir>/../<split>/), or "" when there is none. Stages
 * that read images list it as an input file, so replacing an image changes their key.
 */
export function imagesDirOf(
  cfg: { captions: string; format: "auto" | "coco" | "flickr"; images: string },
): string {
  if (cfg.images) return cfg.images;
  const format = cfg.format === "auto" ? detectFormat(cfg.captions) : cfg.format;
  return (format === "flickr" ? flickrImagesDir(cfg.captions) : cocoImagesDir(cfg.captions)) ?? "";
}

/** Reads the captions named by an ingest config. */
export async function readCaptions(
  cfg: IngestConfig,
  paths: { captions: string; images?: string; split?: string },
): Promise<CaptionSet & ReadReport> {
  const format = cfg.format === "auto" ? detectFormat(paths.captions) : cfg.format;
  const only = paths.split ? new Set(readSplitList(paths.split)) : undefined;
  const common = {
    imagesDir: paths.images || undefined,
    checkImages: cfg.checkImages,
    skipBad: cfg.skipBad,
  };
  if (format === "flickr") return await readFlickrCaptions(paths.captions, { ...common, only });
  const set = await readCocoCaptions(paths.captions, common);
  if (!only) return set;
  const captions = set.captions.filter((c) => only.has(c.imageId));
  return {
    images: set.images.filter((i) => only.has(i.id)),
    captions,
    skipped: set.skipped,
    // Captions of images outside the split were read but are not part of this selection.
    records: (set.records ?? 0) - (set.captions.length - captions.length),
  };
}

/** The ingest stage (see module doc). */
export const ingestStage: Stage<IngestConfig> = {
  name: "ingest",
  version: "1",
  module: import.meta.url,
  schema,
  inputs(cfg) {
    const files: Record<string, string> = { captions: cfg.captions };
    const images = cfg.checkImages === "none" ? cfg.images : imagesDirOf(cfg);
    if (images) files.images = images;
    if (cfg.split) files.split = cfg.split;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const f = ctx.inputFiles;
    ctx.log(`reading ${f.captions}`);
    const set = await readCaptions(ctx.config, {
      captions: f.captions,
      images: f.images,
      split: f.split,
    });
    const files = new Map(set.images.map((i) => [i.id, i.file]));
    const bar = ctx.progress("write", set.captions.length, "captions");
    const lines: string[] = [];
    for (const c of set.captions) {
      lines.push(JSON.stringify({ image: c.imageId, file: files.get(c.imageId), caption: c.text }));
      bar.tick();
    }
    bar.done();
    await Deno.writeTextFile(join(ctx.outDir, "captions.jsonl"), lines.join("\n") + "\n");
    const counts = await writeSkippedList(ctx.outDir, set.skipped, ctx.log);
    const perImage = new Map<string, number>();
    for (const c of set.captions) perImage.set(c.imageId, (perImage.get(c.imageId) ?? 0) + 1);
    const per = [...perImage.values()];
    return {
      images: set.images.length,
      records: set.records ?? set.captions.length + counts.skipped,
      captions: set.captions.length,
      ...counts,
      minCaptionsPerImage: per.length ? Math.min(...per) : 0,
      maxCaptionsPerImage: per.length ? Math.max(...per) : 0,
    };
  },
};
