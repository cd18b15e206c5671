/**
 * Fine-tuning through the shared trainer on toy labelled batches (wasm backend, a narrow resnet18
 * at 16 px): the loss falls over a few steps; a run stopped and resumed ends bit-identical with
 * the same metrics, best evaluated step and pruned checkpoints; the linear probe trains the head
 * alone and leaves the backbone's weights and batch-norm statistics untouched; multi-label
 * targets train with BCE.
 */
import assert from "node:assert";
import { join } from "node:path";
import type { Backend } from "../../../engine/backend.ts";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { CounterRng } from "../../../engine/rng.ts";
import { FinetuneModel } from "../../../pipeline/finetune/model.ts";
import { type FinetuneConfig, resolveFinetune } from "../../../pipeline/finetune/config.ts";
import { finetuneSchema } from "../../../pipeline/finetune/config.ts";
import { buildOptimizer } from "../../../pipeline/pretrain/optimizer.ts";
import { type BatchSource, type Evaluation, train } from "../../../pipeline/pretrain/trainer.ts";
import type { Progress } from "../../../pipeline/stage.ts";

const S = 16, K = 4;
const quiet = (): Progress => ({ tick() {}, done() {} });

/** n batches of B images whose colour level is the class; one-hot (or two-hot) labels. */
function labelledSource(n: number, B: number, multi = false): BatchSource {
  return {
    batchesPerEpoch: n,
    imageSize: S,
    maxLength: 0,
    get(epoch, step) {
      const images = new Float32Array(B * 3 * S * S), labels = new Float32Array(B * K);
      for (let b = 0; b < B; b++) {
        const cls = (epoch * 7 + step * 3 + b) % K;
        for (let c = 0; c < 3; c++) {
          const off = (b * 3 + c) * S * S;
          // Channel c lights up for classes whose bit c is set; class 0 is dark.
          images.fill(((cls + 1) >> c & 1) - 0.5 + 0.1 * c, off, off + S * S);
        }
        labels[b * K + cls] = 1;
        if (multi) labels[b * K + (cls + 1) % K] = 1;
      }
      return Promise.resolve({ images, size: B, labels });
    },
  };
}

function config(over: Record<string, unknown>): FinetuneConfig {
  return finetuneSchema.parse({ path: "unused", batchSize: 4, epochs: 3, ...over });
}

/** Trains a FinetuneModel for `epochs` epochs of 4 steps (or stops after `stopAfter`). */
async function run(
  be: Backend,
  cfg: FinetuneConfig,
  o: { stopAfter?: number; dir?: string; multi?: boolean; evaluate?: Evaluation } = {},
) {
  setInitSeed(7);
  const model = new FinetuneModel(be, {
    arch: "resnet18_w8",
    classes: K,
    multiLabel: o.multi ?? false,
    frozen: cfg.mode === "linear",
    headInitStd: cfg.headInitStd,
  });
  const r = resolveFinetune(cfg, 4);
  const optimizer = buildOptimizer(model.trainableParameters(), r.optim);
  const workDir = o.dir ?? await Deno.makeTempDir({ prefix: "virtex-finetune-" });
  const before = new Map<string, Float32Array>();
  for (const [n, t] of model.stateDict()) before.set(n, await t.f32());
  const result = await train({
    backend: be,
    model,
    optimizer,
    rng: new CounterRng(1),
    train: r.train,
    optim: r.optim,
    source: labelledSource(4, 4, o.multi),
    workDir,
    progress: quiet,
    log: () => {},
    stopAfter: o.stopAfter,
    evaluate: o.evaluate,
    keepCheckpoints: "last-and-best",
    label: cfg.mode,
  });
  const after = new Map<string, Float32Array>();
  for (const [n, t] of model.stateDict()) after.set(n, await t.f32());
  optimizer.dispose();
  model.dispose();
  const lines = (await Deno.readTextFile(join(workDir, "metrics.jsonl"))).trim().split("\n");
  return { result, before, after, workDir, lines, losses: lines.map((l) => JSON.parse(l).loss) };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function sameTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string) {
  for (const [n, w] of a) {
    const v = b.get(n)!;
    assert(w.every((x, i) => Object.is(x, v[i])), `${what}: ${n} differs`);
  }
}

Deno.test("fine-tuning lowers the loss and a stopped run resumes bit-identically", async () => {
  const be = await createBackend("wasm");
  const cfg = config({ lr: 0.05, milestones: [2] });
  // A deterministic stand-in evaluation whose best is at step 4.
  const evaluate: Evaluation = {
    every: 2,
    rankBy: "score",
    run: (step) => Promise.resolve({ score: 10 - Math.abs(step - 4) }),
  };
  const full = await run(be, cfg, { evaluate });
  assert.strictEqual(full.result.steps, 12);
  assert(
    mean(full.losses.slice(-3)) < mean(full.losses.slice(0, 3)) * 0.8,
    `loss did not fall: ${full.losses.map((l: number) => l.toFixed(3)).join(" ")}`,
  );
  assert.deepStrictEqual(full.result.best, { step: 4, value: 10 });
  // LR ×0.1 after epoch 2 (step 8).
  assert.strictEqual(JSON.parse(full.lines[7]).lr.cnn, 0.05);
  assert(Math.abs(JSON.parse(full.lines[8]).lr.cnn - 0.005) < 1e-12);

  const half = await run(be, cfg, { stopAfter: 5, evaluate });
  const resumed = await run(be, cfg, { dir: half.workDir, evaluate });
  assert.strictEqual(resumed.result.resumedFrom, 4); // the last checkpoint (an evaluated step)
  sameTensors(full.after, resumed.after, "resumed weights");
  const timeless = (ls: string[]) =>
    ls.map((l) => {
      const { time: _t, imgPerSec: _r, ...m } = JSON.parse(l);
      return m;
    });
  assert.deepStrictEqual(timeless(resumed.lines), timeless(full.lines)); // eval figures included
  assert.deepStrictEqual(resumed.result.best, full.result.best);
  // Checkpoints but the last and the best were deleted.
  const kept = [...Deno.readDirSync(join(resumed.workDir, "checkpoints"))]
    .filter((e) => e.isDirectory).map((e) => e.name).sort();
  assert.deepStrictEqual(kept, ["step-00000004", "step-00000012"]);
});

Deno.test("linear probe: the head trains, the frozen backbone and its BN statistics do not", async () => {
  const be = await createBackend("wasm");
  const r = await run(be, config({ mode: "linear", epochs: 2 }));
  assert(
    mean(r.losses.slice(-2)) < mean(r.losses.slice(0, 2)),
    `loss did not fall: ${r.losses.join(" ")}`,
  );
  const visual = (m: Map<string, Float32Array>) =>
    new Map([...m].filter(([n]) => n.startsWith("visual.")));
  sameTensors(visual(r.before), visual(r.after), "frozen backbone");
  const w0 = r.before.get("head.weight")!, w1 = r.after.get("head.weight")!;
  assert(w0.some((v, i) => v !== w1[i]), "the head did not change");
  // The paper's probe: LR 0.3 with a cosine decay, no weight decay.
  const m0 = JSON.parse(r.lines[0]);
  assert.strictEqual(m0.lr.head, 0.3);
  assert.deepStrictEqual(Object.keys(m0.lr), ["head"]);
});

Deno.test("multi-label fine-tuning trains with binary cross-entropy", async () => {
  const be = await createBackend("wasm");
  const r = await run(be, config({ lr: 0.05, epochs: 2 }), { multi: true });
  assert("bce" in JSON.parse(r.lines[0]).parts);
  assert(mean(r.losses.slice(-2)) < mean(r.losses.slice(0, 2)), r.losses.join(" "));
});
