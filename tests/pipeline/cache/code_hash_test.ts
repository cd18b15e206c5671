/**
 * Stage keys see code changes: in a temporary copy of the source tree, changing one byte of one
 * stage's module (or of a wasm kernel it loads) changes that stage's key and leaves the others'.
 */
import { join } from "node:path";
import { loadedSpecifiers } from "../../../pipeline/cache/code_hash.ts";
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    if (e.isDirectory) copyTree(join(from, e.name), join(to, e.name));
    else if (e.isFile) Deno.copyFileSync(join(from, e.name), join(to, e.name));
  }
}

/** Each registered stage's key (default config, no inputs) computed in the tree at `root`. */
async function stageKeys(root: string): Promise<Record<string, string>> {
  const script = join(root, "keys.ts");
  Deno.writeTextFileSync(
    script,
    `import { stages } from "./pipeline/stages/registry.ts";
import { codeHash } from "./pipeline/cache/code_hash.ts";
import { computeKey } from "./pipeline/cache/store.ts";
const out: Record<string, string> = {};
for (const [name, s] of Object.entries(stages)) {
  out[name] = computeKey({ stage: name, stageVersion: s.version, code: codeHash(s.module),
    config: {}, inputs: {}, inputFiles: {} });
}
console.log(JSON.stringify(out));`,
  );
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", script],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(o.code === 0, new TextDecoder().decode(o.stderr));
  return JSON.parse(new TextDecoder().decode(o.stdout));
}

Deno.test({
  name: "code hash: one byte of a stage module or its wasm changes that stage's key only",
  sanitizeResources: false,
  async fn() {
    const tmp = Deno.makeTempDirSync({ prefix: "virtex-codehash-" });
    try {
      for (const d of ["pipeline", "engine", "kernels", "fixtures"]) {
        copyTree(join(ROOT, d), join(tmp, d));
      }
      Deno.copyFileSync(join(ROOT, "package-lock.json"), join(tmp, "package-lock.json"));
      Deno.symlinkSync(join(ROOT, "node_modules"), join(tmp, "node_modules"));
      Deno.copyFileSync(join(ROOT, "deno.json"), join(tmp, "deno.json"));
      const before = await stageKeys(tmp);
      assertEquals(await stageKeys(tmp), before); // stable
      const evaluate = join(tmp, "pipeline/stages/evaluate.ts");
      Deno.writeTextFileSync(evaluate, Deno.readTextFileSync(evaluate) + " ");
      const after = await stageKeys(tmp);
      for (const name of Object.keys(before)) {
        if (name === "evaluate") assert(after[name] !== before[name], "evaluate key unchanged");
        else assertEquals(after[name], before[name], `${name} key changed`);
      }
      // The BPE kernel is loaded by tokenize and by evaluate (zero-shot encodes its prompts).
      const wasm = join(tmp, "kernels/build/bpe.wasm");
      const bytes = Deno.readFileSync(wasm);
      bytes[bytes.length - 1] ^= 1;
      Deno.writeFileSync(wasm, bytes);
      const third = await stageKeys(tmp);
      const changed = Object.keys(before).filter((name) => third[name] !== after[name]).sort();
      assertEquals(changed, ["evaluate", "tokenize"]);
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});

Deno.test("code hash: loaded specifiers skip type-only imports, keep workers, wasm and npm", () => {
  const src = `import type { A } from "./a.ts";
import { type B, type C } from "./b.ts";
import { d, type E } from "./d.ts";
export { f } from "../f.ts";
export type { G } from "./g.ts";
import "./side.ts";
const w = new Worker(new URL("./worker.ts", import.meta.url).href);
const k = new URL("../build/k.wasm", import.meta.url);
const m = await import("./lazy.ts");
import { z } from "zod";
import { join } from "node:path";`;
  const r = loadedSpecifiers(src);
  assertEquals(r.local.sort(), [
    "../build/k.wasm",
    "../f.ts",
    "./d.ts",
    "./lazy.ts",
    "./side.ts",
    "./worker.ts",
  ]);
  assertEquals(r.npm, true);
});
