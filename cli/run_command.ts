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
 * `--set STEP.KEY=VALUE` overrides a step's config key. After each step the ref records every key
 * built so far, so `cache gc` keeps the pipeline's artifacts (and their inputs).
 */
import { basename, dirname, resolve } from "node:path";
import { z } from "zod";
import { Cache } from "../pipeline/cache/store.ts";
import { applySets, ConfigError, loadConfigFile, validateConfig } from "../pipeline/config.ts";
import { runStage } from "../pipeline/runner.ts";
import type { Artifact } from "../pipeline/stage.ts";
import { stages } from "../pipeline/stages/registry.ts";
import { out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

const stepSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "letters, digits, _ and - only"),
  stage: z.string(),
  config: z.record(z.string(), z.unknown()).default({}),
  inputs: z.record(z.string(), z.string()).default({}),
});
const pipelineSchema = z.strictObject({
  ref: z.string().optional(),
  stages: z.array(stepSchema).min(1),
});

/** The `run --help` text. */
export const RUN_HELP = `usage: deno task virtex run --config PIPELINE.json [options]

Runs a pipeline of stages described in one JSON file, each through the cache.

file format:
  {"ref": NAME?, "stages": [{"name": STEP, "stage": STAGE, "config": {...},
                             "inputs": {INPUT: STEP | PATH | REF}}, ...]}
  An input naming an earlier step gets that step's artifact; an existing path is an input
  file/folder (relative to the pipeline file's folder); anything else is a cache key or ref.

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
  const pipeline = validateConfig(pipelineSchema, loadConfigFile(file), file);
  const baseDir = dirname(resolve(file));

  // --set STEP.KEY=V
  const setsByStep = new Map<string, string[]>();
  for (const s of values.set ?? []) {
    const dot = s.indexOf(".");
    const step = dot > 0 ? s.slice(0, dot) : "";
    if (!pipeline.stages.some((st) => st.name === step)) {
      throw new ConfigError(`--set "${s}": expected STEP.KEY=VALUE with STEP a step name`);
    }
    setsByStep.set(step, [...(setsByStep.get(step) ?? []), s.slice(dot + 1)]);
  }

  const cache = new Cache();
  const refName = values.ref ?? pipeline.ref ?? basename(file).replace(/\.json$/i, "");
  const built = new Map<string, Artifact>();
  const keys: Record<string, string> = {};
  const results: { name: string; stage: string; key: string; hit: boolean; summary: unknown }[] =
    [];
  for (const [i, step] of pipeline.stages.entries()) {
    const where = `${file}: stages[${i}] ("${step.name}")`;
    if (built.has(step.name)) throw new ConfigError(`${where}: duplicate step name`);
    const stage = stages[step.stage];
    if (!stage) {
      throw new ConfigError(
        `${where}.stage: unknown stage "${step.stage}" (available: ${
          Object.keys(stages).join(", ")
        })`,
      );
    }
    const inputs: Record<string, Artifact | string> = {};
    const inputFiles: Record<string, string> = {};
    for (const [name, value] of Object.entries(step.inputs)) {
      const earlier = built.get(value);
      if (earlier) {
        inputs[name] = earlier;
        continue;
      }
      const p = resolve(baseDir, value);
      let isPath = false;
      try {
        Deno.statSync(p);
        isPath = true;
      } catch { /* a cache ref */ }
      if (isPath) inputFiles[name] = p;
      else inputs[name] = value;
    }
    const raw = applySets(step.config, setsByStep.get(step.name) ?? []);
    const { artifact, hit } = await runStage(stage, raw, {
      cache,
      inputs,
      inputFiles,
      force: values.force,
    });
    built.set(step.name, artifact);
    keys[step.name] = artifact.key;
    cache.setRef(refName, keys);
    results.push({
      name: step.name,
      stage: step.stage,
      key: artifact.key,
      hit,
      summary: artifact.manifest.summary,
    });
    if (!values.json) {
      out(`${step.name} (${step.stage}) ${artifact.key.slice(0, 12)}${hit ? " (cache hit)" : ""}`);
    }
  }
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
