/**
 * finetune stage: trains a backbone — from a pretrain artifact (input `model`, at `checkpoint`) or
 * random init — with a new linear head on a labelled dataset (iNaturalist 2018 JSON, class
 * folders, VOC, COCO), end to end (`mode: finetune`, the paper's iNaturalist protocol) or as the
 * paper's linear probe (`mode: linear`: frozen backbone, raw features, live augmentation). Images
 * are decoded once into shards in the stage's scratch; training runs the pretraining trainer
 * (checkpoints, exact resume after a kill, metrics.jsonl, progress), evaluating on the val split
 * once per epoch (top-1/top-5 or mAP); older checkpoints but the best are deleted as it goes.
 *
 * Artifact: model.safetensors (backbone `visual.*` + `head.*`, final), best.safetensors (the best
 * evaluated step), visual.safetensors (final backbone, torchvision key names), metrics.jsonl,
 * loss.svg, eval.svg (accuracy or mAP per evaluation), model.json, classes.json.
 */
import { join } from "node:path";
import { hash32 } from "../../engine/backend.ts";
import { createBackend } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { CounterRng } from "../../engine/rng.ts";
import { saveSafetensors } from "../../engine/safetensors.ts";
import { ConfigError } from "../config.ts";
import { writeSkippedList } from "../data/errors.ts";
import {
  type FinetuneConfig,
  finetuneSchema,
  finetuneTransform,
  resolveFinetune,
} from "../finetune/config.ts";
import { packSplit, readFinetuneData, splitTargets } from "../finetune/data.ts";
import { evaluateFinetune, rankingFigure } from "../finetune/evaluate.ts";
import { FinetuneModel } from "../finetune/model.ts";
import { lineChartSvg } from "../plot/mod.ts";
import { backboneWeights, readModelInfo } from "../pretrain/backbone_weights.ts";
import { checkpointName } from "../pretrain/checkpoint.ts";
import { resolveAmp } from "../pretrain/config.ts";
import { LoaderSource } from "../pretrain/data.ts";
import { buildOptimizer } from "../pretrain/optimizer.ts";
import { type Metric, train } from "../pretrain/trainer.ts";
import type { Stage } from "../stage.ts";

/** The finetune stage (see module doc). */
export const finetuneStage: Stage<FinetuneConfig> = {
  name: "finetune",
  version: "1",
  module: import.meta.url,
  seedKey: "seed",
  schema: finetuneSchema,
  artifactInputs: {
    model: {
      kind: "pretrain",
      description: "the pretrained backbone (not read with init=random)",
      needed: (cfg) => cfg.init === "pretrained",
    },
  },
  inputs(cfg) {
    return { artifacts: {}, files: { dataset: cfg.path } };
  },
  async run(ctx) {
    const t0 = performance.now();
    const cfg = ctx.config;
    if (cfg.batchSize % cfg.accumulate !== 0) {
      throw new ConfigError(
        `finetune: batchSize ${cfg.batchSize} is not divisible by accumulate ${cfg.accumulate}`,
      );
    }
    const micro = cfg.batchSize / cfg.accumulate;
    // Labels first: a bad dataset fails before any decoding or model work.
    const data = await readFinetuneData(cfg, ctx.inputFiles.dataset);
    const K = data.classes.length;
    const packed = [];
    for (const [split, name] of [[data.train, "train"], [data.val, "val"]] as const) {
      packed.push(
        await packSplit({
          split,
          dir: join(ctx.workDir, `shards-${name}`),
          shortSide: cfg.shortSide,
          skipBad: cfg.skipBad,
          progress: ctx.progress,
        }),
      );
    }
    const pretrained = cfg.init === "pretrained" ? ctx.inputs.model : undefined;
    const arch = pretrained ? (await readModelInfo(pretrained.dir)).visual : cfg.arch || "resnet50";
    if (pretrained && cfg.arch && cfg.arch !== arch) {
      throw new ConfigError(
        `finetune: arch "${cfg.arch}" is for init=random; the model input's backbone is ${arch}`,
      );
    }

    const backend = await createBackend(cfg.device);
    try {
      resolveAmp(cfg.amp, backend); // fails early on amp "on" without f16
      setInitSeed(cfg.seed);
      const model = new FinetuneModel(backend, {
        arch,
        classes: K,
        multiLabel: data.multiLabel,
        frozen: cfg.mode === "linear",
        headInitStd: cfg.headInitStd,
      });
      let fromStep: number | null = null;
      if (pretrained) {
        const w = await backboneWeights(pretrained.dir, cfg.checkpoint);
        model.visual.loadStateDict(w.tensors, true);
        fromStep = w.step;
      }
      const transform = finetuneTransform(cfg);
      const src = await LoaderSource.open({
        shardsDir: join(ctx.workDir, "shards-train"),
        batchSize: micro,
        seed: cfg.seed,
        mode: "train",
        transform,
        workers: cfg.workers,
        targets: splitTargets(data.train),
      });
      const stepsPerEpoch = Math.floor(src.batchesPerEpoch / cfg.accumulate);
      if (stepsPerEpoch === 0) {
        src.close();
        throw new ConfigError(
          `finetune: ${src.images} training images are fewer than one batch of ${cfg.batchSize}; ` +
            "lower batchSize",
        );
      }
      const r = resolveFinetune(cfg, stepsPerEpoch);
      const val = await LoaderSource.open({
        shardsDir: join(ctx.workDir, "shards-val"),
        batchSize: micro,
        seed: cfg.seed,
        mode: "eval",
        transform,
        workers: cfg.workers,
      });
      const rankBy = rankingFigure(data.multiLabel);
      ctx.log(
        `device ${backend.name}; ${cfg.mode} ${arch} (${
          pretrained ? `pretrained, checkpoint ${cfg.checkpoint}` : "random init"
        }) on ${cfg.dataset}: ${src.images} training / ${val.images} val images, ${K} classes` +
          `${
            data.multiLabel ? " (multi-label)" : ""
          }; ${cfg.epochs} epochs of ${r.stepsPerEpoch} ` +
          `steps, LR ${r.lr} ${r.schedule}, weight decay ${r.weightDecay}`,
      );
      const optimizer = buildOptimizer(model.trainableParameters(), r.optim);
      try {
        const result = await train({
          backend,
          model,
          optimizer,
          rng: new CounterRng(hash32((cfg.seed ^ 0x9e3779b9) >>> 0)), // no dropout: unused
          train: r.train,
          optim: r.optim,
          source: src,
          workDir: ctx.workDir,
          progress: ctx.progress,
          log: ctx.log,
          label: cfg.mode,
          evaluate: {
            every: r.evalEvery,
            rankBy,
            run: () => evaluateFinetune(model, val, data.val),
          },
          keepCheckpoints: "last-and-best",
        });

        await saveSafetensors(join(ctx.outDir, "model.safetensors"), model.stateDict(), {
          step: String(result.steps),
        });
        await saveSafetensors(join(ctx.outDir, "visual.safetensors"), model.visual.stateDict(), {
          arch,
        });
        if (result.best) {
          await Deno.copyFile(
            join(ctx.workDir, "checkpoints", checkpointName(result.best.step), "model.safetensors"),
            join(ctx.outDir, "best.safetensors"),
          );
        }
        await Deno.copyFile(result.metricsPath, join(ctx.outDir, "metrics.jsonl"));
        const metrics: Metric[] = (await Deno.readTextFile(result.metricsPath)).trim().split("\n")
          .filter(Boolean).map((l) => JSON.parse(l));
        const evals = metrics.filter((m) => m.eval);
        const final = evals[evals.length - 1]?.eval ?? {};
        await writePlots(ctx.outDir, cfg, arch, metrics, data.multiLabel);
        await Deno.writeTextFile(join(ctx.outDir, "classes.json"), JSON.stringify(data.classes));
        const bestStep = result.best?.step ?? null;
        await Deno.writeTextFile(
          join(ctx.outDir, "model.json"),
          JSON.stringify(
            {
              visual: arch,
              mode: cfg.mode,
              classes: K,
              multiLabel: data.multiLabel,
              imageSize: cfg.transform.size,
              init: cfg.init,
              checkpoint: pretrained ? cfg.checkpoint : null,
              bestStep,
            },
            null,
            1,
          ),
        );
        const skipped = await writeSkippedList(
          ctx.outDir,
          [...data.train.skipped, ...data.val.skipped, ...packed.flatMap((p) => p.skipped)],
          ctx.log,
        );
        ctx.log(
          `final ${fmtFigures(final)}; best ${rankBy} ${result.best?.value.toFixed(2)} at step ` +
            `${bestStep}`,
        );
        return {
          mode: cfg.mode,
          init: cfg.init,
          ...(pretrained ? { checkpoint: cfg.checkpoint, fromStep } : {}),
          steps: result.steps,
          resumedFrom: result.resumedFrom,
          epochs: cfg.epochs,
          stepsPerEpoch: r.stepsPerEpoch,
          finalLoss: result.lastLoss,
          ...final,
          best: result.best ? { step: result.best.step, [rankBy]: result.best.value } : null,
          classes: K,
          multiLabel: data.multiLabel,
          trainImages: src.images,
          valImages: val.images,
          lr: r.lr,
          weightDecay: r.weightDecay,
          schedule: r.schedule,
          device: backend.name,
          ...skipped,
          seconds: (performance.now() - t0) / 1000,
        };
      } finally {
        src.close();
        val.close();
        optimizer.dispose();
        model.dispose();
      }
    } finally {
      backend.destroy(); // its threads and memory: `run` pipelines build many stages in one process
    }
  },
};

function fmtFigures(f: Record<string, number>): string {
  return Object.entries(f).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") || "(none)";
}

/** loss.svg (training loss per step) and eval.svg (the val figures per evaluation). */
async function writePlots(
  dir: string,
  cfg: FinetuneConfig,
  arch: string,
  metrics: Metric[],
  multiLabel: boolean,
): Promise<void> {
  const what = `${cfg.mode} ${arch} (${cfg.init === "pretrained" ? "pretrained" : "random init"})`;
  const trainPts = metrics.filter((m) => m.loss !== undefined);
  await Deno.writeTextFile(
    join(dir, "loss.svg"),
    lineChartSvg({
      title: `${what}: training loss`,
      xLabel: "step",
      yLabel: multiLabel ? "binary cross-entropy" : "cross-entropy",
      series: [{ name: "train", x: trainPts.map((m) => m.step), y: trainPts.map((m) => m.loss!) }],
    }),
  );
  const evals = metrics.filter((m) => m.eval);
  const keys = multiLabel ? ["mAP"] : ["top1", "top5"];
  await Deno.writeTextFile(
    join(dir, "eval.svg"),
    lineChartSvg({
      title: `${what}: val ${multiLabel ? "mAP" : "accuracy"}`,
      xLabel: "step",
      yLabel: multiLabel ? "mAP (%)" : "accuracy (%)",
      series: keys.map((k) => ({
        name: k === "top1" ? "top-1" : k === "top5" ? "top-5" : k,
        x: evals.map((m) => m.step),
        y: evals.map((m) => m.eval![k]),
      })),
    }),
  );
}
