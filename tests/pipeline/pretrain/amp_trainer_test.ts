/**
 * The trainer with train.amp on an f16 webgpu backend: loss-scaler state in checkpoints, exact
 * resume, skipped steps on overflow. A two-layer stand-in model replaces the ResNet + decoder
 * (a resnet18 step takes ~14 s on lavapipe). Skipped with a message without an f16 adapter.
 */
import assert from "node:assert";
import { join } from "node:path";
import type { Backend } from "../../../engine/backend.ts";
import { createWebGpuBackend, probeWebGpu } from "../../../engine/backends/webgpu.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { Linear, Module } from "../../../engine/nn/index.ts";
import * as ops from "../../../engine/ops/index.ts";
import type { LossScalerOptions } from "../../../engine/optim/index.ts";
import { CounterRng } from "../../../engine/rng.ts";
import type { Tensor } from "../../../engine/tensor.ts";
import type { Batch, PretrainingModel } from "../../../pipeline/model/tasks.ts";
import { optimSchema, trainSchema } from "../../../pipeline/pretrain/config.ts";
import { buildOptimizer } from "../../../pipeline/pretrain/optimizer.ts";
import { train } from "../../../pipeline/pretrain/trainer.ts";
import { S, toySource, V } from "./toy_source.ts";
import { f16SkipReason } from "../../engine/suite_util.ts";

Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const probe = await probeWebGpu();
const why = f16SkipReason(probe);
if (why) console.log(`AMP trainer tests skipped: ${why}`);
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: why !== "" };

let gpuP: Promise<Backend> | null = null;
const gpu = () => gpuP ??= createWebGpuBackend();

/** Stand-in for PretrainingModel: image pixels -> linear -> GELU -> linear -> caption token 1. */
class TinyTask extends Module {
  readonly l1: Linear;
  readonly l2: Linear;
  constructor(be: Backend) {
    super(be);
    this.l1 = this.registerModule("l1", new Linear(be, 3 * S * S, 32));
    this.l2 = this.registerModule("l2", new Linear(be, 32, V));
  }
  loss(b: Batch): { loss: Tensor; parts: Record<string, Tensor> } {
    const B = b.images.shape[0];
    const x = ops.reshape(b.images, [B, 3 * S * S]);
    const logits = this.l2.forward(ops.gelu(this.l1.forward(x))); // [B, V]
    const target = Int32Array.from({ length: B }, (_, i) => b.tokens[i * b.T + 1]);
    const loss = ops.crossEntropy(logits, target);
    return { loss, parts: { ce: loss } };
  }
  extraState(): { maskCounter: number } {
    return { maskCounter: 0 };
  }
  loadExtraState(): void {}
}

/** Trains the toy model; returns final weights, metrics and the checkpoint state. */
async function run(
  be: Backend,
  amp: "on" | "off",
  steps: number,
  extra: { stopAfter?: number; workDir?: string; lossScaler?: LossScalerOptions } = {},
) {
  setInitSeed(3);
  const rng = new CounterRng(5);
  const model = new TinyTask(be) as unknown as PretrainingModel;
  const optim = optimSchema.parse({ warmupSteps: 1, headLr: 0.2, lookaheadK: 2 });
  const optimizer = buildOptimizer(model.namedParameters(), optim);
  const initial = new Map<string, Float32Array>();
  for (const [n, t] of model.namedParameters()) initial.set(n, await t.f32());
  const workDir = extra.workDir ?? await Deno.makeTempDir();
  const r = await train({
    backend: be,
    model,
    optimizer,
    rng,
    optim,
    train: trainSchema.parse({ steps, batchSize: 2, checkpointEvery: 1, amp }),
    source: toySource(),
    workDir,
    progress: () => ({ tick() {}, done() {} }),
    log: () => {},
    stopAfter: extra.stopAfter,
    lossScaler: extra.lossScaler,
  });
  const weights = new Map<string, Float32Array>();
  for (const [n, t] of model.namedParameters()) weights.set(n, await t.f32());
  model.dispose();
  optimizer.dispose();
  const metrics = (await Deno.readTextFile(join(workDir, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
  const state = JSON.parse(await Deno.readTextFile(join(r.checkpoint, "state.json")));
  return { r, initial, weights, metrics, state, workDir };
}

Deno.test({
  name: "AMP trainer: loss tracks f32, scaler state checkpointed, resume is exact",
  ...opts,
  async fn() {
    const be = await gpu();
    const f32 = await run(be, "off", 4);
    const full = await run(be, "on", 4);
    assert.strictEqual(f32.state.amp, undefined, "no scaler state without AMP");
    assert.deepStrictEqual(full.state.amp, { scale: 32768, goodSteps: 4 });
    full.metrics.forEach((m, i) => {
      assert.strictEqual(m.skipped, false);
      assert.strictEqual(m.lossScale, 32768);
      const gap = Math.abs(m.loss - f32.metrics[i].loss) / f32.metrics[i].loss;
      console.log(`  step ${m.step}: loss f32 ${f32.metrics[i].loss}, AMP ${m.loss} (gap ${gap})`);
      assert(gap <= 1e-2, `step ${m.step}: AMP loss ${m.loss} vs f32 ${f32.metrics[i].loss}`);
    });
    const half = await run(be, "on", 4, { stopAfter: 3 });
    assert.deepStrictEqual(half.state.amp, { scale: 32768, goodSteps: 3 });
    const resumed = await run(be, "on", 4, { workDir: half.workDir });
    assert.strictEqual(resumed.r.resumedFrom, 3);
    assert.deepStrictEqual(resumed.state.amp, full.state.amp);
    for (const [n, w] of full.weights) {
      assert.deepStrictEqual(resumed.weights.get(n), w, `parameter ${n} differs after resume`);
    }
  },
});

Deno.test({
  name: "AMP trainer: overflowing gradients skip the step and halve the loss scale",
  ...opts,
  async fn() {
    const be = await gpu();
    // dlogits × 2^30 overflows f16 in the head's gradient products on every step
    const r = await run(be, "on", 3, { lossScaler: { initScale: 2 ** 30 } });
    assert.deepStrictEqual(r.metrics.map((m) => [m.lossScale, m.skipped]), [
      [2 ** 30, true],
      [2 ** 29, true],
      [2 ** 28, true],
    ]);
    assert(r.metrics.every((m) => Number.isFinite(m.loss) && m.gradNorm === undefined));
    assert.deepStrictEqual(r.state.amp, { scale: 2 ** 27, goodSteps: 0 });
    for (const [n, w] of r.initial) {
      assert.deepStrictEqual(r.weights.get(n), w, `parameter ${n} changed by a skipped step`);
    }
  },
});
