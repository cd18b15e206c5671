/**
 * Rough matmul throughput of the webgpu backend on whatever adapter is present:
 *   deno run -A bench/gpu/matmul_tiles.ts [size ...]
 * Each size is timed as `reps` products recorded into one submit (after a warm-up), so the
 * figure excludes the per-submit round trip; both GEMM tiling families are measured in the same
 * run ("cpu": 8×8 threads × 8×8 blocks, "gpu": 16×16 threads × 4×4 blocks). Also prints GFLOP
 * per CPU-second of this process, which is steadier than wall time on a loaded software adapter.
 */
import process from "node:process";
import { createWebGpuBackend, probeWebGpu } from "../../engine/backends/webgpu.ts";
import { squareMatmulParams } from "../common.ts";

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [256, 512];
const probe = await probeWebGpu();
if (!probe.available) {
  console.log(`no WebGPU adapter: ${probe.reason}`);
  Deno.exit(0);
}
console.log(`adapter: ${probe.adapterName} (fallback ${probe.isFallback}, f16 ${probe.hasF16})`);
for (const profile of ["cpu", "gpu"] as const) {
  const be = await createWebGpuBackend({ gemmProfile: profile });
  for (const n of sizes) {
    const a = be.alloc(n * n), b = be.alloc(n * n), c = be.alloc(n * n);
    be.write(a, Float32Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) / 13 - 0.5));
    be.write(b, Float32Array.from({ length: n * n }, (_, i) => ((i * 5) % 11) / 11 - 0.5));
    const p = squareMatmulParams(n);
    be.matmul(a, b, c, p);
    await be.flush();
    const reps = Math.max(1, Math.round(2 ** 27 / (n * n * n)));
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let r = 0; r < reps; r++) be.matmul(a, b, c, p);
    await be.flush();
    const ms = (performance.now() - t0) / reps;
    const cu = process.cpuUsage(c0);
    const cpuMs = (cu.user + cu.system) / 1000 / reps;
    const gflops = (2 * n * n * n) / (ms * 1e6);
    console.log(
      `${profile}-tiling matmul ${n}^3: ${ms.toFixed(2)} ms  ${gflops.toFixed(2)} GFLOP/s wall, ${
        ((2 * n * n * n) / (cpuMs * 1e6)).toFixed(2)
      } GFLOP per CPU-second  (${reps} reps)`,
    );
    for (const x of [a, b, c]) be.free(x);
  }
  be.destroy();
}
