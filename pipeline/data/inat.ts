/**
 * iNaturalist 2018 reader (the paper's fine-tuning set): `<split>2018.json` in the COCO style —
 * `images[]` ({id, file_name, width, height}, file_name relative to the dataset root, e.g.
 * "train_val2018/Plantae/7477/….jpg"), `categories[]` ({id, name, …}) and `annotations[]`
 * ({id, image_id, category_id}), exactly one per image — into a single-label set. Classes are the
 * categories ordered by id (8,142 in 2018); `classes` given by the caller (the training split's)
 * fixes the order for another split.
 */
import { dirname, resolve } from "node:path";
import type { ImageCheck } from "./check.ts";
import { annotatedImage, isObj, readImages, topArray } from "./coco.ts";
import { type BadInputOptions, BadInputPolicy, DataError } from "./errors.ts";
import { readJsonFile } from "./json_file.ts";
import type { ClassFolderSet, ReadReport } from "./types.ts";

/** Options for readInat. */
export interface InatReadOptions extends BadInputOptions {
  /** Folder that file_name is relative to (default: the JSON file's folder, the 2018 layout). */
  imagesDir?: string;
  /** How to check each image: "exists" (default), "decode", "none". */
  checkImages?: ImageCheck;
  /**
   * The class list to label against, as category ids in class order (e.g. the training split's,
   * so train and val share indices); default: this file's categories.
   */
  categoryIds?: number[];
}

/** A single-label iNaturalist split, with its category ids in class order. */
export interface InatSet extends ClassFolderSet, ReadReport {
  categoryIds: number[];
}

/** Reads one iNaturalist JSON file (see module doc). */
export async function readInat(path: string, opts: InatReadOptions = {}): Promise<InatSet> {
  const policy = new BadInputPolicy(opts.skipBad);
  const doc = readJsonFile(path);
  const parsed: { id: number; name: string }[] = [];
  topArray(doc, path, "categories").forEach((c, k) => {
    if (!isObj(c) || typeof c.id !== "number" || typeof c.name !== "string") {
      throw new DataError({ file: path, field: `categories[${k}]` }, "expected {id, name}");
    }
    parsed.push({ id: c.id, name: c.name });
  });
  parsed.sort((a, b) => a.id - b.id);
  const names = new Map(parsed.map((c) => [c.id, c.name]));
  const categoryIds = opts.categoryIds ?? parsed.map((c) => c.id);
  const classes = categoryIds.map((id) => names.get(id) ?? String(id));
  const classOf = new Map(categoryIds.map((id, k) => [id, k]));
  if (classes.length === 0) throw new DataError({ file: path, field: "categories" }, "empty");

  const read = await readImages(doc, path, {
    imagesDir: opts.imagesDir ?? dirname(resolve(path)),
    checkImages: opts.checkImages,
    skipBad: opts.skipBad,
  }, policy);
  const { byId, order } = read;
  const label = new Map<string, { k: number; field: string }>();
  const anns = topArray(doc, path, "annotations");
  for (let j = 0; j < anns.length; j++) {
    const field = `annotations[${j}]`;
    const hit = annotatedImage(anns[j], field, path, read, policy, "annotation");
    if (!hit) continue;
    const { sid, ann: a } = hit;
    const k = typeof a.category_id === "number" ? classOf.get(a.category_id) : undefined;
    if (k === undefined) {
      policy.bad(
        { file: path, field: `${field}.category_id` },
        `category id ${JSON.stringify(a.category_id)} is not among the ${
          opts.categoryIds ? "training split's" : "file's"
        } categories`,
      );
      continue;
    }
    const prev = label.get(sid);
    if (prev && prev.k !== k) {
      policy.bad(
        { file: path, field: `${field}.category_id` },
        `image ${sid} already has category ${categoryIds[prev.k]} (${prev.field}); ` +
          "iNaturalist images have one label",
      );
      continue;
    }
    label.set(sid, { k, field });
  }
  const images = [], targets: number[] = [];
  for (const sid of order) {
    const l = label.get(sid);
    if (!l) {
      policy.bad(
        { file: path, field: "annotations" },
        `image ${sid} has no annotation (an unlabelled test split cannot be trained or scored)`,
        "image",
      );
      continue;
    }
    images.push(byId.get(sid)!);
    targets.push(l.k);
  }
  return {
    classes,
    categoryIds,
    images,
    targets: Int32Array.from(targets),
    skipped: policy.skipped,
    records: anns.length,
  };
}
