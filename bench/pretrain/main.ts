/**
 * bench/pretrain: training throughput (images/s) of our bicaptioning pretraining step against
 * PyTorch 1.13 CPU (Debian's /usr/bin/python3, torch.set_num_threads(threads)) on the same
 * architecture and batch, both measured in this run:
 *   (a) resnet18 at 64 px + transdec_postnorm::L1_H512_A8_F2048, batch 16
 *   (b) resnet50 at 224 px + transdec_postnorm::L1_H2048_A32_F8192, batch 8
 * One step = forward + backward of both decoders and the CNN, clip 10, SGD + LookAhead, zero grad,
 * loss read back; captions of 18–24 tokens padded to 30, vocabulary 10,000 (step.ts,
 * torch_ref.py).
 *
 *   deno run -A bench/pretrain/main.ts [--cases a,b] [--threads 2] [--rounds R] [--seconds S]
 *                                      [--warmup W] [--min-steps M] [--accumulate A] [--no-torch]
 *
 * Per case, each side warms up W steps and then times at least M steps and at least S seconds
 * (defaults: (a) W 3, M 3, S 30; (b) W 1, M 2, S 0: resnet50 at 224 px on 2 cores is slow, a
 * few steps suffice). Ours and PyTorch alternate for R rounds (default (a) 2, (b) 1) and each
 * side's best round is kept (the machine is shared). --accumulate A splits our batch into A
 * micro-batches with gradient accumulation (default (a) 1, (b) 2: case (b)'s 187 M parameters
 * with their grads, momentum and LookAhead copies fill 3 GB of the 4 GiB wasm32 heap). Writes
 * bench/out/pretrain/report.json and report.md (other cases keep their last results). Runs
 * itself under `flock /tmp/virtex-bench.lock` (VIRTEX_BENCH_LOCK) unless VIRTEX_BENCH_LOCKED=1.
 */
import { parseArgs } from "node:util";
import { createWasmBackend } from "../../engine/backends/wasm.ts";
import { cpuModel, median } from "../common.ts";
import { type BenchCase, buildStep, CASES } from "./step.ts";

const LOCK = Deno.env.get("VIRTEX_BENCH_LOCK") ?? "/tmp/virtex-bench.lock";
const PY = "/usr/bin/python3";
const here = new URL(".", import.meta.url).pathname;
const OUT = new URL("../out/pretrain", import.meta.url).pathname;

/** Per-case defaults: warmup steps, min timed steps, min timed seconds, rounds. */
const DEFAULTS: Record<
  string,
  { warmup: number; minSteps: number; seconds: number; rounds: number }
> = {
  a: { warmup: 3, minSteps: 3, seconds: 30, rounds: 2 },
  b: { warmup: 1, minSteps: 2, seconds: 0, rounds: 1 },
  demo: { warmup: 3, minSteps: 5, seconds: 20, rounds: 2 },
};

/** Re-runs this script under flock unless already inside it; exits with its status if it did. */
async function relaunchUnderLock(): Promise<void> {
  if (Deno.env.get("VIRTEX_BENCH_LOCKED") === "1") return;
  try {
    await Deno.stat("/usr/bin/flock");
  } catch {
    console.warn("bench/pretrain: flock not found; timing without the bench lock");
    return;
  }
  console.log(`bench/pretrain: waiting for ${LOCK} …`);
  const child = new Deno.Command("/usr/bin/flock", {
    args: [LOCK, Deno.execPath(), "run", "-A", new URL(import.meta.url).pathname, ...Deno.args],
    env: { VIRTEX_BENCH_LOCKED: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.exit((await child.status).code);
}

/** One side's measurement of one round. */
interface Measurement {
  stepSeconds: number[];
  imgPerSec: number;
  cpuSecondsPerStep: number;
  parameters: number;
  lastLoss: number;
}

/** User + system CPU seconds of this process (all threads, workers included). */
function processCpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

async function measureOurs(
  c: BenchCase,
  threads: number,
  o: { warmup: number; minSteps: number; seconds: number },
): Promise<Measurement> {
  const backend = await createWasmBackend({ threads });
  try {
    const runner = await buildStep(backend, c);
    let s = 0, lastLoss = NaN;
    for (; s < o.warmup; s++) await runner.step(s);
    const times: number[] = [];
    const cpu0 = processCpuSeconds(), start = performance.now();
    while (times.length < o.minSteps || performance.now() - start < o.seconds * 1000) {
      const t0 = performance.now();
      lastLoss = await runner.step(s++);
      times.push((performance.now() - t0) / 1000);
    }
    const cpu = processCpuSeconds() - cpu0;
    const total = times.reduce((a, b) => a + b, 0);
    const parameters = runner.parameters;
    runner.dispose();
    return {
      stepSeconds: times,
      imgPerSec: (c.batch * times.length) / total,
      cpuSecondsPerStep: cpu / times.length,
      parameters,
      lastLoss,
    };
  } finally {
    backend.destroy();
  }
}

async function measureTorch(
  c: BenchCase,
  threads: number,
  o: { warmup: number; minSteps: number; seconds: number },
): Promise<Measurement & { torch: string }> {
  const args = [
    `${here}torch_ref.py`,
    "--visual",
    c.visual,
    "--textual",
    c.textual,
    "--size",
    String(c.size),
    "--batch",
    String(c.batch),
    "--vocab",
    String(c.vocab),
    "--max-length",
    String(c.maxLength),
    "--warmup",
    String(o.warmup),
    "--min-steps",
    String(o.minSteps),
    "--seconds",
    String(o.seconds),
    "--threads",
    String(threads),
  ];
  const r = await new Deno.Command(PY, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`torch_ref.py failed:\n${dec.decode(r.stderr).trim()}`);
  return JSON.parse(dec.decode(r.stdout).trim().split("\n").pop()!);
}

async function hasTorch(): Promise<string | null> {
  try {
    const r = await new Deno.Command(PY, {
      args: ["-c", "import torch, torchvision"],
      stdout: "null",
      stderr: "piped",
    }).output();
    return r.success ? null : new TextDecoder().decode(r.stderr).trim().split("\n").pop()!;
  } catch (e) {
    return `cannot run ${PY}: ${(e as Error).message}`;
  }
}

/** An integer flag ≥ min, or undefined when absent; exits 2 naming the flag otherwise. */
function intFlag(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench/pretrain: --${name} must be an integer ≥ ${min}, got "${v}"`);
    Deno.exit(2);
  }
  return n;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      cases: { type: "string", default: "a,b" },
      threads: { type: "string", default: "2" },
      rounds: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      "min-steps": { type: "string" },
      accumulate: { type: "string" },
      "no-torch": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/pretrain/main.ts [--cases a,b] [--threads 2] [--rounds R] " +
        "[--seconds S] [--warmup W] [--min-steps M] [--accumulate A] [--no-torch]",
    );
    return;
  }
  const keys = values.cases.split(",").map((k) => k.trim()).filter(Boolean);
  for (const k of keys) {
    if (!CASES[k]) {
      console.error(
        `bench/pretrain: unknown case "${k}" (known: ${Object.keys(CASES).join(", ")})`,
      );
      Deno.exit(2);
    }
  }
  const threads = intFlag(values.threads, "threads", 1)!;
  const over = {
    rounds: intFlag(values.rounds, "rounds", 1),
    seconds: intFlag(values.seconds, "seconds", 0),
    warmup: intFlag(values.warmup, "warmup", 0),
    minSteps: intFlag(values["min-steps"], "min-steps", 1),
    accumulate: intFlag(values.accumulate, "accumulate", 1),
  };
  await relaunchUnderLock();

  const torchMissing = values["no-torch"] ? "skipped (--no-torch)" : await hasTorch();
  const cpu = cpuModel();
  console.log(
    `bench/pretrain: ${cpu}, ${navigator.hardwareConcurrency} cores, ` +
      `${threads} threads each side, ` +
      `load ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
  );
  if (torchMissing) console.log(`torch reference: ${torchMissing}`);

  const results: Record<string, unknown>[] = [];
  for (const k of keys) {
    const c = { ...CASES[k], accumulate: over.accumulate ?? CASES[k].accumulate };
    const d = DEFAULTS[k];
    const o = {
      warmup: over.warmup ?? d.warmup,
      minSteps: over.minSteps ?? d.minSteps,
      seconds: over.seconds ?? d.seconds,
    };
    const rounds = over.rounds ?? d.rounds;
    console.log(
      `case (${k}): ${c.visual} at ${c.size} px + ${c.textual}, batch ${c.batch}, bicaptioning; ` +
        `warmup ${o.warmup}, ≥${o.minSteps} steps and ≥${o.seconds} s timed, ` +
        `${rounds} round(s)` +
        (c.accumulate > 1
          ? `; ours as ${c.accumulate} accumulated micro-batches of ${c.batch / c.accumulate} ` +
            `(wasm32 heap limit), PyTorch in one pass`
          : ""),
    );
    const ours: Measurement[] = [], torch: (Measurement & { torch: string })[] = [];
    for (let r = 0; r < rounds; r++) {
      const m = await measureOurs(c, threads, o);
      ours.push(m);
      console.log(
        `  round ${r + 1} ours:    ${
          m.imgPerSec.toFixed(2)
        } img/s (${m.stepSeconds.length} steps, ` +
          `median ${median(m.stepSeconds).toFixed(2)} s/step, ${
            m.cpuSecondsPerStep.toFixed(2)
          } CPU-s/step, loss ${m.lastLoss.toFixed(3)})`,
      );
      if (torchMissing) continue;
      const t = await measureTorch(c, threads, o);
      torch.push(t);
      console.log(
        `  round ${r + 1} pytorch: ${
          t.imgPerSec.toFixed(2)
        } img/s (${t.stepSeconds.length} steps, ` +
          `median ${median(t.stepSeconds).toFixed(2)} s/step, ${
            t.cpuSecondsPerStep.toFixed(2)
          } CPU-s/step, loss ${t.lastLoss.toFixed(3)})`,
      );
    }
    const bestOurs = ours.reduce((a, b) => (b.imgPerSec > a.imgPerSec ? b : a));
    const bestTorch = torch.length
      ? torch.reduce((a, b) => (b.imgPerSec > a.imgPerSec ? b : a))
      : null;
    const ratio = bestTorch ? bestOurs.imgPerSec / bestTorch.imgPerSec : null;
    console.log(
      `  (${k}) best: ours ${bestOurs.imgPerSec.toFixed(2)} img/s, pytorch ${
        bestTorch ? bestTorch.imgPerSec.toFixed(2) : "n/a"
      } img/s → ratio ours/pytorch ${ratio === null ? "n/a" : ratio.toFixed(2) + "×"}` +
        (bestTorch && bestTorch.parameters !== bestOurs.parameters
          ? ` (parameter counts differ: ${bestOurs.parameters} vs ${bestTorch.parameters})`
          : ` (${(bestOurs.parameters / 1e6).toFixed(1)} M parameters both)`),
    );
    results.push({
      case: k,
      date: new Date().toISOString(),
      cpu,
      threads,
      loadavg: Deno.loadavg(),
      ...c,
      task: "bicaptioning",
      ...o,
      rounds,
      ours,
      torch: torch.length ? torch : null,
      bestOursImgPerSec: bestOurs.imgPerSec,
      bestTorchImgPerSec: bestTorch?.imgPerSec ?? null,
      ratio,
    });
  }

  await writeReport(OUT, results, torchMissing ?? "debian python3-torch");
}

/**
 * Writes dir/report.json and dir/report.md. Cases not in `results` keep their last results
 * from an existing report.json (each result carries its own date, machine and load).
 */
export async function writeReport(
  dir: string,
  results: Record<string, unknown>[],
  torch: string,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const json = `${dir}/report.json`, md = `${dir}/report.md`;
  let previous: Record<string, unknown>[] = [];
  try {
    previous = JSON.parse(await Deno.readTextFile(json)).results ?? [];
  } catch { /* first run or unreadable: start afresh */ }
  const merged = [
    ...previous.filter((r) => !results.some((x) => x.case === r.case) && CASES[r.case as string]),
    ...results,
  ].sort((x, y) => String(x.case).localeCompare(String(y.case)));
  const report = {
    bench: "pretrain",
    date: new Date().toISOString(),
    torch,
    results: merged,
  };
  await Deno.writeTextFile(`${json}.tmp`, JSON.stringify(report, null, 2) + "\n");
  await Deno.rename(`${json}.tmp`, json);
  const f = (v: unknown) => (typeof v === "number" ? v.toFixed(2) : "n/a");
  const best = (ms: unknown, key: "cpuSecondsPerStep") => {
    const list = ms as Measurement[] | null;
    if (!list?.length) return null;
    return list.reduce((a, b) => (b.imgPerSec > a.imgPerSec ? b : a))[key];
  };
  const lines = [
    `# bench/pretrain`,
    "",
    "Training img/s of one bicaptioning step (forward + backward of CNN and both decoders, clip",
    "10, SGD + LookAhead), ours (wasm backend) vs PyTorch CPU, both measured in the same run;",
    "best round per side. CPU-s/step is the process's user + system CPU time per step.",
    "",
    "| case | architecture | batch | ours img/s | PyTorch img/s | ours / PyTorch | " +
    "CPU-s/step ours / PyTorch | measured | machine, load |",
    "|---|---|---|---|---|---|---|---|---|",
    ...merged.map((r) =>
      `| (${r.case}) | ${r.visual} ${r.size} px + ${r.textual} | ${r.batch}${
        (r.accumulate as number) > 1
          ? ` (ours ${r.accumulate}×${(r.batch as number) / (r.accumulate as number)})`
          : ""
      } | ${f(r.bestOursImgPerSec)} | ${f(r.bestTorchImgPerSec)} | ${f(r.ratio)} | ${
        f(best(r.ours, "cpuSecondsPerStep"))
      } / ${
        f(best(r.torch, "cpuSecondsPerStep"))
      } | ${r.date} | ${r.cpu}, ${r.threads} threads, load ${
        (r.loadavg as number[]).map((x) => x.toFixed(1)).join(" ")
      } |`
    ),
    "",
  ];
  await Deno.writeTextFile(`${md}.tmp`, lines.join("\n"));
  await Deno.rename(`${md}.tmp`, md);
  console.log(`wrote ${json}`);
  console.log(`wrote ${md}`);
}

if (import.meta.main) await main();
