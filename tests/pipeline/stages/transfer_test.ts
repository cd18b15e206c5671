/**
 * Checkpoint selection by transfer, end to end on tiny synthetic scenes (wasm): pretrain with a
 * VOC-layout `transfer` set scores the backbone by VOC07 SVM mAP every 2 steps into metrics.jsonl
 * and transfer.svg, checkpoints those steps and records the best; extract's checkpoint=best gives
 * the same features as step-<best> (and with evaluate, the same mAP); a step without a checkpoint
 * is an error listing the steps; finetune starts from checkpoint=best.
 */
import assert from "node:assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateDataset } from "../../../fixtures/scenes/dataset.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));

async function virtex(cache: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, "cli/main.ts"), ...args, "--json"],
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    json: out.code === 0 ? JSON.parse(stdout[stdout.length - 1]) : null,
  };
}

async function ok(cache: string, args: string[]) {
  const r = await virtex(cache, args);
  assert.strictEqual(r.code, 0, `${args[0]}: ${r.stderr}`);
  return r.json as { key: string; summary: Record<string, unknown> };
}

const sets = (xs: string[]) => xs.flatMap((s) => ["--set", s]);

Deno.test({
  name: "pretrain with a transfer set records VOC07 mAP and its best step; checkpoint=best",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-transfer-" });
    const data = join(tmp, "scenes");
    generateDataset({ out: data, seed: 1, train: 24, val: 4, vocTrain: 16, vocTest: 16, size: 32 });
    const cache = join(tmp, "cache");
    const caps = join(data, "captions/annotations/captions_train2017.json");
    const voc = join(data, "voc/VOC2007");
    const tok = await ok(cache, ["tokenize", ...sets([`captions=${caps}`, "vocabSize=120"])]);
    const aug = await ok(cache, ["augment", ...sets([`captions=${caps}`, "shortSide=32"])]);
    const pre = await ok(cache, [
      "pretrain",
      "--input",
      `tokens=${tok.key}`,
      "--input",
      `shards=${aug.key}`,
      ...sets([
        "device=wasm",
        "model.visual=resnet18_w8",
        "model.textual=transdec_postnorm::L1_H32_A2_F64",
        "train.steps=6",
        "train.batchSize=4",
        "train.checkpointEvery=0",
        "train.workers=0",
        "optim.warmupSteps=2",
        "transform.size=32",
        "transform.evalResize=32",
        "sampleImages=0",
        `transfer.path=${voc}`,
        "transfer.evalEvery=2",
      ]),
    ]);
    const dir = join(cache, "artifacts", pre.key);
    const metrics = Deno.readTextFileSync(join(dir, "metrics.jsonl")).trim().split("\n")
      .map((l) => JSON.parse(l));
    const evals = metrics.filter((m) => m.eval);
    assert.deepStrictEqual(evals.map((m) => m.step), [2, 4, 6]);
    for (const m of evals) assert(m.eval.mAP > 0 && m.eval.mAP <= 100, JSON.stringify(m.eval));
    const best = evals.reduce((a, b) => (b.eval.mAP > a.eval.mAP ? b : a));
    const info = JSON.parse(Deno.readTextFileSync(join(dir, "model.json")));
    assert.strictEqual(info.bestStep, best.step);
    assert.strictEqual(pre.summary.bestStep, best.step);
    assert.strictEqual(pre.summary.bestTransferMAP, best.eval.mAP);
    // Evaluated steps are checkpointed (checkpointEvery 0 would keep only the last).
    assert.deepStrictEqual(
      [...Deno.readDirSync(join(dir, "checkpoints"))].map((e) => e.name).sort(),
      ["step-00000002.safetensors", "step-00000004.safetensors", "step-00000006.safetensors"],
    );
    assert.match(Deno.readTextFileSync(join(dir, "transfer.svg")), /<svg/);

    const extract = (checkpoint: string) =>
      virtex(cache, [
        "extract",
        "--input",
        `model=${pre.key}`,
        ...sets([`path=${voc}`, "size=32", "resize=32", "device=wasm", `checkpoint=${checkpoint}`]),
      ]);
    const feats = async (checkpoint: string) => {
      const r = await extract(checkpoint);
      assert.strictEqual(r.code, 0, r.stderr);
      return Deno.readFileSync(join(cache, "artifacts", r.json.key, "test.f32"));
    };
    const fromBest = await feats("best");
    assert.deepStrictEqual(fromBest, await feats(`step-${best.step}`));
    // The transfer score is the VOC07 protocol: extract + evaluate reproduce it exactly.
    const bestFeats = await extract("best");
    const ev = await ok(cache, ["evaluate", "--input", `features=${bestFeats.json.key}`]);
    assert.strictEqual(ev.summary.mAP, best.eval.mAP);
    const other = evals.find((m) => m.step !== best.step)!.step;
    assert.notDeepStrictEqual(fromBest, await feats(`step-${other}`));
    const missing = await extract("step-3");
    assert.strictEqual(missing.code, 1);
    assert.match(missing.stderr, /no checkpoint after 3 steps \(checkpointed steps: 2, 4, 6\)/);

    const ft = await ok(cache, [
      "finetune",
      "--input",
      `model=${pre.key}`,
      ...sets([
        "checkpoint=best",
        "dataset=voc",
        `path=${voc}`,
        "shortSide=32",
        "transform.size=32",
        "transform.evalResize=32",
        "batchSize=4",
        "epochs=1",
        "workers=0",
        "device=wasm",
      ]),
    ]);
    assert.strictEqual(ft.summary.fromStep, best.step);
    assert.strictEqual(ft.summary.init, "pretrained");
  },
});
