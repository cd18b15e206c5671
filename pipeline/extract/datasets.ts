/**
 * Labelled image sets for feature extraction and evaluation, read per split from PASCAL VOC2007
 * (1 / -1 / 0 difficult), COCO instances JSON (80-class multi-label) or an ImageNet-style class
 * folder layout (single label, stored as +1 for its class and -1 for the others).
 */
import { join } from "node:path";
import { readCocoInstances } from "../data/coco.ts";
import { readClassFolders } from "../data/folder.ts";
import type { LabelSet } from "../data/types.ts";
import { discoverVocClasses, readVoc, VOC_CLASSES } from "../data/voc.ts";
import { DataError } from "../data/errors.ts";
import { mapCocoLabels } from "../data/coco_to_voc.ts";

export type DatasetKind = "voc" | "coco" | "classfolders";

/** Default splits of each layout. */
export const DEFAULT_SPLITS: Record<DatasetKind, string[]> = {
  voc: ["trainval", "test"],
  coco: ["train2017", "val2017"],
  classfolders: ["train", "val"],
};

/**
 * Reads every split, checking first that they share one class list: for VOC without an explicit
 * `classes` list, a `<class>_<split>.txt` present for one split and missing for another is an
 * error naming the missing file.
 */
export async function readLabelledSplits(
  kind: DatasetKind,
  path: string,
  splits: string[],
  classes?: string[],
  cocoClasses: "coco80" | "voc20" = "coco80",
): Promise<LabelSet[]> {
  if (kind === "voc" && !classes) {
    const found = splits.map((s) => discoverVocClasses(path, s));
    const all = [...new Set(found.flat())].sort();
    for (const [i, split] of splits.entries()) {
      const missing = all.filter((c) => !found[i].includes(c));
      if (missing.length) {
        throw new DataError(
          { file: join(path, "ImageSets", "Main", `${missing[0]}_${split}.txt`) },
          `missing: the other split(s) have class${missing.length > 1 ? "es" : ""} ` +
            `${missing.join(", ")} (give \`classes\` to read only some classes)`,
        );
      }
    }
  }
  const sets: LabelSet[] = [];
  for (const split of splits) {
    sets.push(await readLabelledSplit(kind, path, split, classes, cocoClasses));
  }
  return sets;
}

/** Reads one split. `path`: VOC2007 root, COCO annotations folder, or class-folders root. */
export async function readLabelledSplit(
  kind: DatasetKind,
  path: string,
  split: string,
  classes?: string[],
  cocoClasses: "coco80" | "voc20" = "coco80",
): Promise<LabelSet> {
  switch (kind) {
    case "voc":
      return await readVoc(path, split, { classes });
    case "coco": {
      const set = await readCocoInstances(join(path, `instances_${split}.json`));
      if (cocoClasses === "voc20") {
        // The 20 VOC classes through the standard COCO→VOC name map.
        return {
          classes: [...VOC_CLASSES],
          images: set.images,
          labels: mapCocoLabels(set.classes, set.labels),
        };
      }
      const labels = Int8Array.from(set.labels, (v) => (v === 1 ? 1 : -1));
      return { classes: set.classes, images: set.images, labels };
    }
    case "classfolders": {
      const set = readClassFolders(join(path, split));
      const K = set.classes.length;
      const labels = new Int8Array(set.images.length * K).fill(-1);
      set.targets.forEach((t, i) => (labels[i * K + t] = 1));
      return { classes: set.classes, images: set.images, labels };
    }
  }
}
