/**
 * The pretrain stage end to end on a tiny synthetic dataset (wasm backend): a run killed with
 * SIGKILL after a checkpoint and started again ends with parameters bit-identical to an
 * uninterrupted run; the artifact holds weights, checkpoints, metrics, the loss plot and samples.
 */
import assert from "node:assert";
import { join } from "node:path";
import { generateDataset } from "../../../fixtures/scenes/dataset.ts";

const root = new URL("../../../", import.meta.url).pathname;
const deno = Deno.execPath();

function cli(cacheDir: string, args: string[]): Deno.Command {
  return new Deno.Command(deno, {
    args: ["run", "-A", join(root, "cli/main.ts"), ...args],
    env: { VIRTEX_CACHE: cacheDir, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  });
}

async function runJson(
  cacheDir: string,
  args: string[],
): Promise<{ key: string; summary: Record<string, unknown> }> {
  const out = await cli(cacheDir, [...args, "--json"]).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.strictEqual(out.code, 0, `virtex ${args[0]} failed:\n${err}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const PRETRAIN = [
  "--set",
  "device=wasm",
  "--set",
  "model.visual=resnet18",
  "--set",
  "model.textual=transdec_postnorm::L1_H32_A2_F64",
  "--set",
  "train.steps=6",
  "--set",
  "train.batchSize=4",
  "--set",
  "train.checkpointEvery=1",
  "--set",
  "train.workers=0",
  "--set",
  "optim.warmupSteps=2",
  "--set",
  "optim.headLr=0.01",
  "--set",
  "transform.size=32",
  "--set",
  "transform.evalResize=32",
  "--set",
  "sampleImages=2",
];

async function prepare(cacheDir: string, data: string) {
  const caps = join(data, "captions/annotations/captions_train2017.json");
  const tok = await runJson(cacheDir, [
    "tokenize",
    "--set",
    `captions=${caps}`,
    "--set",
    "vocabSize=120",
  ]);
  const aug = await runJson(cacheDir, [
    "augment",
    "--set",
    `captions=${caps}`,
    "--set",
    "shortSide=32",
  ]);
  return ["--input", `tokens=${tok.key}`, "--input", `shards=${aug.key}`];
}

async function waitForCheckpoint(cacheDir: string, minStep: number, child: Deno.ChildProcess) {
  const work = join(cacheDir, "work");
  for (let i = 0; i < 1200; i++) {
    try {
      for await (const e of Deno.readDir(work)) {
        const latest = await Deno.readTextFile(join(work, e.name, "checkpoints", "LATEST")).catch(
          () => "",
        );
        const m = /step-(\d+)/.exec(latest);
        if (m && Number(m[1]) >= minStep) return;
      }
    } catch { /* work dir not there yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error("no checkpoint appeared in 120 s");
}

Deno.test({
  name: "pretrain killed with SIGKILL at a checkpoint resumes to bit-identical parameters",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-pretrain-" });
    const data = join(tmp, "scenes");
    generateDataset({ out: data, seed: 1, train: 24, val: 4, vocTrain: 4, vocTest: 4, size: 32 });

    // Uninterrupted run.
    const cacheA = join(tmp, "cacheA");
    const inputsA = await prepare(cacheA, data);
    const full = await runJson(cacheA, ["pretrain", ...inputsA, ...PRETRAIN]);

    // Killed run, then resumed.
    const cacheB = join(tmp, "cacheB");
    const inputsB = await prepare(cacheB, data);
    const child = cli(cacheB, ["pretrain", ...inputsB, ...PRETRAIN]).spawn();
    await waitForCheckpoint(cacheB, 3, child);
    child.kill("SIGKILL");
    const status = await child.status;
    assert.notStrictEqual(status.code, 0, "the killed run must not have finished");
    // No artifact exists for the killed run.
    const arts = [...Deno.readDirSync(join(cacheB, "artifacts"))].map((e) => e.name);
    assert(!arts.includes(full.key), "killed run left an artifact");
    const resumed = await runJson(cacheB, ["pretrain", ...inputsB, ...PRETRAIN]);
    assert.strictEqual(resumed.key, full.key);
    assert(
      (resumed.summary.resumedFrom as number) >= 3,
      `resumed from ${resumed.summary.resumedFrom}`,
    );

    const dirA = join(cacheA, "artifacts", full.key), dirB = join(cacheB, "artifacts", resumed.key);
    const a = await Deno.readFile(join(dirA, "model.safetensors"));
    const b = await Deno.readFile(join(dirB, "model.safetensors"));
    // (byte loop: deepStrictEqual on tens of MB of typed array is far too slow)
    assert.strictEqual(b.length, a.length);
    assert(a.every((v, i) => v === b[i]), "resumed parameters differ from the uninterrupted run");
    for (
      const f of [
        "visual.safetensors",
        "metrics.jsonl",
        "loss.svg",
        "samples.json",
        "checkpoints/step-00000006.safetensors",
      ]
    ) {
      await Deno.stat(join(dirA, f));
    }
    const metrics = (await Deno.readTextFile(join(dirB, "metrics.jsonl"))).trim().split("\n");
    assert.strictEqual(metrics.length, 6);
    await Deno.remove(tmp, { recursive: true });
  },
});
