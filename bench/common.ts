/**
 * Small helpers the benchmarks share: deterministic inputs, plain matmul parameters, and the
 * shape label and FLOPs of a Backend call (for per-call and per-kernel profiles).
 */
import type { Conv2dParams, MatmulParams } from "../engine/backend.ts";

/** Deterministic values in [-0.5, 0.5) from an LCG: the same stream for every run and backend. */
export function uniformValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/** One plain, untransposed n×n by n×n product. */
export function squareMatmulParams(n: number): MatmulParams {
  return {
    batch: 1,
    M: n,
    N: n,
    K: n,
    transA: false,
    transB: false,
    strideA: 0,
    strideB: 0,
    strideC: 0,
  };
}

/**
 * The shape label and multiply-add FLOPs (×2) of a Backend method call: matmul and the three
 * convolutions; other methods get { shape: null, flops: 0 }.
 */
export function callShape(op: string, args: unknown[]): { shape: string | null; flops: number } {
  if (op === "matmul") {
    const p = args[3] as MatmulParams;
    return {
      shape: `b${p.batch} ${p.M}x${p.N}x${p.K}${p.transA ? " tA" : ""}${p.transB ? " tB" : ""}`,
      flops: 2 * p.batch * p.M * p.N * p.K,
    };
  }
  if (op.startsWith("conv2d")) {
    const p = (args[0] as { geom: Conv2dParams }).geom;
    return {
      shape: `N${p.N} ${p.C}->${p.O} ${p.KH}x${p.KW}/${p.stride} ${p.H}x${p.W}`,
      flops: 2 * p.N * p.O * p.OH * p.OW * p.C * p.KH * p.KW,
    };
  }
  return { shape: null, flops: 0 };
}

/** The middle value of `xs` (the upper one of the two middles for an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** The CPU's model name as lscpu reports it, or "unknown". */
export function cpuModel(): string {
  try {
    const r = new Deno.Command("lscpu", { stdout: "piped", stderr: "null" }).outputSync();
    const m = /^Model name:\s*(.+)$/m.exec(new TextDecoder().decode(r.stdout));
    if (m) return m[1].trim();
  } catch { /* no lscpu */ }
  return "unknown";
}
