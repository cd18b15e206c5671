/**
 * Builds a PASCAL VOC2007-style multi-label set whose classes are caption words, from images with
 * several captions each (Flickr8k, COCO): an image is positive for a class (1) when at least two
 * of its captions use the word or one of its synonyms, difficult (0, ignored by the VOC07
 * protocol) when exactly one does, and negative (-1) otherwise. Images are divided into trainval
 * and test by a seeded shuffle. Output: `JPEGImages/<id>` (symlinks or copies),
 * `ImageSets/Main/{trainval,test}.txt` and `ImageSets/Main/<class>_<split>.txt`.
 */
import { basename, extname, join, resolve } from "node:path";
import { SeededRng } from "../../engine/rng.ts";
import { normalize } from "../tokenize/normalize.ts";
import { DataError } from "./errors.ts";
import { writeFolderAtomically } from "./out_folder.ts";
import type { CaptionSet } from "./types.ts";

/**
 * Default classes: visual words frequent in Flickr-style captions, each with its synonyms and
 * inflections (matched as whole words or word sequences in normalised captions).
 */
export const DEFAULT_CAPTION_CLASSES: Readonly<Record<string, readonly string[]>> = {
  dog: ["dog", "dogs", "puppy", "puppies"],
  child: ["child", "children", "kid", "kids", "boy", "boys", "girl", "girls", "toddler", "baby"],
  man: ["man", "men", "guy", "guys"],
  woman: ["woman", "women", "lady", "ladies"],
  water: ["water", "lake", "river", "ocean", "sea", "pool", "stream", "waves", "wave"],
  snow: ["snow", "snowy", "snowboarder", "skier", "skiing", "ski"],
  bike: ["bike", "bikes", "bicycle", "bicycles", "biker", "bikers", "cyclist", "bmx"],
  jump: ["jump", "jumps", "jumping", "jumped", "leaps", "leaping", "leap"],
  ball: ["ball", "balls", "football", "soccer", "basketball", "tennis"],
  beach: ["beach", "sand", "sandy", "shore"],
  grass: ["grass", "grassy", "lawn", "field"],
  street: ["street", "road", "sidewalk", "city"],
  run: ["run", "runs", "running", "runner", "runners"],
  rock: ["rock", "rocks", "rocky", "cliff", "climbing", "climber", "climbs"],
  crowd: ["crowd", "crowds", "audience", "group", "spectators"],
  car: ["car", "cars", "truck", "vehicle", "bus", "motorcycle"],
};

/** Options for captionsToVoc. */
export interface CaptionsToVocOptions {
  /** The captioned images (already restricted to the split to use). */
  set: CaptionSet;
  /** Output folder (must not exist unless `force`). */
  outDir: string;
  /** Class name -> words/phrases that count as a mention (default DEFAULT_CAPTION_CLASSES). */
  classes?: Readonly<Record<string, readonly string[]>>;
  /** Fraction of images in the test split (default 0.5). */
  testFraction?: number;
  /** Seed of the trainval/test shuffle (default 0). */
  seed?: number;
  /** Captions that must mention a class for a positive (default 2; one fewer is difficult). */
  minMentions?: number;
  copy?: boolean;
  force?: boolean;
}

/** What was written: per split, the image count and positives / difficult per class. */
export interface CaptionsToVocReport {
  outDir: string;
  classes: string[];
  images: Record<string, number>;
  positives: Record<string, Record<string, number>>;
  difficult: Record<string, Record<string, number>>;
}

/** Splits a normalised caption into words (letters and digits). */
function words(text: string): string[] {
  return normalize(text).split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
}

/** True when the word list contains the phrase (one or more words) as a contiguous run. */
function mentions(ws: string[], phrase: string[]): boolean {
  outer: for (let i = 0; i + phrase.length <= ws.length; i++) {
    for (let j = 0; j < phrase.length; j++) if (ws[i + j] !== phrase[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Labels [images, classes] (1 / 0 / -1, row-major) by counting, per image, the captions that
 * mention each class.
 */
export function captionWordLabels(
  set: CaptionSet,
  classes: Readonly<Record<string, readonly string[]>>,
  minMentions = 2,
): Int8Array {
  const names = Object.keys(classes);
  const phrases = names.map((c) => classes[c].map((p) => words(p)).filter((p) => p.length));
  const row = new Map(set.images.map((im, i) => [im.id, i]));
  const counts = new Int32Array(set.images.length * names.length);
  for (const cap of set.captions) {
    const i = row.get(cap.imageId);
    if (i === undefined) continue;
    const ws = words(cap.text);
    phrases.forEach((ps, k) => {
      if (ps.some((p) => mentions(ws, p))) counts[i * names.length + k]++;
    });
  }
  return Int8Array.from(counts, (n) => (n >= minMentions ? 1 : n === minMentions - 1 ? 0 : -1));
}

/** Reads a class file: a JSON object of class name -> list of words/phrases. */
export function readClassFile(path: string): Record<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new DataError({ file: path }, `cannot read class list (${(e as Error).message})`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new DataError({ file: path }, "expected a JSON object {class: [words...]}");
  }
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!/^[\w-]+$/.test(k)) {
      throw new DataError(
        { file: path, field: k },
        "class names may hold letters, digits, _ and -",
      );
    }
    if (!Array.isArray(v) || v.length === 0 || !v.every((w) => typeof w === "string" && w.trim())) {
      throw new DataError({ file: path, field: k }, "expected a non-empty list of words");
    }
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw new DataError({ file: path }, "no classes");
  return out;
}

/** Builds the set (see module doc); writes into a temp folder renamed into place at the end. */
export async function captionsToVoc(opts: CaptionsToVocOptions): Promise<CaptionsToVocReport> {
  const outDir = resolve(opts.outDir);
  const classes = opts.classes ?? DEFAULT_CAPTION_CLASSES;
  const names = Object.keys(classes);
  const testFraction = opts.testFraction ?? 0.5;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new DataError({ file: outDir }, `test fraction ${testFraction} is not in (0, 1)`);
  }
  const { images } = opts.set;
  if (images.length < 2) {
    throw new DataError({ file: outDir }, `${images.length} captioned images: need at least 2`);
  }
  const labels = captionWordLabels(opts.set, classes, opts.minMentions ?? 2);
  // Seeded Fisher-Yates over image rows; the first testCount rows are the test split.
  const order = images.map((_, i) => i);
  const rng = new SeededRng(opts.seed ?? 0);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const testCount = Math.min(
    images.length - 1,
    Math.max(1, Math.round(images.length * testFraction)),
  );
  const splits: Record<string, number[]> = {
    trainval: order.slice(testCount).sort((a, b) => a - b),
    test: order.slice(0, testCount).sort((a, b) => a - b),
  };
  const ids = images.map((im) => basename(im.file, extname(im.file)));
  if (new Set(ids).size !== ids.length) {
    throw new DataError({ file: images[0].file }, "two images share a file name stem");
  }
  const report: CaptionsToVocReport = {
    outDir,
    classes: names,
    images: {},
    positives: {},
    difficult: {},
  };
  return await writeFolderAtomically(outDir, opts.force, async (tmp) => {
    const main = join(tmp, "ImageSets", "Main");
    await Deno.mkdir(join(tmp, "JPEGImages"), { recursive: true });
    await Deno.mkdir(main, { recursive: true });
    for (const [i, im] of images.entries()) {
      const dst = join(tmp, "JPEGImages", `${ids[i]}${extname(im.file).toLowerCase()}`);
      if (opts.copy) await Deno.copyFile(im.file, dst);
      else await Deno.symlink(resolve(im.file), dst);
    }
    for (const [split, rows] of Object.entries(splits)) {
      await Deno.writeTextFile(join(main, `${split}.txt`), rows.map((r) => ids[r] + "\n").join(""));
      report.images[split] = rows.length;
      report.positives[split] = {};
      report.difficult[split] = {};
      for (const [k, cls] of names.entries()) {
        const vals = rows.map((r) => labels[r * names.length + k]);
        const lines = rows.map((r, n) => `${ids[r]} ${vals[n] === -1 ? "-1" : ` ${vals[n]}`}\n`);
        await Deno.writeTextFile(join(main, `${cls}_${split}.txt`), lines.join(""));
        report.positives[split][cls] = vals.filter((v) => v === 1).length;
        report.difficult[split][cls] = vals.filter((v) => v === 0).length;
      }
    }
    return report;
  });
}
