/**
 * Run by bench/scale/main.ts under `mpirun -np N`: times in-place float32 sum allreduces of each
 * size, flat (one call over the whole buffer, as DataParallel.allreduceGradients does) and
 * bucketed (consecutive calls over slices of `bucket` bytes), interleaved so that load on the
 * machine hits every variant alike. Each timed call starts after a barrier and lasts until the
 * slowest rank returns (max over ranks). Rank 0 prints one JSON line: AllreduceSample[].
 *
 *   mpirun -np 2 deno run -A bench/scale/allreduce_child.ts SIZES_MB BUCKETS_MB REPS
 *   (comma-separated lists; bucket 0 means flat)
 */
import { Mpi } from "../../engine/dist/mpi.ts";
import type { AllreduceSample } from "./report.ts";

const MB = 1e6;

/** Sums `data` over the ranks in place, in slices of `bucketFloats` (0: one call). */
function allreduce(mpi: Mpi, data: Float32Array, bucketFloats: number): void {
  if (bucketFloats <= 0) mpi.allreduceSum(data);
  else mpi.allreduceSum(data, bucketFloats);
}

/** Seconds of one allreduce on the slowest rank. */
function timeOne(mpi: Mpi, data: Float32Array, bucketFloats: number): number {
  mpi.barrier();
  const t0 = performance.now();
  allreduce(mpi, data, bucketFloats);
  const t = new Float64Array([(performance.now() - t0) / 1000]);
  mpi.allreduceMax(t);
  return t[0];
}

const [sizesArg, bucketsArg, repsArg] = Deno.args;
const sizes = (sizesArg ?? "1,4,16,64,100").split(",").map(Number);
const buckets = (bucketsArg ?? "0,4,16").split(",").map(Number);
const reps = Number(repsArg ?? 5);

const mpi = Mpi.init();
const samples: AllreduceSample[] = [];
for (const sizeMb of sizes) {
  const n = Math.round((sizeMb * MB) / 4);
  const data = new Float32Array(n); // zeros: repeated in-place sums stay finite
  // Small buffers are fast: repeat them more so each variant gets a few hundred ms in total.
  const r = Math.max(reps, Math.min(20 * reps, Math.ceil(100 / sizeMb)));
  for (const b of buckets) allreduce(mpi, data, Math.round((b * MB) / 4)); // warm up each path
  for (let i = 0; i < r; i++) {
    // Rotate the order each repetition so no variant always runs first.
    for (let j = 0; j < buckets.length; j++) {
      const b = buckets[(i + j) % buckets.length];
      const seconds = timeOne(mpi, data, Math.round((b * MB) / 4));
      samples.push({ ranks: mpi.size, bytes: n * 4, bucketBytes: b * MB, seconds });
    }
  }
}
if (mpi.rank === 0) console.log(JSON.stringify(samples));
mpi.finalize();
