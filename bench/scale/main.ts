/**
 * bench/scale: data-parallel pretraining on this machine, in one run:
 *   (a) pretraining img/s of 1 rank x 2 threads against 2 ranks x 1 thread under mpirun, same
 *       global batch and model (the demo's resnet18_w16_os16 at 64 px + L1_H128 on synthetic
 *       scenes, wasm), from each run's metrics.jsonl after warmup; the layouts alternate over
 *       the rounds and the ratio is taken within a round;
 *   (b) MPI allreduce (in-place float32 sum, 2 ranks) of 1 to 100 MB, flat against buckets,
 *       interleaved in one mpirun (allreduce_child.ts);
 *   (c) the step-time model of README "Scaling out" for resnet50 + L1_H2048 (parameters counted
 *       with the project's model code, single-GPU compute from bench/gpu/RESULTS-h100.md, the
 *       bandwidth of (b), published interconnect figures: report.ts).
 *
 *   deno run -A bench/scale/main.ts [--rounds 3] [--warmup 2] [--steps 8] [--batch 32]
 *     [--sizes 1,4,16,64,100] [--buckets 0,4,16] [--reps 5] [--skip throughput,allreduce,model]
 *
 * Writes bench/out/scale/report.json and report.md. Needs OpenMPI's mpirun and libmpi.so.40.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../../engine/safetensors.ts";
import { cpuModel } from "../common.ts";
import {
  type AllreduceSample,
  h100Figure,
  renderMarkdown,
  type ScaleReport,
  type ThroughputRun,
  timedThroughput,
} from "./report.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const OUT = join(ROOT, "bench/out/scale");
const VIRTEX = join(ROOT, "virtex");
const VISUAL = "resnet18_w16_os16";
const TEXTUAL = "transdec_postnorm::L1_H128_A2_F512";
const SIZE = 64;
const BIG = { visual: "resnet50", textual: "transdec_postnorm::L1_H2048_A32_F8192", vocab: 10000 };

/** Environment for mpirun: root allowed (containers), more ranks than cores allowed. */
const MPI_ENV: Record<string, string> = {
  OMPI_ALLOW_RUN_AS_ROOT: "1",
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
  OMPI_MCA_rmaps_base_oversubscribe: "1",
};

const dec = new TextDecoder();

/** Runs a command; throws with its stderr's tail on failure. Returns stdout and seconds. */
async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ stdout: string; seconds: number }> {
  const t0 = performance.now();
  const o = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (!o.success) {
    const err = dec.decode(o.stderr).trim().split("\n").slice(-15).join("\n");
    throw new Error(`${cmd} ${args.slice(0, 4).join(" ")} … failed (exit ${o.code}):\n${err}`);
  }
  return { stdout: dec.decode(o.stdout), seconds };
}

/** The last stdout line of a `--json` stage command, parsed. */
function lastJson(stdout: string): { key: string } {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

function mpiVersion(): string | null {
  try {
    const o = new Deno.Command("mpirun", { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    if (!o.success) return null;
    Deno.dlopen(Deno.env.get("VIRTEX_MPI_LIB") ?? "libmpi.so.40", {}).close();
    return dec.decode(o.stdout).trim().split("\n")[0];
  } catch {
    return null;
  }
}

/** Scenes → tokenize → augment in `cache`; returns pretrain's --input flags. */
async function prepare(env: Record<string, string>, images: number): Promise<string[]> {
  const stage = async (args: string[]) =>
    lastJson((await run(VIRTEX, [...args, "--json"], env)).stdout);
  const scenes = await stage([
    "scenes",
    ...["train=" + images, "val=8", "vocTrain=1", "vocTest=1", `size=${SIZE}`].flatMap((
      s,
    ) => ["--set", s]),
  ]);
  const caps = join(
    env.VIRTEX_CACHE,
    "artifacts",
    scenes.key,
    "data/captions/annotations/captions_train2017.json",
  );
  const tok = await stage(["tokenize", "--set", `captions=${caps}`, "--set", "vocabSize=400"]);
  const aug = await stage(["augment", "--set", `captions=${caps}`, "--set", `shortSide=${SIZE}`]);
  return ["--input", `tokens=${tok.key}`, "--input", `shards=${aug.key}`];
}

/** model.json of the latest pretraining run (its model config and vocabulary size). */
let modelJson = "";

/** One pretraining run of `ranks` x `threads`; img/s from its metrics.jsonl. */
async function pretrainRun(o: {
  env: Record<string, string>;
  inputs: string[];
  ranks: number;
  threads: number;
  round: number;
  batch: number;
  warmup: number;
  steps: number;
}): Promise<ThroughputRun> {
  const sets = [
    "device=wasm",
    `threads=${o.threads}`,
    `model.visual=${VISUAL}`,
    `model.textual=${TEXTUAL}`,
    `train.steps=${o.warmup + o.steps}`,
    `train.batchSize=${o.batch}`,
    `train.checkpointEvery=${o.warmup + o.steps}`,
    "train.workers=0", // augmentation in the training thread: the threads are all there is
    "transform.size=" + SIZE,
    "transform.evalResize=" + SIZE,
    "sampleImages=0",
  ].flatMap((s) => ["--set", s]);
  const args = ["pretrain", ...sets, ...o.inputs, "--force", "--json"];
  const r = o.ranks > 1
    ? await run("mpirun", ["-np", String(o.ranks), VIRTEX, ...args], { ...o.env, ...MPI_ENV })
    : await run(VIRTEX, args, o.env);
  const key = lastJson(r.stdout).key;
  const metrics = await Deno.readTextFile(
    join(o.env.VIRTEX_CACHE, "artifacts", key, "metrics.jsonl"),
  );
  const t = timedThroughput(metrics, o.batch, o.warmup);
  modelJson = join(o.env.VIRTEX_CACHE, "artifacts", key, "model.json");
  return {
    layout: `${o.ranks}x${o.threads}`,
    ranks: o.ranks,
    threads: o.threads,
    round: o.round,
    steps: t.steps,
    imgPerSec: t.imgPerSec,
    wallSeconds: r.seconds,
  };
}

/** (b): one mpirun of allreduce_child.ts. */
async function allreduceSamples(o: {
  ranks: number;
  sizes: string;
  buckets: string;
  reps: number;
}): Promise<AllreduceSample[]> {
  const r = await run("mpirun", [
    "-np",
    String(o.ranks),
    Deno.execPath(),
    "run",
    "-A",
    join(ROOT, "bench/scale/allreduce_child.ts"),
    o.sizes,
    o.buckets,
    String(o.reps),
  ], MPI_ENV);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/**
 * Parameters (= gradient elements) of a pretraining model, built with the project's model code on
 * the ref backend; `model` holds pretrain's model.* keys.
 */
async function countParameters(model: Record<string, unknown>, vocabSize: number): Promise<number> {
  const { createBackend } = await import("../../engine/device.ts");
  const { PretrainingModel } = await import("../../pipeline/model/tasks.ts");
  const { modelSchema } = await import("../../pipeline/pretrain/config.ts");
  const be = await createBackend("ref");
  const m = await PretrainingModel.create(be, {
    ...modelSchema.parse(model),
    vocabSize,
    maskSeed: 0,
  });
  const n = m.parameters().reduce((a, p) => a + p.numel, 0);
  be.destroy();
  return n;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench/scale: --${name} must be a positive integer, got "${v}"`);
    Deno.exit(2);
  }
  return n;
}

async function main() {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      warmup: { type: "string", default: "2" },
      steps: { type: "string", default: "8" },
      batch: { type: "string", default: "32" },
      images: { type: "string", default: "512" },
      sizes: { type: "string", default: "1,4,16,64,100" },
      buckets: { type: "string", default: "0,4,16" },
      reps: { type: "string", default: "5" },
      skip: { type: "string", default: "" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/scale/main.ts [--rounds R] [--warmup W] [--steps S] [--batch B]\n" +
        "  [--images N] [--sizes MB,…] [--buckets MB,… (0 = flat)] [--reps K]\n" +
        "  [--skip throughput,allreduce,model]\n" +
        "Pretraining img/s of 1 rank x 2 threads vs 2 ranks x 1 thread, MPI allreduce flat vs\n" +
        "bucketed, and the step-time model; writes bench/out/scale/report.{json,md}.",
    );
    return;
  }
  const skip = new Set(values.skip.split(",").filter(Boolean));
  for (const s of skip) {
    if (!["throughput", "allreduce", "model"].includes(s)) {
      console.error(`bench/scale: --skip takes throughput, allreduce, model; got "${s}"`);
      Deno.exit(2);
    }
  }
  for (const list of [values.sizes, values.buckets]) {
    if (!list.split(",").every((x) => Number(x) >= 0 && x.trim() !== "")) {
      console.error(`bench/scale: "${list}" is not a comma-separated list of MB figures`);
      Deno.exit(2);
    }
  }
  const rounds = positiveInt("rounds", values.rounds);
  const warmup = positiveInt("warmup", values.warmup);
  const steps = positiveInt("steps", values.steps);
  const batch = positiveInt("batch", values.batch);
  const images = positiveInt("images", values.images);
  const reps = positiveInt("reps", values.reps);
  if (batch % 2 !== 0) {
    console.error(`bench/scale: --batch ${batch} must be even (2 ranks share it)`);
    Deno.exit(2);
  }
  const mpi = mpiVersion();
  if (!mpi) {
    console.error(
      "bench/scale: needs OpenMPI (mpirun and libmpi.so.40): apt-get install openmpi-bin " +
        "libopenmpi-dev",
    );
    Deno.exit(1);
  }
  const report: ScaleReport = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpuModel(),
      cores: navigator.hardwareConcurrency,
      loadavgStart: Deno.loadavg(),
      loadavgEnd: [],
      mpi,
    },
  };
  const log = (s: string) => console.log(`bench/scale: ${s}`);

  if (!skip.has("allreduce")) {
    log(`allreduce, 2 ranks: ${values.sizes} MB, buckets ${values.buckets} MB …`);
    const samples = await allreduceSamples({
      ranks: 2,
      sizes: values.sizes,
      buckets: values.buckets,
      reps,
    });
    report.allreduce = { samples };
  }

  if (!skip.has("throughput")) {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-bench-scale-" });
    try {
      const env = { VIRTEX_CACHE: join(tmp, "cache"), VIRTEX_PROGRESS: "off" };
      log(`preparing ${images} synthetic scenes (tokenize, augment) in ${tmp} …`);
      const inputs = await prepare(env, images);
      const runs: ThroughputRun[] = [];
      for (let round = 0; round < rounds; round++) {
        const layouts = [{ ranks: 1, threads: 2 }, { ranks: 2, threads: 1 }];
        if (round % 2 === 1) layouts.reverse();
        for (const l of layouts) {
          const r = await pretrainRun({ env, inputs, ...l, round, batch, warmup, steps });
          log(
            `round ${round + 1}/${rounds} ${l.ranks} rank(s) x ${l.threads} thread(s): ` +
              `${r.imgPerSec.toFixed(2)} img/s (${r.wallSeconds.toFixed(1)} s with start-up)`,
          );
          runs.push(r);
        }
      }
      const { vocabSize, numClasses: _n, imageSize: _s, tokens: _t, ...model } = JSON.parse(
        await Deno.readTextFile(modelJson),
      );
      report.throughput = {
        parameters: await countParameters(model, vocabSize),
        visual: VISUAL,
        textual: TEXTUAL,
        size: SIZE,
        batch,
        warmup,
        steps,
        runs,
      };
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }

  if (!skip.has("model")) {
    const resultsPath = join(ROOT, "bench/gpu/RESULTS-h100.md");
    const figure = h100Figure(await Deno.readTextFile(resultsPath));
    if (!figure) throw new Error(`${resultsPath}: no "| batch | f32 | img/s |" pretraining row`);
    log(`counting the parameters of ${BIG.visual} + ${BIG.textual} (ref backend, ~1 min) …`);
    report.model = {
      ...BIG,
      parameters: await countParameters({ visual: BIG.visual, textual: BIG.textual }, BIG.vocab),
      compute: { ...figure, source: "bench/gpu/RESULTS-h100.md, f32" },
    };
  }

  report.machine.loadavgEnd = Deno.loadavg();
  await Deno.mkdir(OUT, { recursive: true });
  const enc = new TextEncoder();
  await writeFileAtomic(join(OUT, "report.json"), enc.encode(JSON.stringify(report, null, 2)));
  const md = renderMarkdown(report);
  await writeFileAtomic(join(OUT, "report.md"), enc.encode(md));
  console.log("\n" + md);
  log(`wrote ${join(OUT, "report.md")} and report.json`);
}

if (import.meta.main) await main();
