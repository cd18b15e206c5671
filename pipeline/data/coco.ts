/**
 * COCO readers: captions JSON (`captions_*.json`) → CaptionSet, instances JSON
 * (`instances_*.json`) → LabelSet of the category set present in each image (80 COCO classes).
 * Several files (e.g. train + val) can be read as one set.
 */
import { basename, dirname, join, resolve } from "node:path";
import { checkImage, type ImageCheck } from "./check.ts";
import { type BadInputOptions, BadInputPolicy, DataError } from "./errors.ts";
import { readJsonFile } from "./json_file.ts";
import type { Caption, CaptionSet, ImageRecord, LabelSet, ReadReport } from "./types.ts";

/** Options for the COCO readers. */
export interface CocoReadOptions extends BadInputOptions {
  /**
   * Folder holding the images' file_name. Default: the COCO layout guess
   * `<json dir>/../<split>` for `annotations/captions_<split>.json`.
   */
  imagesDir?: string;
  /** How to check each image: "exists" (default), "decode" (slow, finds corrupt files), "none". */
  checkImages?: ImageCheck;
}

type Obj = Record<string, unknown>;
/** Whether a JSON value is an object (not null, not an array). */
export const isObj = (v: unknown): v is Obj =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The COCO layout's image folder for `annotations/<kind>_<split>.json`, or null when absent. */
export function cocoImagesDir(path: string): string | null {
  const m = /^(?:captions|instances|person_keypoints)_(.+)\.json$/.exec(basename(path));
  if (!m) return null;
  const guess = resolve(dirname(path), "..", m[1]);
  try {
    return Deno.statSync(guess).isDirectory ? guess : null;
  } catch {
    return null;
  }
}

function imagesDirFor(path: string, opts: CocoReadOptions): string {
  if (opts.imagesDir) return resolve(opts.imagesDir);
  const guess = cocoImagesDir(path);
  if (guess) return guess;
  if ((opts.checkImages ?? "exists") === "none") return resolve(dirname(path));
  throw new DataError(
    { file: path },
    "cannot find the image folder (expected <json dir>/../<split>/); set the `images` key to it",
  );
}

/** The array at top-level `key` of a parsed JSON document; an error names the file and key. */
export function topArray(doc: unknown, path: string, key: string): unknown[] {
  if (!isObj(doc)) throw new DataError({ file: path }, "expected a JSON object at the top level");
  const v = doc[key];
  if (!Array.isArray(v)) throw new DataError({ file: path, field: key }, `missing array "${key}"`);
  return v;
}

/**
 * Reads `images[]` of one COCO-style file (COCO, iNaturalist): id → record, with per-entry
 * validation and image checks; file_name is relative to `opts.imagesDir` (default: the COCO layout
 * guess).
 */
export async function readImages(
  doc: unknown,
  path: string,
  opts: CocoReadOptions,
  policy: BadInputPolicy,
): Promise<{ byId: Map<string, ImageRecord>; order: string[]; skipped: Map<string, number> }> {
  const dir = imagesDirFor(path, opts);
  const byId = new Map<string, ImageRecord>();
  const order: string[] = [];
  const skipped = new Map<string, number>(); // image id -> index in images[] of its bad entry
  const entries = topArray(doc, path, "images");
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const field = `images[${i}]`;
    if (!isObj(e)) {
      policy.bad({ file: path, field }, "expected an object", "image");
      continue;
    }
    const id = e.id;
    if (!((typeof id === "number" && Number.isFinite(id)) || (typeof id === "string" && id))) {
      policy.bad({ file: path, field: `${field}.id` }, "missing or invalid image id", "image");
      continue;
    }
    const sid = String(id);
    if (typeof e.file_name !== "string" || e.file_name === "") {
      policy.bad({ file: path, field: `${field}.file_name` }, "missing file_name", "image");
      skipped.set(sid, i);
      continue;
    }
    if (byId.has(sid)) {
      policy.bad({ file: path, field: `${field}.id` }, `duplicate image id ${sid}`, "image");
      continue;
    }
    const file = join(dir, e.file_name);
    const ok = await checkImage(
      file,
      opts.checkImages ?? "exists",
      policy,
      { file: path, field: `${field}.file_name` },
      "image",
    );
    if (!ok) {
      skipped.set(sid, i);
      continue;
    }
    byId.set(sid, { id: sid, file });
    order.push(sid);
  }
  return { byId, order, skipped };
}

/**
 * The annotation at `field` if it is an object whose image_id names an image read from this file
 * (`byId`); else the problem goes to `policy` (an image that was itself skipped, an id not in
 * images[], no id) and null is returned. `noun` names the annotation in messages ("caption").
 */
export function annotatedImage(
  a: unknown,
  field: string,
  path: string,
  images: { byId: Map<string, ImageRecord>; skipped: Map<string, number> },
  policy: BadInputPolicy,
  noun: string,
): { sid: string; ann: Obj } | null {
  if (!isObj(a)) {
    policy.bad({ file: path, field }, "expected an object");
    return null;
  }
  const sid = a.image_id === undefined || a.image_id === null ? "" : String(a.image_id);
  if (images.skipped.has(sid)) {
    policy.bad(
      { file: path, field: `${field}.image_id` },
      `its image ${sid} was skipped (images[${images.skipped.get(sid)}])`,
    );
    return null;
  }
  if (!images.byId.has(sid)) {
    policy.bad(
      { file: path, field: `${field}.image_id` },
      sid ? `${noun} names image id ${sid}, which is not in images[]` : "missing image_id",
    );
    return null;
  }
  return { sid, ann: a };
}

/**
 * Reads one or more COCO captions files. Images without any (valid) caption are left out.
 * Bad entries (missing fields, a caption naming an unknown image, an empty caption, a missing or
 * corrupt image) throw a DataError naming the file and JSON field, or are skipped and listed in
 * `skipped` with `skipBad`.
 */
export async function readCocoCaptions(
  paths: string | string[],
  opts: CocoReadOptions = {},
): Promise<CaptionSet & ReadReport> {
  const policy = new BadInputPolicy(opts.skipBad);
  const images: ImageRecord[] = [];
  const captions: Caption[] = [];
  const seen = new Map<string, ImageRecord>();
  let records = 0;
  for (const path of typeof paths === "string" ? [paths] : paths) {
    const doc = readJsonFile(path);
    const read = await readImages(doc, path, opts, policy);
    const { byId, order } = read;
    const anns = topArray(doc, path, "annotations");
    records += anns.length;
    const withCaption = new Set<string>();
    for (let j = 0; j < anns.length; j++) {
      const field = `annotations[${j}]`;
      const hit = annotatedImage(anns[j], field, path, read, policy, "caption");
      if (!hit) continue;
      const { sid, ann: a } = hit;
      if (typeof a.caption !== "string") {
        policy.bad({ file: path, field: `${field}.caption` }, "missing caption text");
        continue;
      }
      if (a.caption.trim() === "") {
        policy.bad({ file: path, field: `${field}.caption` }, "empty caption");
        continue;
      }
      captions.push({ imageId: sid, text: a.caption, source: { file: path, field } });
      withCaption.add(sid);
    }
    for (const sid of order) {
      if (!withCaption.has(sid)) continue;
      const rec = byId.get(sid)!;
      const prev = seen.get(sid);
      if (prev) {
        if (prev.file !== rec.file) {
          throw new DataError(
            { file: path, field: "images" },
            `image id ${sid} also appears in an earlier file with a different file (${prev.file})`,
          );
        }
        continue;
      }
      seen.set(sid, rec);
      images.push(rec);
    }
  }
  return { images, captions, skipped: policy.skipped, records };
}

/**
 * Reads one or more COCO instances files into a multi-label set: classes are the categories
 * ordered by category id (80 for COCO), and labels[i, c] is 1 when image i has at least one
 * annotation (crowd included) of category c, else -1. Every image in images[] is included.
 */
export async function readCocoInstances(
  paths: string | string[],
  opts: CocoReadOptions = {},
): Promise<LabelSet & ReadReport> {
  const policy = new BadInputPolicy(opts.skipBad);
  let classes: string[] | null = null;
  let catIds: number[] = [];
  const images: ImageRecord[] = [];
  const present: Set<number>[] = [];
  const index = new Map<string, number>();
  for (const path of typeof paths === "string" ? [paths] : paths) {
    const doc = readJsonFile(path);
    const cats = topArray(doc, path, "categories");
    const parsed: { id: number; name: string }[] = [];
    cats.forEach((c, k) => {
      if (!isObj(c) || typeof c.id !== "number" || typeof c.name !== "string") {
        throw new DataError({ file: path, field: `categories[${k}]` }, "expected {id, name}");
      }
      parsed.push({ id: c.id, name: c.name });
    });
    parsed.sort((a, b) => a.id - b.id);
    const names = parsed.map((c) => c.name);
    if (classes === null) {
      classes = names;
      catIds = parsed.map((c) => c.id);
    } else if (names.join("\n") !== classes.join("\n")) {
      throw new DataError(
        { file: path, field: "categories" },
        "categories differ from the first file's",
      );
    }
    const catIndex = new Map(catIds.map((id, k) => [id, k]));
    const read = await readImages(doc, path, opts, policy);
    const { byId, order } = read;
    for (const sid of order) {
      if (index.has(sid)) {
        throw new DataError({ file: path, field: "images" }, `image id ${sid} appears twice`);
      }
      index.set(sid, images.length);
      images.push(byId.get(sid)!);
      present.push(new Set());
    }
    const anns = topArray(doc, path, "annotations");
    for (let j = 0; j < anns.length; j++) {
      const field = `annotations[${j}]`;
      const hit = annotatedImage(anns[j], field, path, read, policy, "annotation");
      if (!hit) continue;
      const { sid, ann: a } = hit;
      const row = index.get(sid)!;
      const k = typeof a.category_id === "number" ? catIndex.get(a.category_id) : undefined;
      if (k === undefined) {
        policy.bad(
          { file: path, field: `${field}.category_id` },
          `unknown category id ${JSON.stringify(a.category_id)}`,
        );
        continue;
      }
      present[row].add(k);
    }
  }
  const nc = classes?.length ?? 0;
  const labels = new Int8Array(images.length * nc).fill(-1);
  present.forEach((set, i) => set.forEach((k) => (labels[i * nc + k] = 1)));
  return { classes: classes ?? [], images, labels, skipped: policy.skipped };
}
