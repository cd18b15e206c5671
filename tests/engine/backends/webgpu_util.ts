/**
 * Helpers of the webgpu kernel tests: seeded data and a checker that runs one kernel call on a
 * webgpu backend and on the reference backend with the same inputs and compares the outputs.
 */
import nodeAssert from "node:assert";
import type { Backend, Buf } from "../../../engine/backend.ts";
import { RefBackend } from "../../../engine/backends/ref.ts";
import { SeededRng } from "../../../engine/rng.ts";
import { type Data, type Out, runOnBackends } from "./backend_runs.ts";

export type { Data, Out };

/** Uniform values in [lo, hi) from the project's seeded generator. */
export function randn(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new SeededRng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r.next());
}

/** Integers in [0, hi). */
export function randInt(n: number, seed: number, hi: number): Int32Array {
  const r = new SeededRng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r.next() * hi));
}

/** |g − r| ≤ rtol·(|r| + 0.01·max|r|) + 1e-6, elementwise. */
export function assertClose(name: string, g: Data, r: Data, rtol = 1e-4): void {
  nodeAssert.strictEqual(g.length, r.length, `${name}: length`);
  let maxAbs = 0;
  for (const v of r) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (let i = 0; i < r.length; i++) {
    const tol = rtol * (Math.abs(r[i]) + 0.01 * maxAbs) + 1e-6;
    const ok = Math.abs(g[i] - r[i]) <= tol || (Number.isNaN(g[i]) && Number.isNaN(r[i]));
    if (!ok) {
      throw new Error(`${name}[${i}]: webgpu ${g[i]} vs ref ${r[i]} (tol ${tol.toExponential(2)})`);
    }
  }
}

/** runBoth / check bound to the webgpu backend `gpu()` returns. */
export function gpuChecker(gpu: () => Promise<Backend>) {
  /** Runs `call` on both backends with the same inputs; returns outputs [gpu, ref]. */
  async function runBoth(
    inputs: Record<string, Data>,
    outputs: Record<string, Out>,
    call: (be: Backend, b: Record<string, Buf>) => void,
  ): Promise<Record<string, [Data, Data]>> {
    // NaN (or -7 for integers) marks outputs a kernel failed to write.
    const [g, r] = await runOnBackends(
      [await gpu(), new RefBackend()],
      inputs,
      outputs,
      call,
      (o) => o.dtype === "i32" ? -7 : NaN,
    );
    const res: Record<string, [Data, Data]> = {};
    for (const k of Object.keys(outputs)) res[k] = [g[k], r[k]];
    return res;
  }

  /** Compares every output of `call` (within rtol, or bit-exactly for the names in `exact`). */
  async function check(
    name: string,
    inputs: Record<string, Data>,
    outputs: Record<string, Out>,
    call: (be: Backend, b: Record<string, Buf>) => void,
    rtol = 1e-4,
    exact: string[] = [],
  ): Promise<void> {
    const res = await runBoth(inputs, outputs, call);
    for (const [k, [g, r]] of Object.entries(res)) {
      if (exact.includes(k)) {
        nodeAssert.deepStrictEqual(Array.from(g), Array.from(r), `${name}.${k} exact`);
      } else assertClose(`${name}.${k}`, g, r, rtol);
    }
  }
  return { runBoth, check };
}
