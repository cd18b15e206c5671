/** End-to-end tests of `./virtex …` (cli/main.ts run as a subprocess). */
import { assert, assertEquals, assertStringIncludes } from "../pipeline/cache/_assert.ts";
import { join } from "node:path";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function virtex(cache: string, ...args: string[]): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A tiny Flickr-style dataset with images (empty files are fine: ingest checks existence). */
function dataset(): { dir: string; csv: string; cache: string } {
  const dir = Deno.makeTempDirSync({ prefix: "virtex-cli-test-" });
  Deno.mkdirSync(join(dir, "images"));
  for (const n of ["a.jpg", "b.jpg"]) {
    Deno.writeFileSync(join(dir, "images", n), new Uint8Array([1]));
  }
  const csv = join(dir, "captions.txt");
  Deno.writeTextFileSync(csv, 'image,caption\na.jpg,"A dog, running ."\nb.jpg,A cat .\n');
  return { dir, csv, cache: join(dir, "cache") };
}

const lastJson = (r: Result) => JSON.parse(r.stdout.trim().split("\n").pop()!);

Deno.test("cli: ingest --json, second run is a cache hit, cache ls/show/verify", async () => {
  const { csv, cache } = dataset();
  const first = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--json");
  assertEquals(first.code, 0, first.stderr);
  const j1 = lastJson(first);
  assertEquals(j1.stage, "ingest");
  assertEquals(j1.hit, false);
  assertEquals(j1.summary.images, 2);
  assertEquals(j1.summary.captions, 2);
  assertEquals(j1.key.length, 64);
  const second = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--json");
  assertEquals(lastJson(second).hit, true);
  assertEquals(lastJson(second).key, j1.key);
  assertStringIncludes(second.stderr, `cache hit: ingest ${j1.key.slice(0, 12)}`);
  const lines = Deno.readTextFileSync(join(cache, "artifacts", j1.key, "captions.jsonl"))
    .trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines[0].caption, "A dog, running .");
  const ls = await virtex(cache, "cache", "ls");
  assertStringIncludes(ls.stdout, j1.key.slice(0, 12));
  const show = await virtex(cache, "cache", "show", j1.key.slice(0, 8));
  assertEquals(show.code, 0, show.stderr);
  assertStringIncludes(show.stdout, '"stage": "ingest"');
  const ok = await virtex(cache, "cache", "verify");
  assertEquals(ok.code, 0);
  assertStringIncludes(ok.stdout, "ok: 1 artifact(s)");
});

Deno.test("cli: cache verify names a file with one flipped byte and exits non-zero", async () => {
  const { csv, cache } = dataset();
  const key = lastJson(await virtex(cache, "ingest", "--set", `captions=${csv}`, "--json")).key;
  const p = join(cache, "artifacts", key, "captions.jsonl");
  const bytes = Deno.readFileSync(p);
  bytes[10] ^= 0x20;
  Deno.writeFileSync(p, bytes);
  const r = await virtex(cache, "cache", "verify");
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    `CORRUPT ${key.slice(0, 12)} (ingest): captions.jsonl: content changed`,
  );
  assertStringIncludes(r.stderr, p);
});

Deno.test("cli: unknown key, wrong type and bad files are errors naming the key or file", async () => {
  const { dir, csv, cache } = dataset();
  const unknown = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--set", "vocabSize=5");
  assertEquals(unknown.code, 1);
  assertStringIncludes(unknown.stderr, 'error: ingest config: unknown key "vocabSize"');
  const wrongType = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--set", "skipBad=7");
  assertEquals(wrongType.code, 1);
  assertStringIncludes(wrongType.stderr, 'key "skipBad": Invalid input: expected boolean');
  const missingKey = await virtex(cache, "ingest");
  assertEquals(missingKey.code, 1);
  assertStringIncludes(missingKey.stderr, 'key "captions"');
  const cfg = join(dir, "bad.json");
  Deno.writeTextFileSync(cfg, '{\n  "captions": "x",\n  "format": coco\n}\n');
  const badConfig = await virtex(cache, "ingest", "--config", cfg);
  assertEquals(badConfig.code, 1);
  assertStringIncludes(badConfig.stderr, `${cfg}:3:13: malformed JSON`);
  const noFile = await virtex(cache, "ingest", "--set", `captions=${dir}/nope.txt`);
  assertEquals(noFile.code, 1);
  assertStringIncludes(noFile.stderr, `${dir}/nope.txt: no such file or folder`);
  Deno.writeTextFileSync(csv, 'image,caption\na.jpg,ok\nb.jpg,""\nzz.jpg,missing image\n');
  const badRow = await virtex(cache, "ingest", "--set", `captions=${csv}`);
  assertEquals(badRow.code, 1);
  assertStringIncludes(badRow.stderr, `${csv}:3 (caption): empty caption`);
  const skip = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--skip-bad", "--json");
  assertEquals(skip.code, 0, skip.stderr);
  assertEquals(lastJson(skip).summary.skipped, 2);
  assertEquals(lastJson(skip).summary.captions, 1);
  // nothing half-written by the failed runs
  assertEquals([...Deno.readDirSync(join(cache, "tmp"))].length, 0);
  assertEquals([...Deno.readDirSync(join(cache, "artifacts"))].length, 1);
});

Deno.test("cli: the ./virtex wrapper runs from any folder, and says what to run without Deno", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const elsewhere = Deno.makeTempDirSync();
  const r = await new Deno.Command(join(root, "virtex"), {
    args: ["--help"],
    cwd: elsewhere,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  assertStringIncludes(new TextDecoder().decode(r.stdout), "usage: ./virtex <command>");
  // A checkout without node_modules: the wrapper names the command that installs it.
  Deno.copyFileSync(join(root, "virtex"), join(elsewhere, "virtex"));
  Deno.chmodSync(join(elsewhere, "virtex"), 0o755);
  const bare = await new Deno.Command(join(elsewhere, "virtex"), { stderr: "piped" }).output();
  assertEquals(bare.code, 2);
  assertStringIncludes(new TextDecoder().decode(bare.stderr), "run `make demo` or `make test`");
});

Deno.test("cli: --help on every command; usage errors exit 2", async () => {
  const cache = Deno.makeTempDirSync();
  for (const cmd of [[], ["ingest"], ["run"], ["cache"], ["demo"]]) {
    const r = await virtex(cache, ...cmd, "--help");
    assertEquals(r.code, 0, `${cmd} --help: ${r.stderr}`);
    assertStringIncludes(r.stdout, "usage: ./virtex");
  }
  const help = await virtex(cache, "ingest", "--help");
  assertStringIncludes(help.stdout, 'checkImages  "none"|"exists"|"decode"  default "exists"');
  assertEquals((await virtex(cache, "frobnicate")).code, 2);
  assertEquals((await virtex(cache, "ingest", "--bogus-flag")).code, 2);
  assertEquals((await virtex(cache, "cache", "explode")).code, 2);
});

Deno.test("cli: run executes a pipeline file, records a ref, gc keeps it", async () => {
  const { dir, csv, cache } = dataset();
  const pipeline = join(dir, "pipe.json");
  Deno.writeTextFileSync(
    pipeline,
    JSON.stringify({
      stages: [
        { name: "all", stage: "ingest", config: { captions: "captions.txt" } },
        { name: "some", stage: "ingest", config: { captions: csv, split: "split.txt" } },
      ],
    }),
  );
  Deno.writeTextFileSync(join(dir, "split.txt"), "b.jpg\n");
  // config paths are read relative to the working directory; run from the data folder
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", "--config", pipeline, "--json"],
    cwd: dir,
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const res = {
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  };
  assertEquals(res.code, 0, res.stderr);
  const j = lastJson(res);
  assertEquals(j.stage, "run");
  assertEquals(j.summary.steps.map((s: { summary: { captions: number } }) => s.summary.captions), [
    2,
    1,
  ]);
  const refs = await virtex(cache, "cache", "refs");
  assertStringIncludes(refs.stdout, "pipe");
  // an unreferenced artifact is collected, the pipeline's are kept
  await virtex(
    cache,
    "ingest",
    "--set",
    `captions=${csv}`,
    "--set",
    "format=flickr",
    "--ref",
    "tmpref",
  );
  assertEquals((await virtex(cache, "cache", "unref", "tmpref")).code, 0);
  const gc = await virtex(cache, "cache", "gc", "--json");
  assertEquals(lastJson(gc).summary.removed.length, 1);
  assertEquals(lastJson(gc).summary.kept.length, 2);
  const badStage = join(dir, "bad.json");
  Deno.writeTextFileSync(badStage, JSON.stringify({ stages: [{ name: "x", stage: "nosuch" }] }));
  const bad = await virtex(cache, "run", "--config", badStage);
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, 'stages[0] ("x").stage: unknown stage "nosuch"');
  assert(!bad.stdout.includes("{"));
});

Deno.test("cli: a hit on a cache that cannot be written succeeds and warns about the ref", async () => {
  const { csv, cache } = dataset();
  const first = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--json");
  assertEquals(first.code, 0, first.stderr);
  // Stand-in for a read-only cache (root ignores permissions): refs/ cannot be created.
  Deno.removeSync(join(cache, "refs"), { recursive: true });
  Deno.writeTextFileSync(join(cache, "refs"), "not a folder");
  const hit = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--json");
  assertEquals(hit.code, 0, hit.stderr);
  assertEquals(lastJson(hit).hit, true);
  assertStringIncludes(hit.stderr, 'warning: could not record ref "ingest"');
});

Deno.test("cli: usage errors exit 2; short key prefixes and gc's kept scratch are explained", async () => {
  const { csv, cache } = dataset();
  const noEq = await virtex(cache, "ingest", "--set", `captions=${csv}`, "--set", "skipBad");
  assertEquals(noEq.code, 2, noEq.stderr);
  assertStringIncludes(noEq.stderr, '--set "skipBad": expected KEY=VALUE');
  const short = await virtex(cache, "cache", "show", "abc");
  assertEquals(short.code, 1);
  assertStringIncludes(short.stderr, "too short for a key prefix (at least 6 hex digits)");
  // A failed build leaves no empty work folder; a resumable one is reported by gc.
  const badCsv = join(csv, "..", "bad.txt");
  Deno.writeTextFileSync(badCsv, "image,caption\nzz.jpg,names a missing image\n");
  const bad = await virtex(cache, "ingest", "--set", `captions=${badCsv}`);
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, "image not found");
  let work: string[] = [];
  try {
    work = [...Deno.readDirSync(join(cache, "work"))].map((e) => e.name);
  } catch { /* none */ }
  assertEquals(work, []);
  Deno.mkdirSync(join(cache, "work", "ab".repeat(32)), { recursive: true });
  Deno.writeTextFileSync(join(cache, "work", "ab".repeat(32), "partial"), "x");
  const gc = await virtex(cache, "cache", "gc", "--dry-run");
  assertStringIncludes(gc.stdout, "kept 1 work folder(s)");
  assertStringIncludes(gc.stdout, "--work would remove them: abababababab");
});
