/** The finetune config's paper defaults per mode, epochs turned into steps, and overrides. */
import assert from "node:assert";
import {
  finetuneSchema,
  finetuneTransform,
  resolveFinetune,
} from "../../../pipeline/finetune/config.ts";
import { validateConfig } from "../../../pipeline/config.ts";

const parse = (o: Record<string, unknown>) => finetuneSchema.parse({ path: "data", ...o });

Deno.test("finetune defaults: the iNaturalist protocol", () => {
  const cfg = parse({});
  assert.strictEqual(cfg.epochs, 100);
  assert.strictEqual(cfg.batchSize, 256);
  assert.strictEqual(cfg.momentum, 0.9);
  const r = resolveFinetune(cfg, 10);
  assert.strictEqual(r.lr, 0.025);
  assert.strictEqual(r.weightDecay, 1e-4);
  assert.strictEqual(r.schedule, "multistep");
  assert.deepStrictEqual(r.optim.milestones, [700, 900]); // epochs 70 and 90 of 10 steps
  assert.strictEqual(r.optim.gamma, 0.1);
  assert.strictEqual(r.optim.lookaheadK, 0);
  assert.strictEqual(r.optim.clipGradNorm, 0);
  assert.strictEqual(r.train.steps, 1000);
  assert.strictEqual(r.evalEvery, 10); // once per epoch
  // The pretraining augmentation: crop 20–100 %, colour jitter, flip.
  const t = finetuneTransform(cfg);
  assert.deepStrictEqual(t.scale, [0.2, 1]);
  assert.strictEqual(t.jitter.p, 0.8);
  assert.strictEqual(t.flipP, 0.5);
});

Deno.test("linear defaults: the paper's probe; every key can be overridden", () => {
  const cfg = parse({ mode: "linear" });
  const r = resolveFinetune(cfg, 5);
  assert.strictEqual(r.lr, 0.3);
  assert.strictEqual(r.weightDecay, 0);
  assert.strictEqual(r.schedule, "cosine");
  assert.strictEqual(cfg.headInitStd, 0.01);
  const t = finetuneTransform(cfg);
  assert.deepStrictEqual(t.scale, [0.08, 1]);
  assert.strictEqual(t.jitter.p, 0);
  assert.strictEqual(t.flipP, 0.5);

  const o = parse({
    mode: "linear",
    lr: 0.1,
    weightDecay: 1e-5,
    schedule: "constant",
    augmentation: "pretrain",
    evalEvery: 3,
  });
  const ro = resolveFinetune(o, 5);
  assert.deepStrictEqual([ro.lr, ro.weightDecay, ro.schedule, ro.evalEvery], [
    0.1,
    1e-5,
    "constant",
    3,
  ]);
  assert.deepStrictEqual(finetuneTransform(o).scale, [0.2, 1]);
});

Deno.test("finetune config errors name the key", () => {
  assert.throws(
    () => validateConfig(finetuneSchema, { path: "d", lr: "fast" }, "finetune config"),
    /key "lr"/,
  );
  assert.throws(
    () => validateConfig(finetuneSchema, { path: "d", checkpoint: "step-x" }, "finetune config"),
    /key "checkpoint"/,
  );
  assert.throws(
    () => validateConfig(finetuneSchema, { path: "d", shortSide: 128 }, "finetune config"),
    /shortSide/,
  );
});
