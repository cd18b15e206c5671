/**
 * pretrain stage: trains a visual backbone and a textual head on an augment artifact (image
 * shards, input `shards`) and a tokenize artifact (captions + vocabulary, input `tokens`) with one
 * of the five pretraining tasks. Checkpoints every `train.checkpointEvery` steps (kept in the
 * artifact under checkpoints/), exact resume after a kill, metrics.jsonl + loss.svg, periodic
 * validation loss, greedy sample captions of a few validation images. `train.amp` (off | auto |
 * on, default auto) trains with f16 matrix products and dynamic loss scaling where the backend has
 * f16 (webgpu with shader-f16); "on" on a backend without f16 is an error. With `transfer.path`
 * (a small VOC-layout set) the backbone is scored by VOC07 SVM mAP every `transfer.evalEvery`
 * steps (pipeline/pretrain/transfer.ts); model.json records the best step (`checkpoint=best` of
 * extract and finetune).
 *
 * Artifact: model.safetensors (everything), visual.safetensors (the backbone alone, torchvision
 * key names), checkpoints/step-N.safetensors, metrics.jsonl, loss.svg, transfer.svg (with a
 * transfer set), samples.json, model.json.
 */
import { join } from "node:path";
import { z } from "zod";
import { hash32 } from "../../engine/backend.ts";
import { createBackend, DEVICE_NAMES } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { CounterRng } from "../../engine/rng.ts";
import { saveSafetensors } from "../../engine/safetensors.ts";
import { tensor } from "../../engine/tensor.ts";
import { transformSchema } from "../augment/transforms.ts";
import { ConfigError } from "../config.ts";
import { DIST_MODES, worldFor } from "../dist.ts";
import { readCocoInstances } from "../data/coco.ts";
import { readSplitList } from "../data/flickr.ts";
import type { LabelSet } from "../data/types.ts";
import { PretrainingModel } from "../model/tasks.ts";
import { lineChartSvg } from "../plot/mod.ts";
import { modelSchema, optimSchema, resolveAmp, trainSchema } from "../pretrain/config.ts";
import { labelTargets, loadCaptionStore, LoaderSource, selectImages } from "../pretrain/data.ts";
import { DataParallel } from "../pretrain/data_parallel.ts";
import { buildOptimizer } from "../pretrain/optimizer.ts";
import { type Metric, train } from "../pretrain/trainer.ts";
import { TransferProbe, transferSchema } from "../pretrain/transfer.ts";
import type { Stage } from "../stage.ts";

const schema = z.strictObject({
  model: modelSchema.prefault({}),
  optim: optimSchema.prefault({}),
  train: trainSchema.prefault({}),
  transform: transformSchema.prefault({}),
  device: z.enum(DEVICE_NAMES).default("auto").describe(
    "compute backend; auto = webgpu on a hardware GPU, else wasm",
  ),
  dist: z.enum(DIST_MODES).default("auto").describe(
    "data parallel over MPI ranks: auto = when mpirun/srun started several ranks; mpi; off",
  ),
  threads: z.number().int().min(0).default(0).describe(
    "wasm threads per process (0: this node's cores / the MPI ranks on it)",
  ),
  trainSplit: z.string().default("").describe("file listing training image ids (default: all)"),
  valSplit: z.string().default("").describe("file listing validation image ids (default: none)"),
  labels: z.string().default("").describe(
    "COCO instances JSON with image categories (multilabel_classification)",
  ),
  sampleImages: z.number().int().min(0).default(5).describe(
    "validation images captioned greedily at the end",
  ),
  transfer: transferSchema.prefault({}),
});

/** The pretrain stage's config (after defaults). */
export type PretrainConfig = z.infer<typeof schema>;

/** Image ids listed in a split file, or null (no split: every image). */
function splitIds(path: string | undefined): string[] | null {
  return path ? readSplitList(path) : null;
}

/** The pretrain stage (see module doc). */
export const pretrainStage: Stage<PretrainConfig> = {
  name: "pretrain",
  version: "1",
  module: import.meta.url,
  seedKey: "train.seed",
  schema,
  world: (cfg) => worldFor(cfg.dist),
  artifactInputs: {
    tokens: { kind: "tokenize", description: "the captions, tokenized (vocabulary + ids)" },
    shards: { kind: "augment", description: "the images, resized and packed into shards" },
  },
  inputs(cfg) {
    const files: Record<string, string> = {};
    if (cfg.trainSplit) files.trainSplit = cfg.trainSplit;
    if (cfg.valSplit) files.valSplit = cfg.valSplit;
    if (cfg.labels) files.labels = cfg.labels;
    if (cfg.transfer.path) files.transfer = cfg.transfer.path;
    return { artifacts: {}, files };
  },
  async run(ctx) {
    const t0 = performance.now();
    const cfg = ctx.config;
    const tokensArt = ctx.inputs.tokens, shardsArt = ctx.inputs.shards; // checked by the runner
    const t = cfg.train;
    if (t.batchSize % t.accumulate !== 0) {
      throw new Error(
        `train.batchSize ${t.batchSize} is not divisible by train.accumulate ${t.accumulate}`,
      );
    }
    const world = ctx.world;
    if (t.batchSize % (world.size * t.accumulate) !== 0) {
      throw new ConfigError(
        `pretrain: train.batchSize ${t.batchSize} (the global batch) is not divisible by ` +
          `${world.size} rank(s) x train.accumulate ${t.accumulate}`,
      );
    }
    const micro = t.batchSize / (world.size * t.accumulate);
    const captions = await loadCaptionStore(tokensArt.dir, t.oneCaptionPerImage);
    const shardIndex = JSON.parse(await Deno.readTextFile(join(shardsArt.dir, "index.json")));
    const shardIds: string[] = shardIndex.images.map((e: { id: string }) => e.id);
    const trainIdx = selectImages(
      shardIds,
      captions,
      splitIds(ctx.inputFiles.trainSplit),
      t.percentImages,
      t.seed,
    );
    if (trainIdx.length < micro) {
      throw new ConfigError(
        `pretrain: ${trainIdx.length} training images with captions${
          cfg.trainSplit ? ` in trainSplit ${cfg.trainSplit}` : ""
        }, fewer than one batch of ${micro}`,
      );
    }
    const valIds = splitIds(ctx.inputFiles.valSplit);
    const valIdx = valIds ? selectImages(shardIds, captions, valIds, 100, t.seed) : [];
    if (valIds && valIdx.length === 0 && t.valEvery > 0) {
      throw new ConfigError(
        `pretrain: valSplit: ${cfg.valSplit} names no image with captions in the shards ` +
          `(train.valEvery is ${t.valEvery})`,
      );
    }
    let labels: LabelSet | null = null;
    if (cfg.model.task === "multilabel_classification") {
      if (!ctx.inputFiles.labels) {
        throw new Error("multilabel_classification needs `labels` (COCO instances JSON)");
      }
      labels = await readCocoInstances(ctx.inputFiles.labels);
    }
    const transfer = ctx.inputFiles.transfer
      ? await TransferProbe.open(cfg.transfer, ctx.inputFiles.transfer, {
        size: cfg.transform.size,
        resize: cfg.transform.evalResize,
      }, ctx.log)
      : null;

    // Each rank takes its share of this node's cores.
    const threads = cfg.threads ||
      Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / world.localSize));
    const backend = await createBackend(cfg.device, { threads });
    const amp = resolveAmp(t.amp, backend); // fails early on train.amp "on" without f16
    ctx.log(
      `device ${backend.name}${amp ? " (AMP)" : ""}; ${trainIdx.length} training images, ` +
        `${valIdx.length} validation; ` +
        `${cfg.model.visual} + ${cfg.model.textual}, task ${cfg.model.task}`,
    );
    setInitSeed(t.seed);
    const rng = new CounterRng(hash32((t.seed ^ 0x9e3779b9) >>> 0));
    const model = await PretrainingModel.create(backend, {
      ...cfg.model,
      vocabSize: captions.vocab.size,
      numClasses: labels?.classes.length,
      maskSeed: t.seed,
    }, rng);
    const optimizer = buildOptimizer(model.namedParameters(), cfg.optim);
    const source = await LoaderSource.open({
      shardsDir: shardsArt.dir,
      captions,
      subset: trainIdx,
      batchSize: micro,
      seed: t.seed,
      mode: "train",
      transform: cfg.transform,
      workers: t.workers,
      targets: labels && labelTargets(labels),
    });
    const val = valIdx.length >= 1
      ? await LoaderSource.open({
        shardsDir: shardsArt.dir,
        captions,
        subset: valIdx,
        batchSize: Math.min(micro, valIdx.length),
        seed: t.seed,
        mode: "eval",
        transform: cfg.transform,
        workers: 0,
        targets: labels && labelTargets(labels),
      })
      : undefined;
    try {
      const result = await train({
        backend,
        model,
        optimizer,
        rng,
        train: t,
        optim: cfg.optim,
        source,
        val,
        workDir: ctx.workDir,
        progress: ctx.progress,
        log: ctx.log,
        dataParallel: world.mpi
          ? new DataParallel(world.mpi, backend, {
            params: model.parameters(),
            buffers: model.namedBuffers().map(([, b]) => b),
          })
          : undefined,
        evaluate: transfer
          ? {
            every: cfg.transfer.evalEvery,
            rankBy: "mAP",
            run: () => transfer.evaluate(model.visual),
          }
          : undefined,
      });
      // Rank 0 alone writes the artifact (the other ranks' folders are private scratch).
      if (world.rank !== 0) return {};

      // Artifact files.
      await saveSafetensors(join(ctx.outDir, "model.safetensors"), model.stateDict(), {
        step: String(result.steps),
      });
      await saveSafetensors(join(ctx.outDir, "visual.safetensors"), model.visual.stateDict(), {
        arch: cfg.model.visual,
      });
      const ckOut = join(ctx.outDir, "checkpoints");
      await Deno.mkdir(ckOut);
      for await (const e of Deno.readDir(join(ctx.workDir, "checkpoints"))) {
        if (e.isDirectory && e.name.startsWith("step-")) {
          await Deno.copyFile(
            join(ctx.workDir, "checkpoints", e.name, "model.safetensors"),
            join(ckOut, `${e.name}.safetensors`),
          );
        }
      }
      await Deno.copyFile(result.metricsPath, join(ctx.outDir, "metrics.jsonl"));
      const metrics: Metric[] = (await Deno.readTextFile(result.metricsPath)).trim().split("\n")
        .filter(Boolean).map((l) => JSON.parse(l));
      const trainPts = metrics.filter((m) => m.loss !== undefined);
      const valPts = metrics.filter((m) => m.valLoss !== undefined);
      await Deno.writeTextFile(
        join(ctx.outDir, "loss.svg"),
        lineChartSvg({
          title: `${cfg.model.task}: ${cfg.model.visual} + ${cfg.model.textual}`,
          xLabel: "step",
          yLabel: "loss",
          series: [
            { name: "train", x: trainPts.map((m) => m.step), y: trainPts.map((m) => m.loss!) },
            ...(valPts.length
              ? [{ name: "val", x: valPts.map((m) => m.step), y: valPts.map((m) => m.valLoss!) }]
              : []),
          ],
        }),
      );
      const transferPts = metrics.filter((m) => m.eval?.mAP !== undefined);
      if (transfer) {
        await Deno.writeTextFile(
          join(ctx.outDir, "transfer.svg"),
          lineChartSvg({
            title: `transfer: VOC07 SVM mAP on ${cfg.transfer.testSplit} (best at step ${
              result.best?.step ?? "-"
            })`,
            xLabel: "step",
            yLabel: "mAP (%)",
            series: [{
              name: "mAP",
              x: transferPts.map((m) => m.step),
              y: transferPts.map((m) => m.eval!.mAP),
            }],
          }),
        );
      }
      const samples = await sampleCaptions(
        model,
        val ?? source,
        captions.vocab.pieces.map((p) => p.piece),
        cfg.sampleImages,
      );
      await Deno.writeTextFile(join(ctx.outDir, "samples.json"), JSON.stringify(samples, null, 1));
      await Deno.writeTextFile(
        join(ctx.outDir, "model.json"),
        JSON.stringify(
          {
            ...cfg.model,
            vocabSize: captions.vocab.size,
            // Caption length of the training data ([SOS] … [EOS], padded): cappa's parallel
            // decoding predicts captionLength - 1 positions, as in training.
            captionLength: captions.maxLength,
            numClasses: labels?.classes.length ?? null,
            imageSize: cfg.transform.size,
            tokens: tokensArt.key,
            bestStep: result.best?.step ?? null,
          },
          null,
          1,
        ),
      );
      for (const s of samples) ctx.log(`sample ${s.id}: ${s.caption}`);
      return {
        steps: result.steps,
        resumedFrom: result.resumedFrom,
        finalLoss: result.lastLoss,
        finalValLoss: result.lastValLoss,
        ...(transfer
          ? {
            finalTransferMAP: transferPts[transferPts.length - 1]?.eval?.mAP ?? null,
            bestStep: result.best?.step ?? null,
            bestTransferMAP: result.best?.value ?? null,
          }
          : {}),
        trainImages: trainIdx.length,
        valImages: valIdx.length,
        device: backend.name,
        amp,
        seconds: (performance.now() - t0) / 1000,
      };
    } finally {
      source.close();
      val?.close();
      backend.destroy(); // its threads and memory: `run` pipelines build many stages in one process
    }
  },
};

/** Greedy captions (forward decoder) of the first images of batch 0 of a source. */
async function sampleCaptions(
  model: PretrainingModel,
  src: LoaderSource,
  pieces: string[],
  n: number,
): Promise<{ id: string; caption: string }[]> {
  if (n === 0 || !model.textual || model.config.task === "masked_lm") return [];
  const hb = await src.get(0, 0);
  const k = Math.min(n, hb.size);
  const S = src.imageSize;
  const images = tensor(model.backend, hb.images.subarray(0, k * 3 * S * S), [k, 3, S, S]);
  const ids = src.batchIds(0, 0).slice(0, k);
  const seqs = await model.greedyCaptions(images);
  images.dispose();
  return seqs.map((s, i) => ({ id: ids[i], caption: decodePieces(s, pieces) }));
}

/** Joins SentencePiece pieces into text ("▁a", "▁dog" -> "a dog"). */
export function decodePieces(ids: number[], pieces: string[]): string {
  return ids.map((i) => pieces[i] ?? "").join("").replaceAll("\u2581", " ").trim();
}
