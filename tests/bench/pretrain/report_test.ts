import assert from "node:assert";
import { writeReport } from "../../../bench/pretrain/main.ts";

const result = (key: string, ours: number, torch: number) => ({
  case: key,
  date: "2026-01-01T00:00:00.000Z",
  cpu: "Test CPU",
  threads: 2,
  loadavg: [1, 1, 1],
  visual: "resnet18",
  size: 64,
  textual: "transdec_postnorm::L1_H512_A8_F2048",
  batch: 16,
  accumulate: key === "b" ? 2 : 1,
  ours: [{ stepSeconds: [1], imgPerSec: ours, cpuSecondsPerStep: 2, parameters: 1, lastLoss: 1 }],
  torch: [{ stepSeconds: [1], imgPerSec: torch, cpuSecondsPerStep: 3, parameters: 1, lastLoss: 1 }],
  bestOursImgPerSec: ours,
  bestTorchImgPerSec: torch,
  ratio: ours / torch,
});

Deno.test("bench/pretrain: a report of one case keeps the other case's last results", async () => {
  const dir = await Deno.makeTempDir({ prefix: "virtex-bench-pretrain-" });
  try {
    await writeReport(dir, [result("a", 3, 2), result("b", 1, 1)], "t");
    await writeReport(dir, [result("b", 1, 4)], "t");
    const r = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
    assert.deepStrictEqual(r.results.map((x: { case: string }) => x.case), ["a", "b"]);
    assert.strictEqual(r.results[0].ratio, 1.5);
    assert.strictEqual(r.results[1].ratio, 0.25);
    const md = await Deno.readTextFile(`${dir}/report.md`);
    assert.ok(md.includes("| 3.00 | 2.00 | 1.50 |"), md);
    assert.ok(md.includes("(ours 2×8)") && md.includes("| 0.25 |"), md);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
