/** Small helpers the benchmarks share: deterministic inputs and plain matmul parameters. */
import type { MatmulParams } from "../engine/backend.ts";

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
