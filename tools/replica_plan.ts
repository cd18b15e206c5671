/**
 * What tools/recipe_replica.py (the PyTorch replica of a virtex recipe) reads from virtex: a
 * pipeline file's pretrain step resolved with virtex's own schemas and defaults, the tokenize and
 * augment steps it reads, the named parameter shapes of the model it builds and its optimizer
 * groups (by parameter name). Prints one JSON line.
 *
 *   deno run -A tools/replica_plan.ts --recipe examples/flickr8k.json [--step virtex]
 *     [--set ROLE.KEY=VALUE ...]      ROLE: pretrain | tokenize | augment
 *
 * `--set pretrain.model.visual=resnet18_w32` overrides the pretrain step's key (`tokenize.*` and
 * `augment.*` the steps it reads), checked by the stage's schema like `run --set`.
 */
import { parseArgs } from "node:util";
import { createBackend } from "../engine/device.ts";
import { ConfigError } from "../pipeline/config.ts";
import { type PlannedStep, planPipeline } from "../pipeline/pipeline_file.ts";
import { PretrainingModel } from "../pipeline/model/tasks.ts";
import type { OptimConfig } from "../pipeline/pretrain/config.ts";
import { buildOptimizer } from "../pipeline/pretrain/optimizer.ts";
import { stages } from "../pipeline/stages/registry.ts";

const ROLES = ["pretrain", "tokenize", "augment"] as const;
type Role = typeof ROLES[number];

/** A model's named parameter shapes (shared tensors once) and its optimizer groups by name. */
export interface ModelLayout {
  params: [string, number[]][];
  groups: { name: string; lr: number; weightDecay: number; params: string[] }[];
}

/** The layout of the model and optimizer a pretrain config builds. */
export async function modelLayout(
  model: { task: string; visual: string; textual: string; maxLength: number; initStd: number },
  optim: OptimConfig,
  vocabSize: number,
): Promise<ModelLayout> {
  const backend = await createBackend("ref");
  const m = await PretrainingModel.create(backend, {
    task: model.task as "bicaptioning",
    visual: model.visual,
    textual: model.textual,
    maxLength: model.maxLength,
    initStd: model.initStd,
    vocabSize,
  });
  const named = m.namedParameters();
  const nameOf = new Map(named.map(([n, t]) => [t, n]));
  const opt = buildOptimizer(named, optim);
  return {
    params: named.map(([name, t]) => [name, [...t.shape]]),
    groups: opt.groups.map((g) => ({
      name: g.name ?? "default",
      lr: g.baseLr ?? g.lr,
      weightDecay: g.weightDecay,
      params: g.params.map((t) => nameOf.get(t)!),
    })),
  };
}

function inputStep(plan: PlannedStep[], step: PlannedStep, input: string): PlannedStep | null {
  const i = step.inputs[input];
  return i?.kind === "step" ? plan.find((s) => s.name === i.step) ?? null : null;
}

/** The step names each role's `--set` lands on, from a plan without overrides. */
function roleSteps(plan: PlannedStep[], stepName: string | undefined): Record<Role, string[]> {
  const pre = plan.find((s) => s.stage === "pretrain" && (!stepName || s.name === stepName));
  if (!pre) {
    throw new ConfigError(
      stepName ? `no pretrain step named "${stepName}"` : "the pipeline has no pretrain step",
    );
  }
  const tok = inputStep(plan, pre, "tokens"), aug = inputStep(plan, pre, "shards");
  if (!tok || !aug) {
    throw new ConfigError(`pretrain step "${pre.name}" must read tokens and shards from steps`);
  }
  return {
    pretrain: [pre.name],
    tokenize: [tok.name],
    augment: [aug.name],
  };
}

/** Resolves the recipe (see module doc). */
export async function resolveRecipe(file: string, stepName: string | undefined, sets: string[]) {
  const first = planPipeline(file, stages).steps;
  const roles = roleSteps(first, stepName);
  const stepSets = sets.flatMap((s) => {
    const dot = s.indexOf(".");
    const role = s.slice(0, dot) as Role;
    if (dot <= 0 || !ROLES.includes(role)) {
      throw new ConfigError(
        `--set "${s}": expected ROLE.KEY=VALUE, ROLE one of ${ROLES.join(", ")}`,
      );
    }
    return roles[role].map((name) => `${name}.${s.slice(dot + 1)}`);
  });
  const plan = planPipeline(file, stages, stepSets).steps;
  const pre = plan.find((s) => s.name === roles.pretrain[0])!;
  const parse = (s: PlannedStep) => stages[s.stage].schema.parse(s.config);
  const pretrain = parse(pre);
  const tok = inputStep(plan, pre, "tokens")!, aug = inputStep(plan, pre, "shards")!;
  const tokenize = parse(tok);
  const layout = await modelLayout(pretrain.model, pretrain.optim, tokenize.vocabSize);
  return {
    recipe: file,
    pretrain: { step: pre.name, config: pretrain },
    tokenize: { step: tok.name, config: tok.config, vocabSize: tokenize.vocabSize },
    augment: { step: aug.name, config: aug.config, shortSide: parse(aug).shortSide },
    ...layout,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      recipe: { type: "string" },
      step: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || !values.recipe) {
    console.log(
      "usage: deno run -A tools/replica_plan.ts --recipe PIPELINE.json [--step NAME]\n" +
        "         [--set ROLE.KEY=VALUE ...]   (ROLE: pretrain, tokenize, augment)",
    );
    Deno.exit(values.help ? 0 : 2);
  }
  try {
    console.log(JSON.stringify(await resolveRecipe(values.recipe, values.step, values.set)));
  } catch (e) {
    console.error(`replica_plan: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
