import assert from "node:assert";
import {
  type AllreduceSample,
  bucketVerdict,
  busFactor,
  h100Figure,
  renderMarkdown,
  type ScaleReport,
  scalingModel,
  summariseAllreduce,
  summariseThroughput,
  timedThroughput,
} from "../../../bench/scale/report.ts";

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);

Deno.test("bench/scale: img/s after warmup from metrics.jsonl (total images / total seconds)", () => {
  const metrics = [100, 10, 20, 40].map((ips, i) => JSON.stringify({ step: i + 1, imgPerSec: ips }))
    .join("\n") + "\n";
  const t = timedThroughput(metrics, 4, 1); // steps of 0.4, 0.2 and 0.1 s after the warmup
  assert.strictEqual(t.steps, 3);
  close(t.seconds, 0.7, "seconds");
  close(t.imgPerSec, 12 / 0.7, "img/s");
  assert.throws(() => timedThroughput(metrics, 4, 4), /none after 4 warmup/);
  assert.throws(() => timedThroughput('{"step":1}\n', 4, 0), /line 1: no positive imgPerSec/);
});

Deno.test("bench/scale: throughput ratios are taken within a round", () => {
  const run = (layout: string, round: number, imgPerSec: number) => ({
    layout,
    ranks: Number(layout[0]),
    threads: Number(layout[2]),
    round,
    steps: 8,
    imgPerSec,
    wallSeconds: 30,
  });
  const s = summariseThroughput(
    [run("1x2", 0, 10), run("2x1", 0, 12), run("2x1", 1, 9), run("1x2", 1, 6), run("2x1", 2, 1)],
    "1x2",
    "2x1",
  );
  assert.deepStrictEqual(s.ratios, [1.2, 1.5]); // round 2 has no reference: no ratio
  assert.strictEqual(s.medianRatio, 1.5);
  assert.deepStrictEqual(s.layouts.find((l) => l.layout === "2x1")!.imgPerSec, [12, 9, 1]);
});

const MB = 1e6;
const samples: AllreduceSample[] = [
  ...[1, 3, 0.9].map((seconds) => ({ ranks: 2, bytes: 100 * MB, bucketBytes: 0, seconds })),
  ...[0.5, 0.6, 0.4].map((seconds) => ({
    ranks: 2,
    bytes: 100 * MB,
    bucketBytes: 16 * MB,
    seconds,
  })),
  { ranks: 2, bytes: 1 * MB, bucketBytes: 0, seconds: 0.001 },
  { ranks: 2, bytes: 1 * MB, bucketBytes: 16 * MB, seconds: 0.002 },
];

Deno.test("bench/scale: allreduce medians, bandwidths and the bucket verdict", () => {
  const rows = summariseAllreduce(samples);
  assert.deepStrictEqual(rows.map((r) => r.bytes), [1 * MB, 100 * MB]);
  const [flat, bucketed] = rows[1].variants;
  assert.deepStrictEqual([flat.bucketBytes, flat.samples, flat.seconds], [0, 3, 1]);
  close(flat.algGBps, 0.1, "algbw");
  close(flat.busGBps, 0.1, "busbw, 2 ranks"); // 2(n-1)/n = 1
  assert.strictEqual(bucketed.seconds, 0.5);
  assert.strictEqual(busFactor(8), 1.75);
  const v = bucketVerdict(rows, 16 * MB)!;
  assert.strictEqual(v.best.bucketBytes, 16 * MB);
  close(v.speedup, 2, "speedup");
  close(v.busGBps, 0.2, "best busbw");
  // Over every size, 1 MB's flat win does not outweigh 100 MB's bucketed one.
  assert.strictEqual(bucketVerdict(rows, 0)!.best.bucketBytes, 16 * MB);
  assert.strictEqual(bucketVerdict(rows, 1000 * MB), null);
});

Deno.test("bench/scale: step time = compute + copies + 2(n-1)/n x bytes / bandwidth", () => {
  const rows = scalingModel({
    gradientBytes: 1e9,
    batchPerGpu: 32,
    computeSeconds: 1,
    hostBusGBps: 1,
  });
  assert.deepStrictEqual(rows.map((r) => [r.gpus, r.nodes]), [[1, 1], [2, 1], [8, 1], [32, 4]]);
  const [one, two, eight, many] = rows;
  assert.strictEqual(one.host.stepSeconds, 1); // no allreduce, no copies
  close(one.host.imgPerSec, 32, "1 GPU");
  close(two.host.allreduceSeconds, 1, "2 GPUs host allreduce");
  close(two.host.copySeconds, 2 / 64, "PCIe both ways");
  close(two.host.efficiency, 1 / (1 + 1 + 2 / 64), "efficiency");
  close(eight.host.allreduceSeconds, 1.75, "8 GPUs");
  close(eight.direct.allreduceSeconds, 1.75 / 450, "NVLink");
  close(many.direct.allreduceSeconds, (2 * 31 / 32) / 50, "InfiniBand per GPU");
  close(many.host.allreduceSeconds, 2 * 31 / 32, "host figure below the NIC");
});

Deno.test("bench/scale: the H100 figure comes from bench/gpu/RESULTS-h100.md", async () => {
  const md = await Deno.readTextFile(
    new URL("../../../bench/gpu/RESULTS-h100.md", import.meta.url),
  );
  const fig = h100Figure(md)!;
  assert.strictEqual(fig.batch, 32);
  assert.ok(fig.imgPerSec > 0);
  assert.strictEqual(h100Figure("| 32 | AMP f16 | 84.31 |"), null);
});

Deno.test("bench/scale: report.md names the ratio, the verdict and the modelled rows", () => {
  const report: ScaleReport = {
    date: "2026-01-01",
    machine: { cpu: "test", cores: 2, loadavgStart: [1, 1, 1], loadavgEnd: [2, 2, 2], mpi: "x" },
    throughput: {
      parameters: 1_500_000,
      visual: "v",
      textual: "t",
      size: 64,
      batch: 32,
      warmup: 2,
      steps: 8,
      runs: [
        { layout: "1x2", ranks: 1, threads: 2, round: 0, steps: 8, imgPerSec: 10, wallSeconds: 20 },
        { layout: "2x1", ranks: 2, threads: 1, round: 0, steps: 8, imgPerSec: 11, wallSeconds: 25 },
      ],
    },
    allreduce: { samples },
    model: {
      visual: "resnet50",
      textual: "L1_H2048",
      vocab: 10000,
      parameters: 250e6, // 1 GB of gradients
      compute: { batch: 32, imgPerSec: 32, source: "test" },
    },
  };
  const md = renderMarkdown(report);
  assert.match(md, /\| 1 rank x 2 threads +\| 10\.00 /);
  assert.match(md, /same round: 1\.100 \(median 1\.100\)/);
  assert.match(md, /16 MB buckets 2\.00x as fast as flat/);
  assert.match(md, /\| 100 +\| 1000\.00 \(0\.100\) x3 +\| 500\.00 \(0\.200\) x3 +\|/);
  // 2 GPUs: compute 1 s + PCIe 2/64 s + 1 GB at the measured 0.2 GB/s = 5 s.
  assert.match(md, /\| 2 \(1\) +\| 1\.000 +\| 0\.031 \+ 5\.000 /);
  assert.match(md, /250,000,000 parameters/);
  assert.match(md, /allreduce 1,500,000 gradients \(6 MB\)/);
  assert.match(md, /\| 1 +\| 1\.00 \(1\.000\) x1 +\| 2\.00 \(0\.500\) x1 \(one call\) +\|/);
});
