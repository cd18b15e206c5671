/**
 * Turns a COCO-layout folder (`<split>/` images + `annotations/instances_<split>.json`) into a
 * PASCAL VOC2007-style classification folder with the 20 VOC classes (the standard COCO→VOC name
 * map), so the VOC07 SVM protocol can run on it: `JPEGImages/<id>.jpg` (symlinks or copies),
 * `ImageSets/Main/<split>.txt` and `ImageSets/Main/<class>_<split>.txt` with labels 1 / -1.
 * COCO has no "difficult" flag, so no 0 labels are written.
 */
import { basename, extname, join, resolve } from "node:path";
import { readCocoInstances } from "./coco.ts";
import { DataError } from "./errors.ts";
import { writeFolderAtomically } from "./out_folder.ts";
import { VOC_CLASSES } from "./voc.ts";

/** COCO category name → VOC class (the 20 COCO categories that exist in VOC). */
export const COCO_TO_VOC: Readonly<Record<string, string>> = {
  airplane: "aeroplane",
  bicycle: "bicycle",
  bird: "bird",
  boat: "boat",
  bottle: "bottle",
  bus: "bus",
  car: "car",
  cat: "cat",
  chair: "chair",
  cow: "cow",
  "dining table": "diningtable",
  dog: "dog",
  horse: "horse",
  motorcycle: "motorbike",
  person: "person",
  "potted plant": "pottedplant",
  sheep: "sheep",
  couch: "sofa",
  train: "train",
  tv: "tvmonitor",
};

/** One COCO split and the VOC split it becomes. */
export interface SplitMapping {
  coco: string; // e.g. "train2017"
  voc: string; // e.g. "trainval"
}

/** Options for convertCocoToVoc. */
export interface CocoToVocOptions {
  /** COCO root holding `<split>/` and `annotations/instances_<split>.json`. */
  cocoRoot: string;
  /** Output folder (must not exist unless `force`). */
  outDir: string;
  /** Default: train2017 → trainval, val2017 → test. */
  splits?: SplitMapping[];
  /** Copy images instead of symlinking them. */
  copy?: boolean;
  /** Keep only images with at least one VOC object (VOC itself has no empty images). */
  onlyWithVocObjects?: boolean;
  /** Replace an existing output folder. */
  force?: boolean;
}

/** What was written: images and positives per class for each VOC split. */
export interface CocoToVocReport {
  outDir: string;
  images: Record<string, number>;
  positives: Record<string, Record<string, number>>; // split -> class -> count
}

/** Default split mapping of COCO 2017 to VOC07. */
export const DEFAULT_COCO_VOC_SPLITS: SplitMapping[] = [
  { coco: "train2017", voc: "trainval" },
  { coco: "val2017", voc: "test" },
];

/**
 * Per image, the VOC labels (+1 / -1, [N, 20] row-major) from a COCO multi-label set: a VOC class
 * is present when any COCO category mapped to it is.
 */
export function mapCocoLabels(cocoClasses: string[], cocoLabels: Int8Array): Int8Array {
  const K = cocoClasses.length, N = cocoLabels.length / K;
  const target = cocoClasses.map((c) => {
    const v = COCO_TO_VOC[c];
    return v === undefined ? -1 : VOC_CLASSES.indexOf(v);
  });
  const out = new Int8Array(N * VOC_CLASSES.length).fill(-1);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < K; k++) {
      if (cocoLabels[i * K + k] === 1 && target[k] >= 0) {
        out[i * VOC_CLASSES.length + target[k]] = 1;
      }
    }
  }
  return out;
}

/** Converts (see module doc). Writes into a temp folder and renames it into place at the end. */
export async function convertCocoToVoc(opts: CocoToVocOptions): Promise<CocoToVocReport> {
  const root = resolve(opts.cocoRoot), outDir = resolve(opts.outDir);
  const splits = opts.splits ?? DEFAULT_COCO_VOC_SPLITS;
  const report: CocoToVocReport = { outDir, images: {}, positives: {} };
  return await writeFolderAtomically(outDir, opts.force, async (tmp) => {
    await Deno.mkdir(join(tmp, "JPEGImages"), { recursive: true });
    await Deno.mkdir(join(tmp, "ImageSets", "Main"), { recursive: true });
    const written = new Set<string>();
    for (const s of splits) {
      const ann = join(root, "annotations", `instances_${s.coco}.json`);
      const set = await readCocoInstances(ann, { imagesDir: join(root, s.coco) });
      const labels = mapCocoLabels(set.classes, set.labels);
      const C = VOC_CLASSES.length;
      const ids: string[] = [];
      const rows: number[] = [];
      set.images.forEach((im, i) => {
        const row = labels.subarray(i * C, (i + 1) * C);
        if (opts.onlyWithVocObjects && !row.includes(1)) return;
        const ext = extname(im.file).toLowerCase();
        if (ext !== ".jpg" && ext !== ".jpeg" && ext !== ".png") {
          throw new DataError({ file: im.file }, "expected a .jpg or .png image");
        }
        const id = basename(im.file, extname(im.file));
        if (written.has(id)) {
          throw new DataError({ file: ann, field: `images (${im.file})` }, `image ${id} twice`);
        }
        written.add(id);
        ids.push(id);
        rows.push(i);
      });
      for (const [n, i] of rows.entries()) {
        const src = set.images[i].file;
        const dst = join(
          tmp,
          "JPEGImages",
          `${ids[n]}${src.toLowerCase().endsWith(".png") ? ".png" : ".jpg"}`,
        );
        if (opts.copy) await Deno.copyFile(src, dst);
        else await Deno.symlink(src, dst);
      }
      const main = join(tmp, "ImageSets", "Main");
      await Deno.writeTextFile(join(main, `${s.voc}.txt`), ids.map((id) => id + "\n").join(""));
      const pos: Record<string, number> = {};
      VOC_CLASSES.forEach((cls, c) => {
        const lines = rows.map((i, n) => {
          const v = labels[i * C + c];
          return `${ids[n]} ${v === 1 ? " 1" : "-1"}\n`;
        });
        pos[cls] = rows.filter((i) => labels[i * C + c] === 1).length;
        Deno.writeTextFileSync(join(main, `${cls}_${s.voc}.txt`), lines.join(""));
      });
      report.images[s.voc] = ids.length;
      report.positives[s.voc] = pos;
    }
    return report;
  });
}
