/**
 * Data-parallel pretraining under `mpirun -np 2` (OpenMPI; skipped with a message where mpirun or
 * libmpi is missing): the collectives, 2 ranks x 8 images against 1 rank x 16 images, one
 * artifact, and a job killed at a checkpoint that resumes to the uninterrupted result.
 *
 * Why 1 rank x 16 uses train.accumulate = 2: batch norm normalises over each rank's own images
 * (per-GPU batch norm, as the paper trains), which is exactly what two micro-batches of 8 do in
 * one process; the ranks' shares are the step's micro-batches in order. What remains is float
 * reduction order: the ranks' gradients are summed by the allreduce and halved, where one process
 * adds halved micro-batch gradients, so each gradient element may differ in its last bit; over a
 * few SGD steps that stays far below 1e-5 of each tensor's largest weight (measured ~1e-6).
 * Dropout is 0 here because the two runs draw their dropout masks in a different order.
 */
import assert from "node:assert";
import { join } from "node:path";
import { generateDataset } from "../../../fixtures/scenes/dataset.ts";
import { loadSafetensors } from "../../../engine/safetensors.ts";

const root = new URL("../../../", import.meta.url).pathname;
const VIRTEX = join(root, "virtex");

function mpiMissing(): string | null {
  try {
    const o = new Deno.Command("mpirun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    if (!o.success) return "mpirun --version failed";
  } catch {
    return "mpirun not found (apt-get install openmpi-bin libopenmpi-dev; `make test` does)";
  }
  try {
    Deno.dlopen("libmpi.so.40", {}).close();
  } catch {
    return "libmpi.so.40 not found";
  }
  return null;
}
const missing = mpiMissing();
if (missing) console.log(`MPI tests skipped: ${missing}`);

const MPI_ENV = {
  OMPI_ALLOW_RUN_AS_ROOT: "1",
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
  OMPI_MCA_btl_vader_single_copy_mechanism: "none",
  OMPI_MCA_rmaps_base_oversubscribe: "1",
};

function command(cache: string, args: string[], ranks: number): Deno.Command {
  const cmd = ranks > 1 ? "mpirun" : VIRTEX;
  const full = ranks > 1 ? ["-np", String(ranks), VIRTEX, ...args] : args;
  return new Deno.Command(cmd, {
    args: full,
    env: { VIRTEX_CACHE: cache, VIRTEX_PROGRESS: "off", ...MPI_ENV },
    stdout: "piped",
    stderr: "piped",
  });
}

async function runJson(cache: string, args: string[], ranks = 1) {
  const o = await command(cache, [...args, "--json"], ranks).output();
  const err = new TextDecoder().decode(o.stderr);
  assert.strictEqual(o.code, 0, `${args[0]} on ${ranks} rank(s) failed:\n${err}`);
  const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
  return { json: JSON.parse(lines[lines.length - 1]), stderr: err };
}

/** A tiny synthetic dataset, tokenized and packed; returns the pretrain --input flags. */
async function prepare(tmp: string, cache: string): Promise<string[]> {
  const data = join(tmp, "scenes");
  try {
    Deno.statSync(data);
  } catch {
    generateDataset({ out: data, seed: 2, train: 48, val: 4, vocTrain: 4, vocTest: 4, size: 32 });
  }
  const caps = join(data, "captions/annotations/captions_train2017.json");
  const tok = await runJson(cache, [
    "tokenize",
    "--set",
    `captions=${caps}`,
    "--set",
    "vocabSize=120",
  ]);
  const aug = await runJson(cache, [
    "augment",
    "--set",
    `captions=${caps}`,
    "--set",
    "shortSide=32",
  ]);
  return ["--input", `tokens=${tok.json.key}`, "--input", `shards=${aug.json.key}`];
}

const PRETRAIN = (steps: number, batch: number) => [
  "pretrain",
  ...[
    "device=wasm",
    "model.visual=resnet18_w8_os16",
    "model.textual=transdec_postnorm::L1_H32_A2_F64",
    "model.dropout=0",
    `train.steps=${steps}`,
    `train.batchSize=${batch}`,
    "train.checkpointEvery=1",
    "train.workers=0",
    "train.distCheckEvery=1",
    "optim.warmupSteps=1",
    "optim.cnnLr=0.05",
    "optim.headLr=0.01",
    "transform.size=32",
    "transform.evalResize=32",
    "sampleImages=0",
  ].flatMap((s) => ["--set", s]),
];

async function weights(cache: string, key: string): Promise<Map<string, Float32Array>> {
  const f = await loadSafetensors(join(cache, "artifacts", key, "model.safetensors"));
  return new Map([...f.tensors].map(([k, t]) => [k, t.data as Float32Array]));
}

const pretrainArtifacts = (cache: string) =>
  [...Deno.readDirSync(join(cache, "artifacts"))].filter((e) =>
    JSON.parse(Deno.readTextFileSync(join(cache, "artifacts", e.name, "manifest.json")))
      .stage === "pretrain"
  ).map((e) => e.name);

Deno.test({
  name: "MPI collectives: averaged gradients, buckets, rank 0's model everywhere, divergence",
  ignore: missing !== null,
  async fn() {
    const o = await new Deno.Command("mpirun", {
      args: [
        "-np",
        "2",
        Deno.execPath(),
        "run",
        "-A",
        join(root, "tests/pipeline/pretrain/dp_verify_child.ts"),
      ],
      env: MPI_ENV,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.strictEqual(o.code, 0, new TextDecoder().decode(o.stderr));
    const ranks = new TextDecoder().decode(o.stdout).trim().split("\n").map((l) => JSON.parse(l))
      .sort((a, b) => a.rank - b.rank);
    assert.strictEqual(ranks.length, 2);
    for (const r of ranks) {
      assert.deepStrictEqual(r.weights, [1, 2, 3]); // rank 0's
      assert.deepStrictEqual(r.buffers, [0, 0]);
      assert.deepStrictEqual(r.grad, [1.5, 0, 2]); // mean of [1,0,2] and [2,0,2]
      assert.deepStrictEqual(r.bucketed, [3, 6, 9, 12, 15]);
      assert.strictEqual(r.loss, 15);
      assert.strictEqual(r.diverged, true);
    }
  },
});

Deno.test({
  name: "MPI pretrain: 2 ranks x 8 images match 1 rank x 16; one artifact; ranks stay equal",
  ignore: missing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-mpi-" });
    try {
      const cache = join(tmp, "cache");
      const inputs = await prepare(tmp, cache);
      const two = await runJson(cache, [...PRETRAIN(3, 16), ...inputs], 2);
      assert.match(two.stderr, /on 2 ranks/);
      // Checksums compared every step (train.distCheckEvery=1) passed: the ranks' weights
      // stayed bitwise equal. Rank 0 alone wrote: one pretrain artifact, no leftovers.
      assert.deepStrictEqual(pretrainArtifacts(cache), [two.json.key]);
      assert.deepStrictEqual([...Deno.readDirSync(join(cache, "tmp"))], []);
      const one = await runJson(cache, [
        ...PRETRAIN(3, 16),
        "--set",
        "train.accumulate=2",
        ...inputs,
      ]);
      assert.notStrictEqual(one.json.key, two.json.key); // the key holds the rank count
      const a = await weights(cache, two.json.key), b = await weights(cache, one.json.key);
      let worst = 0;
      for (const [name, w] of a) {
        if (/running_|num_batches/.test(name)) continue; // rank 0's statistics vs all 16 images'
        const v = b.get(name)!;
        const scale = Math.max(1e-12, ...w.map(Math.abs));
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]) / scale);
      }
      assert(worst < 1e-5, `2 ranks and 1 rank differ by ${worst} (relative)`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/** Pids of the processes mpirun started for `rank` (read from their environment). */
function rankPids(rank: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const env = Deno.readTextFileSync(`/proc/${e.name}/environ`);
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (env.includes(`OMPI_COMM_WORLD_RANK=${rank}\0`) && cmd.includes("cli/main.ts")) {
        out.push(Number(e.name));
      }
    } catch { /* gone or not ours */ }
  }
  return out;
}

Deno.test({
  name: "MPI pretrain: a rank killed at a checkpoint aborts the job; the rerun resumes exactly",
  ignore: missing !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "virtex-mpi-resume-" });
    try {
      const cacheA = join(tmp, "a"), cacheB = join(tmp, "b");
      const full = await runJson(cacheA, [...PRETRAIN(6, 16), ...await prepare(tmp, cacheA)], 2);
      const inputsB = await prepare(tmp, cacheB);
      const child = command(cacheB, [...PRETRAIN(6, 16), ...inputsB, "--json"], 2).spawn();
      // Wait for rank 0's checkpoint of step 3, then SIGKILL rank 1.
      let killed = false;
      for (let i = 0; i < 1200 && !killed; i++) {
        await new Promise((r) => setTimeout(r, 100));
        for (
          const e of (() => {
            try {
              return [...Deno.readDirSync(join(cacheB, "work"))];
            } catch {
              return [];
            }
          })()
        ) {
          const latest = (() => {
            try {
              return Deno.readTextFileSync(join(cacheB, "work", e.name, "checkpoints", "LATEST"));
            } catch {
              return "";
            }
          })();
          const m = /step-(\d+)/.exec(latest);
          if (m && Number(m[1]) >= 3 && Number(m[1]) < 6) {
            for (const pid of rankPids(1)) Deno.kill(pid, "SIGKILL");
            killed = true;
          }
        }
      }
      const status = await child.output();
      assert(killed, "no checkpoint to kill at appeared");
      assert.notStrictEqual(status.code, 0, "the job must fail when a rank dies");
      const stderr = new TextDecoder().decode(status.stderr);
      assert.match(stderr, /rank 1|process rank 1|signal 9|Killed/i);
      assert.deepStrictEqual(pretrainArtifacts(cacheB), []);
      const resumed = await runJson(cacheB, [...PRETRAIN(6, 16), ...inputsB], 2);
      assert.strictEqual(resumed.json.key, full.json.key);
      assert((resumed.json.summary.resumedFrom as number) >= 3);
      const a = await Deno.readFile(join(cacheA, "artifacts", full.json.key, "model.safetensors"));
      const b = await Deno.readFile(
        join(cacheB, "artifacts", resumed.json.key, "model.safetensors"),
      );
      assert.strictEqual(a.length, b.length);
      assert(a.every((v, i) => v === b[i]), "the resumed job's weights differ from uninterrupted");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
