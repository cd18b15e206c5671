import { join } from "node:path";
import { z } from "zod";
import { planPipeline } from "../../pipeline/pipeline_file.ts";
import type { Stage } from "../../pipeline/stage.ts";
import { assert, assertEquals, assertThrows } from "./cache/_assert.ts";

function stage(name: string, seedKey?: string): Stage<unknown> {
  return {
    name,
    version: "1",
    module: import.meta.url,
    seedKey,
    schema: z.strictObject({
      seed: z.number().int().default(0),
      train: z.strictObject({ seed: z.number().int().default(0) }).prefault({}),
      n: z.number().int().default(1),
    }) as z.ZodType<unknown>,
    inputs: () => ({ artifacts: {}, files: {} }),
    run: () => Promise.resolve({}),
  };
}
const STAGES = {
  pretrain: stage("pretrain", "train.seed"),
  extract: stage("extract", "seed"),
  evaluate: stage("evaluate"),
};

function pipelineFile(doc: unknown): string {
  const dir = Deno.makeTempDirSync();
  const f = join(dir, "p.json");
  Deno.writeTextFileSync(f, JSON.stringify(doc));
  return f;
}

Deno.test("pipeline seeds: a step and everything reading it run once per seed", () => {
  const f = pipelineFile({
    stages: [
      { name: "pre", stage: "pretrain", seeds: [0, 1] },
      { name: "feat", stage: "extract", inputs: { model: "pre" } },
      { name: "ev", stage: "evaluate", inputs: { features: "feat" } },
      { name: "rand", stage: "extract", seeds: [5, 6, 7] },
      { name: "ev-rand", stage: "evaluate", inputs: { features: "rand" } },
      { name: "one", stage: "evaluate", inputs: { features: "feat@1" } },
    ],
  });
  const plan = planPipeline(f, STAGES, ["feat.n=3", "pre@1.n=9"]);
  assertEquals(plan.steps.map((s) => s.name), [
    "pre@0",
    "pre@1",
    "feat@0",
    "feat@1",
    "ev@0",
    "ev@1",
    "rand@5",
    "rand@6",
    "rand@7",
    "ev-rand@5",
    "ev-rand@6",
    "ev-rand@7",
    "one",
  ]);
  const by = Object.fromEntries(plan.steps.map((s) => [s.name, s]));
  assertEquals(by["pre@1"].config, { train: { seed: 1 }, n: 9 });
  assertEquals(by["pre@0"].config, { train: { seed: 0 } });
  assertEquals(by["rand@6"].config, { seed: 6 });
  assertEquals(by["feat@1"].config, { n: 3 }); // inherits the branch, keeps its own config
  assertEquals(by["ev@1"].inputs.features, { kind: "step", step: "feat@1" });
  assertEquals(by["one"].inputs.features, { kind: "step", step: "feat@1" });
});

Deno.test("pipeline file: every step is validated before any runs, errors name the step", () => {
  const bad = (stages: unknown[], sets: string[] = []) => () =>
    planPipeline(pipelineFile({ stages }), STAGES, sets, (r) => {
      if (r !== "known") throw new Error(`no artifact "${r}"`);
    });
  assertThrows(
    bad([{ name: "a", stage: "pretrain" }, { name: "b", stage: "extract", config: { nope: 1 } }]),
    Error,
    'stages[1] ("b")',
  );
  assertThrows(bad([{ name: "a", stage: "evaluate", seeds: [1] }]), Error, "takes no seed");
  assertThrows(
    bad([
      { name: "a", stage: "pretrain", seeds: [0, 1] },
      { name: "b", stage: "extract", seeds: [2], inputs: { model: "a" } },
    ]),
    Error,
    "runs with seeds",
  );
  assertThrows(
    bad([{ name: "a", stage: "extract", inputs: { model: "b" } }, {
      name: "b",
      stage: "pretrain",
    }]),
    Error,
    "runs later",
  );
  assertThrows(bad([{ name: "a", stage: "extract", inputs: { model: "zzz" } }]), Error, "zzz");
  assertThrows(bad([{ name: "a", stage: "pretrain" }], ["x.n=1"]), Error, "STEP a step name");
  const ok = planPipeline(
    pipelineFile({ stages: [{ name: "a", stage: "extract", inputs: { model: "known" } }] }),
    STAGES,
    [],
    (r) => assert(r === "known"),
  );
  assertEquals(ok.steps[0].inputs.model, { kind: "ref", ref: "known" });
});
