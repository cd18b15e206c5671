import assert from "node:assert";
import { join } from "node:path";
import type { Backend } from "../../../engine/backend.ts";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { lrFactor } from "../../../engine/optim/index.ts";
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

/** Trains the toy model to `steps` (or stops after `stopAfter`) in `dir` (default: a new one). */
async function runToy(
  be: Backend,
  steps: number,
  o: { stopAfter?: number; dir?: string; log?: (m: string) => void } = {},
) {
  const s = await setup(be, steps);
  const workDir = o.dir ?? await Deno.makeTempDir();
  const r = await train({
    backend: be,
    ...s,
    train: s.trainCfg,
    source: toySource(),
    val: toySource(2),
    workDir,
    progress: quiet,
    log: o.log ?? (() => {}),
    stopAfter: o.stopAfter,
  });
  const weights = new Map<string, Float32Array>();
  for (const [n, t] of s.model.namedParameters()) weights.set(n, await t.f32());
  s.model.dispose();
  s.optimizer.dispose();
  return { r, weights, workDir };
}

function assertSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  for (const [n, w] of a) {
    const r = b.get(n)!;
    assert.strictEqual(r.length, w.length);
    assert(w.every((v, i) => Object.is(v, r[i])), `parameter ${n} differs after resume`);
  }
}

Deno.test("training stopped at step 2 and resumed ends bit-identical to an uninterrupted run", async () => {
  const be = await createBackend("ref");
  const steps = 4;
  const runDir = (stopAfter?: number, dir?: string) => runToy(be, steps, { stopAfter, dir });
  const full = await runDir();
  const half = await runDir(2);
  assert.strictEqual(half.r.steps, 2);
  const resumed = await runDir(undefined, half.workDir);
  assert.strictEqual(resumed.r.resumedFrom, 2);
  assert.strictEqual(resumed.r.steps, steps);
  assertSameWeights(full.weights, resumed.weights);
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

Deno.test("a corrupt latest checkpoint is skipped with a warning for the previous one", async () => {
  const be = await createBackend("ref");
  const full = await runToy(be, 3);
  const half = await runToy(be, 3, { stopAfter: 2 });
  // Truncate the newest checkpoint's weights, as a crash in the middle of writing it would.
  const bad = join(half.workDir, "checkpoints", "step-00000002", "model.safetensors");
  const bytes = await Deno.readFile(bad);
  await Deno.writeFile(bad, bytes.subarray(0, bytes.length >> 1));
  const logs: string[] = [];
  const resumed = await runToy(be, 3, { dir: half.workDir, log: (m) => logs.push(m) });
  assert(
    logs.some((l) => l.includes("step-00000002") && l.includes("trying an older one")),
    logs.join("\n"),
  );
  assert.strictEqual(resumed.r.resumedFrom, 1);
  assertSameWeights(full.weights, resumed.weights);
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

Deno.test("losses read a step late: every step logged, a NaN batch stops the run one step on", async () => {
  const be = await createBackend("ref");
  const s = await setup(be, 6);
  const workDir = await Deno.makeTempDir();
  const good = toySource();
  // step 3's batch is NaN: its loss is only awaited after step 4 has been recorded
  let furthest = -1;
  const source = {
    ...good,
    async get(epoch: number, step: number) {
      furthest = Math.max(furthest, step);
      const b = await good.get(epoch, step);
      if (step === 3) b.images.fill(NaN);
      return b;
    },
  };
  const cfg = { ...s.trainCfg, checkpointEvery: 0, valEvery: 0 };
  await assert.rejects(
    train({ backend: be, ...s, train: cfg, source, workDir, progress: quiet, log: () => {} }),
    /non-finite (loss|gradient norm) \(.*\) at step 3; stopped\. The last good checkpoint is \(none\)/,
  );
  const lines = (await Deno.readTextFile(join(workDir, "metrics.jsonl"))).trim().split("\n");
  assert.deepStrictEqual(lines.map((l) => JSON.parse(l).step), [1, 2, 3]);
  assert(lines.every((l) => Number.isFinite(JSON.parse(l).gradNorm)));
  assert.strictEqual(furthest, 4, "recording ran exactly one step ahead of the loss reads");
  // Each line's LR is its own step's, not that of the step recorded after it.
  const sched = {
    kind: s.optim.schedule,
    warmupSteps: s.optim.warmupSteps,
    totalSteps: cfg.steps,
    milestones: s.optim.milestones,
    gamma: s.optim.gamma,
  };
  assert.deepStrictEqual(
    lines.map((l) => JSON.parse(l).lr.cnn),
    [0, 1, 2].map((step) => s.optim.cnnLr * lrFactor(step, sched)),
  );
  s.model.dispose();
});

Deno.test("img/s is measured per step: a step finished right after its predecessor is not ~0 s", async () => {
  const be = await createBackend("ref");
  const s = await setup(be, 4);
  const workDir = await Deno.makeTempDir();
  const good = toySource();
  const minStepMs = 40;
  // Every batch takes at least 40 ms to arrive, so no step can take less; checkpoints every 2
  // steps make the trainer finish some steps right after the one before.
  const source = {
    ...good,
    async get(epoch: number, step: number) {
      await new Promise((r) => setTimeout(r, minStepMs));
      return await good.get(epoch, step);
    },
  };
  const cfg = { ...s.trainCfg, checkpointEvery: 2, valEvery: 0 };
  await train({ backend: be, ...s, train: cfg, source, workDir, progress: quiet, log: () => {} });
  const lines = (await Deno.readTextFile(join(workDir, "metrics.jsonl"))).trim().split("\n");
  const rates = lines.map((l) => JSON.parse(l).imgPerSec as number);
  assert.strictEqual(rates.length, 4);
  const ceiling = cfg.batchSize / (minStepMs / 1000);
  assert(rates.every((r) => r > 0 && r <= ceiling), `rates ${rates} above ${ceiling} img/s`);
  s.model.dispose();
});
