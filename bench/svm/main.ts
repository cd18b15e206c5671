/**
 * bench/svm: parity and speed of our VOC07 SVM protocol against scikit-learn's LinearSVC
 * (liblinear) on fixed synthetic features, both run here in one invocation.
 *
 *   deno run -A bench/svm/main.ts [--train 2500] [--test 2500] [--dim 512] [--seed 0]
 *                                 [--workers N] [--python /usr/bin/python3]
 *
 * Writes the features to bench/out/svm/*.npy and the figures to bench/out/svm/report.json.
 * Reports mAP of both, |ΔmAP| (bound: ≤ 0.1 points), share of classes with the same C
 * (bound: ≥ 90%) and the time ratio ours / sklearn. Runs itself under
 * `flock /tmp/virtex-bench.lock` (VIRTEX_BENCH_LOCK) so timings do not overlap other benchmarks.
 */
import { evaluateVoc07, formatVoc07Table, voc07Json } from "../../pipeline/eval/voc07.ts";
import { writeNpy } from "./npy.ts";
import { syntheticVoc } from "./synthetic.ts";

const LOCK = Deno.env.get("VIRTEX_BENCH_LOCK") ?? "/tmp/virtex-bench.lock";

/** Re-runs this script under flock unless already inside it; returns true if it did. */
async function relaunchUnderLock(): Promise<boolean> {
  if (Deno.env.get("VIRTEX_BENCH_LOCKED") === "1") return false;
  const flock = "/usr/bin/flock";
  try {
    await Deno.stat(flock);
  } catch {
    console.warn("bench/svm: flock not found; timing without the bench lock");
    return false;
  }
  console.log(`bench/svm: waiting for ${LOCK} …`);
  const child = new Deno.Command(flock, {
    args: [LOCK, Deno.execPath(), "run", "-A", new URL(import.meta.url).pathname, ...Deno.args],
    env: { VIRTEX_BENCH_LOCKED: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await child.status;
  Deno.exit(status.code);
}

function intFlag(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`bench/svm: --${name} must be a positive integer, got "${v}"`);
    Deno.exit(2);
  }
  return n;
}

/** --name value / --name=value flags; -h / --help. Unknown flags are errors. */
function parseFlags(args: string[]): Record<string, string | undefined> & { help?: string } {
  const known = ["train", "test", "dim", "seed", "workers", "python"];
  const out: Record<string, string | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
      out.help = "1";
      continue;
    }
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m || !known.includes(m[1])) {
      console.error(`bench/svm: unknown argument "${a}" (try --help)`);
      Deno.exit(2);
    }
    const v = m[2] ?? args[++i];
    if (v === undefined) {
      console.error(`bench/svm: --${m[1]} needs a value`);
      Deno.exit(2);
    }
    out[m[1]] = v;
  }
  return out;
}

async function main() {
  const values = parseFlags(Deno.args);
  if (values.help) {
    console.log(
      "usage: deno run -A bench/svm/main.ts [--train N] [--test N] [--dim D] [--seed S] " +
        "[--workers W] [--python PATH]",
    );
    return;
  }
  if (await relaunchUnderLock()) return;
  const nTrain = intFlag(values.train, "train", 2500);
  const nTest = intFlag(values.test, "test", 2500);
  const dim = intFlag(values.dim, "dim", 512);
  const seed = values.seed === undefined ? 0 : intFlag(values.seed, "seed", 0);
  const workers = intFlag(values.workers, "workers", navigator.hardwareConcurrency || 1);
  const python = values.python ?? "/usr/bin/python3";

  const outDir = new URL("../out/svm/", import.meta.url).pathname;
  await Deno.mkdir(outDir, { recursive: true });
  const data = syntheticVoc(nTrain, nTest, dim, seed);
  const k = data.classes.length;
  await writeNpy(`${outDir}train_x.npy`, data.train.features, [nTrain, dim]);
  await writeNpy(`${outDir}train_y.npy`, data.train.labels, [nTrain, k]);
  await writeNpy(`${outDir}test_x.npy`, data.test.features, [nTest, dim]);
  await writeNpy(`${outDir}test_y.npy`, data.test.labels, [nTest, k]);
  console.log(`features: train ${nTrain}×${dim}, test ${nTest}×${dim}, ${k} classes → ${outDir}`);

  // Ours.
  const t0 = performance.now();
  const ours = await evaluateVoc07(data, { workers });
  const oursWall = (performance.now() - t0) / 1000;
  console.log(formatVoc07Table(ours));

  // scikit-learn, same machine, same run.
  const script = new URL("./sklearn_ref.py", import.meta.url).pathname;
  const t1 = performance.now();
  const out = await new Deno.Command(python, {
    args: [script, outDir, "--workers", String(workers)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const refWall = (performance.now() - t1) / 1000;
  if (!out.success) {
    console.error(new TextDecoder().decode(out.stderr));
    console.error(`bench/svm: ${python} ${script} failed (is python3-sklearn installed?)`);
    Deno.exit(1);
  }
  const ref = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);

  const sameC = ours.classes.filter((c, i) => c.bestCost === ref.classes[i].bestCost).length;
  const dmap = Math.abs(ours.mAP - ref.mAP) * 100;
  let maxDap = 0, maxDcv = 0;
  ours.classes.forEach((c, i) => {
    maxDap = Math.max(maxDap, Math.abs(c.ap - ref.classes[i].ap) * 100);
    c.cvAp.forEach((
      v,
      j,
    ) => (maxDcv = Math.max(maxDcv, Math.abs(v - ref.classes[i].cvAp[j]) * 100)));
  });
  const lines = [
    "",
    `class    ours AP  sklearn AP   ours C  sklearn C`,
    ...ours.classes.map((c, i) =>
      `${c.name}  ${(c.ap * 100).toFixed(2).padStart(7)}  ${
        (ref.classes[i].ap * 100).toFixed(2).padStart(10)
      }  ${String(c.bestCost).padStart(7)}  ${String(ref.classes[i].bestCost).padStart(9)}`
    ),
    "",
    `mAP ours ${(ours.mAP * 100).toFixed(3)}  sklearn ${(ref.mAP * 100).toFixed(3)}  ` +
    `|ΔmAP| ${dmap.toFixed(4)} points (bound ≤ 0.1: ${dmap <= 0.1 ? "met" : "NOT met"})`,
    `max per-class |ΔAP| ${maxDap.toFixed(4)} points, max |Δ cv AP| ${maxDcv.toFixed(4)} points`,
    `same C chosen: ${sameC}/${k} = ${(100 * sameC / k).toFixed(0)}% (bound ≥ 90%: ${
      sameC / k >= 0.9 ? "met" : "NOT met"
    })`,
    `time (protocol, ${workers} workers each): ours ${ours.seconds.toFixed(2)} s, sklearn ${
      ref.seconds.toFixed(2)
    } s, ratio ours/sklearn ${(ours.seconds / ref.seconds).toFixed(3)}`,
    `wall incl. start-up: ours ${oursWall.toFixed(2)} s, sklearn ${refWall.toFixed(2)} s`,
  ];
  console.log(lines.join("\n"));
  const report = {
    bench: "svm",
    date: new Date().toISOString(),
    setup: { nTrain, nTest, dim, classes: k, seed, workers, sklearn: ref.sklearn },
    oursMAP: ours.mAP * 100,
    sklearnMAP: ref.mAP * 100,
    deltaMAP: dmap,
    maxClassDeltaAP: maxDap,
    maxCvDeltaAP: maxDcv,
    sameCShare: sameC / k,
    oursSeconds: ours.seconds,
    sklearnSeconds: ref.seconds,
    timeRatio: ours.seconds / ref.seconds,
    ours: voc07Json(ours),
    sklearn: ref,
  };
  const tmp = `${outDir}report.json.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(report, null, 2) + "\n");
  await Deno.rename(tmp, `${outDir}report.json`);
  if (dmap > 0.1 || sameC / k < 0.9) Deno.exit(1);
}

await main();
