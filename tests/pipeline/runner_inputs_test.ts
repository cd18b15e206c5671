/** Declared stage inputs are checked before any work: missing, unknown name, wrong kind. */
import { join } from "node:path";
import { Cache } from "../../pipeline/cache/store.ts";
import { InputError, runStage } from "../../pipeline/runner.ts";
import { evaluateStage } from "../../pipeline/stages/evaluate.ts";
import { extractStage } from "../../pipeline/stages/extract.ts";
import { pretrainStage } from "../../pipeline/stages/pretrain.ts";
import { assertEquals, assertRejects } from "./cache/_assert.ts";

/** A temp cache with hand-written manifests standing for finished artifacts of some stages. */
function cacheWith(stages: string[]): { cache: Cache; keys: Record<string, string> } {
  const cache = new Cache(Deno.makeTempDirSync({ prefix: "virtex-inputs-" }));
  const keys: Record<string, string> = {};
  stages.forEach((stage, i) => {
    const key = (i + 1).toString(16).padStart(64, "a");
    Deno.mkdirSync(cache.artifactDir(key), { recursive: true });
    Deno.writeTextFileSync(
      join(cache.artifactDir(key), "manifest.json"),
      JSON.stringify({
        key,
        stage,
        config: {},
        inputs: {},
        inputFiles: {},
        files: [],
        summary: {},
      }),
    );
    keys[stage] = key;
  });
  return { cache, keys };
}

const quiet = () => {};

Deno.test("runner: wrong kind, missing and unknown inputs fail naming the input, before work", async () => {
  const { cache, keys } = cacheWith(["tokenize", "augment", "extract"]);
  const cfg = { train: { steps: 1 } };
  await assertRejects(
    () =>
      runStage(pretrainStage, cfg, {
        cache,
        log: quiet,
        inputs: { tokens: keys.augment, shards: keys.augment },
      }),
    InputError,
    'pretrain: input "tokens" is a augment artifact',
  );
  const wrong = await assertRejects(
    () => runStage(pretrainStage, cfg, { cache, log: quiet, inputs: { tokens: keys.augment } }),
    InputError,
  );
  assertEquals(wrong.message.includes("expected a tokenize artifact"), true);
  await assertRejects(
    () => runStage(pretrainStage, cfg, { cache, log: quiet, inputs: { tokens: keys.tokenize } }),
    InputError,
    'pretrain: missing input "shards"',
  );
  await assertRejects(
    () =>
      runStage(pretrainStage, cfg, {
        cache,
        log: quiet,
        inputs: { tokens: keys.tokenize, shards: keys.augment, tok: keys.tokenize },
      }),
    InputError,
    'pretrain: unknown input "tok" (inputs: tokens, shards',
  );
  await assertRejects(
    () => runStage(evaluateStage, {}, { cache, log: quiet, inputs: { features: keys.tokenize } }),
    InputError,
    "expected a extract artifact",
  );
  // extract with weights=random needs no model; with pretrained weights it does.
  await assertRejects(
    () => runStage(extractStage, { path: "/nonexistent" }, { cache, log: quiet }),
    InputError,
    'extract: missing input "model"',
  );
  // Nothing was built or locked by any of these.
  for (const sub of ["tmp", "work", "locks"]) {
    let n = 0;
    try {
      n = [...Deno.readDirSync(join(cache.root, sub))].length;
    } catch { /* absent */ }
    assertEquals(n, 0, sub);
  }
});
