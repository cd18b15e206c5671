/**
 * Captioning a whole split and scoring it with CIDEr-D against reference captions from a COCO
 * captions JSON or a Flickr8k-style CSV (chosen by extension: .json → COCO, else CSV).
 */
import { basename } from "node:path";
import { readCocoCaptions } from "../data/coco.ts";
import { readFlickrCaptions, readSplitList } from "../data/flickr.ts";
import { decodeImage } from "../data/image.ts";
import type { ImageRecord } from "../data/types.ts";
import { ciderD } from "../eval/cider.ts";
import type { Progress } from "../stage.ts";
import { type Captioner, captionImages } from "./captioner.ts";
import type { DecodeMethod, DecodeOptions } from "./decoding.ts";

/** Images of a split with their reference captions. */
export interface ReferenceSet {
  images: ImageRecord[];
  references: Map<string, string[]>; // image id -> captions
}

/**
 * Reads references; `split` (a file of image ids or file names, one per line) restricts the
 * images. A split entry matching no image is an error naming the split file and line.
 */
export async function readReferences(
  path: string,
  o: { imagesDir?: string; split?: string } = {},
): Promise<ReferenceSet> {
  const set = path.toLowerCase().endsWith(".json")
    ? await readCocoCaptions(path, { imagesDir: o.imagesDir })
    : await readFlickrCaptions(path, { imagesDir: o.imagesDir });
  const references = new Map<string, string[]>();
  for (const c of set.captions) {
    const list = references.get(c.imageId) ?? [];
    list.push(c.text);
    references.set(c.imageId, list);
  }
  let images = set.images.filter((im) => references.has(im.id));
  if (o.split) {
    const byKey = new Map<string, ImageRecord>();
    for (const im of images) {
      byKey.set(im.id, im);
      byKey.set(basename(im.file), im);
    }
    const wanted = readSplitList(o.split);
    images = wanted.map((name, i) => {
      const im = byKey.get(name);
      if (!im) throw new Error(`${o.split}:${i + 1}: image "${name}" has no reference captions`);
      return im;
    });
  }
  return { images, references };
}

/** One captioned image of a split. */
export interface SplitCaption {
  image_id: string | number;
  file: string;
  caption: string;
}

/**
 * Captions every image (in batches) and scores the captions with CIDEr-D. The per-image seed of
 * nucleus sampling is `seed + index`, so results do not depend on the batch size.
 */
export async function captionAndScore(
  c: Captioner,
  refs: ReferenceSet,
  method: DecodeMethod,
  o: DecodeOptions & { batchSize?: number; progress?: Progress } = {},
): Promise<{ captions: SplitCaption[]; cider: number; perImage: number[] }> {
  const bs = o.batchSize ?? 16;
  const captions: SplitCaption[] = [];
  for (let lo = 0; lo < refs.images.length; lo += bs) {
    const chunk = refs.images.slice(lo, lo + bs);
    const decoded = await Promise.all(chunk.map((im) => decodeImage(im.file)));
    const res = await captionImages(c, decoded, method, { ...o, seed: (o.seed ?? 0) + lo });
    res.forEach((r, i) => {
      const id = chunk[i].id;
      captions.push({
        image_id: /^\d+$/.test(id) ? Number(id) : id,
        file: chunk[i].file,
        caption: r.text,
      });
    });
    o.progress?.tick(chunk.length);
  }
  const scored = ciderD(
    refs.images.map((im, i) => ({
      candidate: captions[i].caption,
      references: refs.references.get(im.id)!,
    })),
  );
  return { captions, cider: scored.score, perImage: scored.perImage };
}
