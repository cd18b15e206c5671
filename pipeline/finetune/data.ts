/**
 * Fine-tuning data: a labelled train and val split read from iNaturalist 2018 JSON, class folders
 * (single-label), VOC or COCO (multi-label), decoded once and packed into image shards in the
 * stage's scratch (resumable: a finished split is reused), then served by the pretraining loader
 * with per-image targets.
 */
import { join } from "node:path";
import { packImages } from "../augment/pack.ts";
import { readClassFolders } from "../data/folder.ts";
import { readInat } from "../data/inat.ts";
import { DataError } from "../data/errors.ts";
import type { BadRecord, ImageRecord } from "../data/types.ts";
import { readLabelledSplits } from "../extract/datasets.ts";
import { labelTargets, type TargetSource } from "../pretrain/data.ts";
import { FINETUNE_SPLITS, type FinetuneConfig } from "./config.ts";

/** One labelled split: single-label `targets` or multi-label `labels` (1 / -1 / 0 difficult). */
export interface LabelledSplit {
  name: string;
  classes: string[];
  images: ImageRecord[];
  targets: Int32Array | null; // [N] class index (single-label)
  labels: Int8Array | null; // [N, K] (multi-label)
  skipped: BadRecord[];
}

/** Train and val splits of a finetune config, with the same class list. */
export interface FinetuneData {
  train: LabelledSplit;
  val: LabelledSplit;
  classes: string[];
  multiLabel: boolean;
}

/** Reads the train and val splits named by the config (see module doc). */
export async function readFinetuneData(cfg: FinetuneConfig, path: string): Promise<FinetuneData> {
  const [trainName, valName] = [
    cfg.trainSplit || FINETUNE_SPLITS[cfg.dataset][0],
    cfg.valSplit || FINETUNE_SPLITS[cfg.dataset][1],
  ];
  const single = (
    name: string,
    s: { classes: string[]; images: ImageRecord[]; targets: Int32Array },
    skipped: BadRecord[] = [],
  ): LabelledSplit => ({
    name,
    classes: s.classes,
    images: s.images,
    targets: s.targets,
    labels: null,
    skipped,
  });
  let train: LabelledSplit, val: LabelledSplit;
  if (cfg.dataset === "inat") {
    const opts = { skipBad: cfg.skipBad };
    const tr = await readInat(join(path, `${trainName}.json`), opts);
    const va = await readInat(join(path, `${valName}.json`), {
      ...opts,
      categoryIds: tr.categoryIds,
    });
    train = single(trainName, tr, tr.skipped);
    val = single(valName, va, va.skipped);
  } else if (cfg.dataset === "classfolders") {
    train = single(trainName, readClassFolders(join(path, trainName)));
    val = single(valName, readClassFolders(join(path, valName)));
    if (val.classes.join("\n") !== train.classes.join("\n")) {
      throw new DataError(
        { file: join(path, valName) },
        `class folders differ from ${join(path, trainName)}'s (${train.classes.length} vs ` +
          `${val.classes.length})`,
      );
    }
  } else {
    const sets = await readLabelledSplits(
      cfg.dataset,
      path,
      [trainName, valName],
      cfg.classes.length ? cfg.classes : undefined,
      cfg.cocoClasses,
    );
    [train, val] = sets.map((s, i) => ({
      name: i === 0 ? trainName : valName,
      classes: s.classes,
      images: s.images,
      targets: null,
      labels: s.labels,
      skipped: [],
    }));
  }
  if (train.images.length === 0) {
    throw new DataError({ file: path }, `split ${trainName} has no labelled images`);
  }
  if (val.images.length === 0) {
    throw new DataError({ file: path }, `split ${valName} has no labelled images`);
  }
  if (train.classes.length < 2) {
    throw new DataError({ file: path }, `split ${trainName}: need at least 2 classes`);
  }
  return { train, val, classes: train.classes, multiLabel: train.labels !== null };
}

/** Training targets of a split: one-hot rows (single-label) or 1 where the label is 1. */
export function splitTargets(s: LabelledSplit): TargetSource {
  if (s.labels) return labelTargets({ classes: s.classes, images: s.images, labels: s.labels });
  const targets = s.targets!;
  const row = new Map<string, number>();
  s.images.forEach((im, i) => row.set(im.id, i));
  return {
    classes: s.classes.length,
    write(id, out, offset) {
      const r = row.get(id);
      if (r !== undefined) out[offset + targets[r]] = 1;
    },
  };
}

/**
 * Shards of a split in `dir` (packed at `shortSide`): reused when a previous run finished them,
 * else packed into `<dir>.tmp` and renamed. Returns how many images were skipped (skipBad).
 */
export async function packSplit(o: {
  split: LabelledSplit;
  dir: string;
  shortSide: number;
  skipBad: boolean;
  progress: (label: string, total: number, unit?: string) => { tick(): void; done(): void };
}): Promise<{ skipped: BadRecord[]; reused: boolean }> {
  try {
    Deno.statSync(join(o.dir, "index.json"));
    const skipped = JSON.parse(await Deno.readTextFile(join(o.dir, "skipped.json")));
    return { skipped, reused: true };
  } catch { /* not packed yet */ }
  const tmp = `${o.dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const bar = o.progress(`pack ${o.split.name}`, o.split.images.length, "img");
  const { index, skipped } = await packImages({
    images: o.split.images,
    dir: tmp,
    shortSide: o.shortSide,
    skipBad: o.skipBad,
    onImage: () => bar.tick(),
  });
  bar.done();
  if (index.images.length === 0) {
    throw new Error(`split ${o.split.name}: every image failed to decode`);
  }
  await Deno.writeTextFile(join(tmp, "skipped.json"), JSON.stringify(skipped));
  await Deno.rename(tmp, o.dir);
  return { skipped, reused: false };
}
