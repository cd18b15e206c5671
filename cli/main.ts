/**
 * The virtex command line: `./virtex <command> [options]`. Stage commands come from
 * pipeline/stages/registry.ts; `run` runs a pipeline file; `cache` maintains the artifact cache.
 * Exit codes: 0 success, 1 bad input / failed check, 2 usage error or unavailable command.
 */
import { ConfigError } from "../pipeline/config.ts";
import { DataError } from "../pipeline/data/errors.ts";
import { currentWorld } from "../pipeline/dist.ts";
import { InputError } from "../pipeline/runner.ts";
import { PIPELINE_STAGES, stages } from "../pipeline/stages/registry.ts";
import { cacheCommand } from "./cache_command.ts";
import { err, out, UsageError } from "./common.ts";
import { demoCommand } from "./demo.ts";
import { captionCommand } from "./caption_command.ts";
import { captionsToVocCommand } from "./captions_to_voc_command.ts";
import { cocoToVocCommand } from "./coco_to_voc_command.ts";
import { exportCommand } from "./export_command.ts";
import { reportCommand } from "./report_command.ts";
import { runCommand } from "./run_command.ts";
import { stageCommand } from "./stage_command.ts";

// WebGPU (probed by --device auto) wants a runtime dir; give it a private one when unset.
if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/virtex-xdg-${Deno.uid?.() ?? 0}`;
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch { /* leave unset: WebGPU then reports it */ }
}

/** One-line descriptions for `--help` (stages not listed here show without one). */
const STAGE_SUMMARIES: Record<string, string> = {
  ingest: "read COCO captions JSON / Flickr8k CSV into a checked captions.jsonl",
  scenes: "generate the synthetic captioned scenes (the embedded default data)",
  tokenize: "train the BPE vocabulary and encode every caption",
  augment: "decode, resize and pack images into shards for training",
  pretrain: "train the visual backbone + textual head (VirTex tasks)",
  extract: "pooled, L2-normalised backbone features per dataset split",
  evaluate: "VOC07 per-class SVM mAP, or linear probe top-1",
  "caption-labels": "a VOC-layout multi-label set whose classes are caption words",
  finetune: "fine-tune a backbone with a new linear head, or the paper's linear probe",
};

function mainHelp(): string {
  const names = [...new Set([...PIPELINE_STAGES, ...Object.keys(stages)])];
  const stageLines = names.map((n) =>
    `  ${n.padEnd(10)} ${
      stages[n] ? STAGE_SUMMARIES[n] ?? "" : "(not yet available in this build)"
    }`.trimEnd()
  );
  return [
    "usage: ./virtex <command> [options]     (each command takes --help)",
    "",
    "VirTex: pretrain vision backbones from image-caption data; every stage's output is an",
    "artifact in a content-addressed cache ($VIRTEX_CACHE, default .virtex-cache/).",
    "",
    "stage commands:",
    ...stageLines,
    "",
    "other commands:",
    "  run        run a pipeline of stages from one config file",
    "  cache      ls | show | verify | gc | refs | unref",
    "  demo       the end-to-end demo on synthetic data",
    "  caption    caption images (greedy / beam / nucleus), attention maps, CIDEr-D on a split",
    "  export     a pretrained backbone as safetensors with torchvision / Detectron2 names",
    "  coco-to-voc  turn a COCO folder into a VOC2007-style 20-class folder",
    "  captions-to-voc  a VOC2007-style multi-label set whose classes are caption words",
    "  report     one comparison table (markdown + SVG) from evaluate artifacts or run refs",
    "",
    "common stage options: --config FILE, --set KEY=VALUE, --input NAME=REF|PATH, --skip-bad,",
    "                      --force, --json",
  ].join("\n");
}

/** Dispatches one command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    out(mainHelp());
    return cmd ? 0 : 2;
  }
  if (cmd === "run") return await runCommand(rest);
  if (cmd === "cache") return await cacheCommand(rest);
  if (cmd === "demo") return await demoCommand(rest);
  if (cmd === "caption") return await captionCommand(rest);
  if (cmd === "export") return await exportCommand(rest);
  if (cmd === "coco-to-voc") return await cocoToVocCommand(rest);
  if (cmd === "captions-to-voc") return await captionsToVocCommand(rest);
  if (cmd === "report") return await reportCommand(rest);
  const stage = stages[cmd];
  if (stage) return await stageCommand(stage, rest);
  if (PIPELINE_STAGES.includes(cmd)) {
    err(`${cmd}: this stage is not yet available in this build`);
    return 2;
  }
  throw new UsageError(`unknown command "${cmd}" (see --help)`);
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
    currentWorld().mpi?.finalize();
  } catch (e) {
    const error = e as Error;
    if (e instanceof UsageError) {
      err(`error: ${error.message}`);
      code = 2;
    } else if (e instanceof ConfigError || e instanceof InputError || e instanceof DataError) {
      err(`error: ${error.message}`);
      code = 1;
    } else {
      err(`error: ${error.message}`);
      if (Deno.env.get("VIRTEX_DEBUG")) err(error.stack ?? "");
      code = 1;
    }
    // One failed rank of an MPI job ends them all (the others would wait for it forever).
    const world = currentWorld();
    if (world.size > 1) {
      err(`error: rank ${world.rank} of ${world.size} failed; aborting the MPI job`);
      world.mpi!.abort(code);
    }
  }
  Deno.exit(code);
}
