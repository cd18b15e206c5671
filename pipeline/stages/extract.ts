/**
 * extract stage: runs a frozen visual backbone in eval mode over labelled image splits with the
 * eval transform (short side 256 → centre crop 224 by default), global-average-pools the final
 * grid and L2-normalizes it. Weights come from a pretrain artifact (input `model`) or, with
 * `weights: "random"`, from the same random initialisation a fresh model would get (baseline).
 *
 * Artifact per split: <split>.f32 (features [N, C], little-endian), <split>.labels.i8 ([N, K]:
 * 1, -1, 0 difficult) and <split>.json ({ids, classes, dim}).
 */
import { join } from "node:path";
import { z } from "zod";
import { createBackend, DEVICE_NAMES } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { noGrad, tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import * as ops from "../../engine/ops/index.ts";
import { AugmentKernel } from "../../kernels/augment.ts";
import { decodeResized } from "../augment/pack.ts";
import { applyEval, transformSchema } from "../augment/transforms.ts";
import { createBackbone } from "../model/backbones.ts";
import { DEFAULT_SPLITS, readLabelledSplits } from "../extract/datasets.ts";
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
    const modelInfo = model
      ? JSON.parse(await Deno.readTextFile(join(model.dir, "model.json")))
      : null;
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
      if (cfg.weights === "pretrained") {
        const file = join(model!.dir, "visual.safetensors");
        net.loadStateDict((await loadSafetensors(file)).tensors, true);
      }
      net.eval();
      const transform = transformSchema.parse({ size: cfg.size, evalResize: cfg.resize });
      const kernel = await AugmentKernel.load();
      const counts: Record<string, number> = {};
      const dim = net.featureSize;
      ctx.log(`device ${backend.name}; ${arch} (${cfg.weights}); splits ${splits.join(", ")}`);
      for (const [s, split] of splits.entries()) {
        const set = sets[s];
        const N = set.images.length, S = cfg.size;
        const feats = new Float32Array(N * dim);
        const bar = ctx.progress(`extract ${split}`, N, "img");
        const workers = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
        const decoded = decodeResized(set.images.map((im) => im.file), cfg.resize, workers);
        for (let lo = 0; lo < N; lo += cfg.batchSize) {
          const B = Math.min(cfg.batchSize, N - lo);
          const batch = new Float32Array(B * 3 * S * S);
          for (let b = 0; b < B; b++) {
            const r = (await decoded.next()).value!;
            if ("error" in r) throw new Error(`${r.file}: ${r.error.message}`);
            applyEval(
              kernel,
              r.image,
              transform,
              batch.subarray(b * 3 * S * S, (b + 1) * 3 * S * S),
            );
          }
          const pooled = noGrad(() =>
            tidy(() => {
              const x = tensor(backend, batch, [B, 3, S, S]);
              const v = ops.globalAvgPool(net.forward(x)); // [B, C]
              const norm = ops.sqrt(ops.addScalar(ops.sumAxis(ops.square(v), 1, true), 1e-12)); // [B, 1]
              return ops.div(v, norm); // [B, C]
            })
          );
          feats.set(await pooled.f32(), lo * dim);
          pooled.dispose();
          bar.tick(B);
        }
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
      return { arch, weights: cfg.weights, dim, splits: counts, device: backend.name };
    } finally {
      backend.destroy(); // its threads and memory: `run` pipelines build many stages in one process
    }
  },
};
