/**
 * Picking a backbone out of a pretrain artifact: `last` (the final weights, visual.safetensors),
 * `best` (the checkpoint of the step with the best transfer mAP, recorded in model.json when
 * pretrain ran with a `transfer` set) or `step-N` (the checkpoint after N steps). Used by
 * `extract` and `finetune` (`checkpoint` key).
 */
import { join } from "node:path";
import { z } from "zod";
import type { HostTensor } from "../../engine/nn/index.ts";
import { loadSafetensors } from "../../engine/safetensors.ts";
import { ConfigError } from "../config.ts";
import { checkpointName } from "./checkpoint.ts";

/** The `checkpoint` config key: last | best | step-N. */
export const checkpointSchema = z.string().regex(/^(last|best|step-\d+)$/, {
  message: 'expected "last", "best" or "step-N" (N: a checkpointed step)',
}).default("last").describe(
  "weights of the `model` input: last (final), best (best transfer mAP step), step-N",
);

/** model.json of a pretrain artifact (the fields readers use). */
export interface PretrainModelInfo {
  visual: string;
  imageSize?: number;
  /** The step with the best transfer mAP (pretrain with `transfer`), else absent/null. */
  bestStep?: number | null;
}

/** Reads model.json of a pretrain artifact directory. */
export async function readModelInfo(dir: string): Promise<PretrainModelInfo> {
  return JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
}

/** Steps with a checkpoint in a pretrain artifact, ascending. */
export function checkpointSteps(dir: string): number[] {
  const steps: number[] = [];
  try {
    for (const e of Deno.readDirSync(join(dir, "checkpoints"))) {
      const m = /^step-(\d+)\.safetensors$/.exec(e.name);
      if (m) steps.push(Number(m[1]));
    }
  } catch { /* no checkpoints folder */ }
  return steps.sort((a, b) => a - b);
}

/**
 * The backbone tensors (torchvision key names, as visual.safetensors) of the pretrain artifact in
 * `dir` at `checkpoint`, the file they came from and the step (null for `last`).
 */
export async function backboneWeights(
  dir: string,
  checkpoint: string,
): Promise<{ tensors: Map<string, HostTensor>; file: string; step: number | null }> {
  if (checkpoint === "last") {
    const file = join(dir, "visual.safetensors");
    return { tensors: (await loadSafetensors(file)).tensors, file, step: null };
  }
  let step: number;
  if (checkpoint === "best") {
    const info = await readModelInfo(dir);
    if (typeof info.bestStep !== "number") {
      throw new ConfigError(
        `checkpoint "best": the model artifact records no best step (pretrain ran without a ` +
          "`transfer` set); use last or step-N",
      );
    }
    step = info.bestStep;
  } else {
    step = Number(checkpoint.slice("step-".length));
  }
  const file = join(dir, "checkpoints", `${checkpointName(step)}.safetensors`);
  try {
    Deno.statSync(file);
  } catch {
    const have = checkpointSteps(dir);
    throw new ConfigError(
      `checkpoint "${checkpoint}": the model artifact has no checkpoint after ${step} steps ` +
        `(checkpointed steps: ${have.length ? have.join(", ") : "none"})`,
    );
  }
  const tensors = new Map<string, HostTensor>();
  for (const [k, t] of (await loadSafetensors(file)).tensors) {
    if (k.startsWith("visual.")) tensors.set(k.slice("visual.".length), t);
  }
  return { tensors, file, step };
}
