/**
 * Subprocess used by the cache tests: runs the echo stage once against the cache at argv[0]
 * with config JSON argv[1], and prints {key, hit} as JSON on stdout.
 */
import { Cache } from "../../../pipeline/cache/store.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { echoStage } from "./test_stage.ts";

const [root, configJson] = Deno.args;
const { artifact, hit } = await runStage(echoStage, JSON.parse(configJson), {
  cache: new Cache(root),
  log: () => {},
});
console.log(JSON.stringify({ key: artifact.key, hit, summary: artifact.manifest.summary }));
