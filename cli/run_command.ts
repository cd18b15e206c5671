/**
 * `virtex run --config PIPELINE.json`: runs several stages in order from one file.
 *
 *   {
 *     "ref": "flickr8k",                        // optional; default: the file's base name
 *     "stages": [
 *       {"name": "captions", "stage": "ingest", "config": {"captions": "data/captions.txt"}},
 *       {"name": "tok", "stage": "tokenize", "config": {...},
 *        "inputs": {"captions": "captions"}}     // an earlier step's name, a file/folder path,
 *     ]                                         // or a cache ref / key
 *   }
 *
 * The whole file is parsed, expanded (`seeds`) and validated before the first step runs (see
 * pipeline/pipeline_file.ts). `--set STEP.KEY=VALUE` overrides a step's config key. After each
 * step the ref records every key built so far, so `cache gc` keeps the pipeline's artifacts.
 */
import { basename } from "node:path";
import { Cache } from "../pipeline/cache/store.ts";
import { planPipeline } from "../pipeline/pipeline_file.ts";
import { currentWorld } from "../pipeline/dist.ts";
import { runStage } from "../pipeline/runner.ts";
import type { Artifact } from "../pipeline/stage.ts";
import { stages } from "../pipeline/stages/registry.ts";
import { checkSetFlags, err, out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

/** The `run --help` text. */
export const RUN_HELP = `usage: ./virtex run --config PIPELINE.json [options]

Runs a pipeline of stages described in one JSON file, each through the cache.

file format:
  {"ref": NAME?, "stages": [{"name": STEP, "stage": STAGE, "config": {...},
                             "inputs": {INPUT: STEP | PATH | REF}, "seeds": [0, 1, 2]?}, ...]}
  An input naming an earlier step gets that step's artifact; an existing path is an input
  file/folder (relative to the pipeline file's folder); anything else is a cache key or ref.
  "seeds" runs a step once per seed (STEP@0, STEP@1, ...: pretrain's train.seed, extract's seed),
  and every later step reading it runs once per seed too (e.g. random-init baselines over three
  seeds, each extracted and evaluated); "report --ref NAME" then shows mean ± sd over seeds.
  Every step is validated before the first one runs.

options:
  --config FILE        the pipeline file (required)
  --set STEP.KEY=V     override a step's config key (V parsed as JSON when it can be)
  --force              rebuild every step even if cached
  --ref NAME           name of the cache ref (default: "ref" in the file, else its base name)
  --json               print a final one-line JSON summary {stage: "run", key, hit, summary}`;

/** Runs `run`; returns the exit code. */
export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    config: { type: "string" },
    set: { type: "string", multiple: true },
    force: { type: "boolean" },
    ref: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "run");
  if (values.help) {
    out(RUN_HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`run: unexpected argument "${positionals[0]}"`);
  if (!values.config) throw new UsageError("run: --config PIPELINE.json is required");
  const file = values.config;
  const cache = new Cache();
  const plan = planPipeline(
    file,
    stages,
    checkSetFlags(values.set ?? [], "run"),
    (ref) => cache.resolve(ref),
  );
  const refName = values.ref ?? plan.ref ?? basename(file).replace(/\.json$/i, "");
  const built = new Map<string, Artifact>();
  const keys: Record<string, string> = {};
  const results: { name: string; stage: string; key: string; hit: boolean; summary: unknown }[] =
    [];
  for (const step of plan.steps) {
    const inputs: Record<string, Artifact | string> = {};
    const inputFiles: Record<string, string> = {};
    for (const [name, src] of Object.entries(step.inputs)) {
      if (src.kind === "step") inputs[name] = built.get(src.step)!;
      else if (src.kind === "path") inputFiles[name] = src.path;
      else inputs[name] = src.ref;
    }
    let run;
    try {
      run = await runStage(stages[step.stage], step.config, {
        cache,
        inputs,
        inputFiles,
        force: values.force,
      });
    } catch (e) {
      // Same error class (and exit code), with the step named.
      if (e instanceof Error) {
        e.message = `${file}: step "${step.name}" (${step.stage}): ${e.message}`;
      }
      throw e;
    }
    const { artifact, hit } = run;
    built.set(step.name, artifact);
    keys[step.name] = artifact.key;
    const root = currentWorld().rank === 0; // under MPI, rank 0 alone records and reports
    const warning = root ? cache.tryRecordRef(refName, keys) : null;
    if (warning) err(warning);
    results.push({
      name: step.name,
      stage: step.stage,
      key: artifact.key,
      hit,
      summary: artifact.manifest.summary,
    });
    if (!values.json && root) {
      out(`${step.name} (${step.stage}) ${artifact.key.slice(0, 12)}${hit ? " (cache hit)" : ""}`);
    }
  }
  if (currentWorld().rank !== 0) return 0;
  const last = results[results.length - 1];
  if (values.json) {
    printJsonSummary({
      stage: "run",
      key: last.key,
      hit: results.every((r) => r.hit),
      summary: { ref: refName, steps: results },
    });
  } else out(`ref ${refName}: ${results.length} step(s)`);
  return 0;
}
