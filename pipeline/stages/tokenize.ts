/**
 * tokenize stage: reads captions (COCO captions JSON or Flickr8k CSV), normalizes them, trains a
 * SentencePiece-compatible BPE vocabulary (10K pieces by default) and encodes every caption as
 * `[SOS] … [EOS]` (≤ 30 ids, `[EOS]` kept). Artifact: vocab.json, tokenizer.vocab
 * (SentencePiece-style), tokens.i32 + offsets.u32 + index.json (image id → caption rows).
 */
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "../config.ts";
import { BadInputPolicy, writeSkippedList } from "../data/errors.ts";
import type { BadRecord } from "../data/types.ts";
import type { Caption, CaptionSet } from "../data/types.ts";
import type { Stage } from "../stage.ts";
import { readSplitList } from "../data/flickr.ts";
import { captionSourceFields, imagesDirOf, readCaptions } from "./ingest.ts";
import { normalize } from "../tokenize/normalize.ts";
import { type CaptionIndex, frameRows, type IndexImage, writePacked } from "../tokenize/packed.ts";
import { Tokenizer, trainVocab } from "../tokenize/tokenizer.ts";

const schema = z.strictObject({
  ...captionSourceFields,
  vocabSplit: z.string().default("").describe(
    "optional file listing the image ids whose captions train the vocabulary (all are encoded)",
  ),
  checkImages: z.enum(["none", "exists", "decode"]).default("none").describe(
    "how to check each caption's image",
  ),
  skipBad: z.boolean().default(false).describe("skip and count bad captions instead of failing"),
  vocabSize: z.number().int().min(8).default(10000).describe("vocabulary size, specials included"),
  maxLength: z.number().int().min(2).default(30).describe("max ids per caption incl. [SOS]/[EOS]"),
  lowercase: z.boolean().default(true).describe("lowercase captions"),
  stripAccents: z.boolean().default(true).describe("strip accents (combining marks after NFKD)"),
  characterCoverage: z.number().min(0.9).max(1).default(1).describe(
    "share of characters that must be pieces",
  ),
  maxPieceLength: z.number().int().min(1).max(64).default(16).describe("max characters per piece"),
  digitsApart: z.boolean().default(true).describe("never merge digits with punctuation"),
  spmCandidateWindow: z.boolean().default(true).describe(
    "pick merges as SentencePiece 0.1.x does (top-5% candidate window; settles ties like it)",
  ),
});

/** The tokenize stage's config (after defaults). */
export type TokenizeConfig = z.infer<typeof schema>;

/**
 * Normalizes captions; a caption that is empty after normalization fails with its location
 * (or, with skipBad, is dropped and counted).
 */
export function normalizeCaptions(
  captions: Caption[],
  cfg: Pick<TokenizeConfig, "lowercase" | "stripAccents" | "skipBad">,
): { kept: Caption[]; normalized: string[]; skipped: BadRecord[] } {
  const policy = new BadInputPolicy(cfg.skipBad);
  const kept: Caption[] = [];
  const normalized: string[] = [];
  for (const c of captions) {
    const n = normalize(c.text, cfg);
    if (n === "") {
      policy.bad(
        { ...c.source, field: c.source.field ?? "caption" },
        "empty caption (nothing left after normalization)",
      );
      continue;
    }
    kept.push(c);
    normalized.push(n);
  }
  return { kept, normalized, skipped: policy.skipped };
}

/** Groups caption rows by image (images in dataset order, captions in file order). */
function groupByImage(set: CaptionSet, kept: Caption[]): { order: number[]; images: IndexImage[] } {
  const byImage = new Map<string, number[]>();
  kept.forEach((c, i) => {
    const rows = byImage.get(c.imageId);
    if (rows) rows.push(i);
    else byImage.set(c.imageId, [i]);
  });
  const order: number[] = [];
  const images: IndexImage[] = [];
  for (const im of set.images) {
    const rows = byImage.get(im.id);
    if (!rows) continue;
    images.push({ id: im.id, file: im.file, first: order.length, count: rows.length });
    order.push(...rows);
  }
  return { order, images };
}

/** The tokenize stage (see module doc). */
export const tokenizeStage: Stage<TokenizeConfig> = {
  name: "tokenize",
  version: "1",
  module: import.meta.url,
  schema,
  inputs(cfg) {
    const files: Record<string, string> = { captions: cfg.captions };
    // The images themselves are read only when checked.
    const images = cfg.checkImages === "none" ? cfg.images : imagesDirOf(cfg);
    if (images) files.images = images;
    if (cfg.split) files.split = cfg.split;
    if (cfg.vocabSplit) files.vocabSplit = cfg.vocabSplit;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const cfg = ctx.config;
    const f = ctx.inputFiles;
    ctx.log(`reading ${f.captions}`);
    const set = await readCaptions(
      {
        captions: f.captions,
        format: cfg.format,
        images: cfg.images,
        split: cfg.split,
        checkImages: cfg.checkImages,
        skipBad: cfg.skipBad,
      },
      { captions: f.captions, images: f.images, split: f.split },
    );
    const { kept, normalized, skipped } = normalizeCaptions(set.captions, cfg);
    const { order, images } = groupByImage(set, kept);
    const lines = order.map((i) => normalized[i]);
    if (lines.length === 0) {
      throw new ConfigError(
        cfg.split
          ? `tokenize: split: ${cfg.split} matches no captioned image of ${cfg.captions}`
          : `tokenize: captions: ${cfg.captions} holds no caption`,
      );
    }

    let trainLines = lines;
    if (f.vocabSplit) {
      const keep = new Set(readSplitList(f.vocabSplit));
      trainLines = order.filter((i) => keep.has(kept[i].imageId)).map((i) => normalized[i]);
      if (trainLines.length === 0) {
        throw new Error(`${f.vocabSplit}: no captioned image of this dataset is listed`);
      }
    }
    ctx.log(`training BPE on ${trainLines.length} captions (vocabulary ${cfg.vocabSize})`);
    const t0 = performance.now();
    const vocab = await trainVocab(trainLines, cfg);
    const trainMs = performance.now() - t0;
    if (vocab.size < cfg.vocabSize) {
      ctx.log(`note: the captions allow only ${vocab.size} pieces (asked for ${cfg.vocabSize})`);
    }

    const tok = await Tokenizer.create(vocab);
    const bar = ctx.progress("encode", lines.length, "captions");
    const raw = tok.encodeNormalized(lines);
    const framed = frameRows(raw.ids, raw.offsets, cfg.maxLength);
    bar.tick(lines.length);
    bar.done();

    const index: CaptionIndex = {
      format: "virtex-captions/1",
      maxLength: cfg.maxLength,
      rows: lines.length,
      images,
    };
    await Deno.writeTextFile(join(ctx.outDir, "vocab.json"), JSON.stringify(vocab.toJson()));
    await Deno.writeTextFile(join(ctx.outDir, "tokenizer.vocab"), vocab.toSpmVocab());
    await writePacked(ctx.outDir, { tokens: framed.tokens, offsets: framed.offsets, index });
    const tokens = raw.ids.length;
    const counts = await writeSkippedList(ctx.outDir, [...set.skipped, ...skipped], ctx.log);
    return {
      images: images.length,
      records: set.records ?? lines.length + counts.skipped,
      captions: lines.length,
      ...counts,
      vocabSize: vocab.size,
      truncated: framed.truncated,
      meanTokensPerCaption: lines.length ? tokens / lines.length : 0,
      trainSeconds: trainMs / 1000,
    };
  },
};
