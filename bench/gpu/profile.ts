/**
 * Per-kernel GPU profile of one training step (bench/gpu `--part profile`): the bicaptioning step
 * of bench/pretrain on the webgpu backend, once with the legacy kernel set ("before") and once
 * with the current one ("after"), in the same process. After warm-up steps, one step runs with
 * every dispatch in its own timestamped compute pass (GpuContext.startProfile); each dispatch is
 * attributed to the Backend method that issued it (with the matmul / convolution shape), so the
 * table groups GPU time by op kind. A few unprofiled steps (losses read a step late) give the
 * step's wall time for the same kernel set. Buffer copies (uploads, the optimizer's gradient
 * gather) are not dispatches and are not timed.
 */
import type { Backend } from "../../engine/backend.ts";
import { createWebGpuBackend, type WebGpuBackend } from "../../engine/backends/webgpu.ts";
import type { KernelSet } from "../../engine/backends/webgpu/linalg.ts";
import { type BenchCase, buildStep } from "../pretrain/step.ts";
import { callShape } from "../common.ts";

/** GPU time of one group of dispatches in the profiled step. */
export interface ProfileRow {
  name: string;
  ms: number;
  dispatches: number;
  /** Matrix-product FLOPs of the calls in the group (matmul / convolutions), else 0. */
  gflop: number;
}

/** One kernel set's profile. */
export interface KernelProfile {
  kernels: KernelSet;
  batch: number;
  /** Sum of the dispatches' GPU times in the profiled step (ms). */
  gpuMs: number;
  dispatches: number;
  /** Wall seconds per unprofiled step (mean over the timed steps). */
  stepSeconds: number;
  imgPerSec: number;
  /** By Backend method (op kind), by method + shape, by kernel; sorted by time. */
  byOp: ProfileRow[];
  byShape: ProfileRow[];
  byKernel: ProfileRow[];
  error?: string;
}

/** Wraps `be` so that every call labels the dispatches it records with the method and shape. */
function labelled(be: WebGpuBackend, flops: Map<string, number>): Backend {
  return new Proxy(be, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]) => {
        const { shape, flops: f } = callShape(prop, args);
        const label = shape ? `${prop} ${shape}` : prop;
        target.ctx.opLabel = label;
        if (f) flops.set(label, (flops.get(label) ?? 0) + f);
        return v.apply(target, args);
      };
    },
  });
}

function group(
  timings: { label: string; kernel: string; ns: number }[],
  keyOf: (t: { label: string; kernel: string }) => string,
  flopsOf: (key: string) => number,
): ProfileRow[] {
  const m = new Map<string, ProfileRow>();
  for (const t of timings) {
    const k = keyOf(t);
    const r = m.get(k) ?? { name: k, ms: 0, dispatches: 0, gflop: flopsOf(k) };
    r.ms += t.ns / 1e6;
    r.dispatches++;
    m.set(k, r);
  }
  return [...m.values()].sort((a, b) => b.ms - a.ms);
}

/**
 * Profiles one step of case `c` with kernel set `kernels`: `warmup` unprofiled steps, one
 * profiled step, then `timed` unprofiled steps for the wall time.
 */
export async function profileStep(
  c: BenchCase,
  kernels: KernelSet,
  o: { warmup: number; timed: number; log: (s: string) => void },
): Promise<KernelProfile> {
  const be = await createWebGpuBackend({ kernels });
  const flops = new Map<string, number>();
  const out: KernelProfile = {
    kernels,
    batch: c.batch,
    gpuMs: 0,
    dispatches: 0,
    stepSeconds: NaN,
    imgPerSec: NaN,
    byOp: [],
    byShape: [],
    byKernel: [],
  };
  try {
    if (!be.ctx.canProfile) throw new Error("the adapter has no timestamp-query");
    const runner = await buildStep(labelled(be, flops), c);
    try {
      let s = 0;
      for (; s < o.warmup; s++) await runner.step(s);
      flops.clear();
      be.ctx.startProfile();
      await runner.step(s++);
      const timings = await be.ctx.stopProfile();
      out.dispatches = timings.length;
      out.gpuMs = timings.reduce((a, t) => a + t.ns, 0) / 1e6;
      const opOf = (label: string) => label.split(" ")[0] || "(unlabelled)";
      const opFlops = (op: string) =>
        [...flops].filter(([k]) => opOf(k) === op).reduce((a, [, f]) => a + f, 0) / 1e9;
      out.byOp = group(timings, (t) => opOf(t.label), opFlops);
      out.byShape = group(timings, (t) => t.label, (k) => (flops.get(k) ?? 0) / 1e9).slice(0, 25);
      out.byKernel = group(timings, (t) => t.kernel, () => 0).slice(0, 25);
      o.log(
        `${kernels}: ${out.dispatches} dispatches, ${
          out.gpuMs.toFixed(1)
        } GPU ms in the profiled step`,
      );
      // wall time per step over `timed` steps, losses read a step late
      const t0 = performance.now();
      let prev: Promise<number> | null = null;
      for (let i = 0; i < o.timed; i++) {
        const { loss } = runner.start(s++);
        if (prev) await prev;
        prev = loss;
      }
      if (prev) await prev;
      out.stepSeconds = (performance.now() - t0) / 1000 / Math.max(1, o.timed);
      out.imgPerSec = c.batch / out.stepSeconds;
    } finally {
      runner.dispose();
    }
  } catch (e) {
    out.error = (e as Error).message;
    o.log(`${kernels}: FAILED ${out.error}`);
  } finally {
    be.destroy();
  }
  return out;
}
