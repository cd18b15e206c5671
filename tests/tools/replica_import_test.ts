/** tools/replica_import.ts: a PyTorch replica's output folder enters the cache as a pretrain-kind artifact. */
import { join } from "node:path";
import { createBackend } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { saveModule } from "../../engine/safetensors.ts";
import { Cache } from "../../pipeline/cache/store.ts";
import { createBackbone } from "../../pipeline/model/backbones.ts";
import { runStage } from "../../pipeline/runner.ts";
import { replicaImportStage } from "../../tools/replica_import.ts";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "../pipeline/cache/_assert.ts";

const ARCH = "resnet18_w8_os16";

/** A folder shaped like tools/recipe_replica.py's output, weights of `arch` under `seed`. */
async function replicaFolder(arch: string, seed: number): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "virtex-replica-" });
  const backend = await createBackend("ref");
  try {
    setInitSeed(seed);
    const net = createBackbone(backend, arch);
    await saveModule(join(dir, "visual.safetensors"), net);
    net.dispose();
  } finally {
    backend.destroy();
  }
  Deno.writeTextFileSync(
    join(dir, "model.json"),
    JSON.stringify({ task: "bicaptioning", visual: ARCH }),
  );
  Deno.writeTextFileSync(join(dir, "metrics.jsonl"), "");
  Deno.writeTextFileSync(
    join(dir, "summary.json"),
    JSON.stringify({
      source: "test",
      config: { model: { task: "bicaptioning", visual: ARCH }, train: { seed: 0 } },
      train: { steps: 0 },
      randomInit: true,
      bnCalibrate: 0,
    }),
  );
  return dir;
}

const quiet = () => {};
const config = {
  model: { task: "bicaptioning", visual: ARCH },
  train: { seed: 0 },
  randomInit: true,
  bnCalibrate: 0,
  stepsDone: 0,
};

Deno.test("replica import: a pretrain-kind artifact keyed by the folder's content, weights checked", async () => {
  const cache = new Cache(Deno.makeTempDirSync({ prefix: "virtex-replica-cache-" }));
  const a = await replicaFolder(ARCH, 1), b = await replicaFolder(ARCH, 1);
  const c = await replicaFolder(ARCH, 2);
  const run = (dir: string) =>
    runStage(replicaImportStage, config, { cache, log: quiet, inputFiles: { replica: dir } });
  const first = (await run(a)).artifact;
  assertEquals(first.manifest.stage, "pretrain");
  for (const f of ["model.json", "visual.safetensors", "metrics.jsonl", "summary.json"]) {
    assert(Deno.statSync(join(first.dir, f)).isFile, f);
  }
  // Same content at another path: the same artifact; other weights: another one.
  const same = await run(b);
  assert(same.hit);
  assertEquals(same.artifact.key, first.key);
  assertNotEquals((await run(c)).artifact.key, first.key);
  // Weights of another architecture than model.json names are refused.
  const wrong = await replicaFolder("resnet18_w16_os16", 1);
  Deno.writeTextFileSync(join(wrong, "model.json"), JSON.stringify({ visual: ARCH }));
  const e = await assertRejects(() => run(wrong), Error);
  assertStringIncludes(String(e), "shape");
});
