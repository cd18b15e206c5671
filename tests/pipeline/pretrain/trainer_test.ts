import assert from "node:assert";
import { join } from "node:path";
import type { Backend } from "../../../engine/backend.ts";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { CounterRng } from "../../../engine/rng.ts";
import { PretrainingModel } from "../../../pipeline/model/tasks.ts";
import { optimSchema, trainSchema } from "../../../pipeline/pretrain/config.ts";
import { buildOptimizer, isHeadNoDecay } from "../../../pipeline/pretrain/optimizer.ts";
import { train } from "../../../pipeline/pretrain/trainer.ts";
import { toySource, V } from "./toy_source.ts";
import type { Progress } from "../../../pipeline/stage.ts";

const quiet = (): Progress => ({ tick() {}, done() {} });

async function setup(be: Backend, steps: number, opt: Record<string, unknown> = {}) {
  setInitSeed(3);
  const rng = new CounterRng(5);
  const model = await PretrainingModel.create(be, {
    task: "bicaptioning",
    visual: "resnet18",
    textual: "transdec_postnorm::L1_H32_A2_F64",
    vocabSize: V,
  }, rng);
  const optim = optimSchema.parse({ warmupSteps: 2, cnnLr: 0.05, headLr: 0.01, ...opt });
  const trainCfg = trainSchema.parse({ steps, batchSize: 2, checkpointEvery: 1, valEvery: 2 });
  const optimizer = buildOptimizer(model.namedParameters(), optim);
  return { model, rng, optim, trainCfg, optimizer };
}

Deno.test("no-decay set is the head's norms and biases only", () => {
  assert(isHeadNoDecay("textual.embedding.layer_norm.weight"));
  assert(isHeadNoDecay("textual.transformer.layers.0.norm2.bias"));
  assert(isHeadNoDecay("backward_textual.transformer.layers.0.self_attn.in_proj_bias"));
  assert(!isHeadNoDecay("textual.transformer.layers.0.linear1.weight"));
  assert(!isHeadNoDecay("visual.bn1.bias"));
  assert(!isHeadNoDecay("textual.output_bias"));
});

Deno.test("training stopped at step 2 and resumed ends bit-identical to an uninterrupted run", async () => {
  const be = await createBackend("ref");
  const steps = 4;
  const runDir = async (stopAfter?: number, dir?: string) => {
    const s = await setup(be, steps);
    const workDir = dir ?? await Deno.makeTempDir();
    const r = await train({
      backend: be,
      ...s,
      train: s.trainCfg,
      source: toySource(),
      val: toySource(2),
      workDir,
      progress: quiet,
      log: () => {},
      stopAfter,
    });
    const weights = new Map<string, Float32Array>();
    for (const [n, t] of s.model.namedParameters()) weights.set(n, await t.f32());
    s.model.dispose();
    s.optimizer.dispose();
    return { r, weights, workDir };
  };
  const full = await runDir();
  const half = await runDir(2);
  assert.strictEqual(half.r.steps, 2);
  const resumed = await runDir(undefined, half.workDir);
  assert.strictEqual(resumed.r.resumedFrom, 2);
  assert.strictEqual(resumed.r.steps, steps);
  for (const [n, w] of full.weights) {
    const r = resumed.weights.get(n)!;
    assert.strictEqual(r.length, w.length);
    assert(w.every((v, i) => Object.is(v, r[i])), `parameter ${n} differs after resume`);
  }
  const lines = (await Deno.readTextFile(join(resumed.workDir, "metrics.jsonl"))).trim().split(
    "\n",
  );
  assert.strictEqual(lines.length, steps);
  const fullLines = (await Deno.readTextFile(join(full.workDir, "metrics.jsonl"))).trim().split(
    "\n",
  );
  const losses = (ls: string[]) => ls.map((l) => JSON.parse(l).loss);
  assert.deepStrictEqual(losses(lines), losses(fullLines));
  assert(JSON.parse(lines[1]).valLoss > 0, "validation loss recorded at step 2");
});

Deno.test("a NaN loss stops the run and names the last good checkpoint", async () => {
  const be = await createBackend("ref");
  const s = await setup(be, 3, { cnnLr: 1e30, headLr: 1e30, warmupSteps: 0, clipGradNorm: 1e30 });
  const workDir = await Deno.makeTempDir();
  await assert.rejects(
    train({
      backend: be,
      ...s,
      train: s.trainCfg,
      source: toySource(),
      workDir,
      progress: quiet,
      log: () => {},
    }),
    /non-finite .* at step \d+; stopped\. The last good checkpoint is/,
  );
  s.model.dispose();
});
