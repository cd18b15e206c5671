/** Shared helpers for the engine test suites (deterministic data, tolerances, comparisons). */
import type { Backend } from "../../engine/backend.ts";
import type { WebGpuProbe } from "../../engine/backends/webgpu.ts";

/** Creates a backend for a suite run (ref, wasm, webgpu). */
export type BackendFactory = () => Promise<Backend>;

/** Max |a - b| / max(1, max |b|): an error relative to the reference's scale. */
export function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let scale = 1, err = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err / scale;
}

/** Throws with context when the scaled error exceeds tol. */
export function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
): void {
  const e = scaledError(got, want);
  if (!(e <= tol)) {
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      if (Math.abs(got[i] - want[i]) > Math.abs(got[worst] - want[worst])) worst = i;
    }
    throw new Error(
      `${what}: scaled error ${
        e.toExponential(3)
      } > ${tol} (len ${got.length} vs ${want.length}; ` +
        `worst at ${worst}: got ${got[worst]}, want ${want[worst]})`,
    );
  }
}

/** Throws unless |actual - expected| <= tol. */
export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`expected ${expected} ± ${tol}, got ${actual}`);
  }
}

/** Why f16 (AMP) webgpu tests must be skipped on this probe's adapter, or "" when they can run. */
export function f16SkipReason(probe: WebGpuProbe): string {
  return !probe.available
    ? `no WebGPU adapter (${probe.reason ?? "unavailable"})`
    : !probe.hasF16
    ? `adapter ${probe.adapterName} has no shader-f16`
    : "";
}
