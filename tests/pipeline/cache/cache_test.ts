import { assert, assertEquals, assertNotEquals, assertRejects } from "./_assert.ts";
import { join } from "node:path";
import { Cache, computeKey } from "../../../pipeline/cache/store.ts";
import { canonicalJson, hashPath } from "../../../pipeline/cache/hash.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { echoStage, runs } from "./test_stage.ts";

const HELPER = new URL("./build_helper.ts", import.meta.url).pathname;
const quiet = { log: () => {} };

function tempCache(): Cache {
  return new Cache(Deno.makeTempDirSync({ prefix: "virtex-cache-test-" }));
}

function spawnBuild(root: string, config: unknown, env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HELPER, root, JSON.stringify(config)],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function waitForFile(path: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`timed out waiting for ${path}`);
}

const entries = (dir: string) => {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
};

Deno.test("canonical JSON ignores key order; key changes with every part", () => {
  assertEquals(
    canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 0 }] } }),
    '{"a":{"c":[3,{"e":0,"f":1}],"d":2},"b":1}',
  );
  const base = {
    stage: "s",
    stageVersion: "1",
    code: "c0",
    config: { a: 1, b: 2 },
    inputs: {},
    inputFiles: {},
  };
  const k = computeKey(base);
  assertEquals(k, computeKey({ ...base, config: { b: 2, a: 1 } }));
  assertNotEquals(k, computeKey({ ...base, stageVersion: "2" }));
  assertNotEquals(k, computeKey({ ...base, code: "c1" }));
  assertNotEquals(k, computeKey({ ...base, stage: "t" }));
  assertNotEquals(k, computeKey({ ...base, config: { a: 1, b: 3 } }));
  assertNotEquals(k, computeKey({ ...base, inputs: { x: "00" } }));
  assertNotEquals(k, computeKey({ ...base, inputFiles: { x: "file:00" } }));
});

Deno.test("folder hash follows content, names and additions", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(join(dir, "a.txt"), "one");
  Deno.mkdirSync(join(dir, "sub"));
  Deno.writeTextFileSync(join(dir, "sub", "b.txt"), "two");
  const h1 = await hashPath(dir);
  assertEquals(h1, await hashPath(dir));
  Deno.writeTextFileSync(join(dir, "sub", "b.txt"), "twO");
  const h2 = await hashPath(dir);
  assertNotEquals(h1, h2);
  Deno.renameSync(join(dir, "a.txt"), join(dir, "c.txt"));
  assertNotEquals(h2, await hashPath(dir));
  Deno.writeTextFileSync(join(dir, "d.txt"), "");
  assertNotEquals(h2, await hashPath(dir));
});

Deno.test("runStage: miss then hit; config, input file and version changes miss", async () => {
  const cache = tempCache();
  const src = join(cache.root, "..", `src-${crypto.randomUUID()}.txt`);
  Deno.writeTextFileSync(src, "abc");
  const before = runs.count;
  const a = await runStage(echoStage, { text: "x", source: src }, { cache, ...quiet });
  assertEquals(a.hit, false);
  assertEquals(Deno.readTextFileSync(join(a.artifact.dir, "out.txt")), "xabc");
  const b = await runStage(echoStage, { source: src, text: "x" }, { cache, ...quiet });
  assertEquals(b.hit, true);
  assertEquals(b.artifact.key, a.artifact.key);
  assertEquals(runs.count, before + 1);
  // defaults are part of the canonical config: spelling out a default is the same key
  const c = await runStage(echoStage, { text: "x", source: src, repeat: 1 }, { cache, ...quiet });
  assertEquals(c.artifact.key, a.artifact.key);
  const d = await runStage(echoStage, { text: "x", source: src, repeat: 2 }, { cache, ...quiet });
  assertNotEquals(d.artifact.key, a.artifact.key);
  Deno.writeTextFileSync(src, "abd");
  const e = await runStage(echoStage, { text: "x", source: src }, { cache, ...quiet });
  assertEquals(e.hit, false);
  assertNotEquals(e.artifact.key, a.artifact.key);
  const f = await runStage({ ...echoStage, version: "2" }, { text: "x", source: src }, {
    cache,
    ...quiet,
  });
  assertNotEquals(f.artifact.key, e.artifact.key);
  // manifest records config, input hashes and every file with size + sha256
  const m = a.artifact.manifest;
  assertEquals(m.stage, "echo");
  assertEquals(m.config, { text: "x", repeat: 1, source: src, nested: { lr: 0.1 } });
  assert(m.inputFiles.source.startsWith("file:"));
  assertEquals(m.files.map((f) => f.path), ["out.txt", "sub/len.txt"]);
  assertEquals(m.files[0].size, 4);
  assertEquals(m.summary, { length: 4, resumed: false });
  // workDir removed once the artifact lands
  assertEquals(entries(join(cache.root, "work")), []);
  assertEquals(entries(join(cache.root, "tmp")), []);
});

Deno.test("runStage: upstream artifact keys are part of the key; force rebuilds", async () => {
  const cache = tempCache();
  const up1 = await runStage(echoStage, { text: "u1" }, { cache, ...quiet });
  const up2 = await runStage(echoStage, { text: "u2" }, { cache, ...quiet });
  const a = await runStage(echoStage, {}, { cache, inputs: { up: up1.artifact }, ...quiet });
  const b = await runStage(echoStage, {}, { cache, inputs: { up: up2.artifact.key }, ...quiet });
  assertNotEquals(a.artifact.key, b.artifact.key);
  assertEquals(a.artifact.manifest.inputs, { up: up1.artifact.key });
  const byPrefix = await runStage(echoStage, {}, {
    cache,
    inputs: { up: up1.artifact.key.slice(0, 10) },
    ...quiet,
  });
  assertEquals(byPrefix.artifact.key, a.artifact.key);
  assertEquals(byPrefix.hit, true);
  const forced = await runStage(echoStage, {}, {
    cache,
    inputs: { up: up1.artifact },
    force: true,
    ...quiet,
  });
  assertEquals(forced.hit, false);
  assertEquals(forced.artifact.key, a.artifact.key);
  await assertRejects(
    () => runStage(echoStage, {}, { cache, inputs: { up: "ffffffffffff" }, ...quiet }),
    Error,
    'input "up"',
  );
});

Deno.test("runStage: config errors name the key", async () => {
  const cache = tempCache();
  await assertRejects(
    () => runStage(echoStage, { txet: "x" }, { cache, ...quiet }),
    Error,
    '"txet"',
  );
  await assertRejects(
    () => runStage(echoStage, { nested: { lr: "fast" } }, { cache, ...quiet }),
    Error,
    '"nested.lr"',
  );
  await assertRejects(
    () => runStage(echoStage, { nested: { lr: 1, mom: 0.9 } }, { cache, ...quiet }),
    Error,
    "nested.mom",
  );
  await assertRejects(
    () => runStage(echoStage, { source: "/nonexistent/file.txt" }, { cache, ...quiet }),
    Error,
    "/nonexistent/file.txt",
  );
  assertEquals(entries(cache.artifactsDir), []);
});

Deno.test("verify names a file with one flipped byte, a missing file and an extra file", async () => {
  const cache = tempCache();
  const { artifact } = await runStage(echoStage, { text: "verify me" }, { cache, ...quiet });
  assertEquals(await cache.verify(), []);
  const p = join(artifact.dir, "out.txt");
  const bytes = Deno.readFileSync(p);
  bytes[3] ^= 0x01;
  Deno.writeFileSync(p, bytes);
  const problems = await cache.verify();
  assertEquals(problems.length, 1);
  assertEquals(problems[0].file, "out.txt");
  assert(problems[0].problem.includes("content changed"));
  Deno.removeSync(join(artifact.dir, "sub", "len.txt"));
  Deno.writeTextFileSync(join(artifact.dir, "extra.bin"), "x");
  const files = (await cache.verify([artifact.key])).map((q) => `${q.file}:${q.problem}`).sort();
  assertEquals(files.length, 3);
  assert(files[0].startsWith("extra.bin:not listed"));
  assert(files[2].startsWith("sub/len.txt:missing"));
});

Deno.test("a build killed mid-write leaves no artifact; the next build resumes and succeeds", async () => {
  const cache = tempCache();
  const marker = join(cache.root, "..", `marker-${crypto.randomUUID()}`);
  const config = { text: "killed", repeat: 50 };
  const child = spawnBuild(cache.root, config, {
    VIRTEX_TEST_SLOW_MS: "60000",
    VIRTEX_TEST_MARKER: marker,
  });
  await waitForFile(marker);
  child.kill("SIGKILL");
  const status = await child.status;
  assertEquals(status.success, false);
  await child.stdout.cancel();
  await child.stderr.cancel();
  // Half-written output exists only in a temp dir; no artifact, a stale lock, the workDir kept.
  assertEquals(entries(cache.artifactsDir), []);
  assertEquals(entries(join(cache.root, "tmp")).length, 1);
  assertEquals(entries(join(cache.root, "locks")).length, 1);
  assertEquals(entries(join(cache.root, "work")).length, 1);
  const again = await runStage(echoStage, config, { cache, ...quiet });
  assertEquals(again.hit, false);
  assertEquals(again.artifact.manifest.summary.resumed, true);
  assertEquals(Deno.readTextFileSync(join(again.artifact.dir, "out.txt")), "killed".repeat(50));
  assertEquals(await cache.verify(), []);
  assertEquals(entries(join(cache.root, "work")), []);
  // gc removes the dead builder's temp dir, and nothing referenced
  cache.setRef("t", { echo: again.artifact.key });
  const res = cache.gc();
  assertEquals(res.tmpRemoved.length, 1);
  assertEquals(res.removed, []);
  assertEquals(entries(join(cache.root, "tmp")), []);
});

Deno.test("two processes building the same key end with one intact artifact", async () => {
  const cache = tempCache();
  const config = { text: "race", repeat: 1000 };
  const env = { VIRTEX_TEST_SLOW_MS: "1500" };
  const a = spawnBuild(cache.root, config, env);
  const b = spawnBuild(cache.root, config, env);
  const [ra, rb] = await Promise.all([a.output(), b.output()]);
  const dec = new TextDecoder();
  assert(ra.success, dec.decode(ra.stderr));
  assert(rb.success, dec.decode(rb.stderr));
  const ja = JSON.parse(dec.decode(ra.stdout));
  const jb = JSON.parse(dec.decode(rb.stdout));
  assertEquals(ja.key, jb.key);
  // exactly one of them built it; the other waited on the lock and got a hit
  assertEquals([ja.hit, jb.hit].sort(), [false, true]);
  assertEquals(entries(cache.artifactsDir), [ja.key]);
  assertEquals(entries(join(cache.root, "tmp")), []);
  assertEquals(await cache.verify(), []);
  assertEquals(
    Deno.readTextFileSync(join(cache.artifactDir(ja.key), "out.txt")),
    "race".repeat(1000),
  );
});

Deno.test("rename-wins: when another builder publishes first, its artifact is kept", async () => {
  const cache = tempCache();
  const first = await runStage(echoStage, { text: "rw" }, { cache, ...quiet });
  const key = first.artifact.key;
  const aside = join(cache.root, "aside");
  Deno.renameSync(first.artifact.dir, aside);
  const parts = {
    stage: "echo",
    stageVersion: "1",
    code: first.artifact.manifest.code!,
    config: first.artifact.manifest.config,
    inputs: {},
    inputFiles: {},
  };
  // While we build, a lock-less racer publishes the same key: our rename must lose cleanly.
  const second = await cache.getOrBuild(parts, (outDir) => {
    Deno.writeTextFileSync(join(outDir, "out.txt"), "ours");
    Deno.renameSync(aside, cache.artifactDir(key));
    return Promise.resolve({});
  });
  assertEquals(second.hit, true);
  assertEquals(second.artifact.key, key);
  assertEquals(Deno.readTextFileSync(join(cache.artifactDir(key), "out.txt")), "rw");
  assertEquals(entries(join(cache.root, "tmp")), []);
  assertEquals(await cache.verify(), []);
});

Deno.test("gc keeps what refs reach (with inputs), removes the rest; dry run removes nothing", async () => {
  const cache = tempCache();
  const b = await runStage(echoStage, { text: "b" }, { cache, ...quiet });
  const c = await runStage(echoStage, { text: "c" }, {
    cache,
    inputs: { up: b.artifact },
    ...quiet,
  });
  const d = await runStage(echoStage, { text: "d" }, { cache, ...quiet });
  const e = await runStage(echoStage, { text: "e" }, { cache, ...quiet });
  cache.setRef("pipeline", { c: c.artifact.key });
  const dry = cache.gc({ dryRun: true });
  assertEquals(dry.removed.sort(), [d.artifact.key, e.artifact.key].sort());
  assertEquals(entries(cache.artifactsDir).length, 4);
  const res = cache.gc({ keep: [e.artifact.key] });
  assertEquals(res.removed, [d.artifact.key]);
  assert(res.freedBytes > 0);
  assertEquals(
    entries(cache.artifactsDir),
    [b.artifact.key, c.artifact.key, e.artifact.key].sort(),
  );
  assert(cache.removeRef("pipeline"));
  cache.gc();
  assertEquals(entries(cache.artifactsDir), []);
});

Deno.test("resolve: key, prefix, ref, ref:label; errors name the ref", async () => {
  const cache = tempCache();
  const a = await runStage(echoStage, { text: "a" }, { cache, ...quiet });
  const b = await runStage(echoStage, { text: "b" }, { cache, ...quiet });
  assertEquals(cache.resolve(a.artifact.key).key, a.artifact.key);
  assertEquals(cache.resolve(a.artifact.key.slice(0, 8)).key, a.artifact.key);
  cache.setRef("one", { echo: a.artifact.key });
  cache.setRef("two", { x: a.artifact.key, y: b.artifact.key });
  assertEquals(cache.resolve("one").key, a.artifact.key);
  assertEquals(cache.resolve("two:y").key, b.artifact.key);
  let msg = "";
  try {
    cache.resolve("two");
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("two:<label>"), msg);
  try {
    cache.resolve("nothere");
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes('"nothere"'), msg);
});
