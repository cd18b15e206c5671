/**
 * Pipeline files (`run --config PIPELINE.json`): parsing, seed expansion and up-front validation,
 * so that a mistake in any step is reported (naming the step) before the first one runs.
 *
 *   {"ref": NAME?, "stages": [{"name": STEP, "stage": STAGE, "config": {...},
 *                              "inputs": {INPUT: STEP | PATH | REF}, "seeds": [0, 1, 2]?}, ...]}
 *
 * `seeds` runs a step once per seed (as STEP@0, STEP@1, ...; the seed goes to the stage's seed key,
 * e.g. `train.seed` of pretrain, `seed` of extract), and every later step that takes it as an input
 * is expanded the same way, so one line gives a whole branch per seed (e.g. random-init baselines
 * over three seeds, each extracted and evaluated). A later step may name one instance (STEP@1).
 */
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { applySets, ConfigError, loadConfigFile, validateConfig } from "./config.ts";
import type { Stage } from "./stage.ts";

const stepSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "letters, digits, _ and - only"),
  stage: z.string(),
  config: z.record(z.string(), z.unknown()).default({}),
  inputs: z.record(z.string(), z.string()).default({}),
  seeds: z.array(z.number().int()).min(1).optional(),
});
const pipelineSchema = z.strictObject({
  ref: z.string().optional(),
  stages: z.array(stepSchema).min(1),
});

/** Where a step input comes from. */
export type StepInput =
  | { kind: "step"; step: string } // an earlier step's artifact
  | { kind: "path"; path: string } // an existing file or folder
  | { kind: "ref"; ref: string }; // a cache key, key prefix or ref

/** One step to run, after expansion and validation. */
export interface PlannedStep {
  name: string; // e.g. "pre" or "pre@1"
  stage: string;
  /** The step's raw config with `--set` overrides and the seed applied (validated). */
  config: Record<string, unknown>;
  inputs: Record<string, StepInput>;
  /** Index of the step in the file, for messages. */
  index: number;
}

/** A parsed, expanded, validated pipeline. */
export interface PipelinePlan {
  ref?: string;
  steps: PlannedStep[];
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split(".");
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    node[p] = next && typeof next === "object" && !Array.isArray(next) ? { ...next } : {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/**
 * Reads `file`, applies `sets` ("STEP.KEY=VALUE"; STEP may name one seed instance, STEP@1),
 * expands seeds and validates every step's stage, config and inputs; `checkRef` is called on
 * every input that names a cache artifact (it throws when the artifact is missing).
 */
export function planPipeline(
  file: string,
  stages: Record<string, Stage<unknown>>,
  sets: string[] = [],
  checkRef: (ref: string) => void = () => {},
): PipelinePlan {
  const pipeline = validateConfig(pipelineSchema, loadConfigFile(file), file);
  const baseDir = dirname(resolve(file));
  const allNames = new Set(pipeline.stages.map((s) => s.name));
  const names = new Set<string>();
  const seedsOf = new Map<string, number[]>(); // expanded step name -> its seeds
  const steps: PlannedStep[] = [];
  for (const [i, step] of pipeline.stages.entries()) {
    const where = `${file}: stages[${i}] ("${step.name}")`;
    if (names.has(step.name)) throw new ConfigError(`${where}: duplicate step name`);
    names.add(step.name);
    const stage = stages[step.stage];
    if (!stage) {
      throw new ConfigError(
        `${where}.stage: unknown stage "${step.stage}" (available: ${
          Object.keys(stages).join(", ")
        })`,
      );
    }
    // Seeds: the step's own, or inherited from the expanded steps it reads.
    let seeds = step.seeds ?? null;
    for (const [input, value] of Object.entries(step.inputs)) {
      const inherited = seedsOf.get(value);
      if (!inherited) continue;
      if (seeds && seeds.join() !== inherited.join()) {
        throw new ConfigError(
          `${where}.inputs.${input}: "${value}" runs with seeds [${inherited}], ` +
            `but this step runs with [${seeds}]`,
        );
      }
      seeds = inherited;
    }
    if (step.seeds && !stage.seedKey) {
      throw new ConfigError(`${where}.seeds: the ${step.stage} stage takes no seed`);
    }
    if (seeds) seedsOf.set(step.name, seeds);
    const instances = seeds ? seeds.map((s) => ({ seed: s, name: `${step.name}@${s}` })) : [
      { seed: null, name: step.name },
    ];
    for (const inst of instances) {
      const mine = sets.filter((s) =>
        s.startsWith(`${step.name}.`) || s.startsWith(`${inst.name}.`)
      )
        .map((s) => s.slice(s.indexOf(".") + 1));
      let config = applySets(step.config, mine);
      if (inst.seed !== null && step.seeds) {
        config = structuredClone(config);
        setPath(config, stage.seedKey!, inst.seed);
      }
      try {
        validateConfig(stage.schema, config, `${step.stage} config`);
      } catch (e) {
        throw new ConfigError(
          `${where}${inst.seed !== null ? ` seed ${inst.seed}` : ""}: ${(e as Error).message}`,
        );
      }
      const inputs: Record<string, StepInput> = {};
      for (const [input, value] of Object.entries(step.inputs)) {
        if (seedsOf.has(value) && value !== step.name) {
          inputs[input] = { kind: "step", step: `${value}@${inst.seed}` };
        } else if (steps.some((s) => s.name === value)) {
          inputs[input] = { kind: "step", step: value };
        } else if (value === step.name) {
          throw new ConfigError(`${where}.inputs.${input}: a step cannot read its own output`);
        } else if (allNames.has(value) && !names.has(value)) {
          throw new ConfigError(`${where}.inputs.${input}: step "${value}" runs later in the file`);
        } else {
          const p = resolve(baseDir, value);
          let isPath = false;
          try {
            Deno.statSync(p);
            isPath = true;
          } catch { /* not a path: a cache ref */ }
          if (!isPath) {
            try {
              checkRef(value);
            } catch (e) {
              throw new ConfigError(`${where}.inputs.${input}: ${(e as Error).message}`);
            }
          }
          inputs[input] = isPath ? { kind: "path", path: p } : { kind: "ref", ref: value };
        }
      }
      steps.push({ name: inst.name, stage: step.stage, config, inputs, index: i });
    }
  }
  for (const s of sets) {
    const dot = s.indexOf(".");
    const step = dot > 0 ? s.slice(0, dot) : "";
    if (!names.has(step) && !steps.some((p) => p.name === step)) {
      throw new ConfigError(`--set "${s}": expected STEP.KEY=VALUE with STEP a step name`);
    }
  }
  return { ref: pipeline.ref, steps };
}
