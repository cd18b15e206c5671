/**
 * PASCAL VOC2007 classification layout: `JPEGImages/<id>.jpg` and
 * `ImageSets/Main/<class>_<split>.txt` with lines `<id> <label>`, label 1 (present), -1 (absent)
 * or 0 (difficult). Classes are discovered from the files present (so non-VOC class sets in the
 * same layout work too) unless given.
 */
import { join, resolve } from "node:path";
import { checkImage, type ImageCheck } from "./check.ts";
import { type BadInputOptions, BadInputPolicy, DataError } from "./errors.ts";
import type { ImageRecord, LabelSet, ReadReport } from "./types.ts";

/** The 20 PASCAL VOC classes, in the standard order. */
export const VOC_CLASSES = [
  "aeroplane",
  "bicycle",
  "bird",
  "boat",
  "bottle",
  "bus",
  "car",
  "cat",
  "chair",
  "cow",
  "diningtable",
  "dog",
  "horse",
  "motorbike",
  "person",
  "pottedplant",
  "sheep",
  "sofa",
  "train",
  "tvmonitor",
]; // deno-fmt-ignore

/** Options for readVoc. */
export interface VocReadOptions extends BadInputOptions {
  /** Class names (default: every `<class>_<split>.txt` present, sorted). */
  classes?: string[];
  /** How to check each image: "exists" (default), "decode", "none". */
  checkImages?: ImageCheck;
}

function existsSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function readLines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split(/\r?\n/);
  } catch (e) {
    throw new DataError({ file: path }, `cannot read (${(e as Error).message})`);
  }
}

/** Classes with a `<class>_<split>.txt` in `ImageSets/Main`, sorted. */
export function discoverVocClasses(root: string, split: string): string[] {
  const main = join(resolve(root), "ImageSets", "Main");
  const suffix = `_${split}.txt`;
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(main)) {
      if (e.isFile && e.name.endsWith(suffix) && e.name.length > suffix.length) {
        out.push(e.name.slice(0, -suffix.length));
      }
    }
  } catch {
    throw new DataError({ file: main }, "missing ImageSets/Main folder");
  }
  return out.sort();
}

/**
 * Reads split `split` (e.g. "trainval", "test") of a VOC-layout folder into a LabelSet whose labels
 * are 1 / -1 / 0 (difficult). Images come in the order of `ImageSets/Main/<split>.txt` when present,
 * else of the class files. A bad line, a label other than 1/-1/0, an image missing from a class
 * file, or a missing image throws a DataError naming file:line (or is skipped with skipBad).
 */
export async function readVoc(
  root: string,
  split: string,
  opts: VocReadOptions = {},
): Promise<LabelSet & ReadReport> {
  const base = resolve(root);
  const classes = opts.classes ?? discoverVocClasses(base, split);
  if (classes.length === 0) {
    throw new DataError(
      { file: join(base, "ImageSets", "Main") },
      `no <class>_${split}.txt files`,
    );
  }
  const policy = new BadInputPolicy(opts.skipBad);
  const main = join(base, "ImageSets", "Main");
  // Per class: id -> label, with the line each came from.
  const perClass: Map<string, { label: number; line: number }>[] = [];
  for (const c of classes) {
    const file = join(main, `${c}_${split}.txt`);
    const m = new Map<string, { label: number; line: number }>();
    readLines(file).forEach((raw, i) => {
      const line = raw.trim();
      if (!line) return;
      const parts = line.split(/\s+/);
      const label = Number(parts[1]);
      if (parts.length !== 2 || !(label === 1 || label === -1 || label === 0)) {
        policy.bad(
          { file, line: i + 1 },
          `expected "<image id> <1|-1|0>", got "${line}"`,
        );
        return;
      }
      if (m.has(parts[0])) {
        policy.bad({ file, line: i + 1 }, `image ${parts[0]} listed twice`);
        return;
      }
      m.set(parts[0], { label, line: i + 1 });
    });
    perClass.push(m);
  }
  const listFile = join(main, `${split}.txt`);
  let ids: string[];
  let idLines: number[] | null = null;
  try {
    Deno.statSync(listFile);
    const lines = readLines(listFile);
    ids = [];
    idLines = [];
    lines.forEach((l, i) => {
      if (l.trim()) {
        ids.push(l.trim().split(/\s+/)[0]);
        idLines!.push(i + 1);
      }
    });
  } catch (e) {
    if (e instanceof DataError) throw e;
    // No <split>.txt: every id any class file lists, in order of first appearance.
    ids = [...new Set(perClass.flatMap((m) => [...m.keys()]))];
  }
  const images: ImageRecord[] = [];
  const rows: number[][] = [];
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    const k0 = idLines ? 0 : perClass.findIndex((m) => m.has(id));
    const src = idLines
      ? { file: listFile, line: idLines[n] }
      : { file: join(main, `${classes[k0]}_${split}.txt`), line: perClass[k0].get(id)!.line };
    const row: number[] = [];
    let ok = true;
    for (let k = 0; k < classes.length && ok; k++) {
      const e = perClass[k].get(id);
      if (!e) {
        policy.bad(
          { file: join(main, `${classes[k]}_${split}.txt`), field: id },
          `no label for image ${id} (listed at ${src.file}:${src.line})`,
        );
        ok = false;
      } else row.push(e.label);
    }
    if (!ok) continue;
    // VOC ships .jpg; sets written by other tools (the synthetic scenes) may hold .png.
    const jpg = join(base, "JPEGImages", `${id}.jpg`), png = join(base, "JPEGImages", `${id}.png`);
    const file = !existsSync(jpg) && existsSync(png) ? png : jpg;
    if (!(await checkImage(file, opts.checkImages ?? "exists", policy, src))) continue;
    images.push({ id, file });
    rows.push(row);
  }
  const labels = new Int8Array(images.length * classes.length);
  rows.forEach((r, i) => labels.set(r, i * classes.length));
  return { classes, images, labels, skipped: policy.skipped };
}
