/**
 * `virtex demo --quick` end to end (tiny sizes, wasm backend): every stage runs through the cache,
 * the report names all three backbones on both downstream label sets, a second run is served
 * entirely from the cache, and --finetune adds the fine-tuning runs to the report.
 */
import assert from "node:assert";
import { join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;

async function demo(cache: string, out: string, ...extra: string[]) {
  const o = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(root, "cli/main.ts"),
      "demo",
      "--quick",
      "--device",
      "wasm",
      "--out",
      out,
      "--json",
      ...extra,
    ],
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(o.stderr);
  assert.strictEqual(o.code, 0, `demo failed:\n${stderr}`);
  const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

Deno.test({
  name: "demo --quick runs every stage, writes the report, and reruns from the cache",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-demo-" });
    try {
      const first = await demo(join(tmp, "cache"), join(tmp, "out"));
      assert.strictEqual(first.hit, false);
      const rows = first.summary.rows as {
        method: string;
        downstream: string;
        mAP: number;
        mAP11: number;
      }[];
      // Per downstream set: random init over three seeds, VirTex, token classification.
      assert.strictEqual(rows.length, 10);
      for (const r of rows) {
        assert(r.mAP > 0 && r.mAP <= 100, `${r.method}/${r.downstream}: ${r.mAP}`);
        assert(r.mAP11 > 0 && r.mAP11 <= 100, `${r.method}/${r.downstream}: 11-pt ${r.mAP11}`);
      }
      const report = await Deno.readTextFile(join(tmp, "out", "report.md"));
      for (const m of ["random init", "VirTex", "token classification"]) assert(report.includes(m));
      assert(/random init \| none \| [\d.]+ ± [\d.]+ \(/.test(report), "random init as mean ± sd");
      assert(/VirTex \| bicaptioning \| [\d.]+ \[[\d.]+, [\d.]+\]/.test(report), "VirTex with CI");
      const svg = await Deno.readTextFile(join(tmp, "out", "map.svg"));
      assert(svg.startsWith("<svg") || svg.startsWith("<?xml"));
      assert(svg.includes('class="errbar"'), "the chart shows the intervals");
      await Deno.stat(join(tmp, "out", "loss-bicaptioning.svg"));
      const second = await demo(join(tmp, "cache"), join(tmp, "out2"));
      assert.strictEqual(second.hit, true, "second demo run was not served from the cache");
      assert.deepStrictEqual(second.summary.rows, first.summary.rows);
      // --finetune adds end-to-end fine-tuning of VirTex and random init (the rest is cached).
      const third = await demo(join(tmp, "cache"), join(tmp, "out3"), "--finetune");
      const ft = third.summary.finetune as { method: string; mAP: number }[];
      assert.deepStrictEqual(ft.map((f) => f.method), ["VirTex", "random init"]);
      for (const f of ft) assert(f.mAP > 0 && f.mAP <= 100, `${f.method}: ${f.mAP}`);
      const report3 = await Deno.readTextFile(join(tmp, "out3", "report.md"));
      assert(report3.includes("Fine-tuning end to end"), "fine-tuning section");
      await Deno.stat(join(tmp, "out3", "finetune-VirTex.svg"));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
