/**
 * bench/scale's arithmetic and report, apart from the runs so that it can be tested on tiny
 * inputs: pretraining throughput from metrics.jsonl, allreduce time and bandwidth per size and
 * bucket, and the step-time model (compute + allreduce of the gradients / bandwidth) of the
 * paper's model on 1 to 32 GPUs.
 */
import { median } from "../common.ts";

const GB = 1e9;
const MB = 1e6;

/** One timed allreduce (seconds on the slowest rank); bucketBytes 0 is one flat call. */
export interface AllreduceSample {
  ranks: number;
  bytes: number;
  bucketBytes: number;
  seconds: number;
}

/** The median of one (size, bucket) variant. */
export interface AllreduceVariant {
  bucketBytes: number;
  samples: number;
  seconds: number; // median
  algGBps: number; // bytes / seconds (nccl-tests' algbw)
  busGBps: number; // algbw * 2(n-1)/n (nccl-tests' busbw)
}

/** Every variant measured at one buffer size. */
export interface AllreduceRow {
  ranks: number;
  bytes: number;
  variants: AllreduceVariant[]; // flat first, then by bucket size
}

/**
 * The allreduce bus-bandwidth factor over n ranks, 2(n-1)/n: each rank sends and receives that
 * share of the buffer at best (nccl-tests, doc/PERFORMANCE.md).
 */
export function busFactor(n: number): number {
  return n > 1 ? (2 * (n - 1)) / n : 0;
}

/** Groups samples by (ranks, size, bucket); medians and bandwidths per group. */
export function summariseAllreduce(samples: AllreduceSample[]): AllreduceRow[] {
  const groups = new Map<string, AllreduceSample[]>();
  for (const s of samples) {
    const k = `${s.ranks}/${s.bytes}/${s.bucketBytes}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  const rows = new Map<string, AllreduceRow>();
  for (const g of groups.values()) {
    const { ranks, bytes, bucketBytes } = g[0];
    const seconds = median(g.map((s) => s.seconds));
    const algGBps = bytes / seconds / GB;
    const k = `${ranks}/${bytes}`;
    if (!rows.has(k)) rows.set(k, { ranks, bytes, variants: [] });
    rows.get(k)!.variants.push({
      bucketBytes,
      samples: g.length,
      seconds,
      algGBps,
      busGBps: algGBps * busFactor(ranks),
    });
  }
  const out = [...rows.values()].sort((a, b) => a.ranks - b.ranks || a.bytes - b.bytes);
  for (const r of out) r.variants.sort((a, b) => a.bucketBytes - b.bucketBytes);
  return out;
}

/** Which bucket size allreduces buffers of at least `minBytes` fastest, against flat. */
export interface BucketVerdict {
  minBytes: number;
  flatSeconds: number; // summed medians over the sizes considered
  best: { bucketBytes: number; seconds: number };
  speedup: number; // flatSeconds / best.seconds
  busGBps: number; // the best variant's bus bandwidth at the largest size
}

/** The verdict over the rows of at least `minBytes` (null when none, or no flat variant). */
export function bucketVerdict(rows: AllreduceRow[], minBytes: number): BucketVerdict | null {
  const big = rows.filter((r) => r.bytes >= minBytes);
  if (big.length === 0) return null;
  const total = new Map<number, number>();
  for (const r of big) {
    for (const v of r.variants) {
      total.set(v.bucketBytes, (total.get(v.bucketBytes) ?? 0) + v.seconds);
    }
  }
  const flatSeconds = total.get(0);
  if (flatSeconds === undefined) return null;
  let best = { bucketBytes: 0, seconds: flatSeconds };
  for (const [bucketBytes, seconds] of total) {
    if (seconds < best.seconds) best = { bucketBytes, seconds };
  }
  const largest = big[big.length - 1];
  const bv = largest.variants.find((v) => v.bucketBytes === best.bucketBytes)!;
  return {
    minBytes,
    flatSeconds,
    best,
    speedup: flatSeconds / best.seconds,
    busGBps: bv.busGBps,
  };
}

/** One pretraining run of bench/scale. */
export interface ThroughputRun {
  layout: string; // "1x2" = 1 rank x 2 threads
  ranks: number;
  threads: number;
  round: number;
  steps: number; // timed steps
  imgPerSec: number; // global images / summed step seconds over the timed steps
  wallSeconds: number; // the whole command, start-up included
}

/**
 * Images/s over the steps after the first `warmup` of a metrics.jsonl (each line's imgPerSec is
 * the global batch over that step's seconds): total images / total seconds.
 */
export function timedThroughput(
  metricsJsonl: string,
  batch: number,
  warmup: number,
): { steps: number; seconds: number; imgPerSec: number } {
  const lines = metricsJsonl.split("\n").filter((l) => l.trim());
  const timed = lines.slice(warmup).map((l, i) => {
    const m = JSON.parse(l);
    if (!(m.imgPerSec > 0)) {
      throw new Error(`metrics.jsonl line ${warmup + i + 1}: no positive imgPerSec`);
    }
    return batch / m.imgPerSec;
  });
  if (timed.length === 0) {
    throw new Error(`metrics.jsonl has ${lines.length} steps, none after ${warmup} warmup steps`);
  }
  const seconds = timed.reduce((a, b) => a + b, 0);
  return { steps: timed.length, seconds, imgPerSec: (batch * timed.length) / seconds };
}

/** Per layout: each round's img/s; and candidate / reference per round (same round only). */
export interface ThroughputSummary {
  layouts: { layout: string; imgPerSec: number[]; median: number; wallSeconds: number[] }[];
  ratios: number[]; // candidate / reference, per round where both ran
  medianRatio: number | null;
}

/** Summarises runs; `reference` and `candidate` name layouts ("1x2", "2x1"). */
export function summariseThroughput(
  runs: ThroughputRun[],
  reference: string,
  candidate: string,
): ThroughputSummary {
  const names = [...new Set(runs.map((r) => r.layout))];
  const layouts = names.map((layout) => {
    const rs = runs.filter((r) => r.layout === layout).sort((a, b) => a.round - b.round);
    const ips = rs.map((r) => r.imgPerSec);
    return {
      layout,
      imgPerSec: ips,
      median: median(ips),
      wallSeconds: rs.map((r) => r.wallSeconds),
    };
  });
  const ratios: number[] = [];
  for (const round of [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b)) {
    const ref = runs.find((r) => r.round === round && r.layout === reference);
    const cand = runs.find((r) => r.round === round && r.layout === candidate);
    if (ref && cand) ratios.push(cand.imgPerSec / ref.imgPerSec);
  }
  return { layouts, ratios, medianRatio: ratios.length ? median(ratios) : null };
}

/** A published link rate, one direction, with where it is stated. */
export interface Link {
  name: string;
  GBps: number;
  source: string;
}

/** Interconnect figures the model uses (one direction, per GPU). */
export const PUBLISHED: Record<"pcie" | "nvlink" | "infiniband", Link> = {
  pcie: {
    name: "PCIe Gen5 x16 (GPU <-> host)",
    GBps: 64, // 128 GB/s both directions
    source: "H100 SXM: PCIe Gen5 128 GB/s (both directions), e.g. " +
      "https://github.com/scaleway/docs-content/pull/5834",
  },
  nvlink: {
    name: "NVLink 4 (H100 SXM, NVSwitch)",
    GBps: 450, // 900 GB/s both directions; ~380 GB/s measured peer to peer
    source: "900 GB/s both directions per H100 SXM (18 links x 50 GB/s); 380 GB/s one " +
      "direction measured by p2pBandwidthLatencyTest in https://github.com/NVIDIA/nccl/issues/1264",
  },
  infiniband: {
    name: "InfiniBand NDR 400 Gb/s, one NIC per GPU",
    GBps: 50,
    source: "8 GPUs and 400 Gb/s per GPU in NVIDIA's HGX H100 reference architecture " +
      "(https://docs.nvidia.com/reference-architectures/hgx-ai-factory-h100-h200-b200/abstract.md)",
  },
};

/** GPUs and nodes of the modelled configurations (8 GPUs per node). */
export const SCALE_CASES = [
  { gpus: 1, nodes: 1 },
  { gpus: 2, nodes: 1 },
  { gpus: 8, nodes: 1 },
  { gpus: 32, nodes: 4 },
] as const;

/** One path's step: its allreduce (and host copies), step time, throughput, efficiency. */
export interface ModelPath {
  copySeconds: number; // gradients GPU -> host -> GPU over PCIe (0 for GPU-direct)
  allreduceSeconds: number;
  busGBps: number; // the bus bandwidth assumed
  stepSeconds: number;
  imgPerSec: number;
  efficiency: number; // imgPerSec / (gpus x one GPU's imgPerSec)
}

/** One modelled configuration. */
export interface ModelRow {
  gpus: number;
  nodes: number;
  computeSeconds: number;
  host: ModelPath; // virtex as built: gradients through host memory and MPI
  direct: ModelPath; // GPU-to-GPU links (NCCL's path; virtex does not take it)
}

/** Inputs of the step-time model. */
export interface ModelInputs {
  gradientBytes: number;
  batchPerGpu: number;
  computeSeconds: number; // one GPU's step at batchPerGpu
  hostBusGBps: number; // MPI allreduce bus bandwidth through host memory (measured)
}

/**
 * Step time = compute + allreduce(gradient bytes) / bandwidth, with no overlap (virtex reduces
 * after the backward pass). Ring allreduce time: 2(n-1)/n x bytes / bus bandwidth. The host path
 * also copies the gradients to the host and back over PCIe; across nodes its bandwidth is the
 * lesser of the host figure and the NIC. The GPU-direct path uses NVLink in one node and the NIC
 * per GPU across nodes (each ring crosses the network).
 */
export function scalingModel(m: ModelInputs): ModelRow[] {
  const S = m.gradientBytes;
  const one = m.batchPerGpu / m.computeSeconds;
  const path = (gpus: number, bus: number, copy: number): ModelPath => {
    const allreduceSeconds = gpus > 1 ? (busFactor(gpus) * S) / (bus * GB) : 0;
    const copySeconds = gpus > 1 ? copy : 0;
    const stepSeconds = m.computeSeconds + allreduceSeconds + copySeconds;
    const imgPerSec = (gpus * m.batchPerGpu) / stepSeconds;
    return {
      copySeconds,
      allreduceSeconds,
      busGBps: bus,
      stepSeconds,
      imgPerSec,
      efficiency: imgPerSec / (gpus * one),
    };
  };
  return SCALE_CASES.map(({ gpus, nodes }) => {
    const nic = PUBLISHED.infiniband.GBps;
    const hostBus = nodes > 1 ? Math.min(m.hostBusGBps, nic) : m.hostBusGBps;
    const directBus = nodes > 1 ? Math.min(PUBLISHED.nvlink.GBps, nic) : PUBLISHED.nvlink.GBps;
    return {
      gpus,
      nodes,
      computeSeconds: m.computeSeconds,
      host: path(gpus, hostBus, (2 * S) / (PUBLISHED.pcie.GBps * GB)),
      direct: path(gpus, directBus, 0),
    };
  });
}

/**
 * The single-GPU f32 pretraining figure of bench/gpu/RESULTS-h100.md (the pretraining table's
 * `| batch | f32 | ours img/s |` row), or null.
 */
export function h100Figure(md: string): { batch: number; imgPerSec: number } | null {
  const m = /^\|\s*(\d+)\s*\|\s*f32\s*\|\s*([\d.]+)\s*\|/m.exec(md);
  return m ? { batch: Number(m[1]), imgPerSec: Number(m[2]) } : null;
}

/** Everything one bench/scale run measured (raw), as report.json holds it. */
export interface ScaleReport {
  date: string;
  machine: {
    cpu: string;
    cores: number;
    loadavgStart: number[];
    loadavgEnd: number[];
    mpi: string;
  };
  throughput?: {
    parameters?: number; // of the benchmarked model: its gradient elements
    visual: string;
    textual: string;
    size: number;
    batch: number;
    warmup: number;
    steps: number;
    runs: ThroughputRun[];
  };
  allreduce?: { samples: AllreduceSample[]; gradientBytes?: number };
  model?: {
    visual: string;
    textual: string;
    vocab: number;
    parameters: number;
    compute: { batch: number; imgPerSec: number; source: string };
  };
}

const f = (x: number, d = 2) => x.toFixed(d);
const mb = (b: number) => (b / MB).toLocaleString("en-US", { maximumFractionDigits: 1 });

const bucketName = (b: number) => (b === 0 ? "flat" : `${mb(b)} MB buckets`);

/** Fixed-width markdown table. */
function table(head: string[], rows: string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(" | ")} |`;
  return [line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)];
}

/** The smallest buffer size that counts as gradient-sized in the bucket verdict. */
export const GRADIENT_SIZED_BYTES = 16 * MB;

/** report.md: the measurements of this run, then the model built on them. */
export function renderMarkdown(r: ScaleReport): string {
  const out = [
    `# bench/scale (${r.date})`,
    "",
    `- machine: ${r.machine.cpu}, ${r.machine.cores} cores; load average ` +
    `${r.machine.loadavgStart.map((x) => f(x, 1)).join(" ")} at the start, ` +
    `${r.machine.loadavgEnd.map((x) => f(x, 1)).join(" ")} at the end`,
    `- MPI: ${r.machine.mpi}`,
  ];
  if (r.throughput) {
    const t = r.throughput, s = summariseThroughput(t.runs, "1x2", "2x1");
    out.push(
      "",
      `## Pretraining img/s: 1 rank x 2 threads vs 2 ranks x 1 thread`,
      "",
      `${t.visual} at ${t.size} px + ${t.textual}, global batch ${t.batch} (2 ranks: ${
        t.batch / 2
      } each, ` +
        `per-rank batch norm), wasm; img/s over ${t.steps} steps after ${t.warmup} warmup ` +
        "steps from metrics.jsonl (global images / summed step seconds; start-up excluded); " +
        "layouts alternate, rounds in order.",
      "",
      ...table(
        ["layout", "img/s per round", "median img/s", "wall s per round (with start-up)"],
        s.layouts.map((l) => [
          l.layout === "1x2"
            ? "1 rank x 2 threads"
            : l.layout === "2x1"
            ? "2 ranks x 1 thread"
            : l.layout,
          l.imgPerSec.map((x) => f(x)).join(", "),
          f(l.median),
          l.wallSeconds.map((x) => f(x, 1)).join(", "),
        ]),
      ),
      "",
      `2 ranks / 1 rank, same round: ${s.ratios.map((x) => f(x, 3)).join(", ")}` +
        (s.medianRatio !== null ? ` (median ${f(s.medianRatio, 3)})` : ""),
    );
    if (t.parameters) {
      out.push(
        "",
        `Each step the ranks allreduce ${t.parameters.toLocaleString("en-US")} gradients ` +
          `(${mb(t.parameters * 4)} MB).`,
      );
    }
  }
  if (r.allreduce) {
    const rows = summariseAllreduce(r.allreduce.samples);
    const buckets = [...new Set(rows.flatMap((x) => x.variants.map((v) => v.bucketBytes)))].sort(
      (a, b) => a - b,
    );
    out.push(
      "",
      `## MPI allreduce, in-place float32 sum, ${rows[0]?.ranks ?? "?"} ranks`,
      "",
      "Median ms per call (slowest rank, after a barrier) and bus bandwidth GB/s " +
        "(nccl-tests' busbw = bytes / time x 2(n-1)/n); variants interleaved. A bucket at " +
        "least as large as the buffer is the same single call as flat: the difference " +
        "between such cells is the machine's noise.",
      "",
      ...table(
        ["size MB", ...buckets.map((b) => `${bucketName(b)}: ms (GB/s) x calls`)],
        rows.map((row) => [
          mb(row.bytes),
          ...buckets.map((b) => {
            const v = row.variants.find((x) => x.bucketBytes === b);
            if (!v) return "n/a";
            const same = v.bucketBytes >= row.bytes ? " (one call)" : "";
            return `${f(v.seconds * 1000)} (${f(v.busGBps, 3)}) x${v.samples}${same}`;
          }),
        ]),
      ),
    );
    const v = bucketVerdict(rows, GRADIENT_SIZED_BYTES);
    if (v) {
      out.push(
        "",
        `Buffers of ${mb(v.minBytes)} MB and more: ${bucketName(v.best.bucketBytes)} ` +
          `${f(v.speedup)}x as fast as flat (summed medians ${f(v.best.seconds * 1000)} vs ` +
          `${f(v.flatSeconds * 1000)} ms).`,
      );
    }
  }
  if (r.model && r.allreduce) {
    const rows = summariseAllreduce(r.allreduce.samples);
    const v = bucketVerdict(rows, GRADIENT_SIZED_BYTES);
    const m = r.model;
    if (v) {
      const gradientBytes = m.parameters * 4;
      const computeSeconds = m.compute.batch / m.compute.imgPerSec;
      const model = scalingModel({
        gradientBytes,
        batchPerGpu: m.compute.batch,
        computeSeconds,
        hostBusGBps: v.busGBps,
      });
      out.push(
        "",
        `## Modelled step time: ${m.visual} + ${m.textual} (vocabulary ${m.vocab})`,
        "",
        `${m.parameters.toLocaleString("en-US")} parameters (counted with the project's model ` +
          `code) = ${mb(gradientBytes)} MB of float32 gradients per allreduce. Compute: ` +
          `${f(m.compute.imgPerSec)} img/s at batch ${m.compute.batch} on one H100 = ` +
          `${f(computeSeconds, 3)} s/step (measured: ${m.compute.source}; the current webgpu ` +
          `figure), batch ${m.compute.batch} per GPU. Step = compute + allreduce, no overlap. ` +
          `**virtex (host MPI)**: gradients copied GPU -> host -> GPU over PCIe ` +
          `(${PUBLISHED.pcie.GBps} GB/s each way) and summed by MPI in host memory at the bus ` +
          `bandwidth measured above (${f(v.busGBps, 3)} GB/s, ${
            bucketName(v.best.bucketBytes)
          }, largest ` +
          `size; across nodes at most the NIC's ${PUBLISHED.infiniband.GBps} GB/s). ` +
          `**GPU-direct**: what an NCCL-style allreduce over NVLink ` +
          `(${PUBLISHED.nvlink.GBps} GB/s) / InfiniBand (${PUBLISHED.infiniband.GBps} GB/s per ` +
          "GPU) would allow; virtex does not do this. 1 GPU: measured; every other cell " +
          "modelled.",
        "",
        ...table(
          [
            "GPUs (nodes)",
            "compute s",
            "virtex: copy + allreduce s",
            "virtex: img/s (efficiency)",
            "GPU-direct: allreduce s",
            "GPU-direct: img/s (efficiency)",
          ],
          model.map((x) => [
            `${x.gpus} (${x.nodes})`,
            f(x.computeSeconds, 3),
            x.gpus === 1 ? "0" : `${f(x.host.copySeconds, 3)} + ${f(x.host.allreduceSeconds, 3)}`,
            `${f(x.host.imgPerSec, 1)} (${f(x.host.efficiency * 100, 0)} %)` +
            (x.gpus === 1 ? " measured" : ""),
            x.gpus === 1 ? "0" : f(x.direct.allreduceSeconds, 4),
            `${f(x.direct.imgPerSec, 1)} (${f(x.direct.efficiency * 100, 0)} %)` +
            (x.gpus === 1 ? " measured" : ""),
          ]),
        ),
        "",
        "Sources: " + Object.values(PUBLISHED).map((l) => `${l.name}: ${l.source}`).join("; ") +
          "; busbw: https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md",
      );
    }
  }
  return out.join("\n") + "\n";
}
