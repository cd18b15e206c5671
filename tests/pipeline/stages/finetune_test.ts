/**
 * The finetune stage through the CLI on tiny inputs: the iNaturalist 2018 fixture (single-label,
 * top-1/top-5) fine-tuned from random init on wasm, the synthetic VOC set (multi-label, mAP) as a
 * linear probe, both modes on webgpu (lavapipe here; skipped without an adapter), and --help.
 */
import assert from "node:assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { probeWebGpu } from "../../../engine/device.ts";
import { generateDataset } from "../../../fixtures/scenes/dataset.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const INAT = join(root, "tests/fixtures/inat2018");

async function virtex(cache: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, "cli/main.ts"), ...args],
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function finetune(cache: string, sets: string[]) {
  const r = await virtex(cache, ["finetune", ...sets.flatMap((s) => ["--set", s]), "--json"]);
  assert.strictEqual(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

/** Small settings for the iNat fixture (24 px images): 3 steps of 6 images per epoch. */
const TINY = [
  "init=random",
  "arch=resnet18_w8",
  `path=${INAT}`,
  "shortSide=24",
  "transform.size=16",
  "transform.evalResize=24",
  "batchSize=6",
  "workers=0",
];

const readLines = (dir: string) =>
  Deno.readTextFileSync(join(dir, "metrics.jsonl")).trim().split("\n").map((l) => JSON.parse(l));

Deno.test({
  name:
    "finetune: iNat 2018 fixture from random init — loss falls, top-1/top-5 per epoch, artifact",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "virtex-finetune-" });
    const sets = [...TINY, "device=wasm", "epochs=4", "lr=0.05", "milestones=[3]"];
    const r = await finetune(cache, sets);
    const s = r.summary;
    assert.strictEqual(s.steps, 12);
    assert.strictEqual(s.classes, 3);
    assert.strictEqual(s.trainImages, 18);
    assert.strictEqual(s.valImages, 9);
    assert(s.top1 > 60, `top-1 ${s.top1}% (chance is 33%)`);
    assert.strictEqual(s.top5, 100); // 3 classes
    const dir = join(cache, "artifacts", r.key);
    for (
      const f of [
        "model.safetensors",
        "best.safetensors",
        "visual.safetensors",
        "loss.svg",
        "eval.svg",
        "model.json",
        "classes.json",
      ]
    ) Deno.statSync(join(dir, f));
    const metrics = readLines(dir);
    assert.strictEqual(metrics.length, 12);
    assert.deepStrictEqual(metrics.filter((m) => m.eval).map((m) => m.step), [3, 6, 9, 12]);
    const first = (metrics[0].loss + metrics[1].loss) / 2;
    const last = (metrics[10].loss + metrics[11].loss) / 2;
    assert(last < first, `loss ${first} -> ${last}`);
    const info = JSON.parse(Deno.readTextFileSync(join(dir, "model.json")));
    assert.strictEqual(info.bestStep, s.best.step);
    assert.deepStrictEqual(JSON.parse(Deno.readTextFileSync(join(dir, "classes.json"))), [
      "Quercus robur",
      "Cyanocitta cristata",
      "Danaus plexippus",
    ]);
    assert.match(Deno.readTextFileSync(join(dir, "eval.svg")), /top-5/);
    // Same config again: a cache hit.
    assert.strictEqual((await finetune(cache, sets)).hit, true);
  },
});

Deno.test({
  name: "finetune: linear probe on a VOC-layout multi-label set reports mAP; errors name the key",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-finetune-voc-" });
    generateDataset({
      out: join(tmp, "scenes"),
      seed: 3,
      train: 2,
      val: 1,
      vocTrain: 12,
      vocTest: 8,
      size: 32,
    });
    const cache = join(tmp, "cache");
    const r = await finetune(cache, [
      "mode=linear",
      "init=random",
      "arch=resnet18_w8",
      "dataset=voc",
      `path=${join(tmp, "scenes/voc/VOC2007")}`,
      "shortSide=32",
      "transform.size=32",
      "transform.evalResize=32",
      "batchSize=4",
      "epochs=2",
      "workers=0",
      "device=wasm",
    ]);
    assert.strictEqual(r.summary.multiLabel, true);
    assert.strictEqual(r.summary.mode, "linear");
    assert(r.summary.mAP > 0 && r.summary.mAP <= 100, `mAP ${r.summary.mAP}`);
    const metrics = readLines(join(cache, "artifacts", r.key));
    assert("bce" in metrics[0].parts);
    assert.deepStrictEqual(Object.keys(metrics[0].lr), ["head"]);

    const bad = await virtex(cache, ["finetune", "--set", `path=${INAT}`, "--set", "lr=fast"]);
    assert.strictEqual(bad.code, 1);
    assert.match(bad.stderr, /key "lr"/);
    const noModel = await virtex(cache, ["finetune", "--set", `path=${INAT}`]);
    assert.strictEqual(noModel.code, 1);
    assert.match(noModel.stderr, /missing input "model"/);
    const help = await virtex(cache, ["finetune", "--help"]);
    assert.strictEqual(help.code, 0);
    for (const key of ["mode", "checkpoint", "lr", "weightDecay", "milestones", "augmentation"]) {
      assert.match(help.stdout, new RegExp(`\\n  ${key} `), `--help lists ${key}`);
    }
    assert.match(help.stdout, /auto: 0\.025 \(finetune\), 0\.3 \(linear\)/);
  },
});

Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const probe = await probeWebGpu();
if (!probe.available) console.log(`finetune webgpu test skipped: ${probe.reason}`);

Deno.test({
  name: "finetune: both modes run on the webgpu backend",
  ignore: !probe.available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "virtex-finetune-gpu-" });
    for (const mode of ["finetune", "linear"]) {
      const r = await finetune(cache, [
        ...TINY,
        "arch=resnet18_w4",
        `mode=${mode}`,
        "device=webgpu",
        "epochs=1",
      ]);
      assert.strictEqual(r.summary.device, "webgpu");
      assert.strictEqual(r.summary.steps, 3);
      assert(Number.isFinite(r.summary.finalLoss), `${mode}: loss ${r.summary.finalLoss}`);
      assert(r.summary.top1 >= 0 && r.summary.top1 <= 100);
    }
  },
});
