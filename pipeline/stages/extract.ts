/**
 * extract stage: runs a frozen visual backbone in eval mode over labelled image splits with the
 * eval transform (short side 256 → centre crop 224 by default), global-average-pools the final
 * grid and L2-normalizes it (`normalize: false` keeps the raw pooled features). Weights come from
 * a pretrain artifact (input `model`, at `checkpoint`: last, best transfer step, or step-N) or,
 * with `weights: "random"`, from the same random initialisation a fresh model would get
 * (baseline).
 *
 * Artifact per split: <split>.f32 (features [N, C], little-endian), <split>.labels.i8 ([N, K]:
 * 1, -1, 0 difficult) and <split>.json ({ids, classes, dim}).
 */
import { join } from "node:path";
import { z } from "zod";
import { createBackend, DEVICE_NAMES } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { createBackbone } from "../model/backbones.ts";
import { DEFAULT_SPLITS, readLabelledSplits } from "../extract/datasets.ts";
import { embedImages } from "../extract/embed.ts";
import { backboneWeights, checkpointSchema, readModelInfo } from "../pretrain/backbone_weights.ts";
import type { Stage } from "../stage.ts";

const schema = z.strictObject({
  dataset: z.enum(["voc", "coco", "classfolders"]).default("voc").describe(
    "layout: voc (VOC2007 root), coco (annotations folder with instances_<split>.json), classfolders",
  ),
  path: z.string().default("").describe(
    "dataset root (see dataset); or give --input dataset=<caption-labels artifact> (a VOC layout)",
  ),
  splits: z.array(z.string()).default([]).describe(
    "splits to extract (default: the layout's usual two)",
  ),
  classes: z.array(z.string()).default([]).describe("VOC classes to read (default: all found)"),
  cocoClasses: z.enum(["coco80", "voc20"]).default("coco80").describe(
    "coco: the 80 categories, or the 20 VOC classes via the COCO→VOC name map",
  ),
  weights: z.enum(["pretrained", "random"]).default("pretrained").describe(
    "pretrained: the `model` input's backbone; random: random init baseline",
  ),
  checkpoint: checkpointSchema,
  normalize: z.boolean().default(true).describe(
    "L2-normalise the pooled features (VOC07 SVM protocol); false: raw features",
  ),
  arch: z.string().default("").describe("backbone for random weights (default: resnet50)"),
  seed: z.number().int().default(0).describe("random-init seed"),
  size: z.number().int().min(8).default(224).describe("centre crop size"),
  resize: z.number().int().min(8).default(256).describe("short side before the crop"),
  batchSize: z.number().int().min(1).default(32),
  device: z.enum(DEVICE_NAMES).default("auto"),
}).refine((c) => c.resize >= c.size, { message: "resize must be >= size", path: ["resize"] });

/** The extract stage's config (after defaults). */
export type ExtractConfig = z.infer<typeof schema>;

/** The extract stage (see module doc). */
export const extractStage: Stage<ExtractConfig> = {
  name: "extract",
  version: "1",
  module: import.meta.url,
  seedKey: "seed",
  schema,
  artifactInputs: {
    dataset: {
      kind: "caption-labels",
      description: "a VOC-layout set built by caption-labels (instead of `path`)",
      needed: (cfg) => cfg.path === "",
    },
    model: {
      kind: "pretrain",
      description: "the pretrained backbone (not read with weights=random)",
      needed: (cfg) => cfg.weights === "pretrained",
    },
  },
  inputs(cfg) {
    const files: Record<string, string> = cfg.path ? { dataset: cfg.path } : {};
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const cfg = ctx.config;
    const model = cfg.weights === "pretrained" ? ctx.inputs.model : undefined;
    const modelInfo = model ? await readModelInfo(model.dir) : null;
    const arch = cfg.arch || modelInfo?.visual || "resnet50";
    // Every split's labels are read (and checked) before any work on the backbone.
    const splits = cfg.splits.length ? cfg.splits : DEFAULT_SPLITS[cfg.dataset];
    const sets = await readLabelledSplits(
      cfg.dataset,
      ctx.inputFiles.dataset ?? ctx.inputs.dataset.dir,
      splits,
      cfg.classes.length ? cfg.classes : undefined,
      cfg.cocoClasses,
    );
    const backend = await createBackend(cfg.device);
    try {
      setInitSeed(cfg.seed);
      const net = createBackbone(backend, arch);
      let step: number | null = null;
      if (cfg.weights === "pretrained") {
        const w = await backboneWeights(model!.dir, cfg.checkpoint);
        net.loadStateDict(w.tensors, true);
        step = w.step;
      }
      const counts: Record<string, number> = {};
      const dim = net.featureSize;
      ctx.log(
        `device ${backend.name}; ${arch} (${cfg.weights}${
          cfg.weights === "pretrained" ? `, checkpoint ${cfg.checkpoint}` : ""
        }); splits ${splits.join(", ")}`,
      );
      for (const [s, split] of splits.entries()) {
        const set = sets[s];
        const N = set.images.length;
        const bar = ctx.progress(`extract ${split}`, N, "img");
        const feats = await embedImages({
          net,
          files: set.images.map((im) => im.file),
          size: cfg.size,
          resize: cfg.resize,
          batchSize: cfg.batchSize,
          normalize: cfg.normalize,
          onBatch: (n) => bar.tick(n),
        });
        bar.done();
        await Deno.writeFile(join(ctx.outDir, `${split}.f32`), new Uint8Array(feats.buffer));
        await Deno.writeFile(
          join(ctx.outDir, `${split}.labels.i8`),
          new Uint8Array(set.labels.buffer, set.labels.byteOffset, set.labels.byteLength),
        );
        await Deno.writeTextFile(
          join(ctx.outDir, `${split}.json`),
          JSON.stringify({ ids: set.images.map((im) => im.id), classes: set.classes, dim }),
        );
        counts[split] = N;
      }
      net.dispose();
      return {
        arch,
        weights: cfg.weights,
        ...(cfg.weights === "pretrained" ? { checkpoint: cfg.checkpoint, step } : {}),
        normalized: cfg.normalize,
        dim,
        splits: counts,
        device: backend.name,
      };
    } finally {
      backend.destroy(); // its threads and memory: `run` pipelines build many stages in one process
    }
  },
};
