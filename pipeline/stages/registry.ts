/**
 * Every pipeline stage by command name. `./virtex <name>` and `run` pipelines look stages
 * up here: add one line per stage module.
 */
import type { Stage } from "../stage.ts";
import { augmentStage } from "./augment.ts";
import { captionLabelsStage } from "./caption_labels.ts";
import { evaluateStage } from "./evaluate.ts";
import { extractStage } from "./extract.ts";
import { finetuneStage } from "./finetune.ts";
import { ingestStage } from "./ingest.ts";
import { pretrainStage } from "./pretrain.ts";
import { scenesStage } from "./scenes.ts";
import { tokenizeStage } from "./tokenize.ts";

// deno-lint-ignore no-explicit-any
export const stages: Record<string, Stage<any>> = {
  scenes: scenesStage,
  ingest: ingestStage,
  tokenize: tokenizeStage,
  augment: augmentStage,
  pretrain: pretrainStage,
  extract: extractStage,
  evaluate: evaluateStage,
  "caption-labels": captionLabelsStage,
  finetune: finetuneStage,
};

/** The stage commands the CLI always lists (those not yet registered report so clearly). */
export const PIPELINE_STAGES = ["tokenize", "augment", "pretrain", "extract", "evaluate"];
