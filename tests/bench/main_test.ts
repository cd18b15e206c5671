import assert from "node:assert";
import { join } from "node:path";
import { listBenchmarks, snapshot, writtenSince } from "../../bench/main.ts";

Deno.test("bench/main: finds every bench/<name>/main.ts, skipping out/ and dirs without main.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "virtex-bench-list-" });
  try {
    for (const d of ["zeta", "alpha", "out", "nomain"]) await Deno.mkdir(join(dir, d));
    for (const d of ["zeta", "alpha", "out"]) await Deno.writeTextFile(join(dir, d, "main.ts"), "");
    await Deno.writeTextFile(join(dir, "nomain", "other.ts"), "");
    assert.deepStrictEqual(listBenchmarks(dir), ["alpha", "zeta"]);
    assert.ok(listBenchmarks().includes("pretrain"), "the repo's bench/pretrain is listed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench/main: reports only files written since the benchmark started", async () => {
  const dir = await Deno.makeTempDir({ prefix: "virtex-bench-out-" });
  try {
    await Deno.writeTextFile(join(dir, "old.json"), "{}");
    await Deno.writeTextFile(join(dir, "rewritten.json"), "{}");
    await Deno.utime(join(dir, "rewritten.json"), new Date(0), new Date(0));
    const before = snapshot(dir);
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(join(dir, "sub", "report.json"), "{}");
    await Deno.writeTextFile(join(dir, "rewritten.json"), "{ }");
    assert.deepStrictEqual(writtenSince(dir, before), [
      join(dir, "rewritten.json"),
      join(dir, "sub", "report.json"),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench/main: an unknown benchmark name exits 2 and lists the known ones", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../bench/main.ts", import.meta.url).pathname, "no-such-bench"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.deepStrictEqual(r.code, 2);
  const err = new TextDecoder().decode(r.stderr);
  assert.ok(err.includes('"no-such-bench"') && err.includes("pretrain"), err);
});
