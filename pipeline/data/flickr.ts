/**
 * Flickr8k captions CSV (`image,caption` header, RFC 4180 quoting; image ids are file names) and
 * split lists (one file name per line).
 */
import { dirname, join, resolve } from "node:path";
import { checkImage, type ImageCheck } from "./check.ts";
import { parseCsv } from "./csv.ts";
import { type BadInputOptions, BadInputPolicy, DataError } from "./errors.ts";
import type { Caption, CaptionSet, ImageRecord, ReadReport } from "./types.ts";

/** Options for readFlickrCaptions. */
export interface FlickrReadOptions extends BadInputOptions {
  /** Folder holding the images. Default: `images/` (or `Images/`) beside the CSV. */
  imagesDir?: string;
  /** How to check each image: "exists" (default), "decode" (slow, finds corrupt files), "none". */
  checkImages?: ImageCheck;
  /** Keep only these image ids (e.g. a split list); others are ignored, not errors. */
  only?: Set<string>;
}

/** The image folder beside a Flickr CSV (`images/` or `Images/`), or null when there is none. */
export function flickrImagesDir(csvPath: string): string | null {
  for (const name of ["images", "Images"]) {
    const p = resolve(dirname(csvPath), name);
    try {
      if (Deno.statSync(p).isDirectory) return p;
    } catch { /* try next */ }
  }
  return null;
}

function defaultImagesDir(csvPath: string, check: ImageCheck): string {
  const found = flickrImagesDir(csvPath);
  if (found) return found;
  if (check === "none") return resolve(dirname(csvPath), "images");
  throw new DataError(
    { file: csvPath },
    "cannot find the image folder (images/ beside the CSV); set the `images` key to it",
  );
}

/**
 * Reads a Flickr8k-style captions CSV. Images appear in first-mention order. Malformed CSV, a row
 * without two fields, an empty caption, or a caption naming a missing (or, with
 * checkImages "decode", corrupt) image throws a DataError naming file:line, or is skipped and
 * listed in `skipped` with `skipBad`.
 */
export async function readFlickrCaptions(
  csvPath: string,
  opts: FlickrReadOptions = {},
): Promise<CaptionSet & ReadReport> {
  const check = opts.checkImages ?? "exists";
  const imagesDir = opts.imagesDir ? resolve(opts.imagesDir) : defaultImagesDir(csvPath, check);
  let text: string;
  try {
    text = Deno.readTextFileSync(csvPath);
  } catch (e) {
    throw new DataError({ file: csvPath }, `cannot read (${(e as Error).message})`);
  }
  const policy = new BadInputPolicy(opts.skipBad);
  const images: ImageRecord[] = [];
  const captions: Caption[] = [];
  const imageOk = new Map<string, boolean>();
  let header = true;
  let imageCol = 0, captionCol = 1;
  let records = 0; // data rows read, minus well-formed rows of images outside `only`
  for (const rec of parseCsv(text)) {
    if (!header) records++;
    const source = { file: csvPath, line: rec.line };
    if (rec.error) {
      if (header) throw new DataError(source, `malformed CSV: ${rec.error}`);
      policy.bad(source, `malformed CSV: ${rec.error}`);
      continue;
    }
    if (header) {
      header = false;
      const cols = rec.fields.map((f) => f.trim().toLowerCase());
      imageCol = cols.indexOf("image");
      captionCol = cols.indexOf("caption");
      if (imageCol < 0 || captionCol < 0) {
        throw new DataError(
          source,
          `expected a header with columns "image,caption", got "${rec.fields.join(",")}"`,
        );
      }
      continue;
    }
    if (rec.fields.length < 2 || rec.fields.length <= Math.max(imageCol, captionCol)) {
      policy.bad(
        source,
        `expected ${Math.max(imageCol, captionCol) + 1} fields, got ${rec.fields.length}`,
      );
      continue;
    }
    const id = rec.fields[imageCol].trim();
    const text = rec.fields[captionCol];
    if (id === "") {
      policy.bad({ ...source, field: "image" }, "empty image name");
      continue;
    }
    if (opts.only && !opts.only.has(id)) {
      records--;
      continue;
    }
    if (text.trim() === "") {
      policy.bad({ ...source, field: "caption" }, "empty caption");
      continue;
    }
    let ok = imageOk.get(id);
    if (ok === undefined) {
      const file = join(imagesDir, id);
      ok = await checkImage(file, check, policy, { ...source, field: "image" });
      imageOk.set(id, ok);
      if (ok) images.push({ id, file });
    } else if (!ok) {
      policy.bad({ ...source, field: "image" }, `image ${id} was already reported bad`);
      continue;
    }
    if (!ok) continue;
    captions.push({ imageId: id, text, source });
  }
  if (header) throw new DataError({ file: csvPath, line: 1 }, "empty file (no header)");
  return { images, captions, skipped: policy.skipped, records };
}

/** Reads a split list (one image id per line; blank lines and `#` comments ignored). */
export function readSplitList(path: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new DataError({ file: path }, `cannot read (${(e as Error).message})`);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}
