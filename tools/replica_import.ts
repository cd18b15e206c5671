/**
 * A PyTorch replica's output folder (tools/recipe_replica.py: model.json + visual.safetensors with
 * torchvision names, metrics.jsonl, summary.json) as a pretrain-kind artifact, so virtex's extract
 * takes it as its `model` input. Kept apart from tools/replica_score.ts so that edits to the
 * scoring command leave these artifacts' keys (and every extract built on them) alone.
 */
import { join } from "node:path";
import { z } from "zod";
import { createBackend } from "../engine/device.ts";
import { loadSafetensors } from "../engine/safetensors.ts";
import { createBackbone } from "../pipeline/model/backbones.ts";
import type { Stage } from "../pipeline/stage.ts";

/** Files of a replica output folder that the imported artifact holds. */
const REPLICA_FILES = ["model.json", "visual.safetensors", "metrics.jsonl", "summary.json"];

/**
 * The replica's pretrain config as recorded in its summary.json, plus whether it is untrained, the
 * batches its BatchNorm statistics were calibrated on, and the steps it trained (a snapshot's are
 * fewer than train.steps), so report tells snapshots and baselines apart from the trained run.
 */
const importSchema = z.object({
  randomInit: z.boolean(),
  bnCalibrate: z.number().int(),
  stepsDone: z.number().int(),
}).passthrough();
type ImportConfig = z.infer<typeof importSchema>;

/**
 * A replica's backbone as a pretrain-kind artifact (what extract's `model` input takes). The run
 * checks that the weights load strictly into virtex's backbone of the model.json architecture.
 */
export const replicaImportStage: Stage<ImportConfig> = {
  name: "pretrain",
  version: "pytorch-replica/1",
  module: import.meta.url,
  schema: importSchema,
  // The folder comes as a file input (runStage's inputFiles): its content, not its path, is keyed.
  inputs: () => ({ artifacts: {}, files: { replica: "" } }),
  async run(ctx) {
    const dir = ctx.inputFiles.replica;
    for (const f of REPLICA_FILES) await Deno.copyFile(join(dir, f), join(ctx.outDir, f));
    const model = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
    const backend = await createBackend("ref");
    try {
      const net = createBackbone(backend, model.visual);
      net.loadStateDict((await loadSafetensors(join(dir, "visual.safetensors"))).tensors, true);
      net.dispose();
    } finally {
      backend.destroy();
    }
    const summary = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
    return { source: summary.source, ...summary.train, torch: summary.torch };
  },
};
