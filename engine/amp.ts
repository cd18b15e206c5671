/**
 * Automatic mixed precision (AMP) for the matrix products.
 *
 * Inside `autocast(true, fn)`, `matmul`, `linear` and `linearRows` (engine/ops/linalg.ts) on a
 * backend with f16 support (webgpu with `shader-f16`) round their two f32 operands to f16
 * temporaries and multiply with f32 accumulation into an f32 output. Their backward passes do
 * the same for the two gradient products (the choice is fixed when the forward runs, so a
 * `backward()` outside the scope still uses f16 for products recorded inside it). Parameters
 * (master weights), gradients, optimizer state and every other op stay f32; convolutions stay f32
 * (the backends have no f16 convolution).
 *
 * On a backend without f16 (ref, wasm, webgpu without `shader-f16`) autocast is a no-op: results
 * are bit-identical to running without it. Pair AMP with dynamic loss scaling
 * (engine/optim/loss_scaler.ts) so small gradients survive the f16 rounding.
 */
import type { Backend, Buf, MatmulParams } from "./backend.ts";

/** Handle to an f16 buffer from a backend's f16 extension (webgpu's HalfBuf). */
export interface HalfHandle {
  readonly id: number;
  readonly numel: number;
  readonly dtype: "f16";
}

/** The optional f16 extension of a backend (implemented by the webgpu backend). */
export interface F16Ops {
  allocF16(numel: number): HalfHandle;
  castToF16(x: Buf, y: HalfHandle, n: number): void;
  free(buf: Buf | HalfHandle): void;
  matmul(a: Buf | HalfHandle, b: Buf | HalfHandle, c: Buf | HalfHandle, p: MatmulParams): void;
}

/** A backend together with its f16 extension. */
export type F16Backend = Backend & F16Ops;

let active = false;

/** Runs `fn` with autocast on (`enabled`) or off; restores the previous mode afterwards. */
export function autocast<T>(enabled: boolean, fn: () => T): T {
  const prev = active;
  active = enabled;
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error("autocast: use autocastAsync for async functions");
    return r;
  } finally {
    active = prev;
  }
}

/** Async variant of `autocast`; do not interleave two async scopes concurrently. */
export async function autocastAsync<T>(enabled: boolean, fn: () => Promise<T>): Promise<T> {
  const prev = active;
  active = enabled;
  try {
    return await fn();
  } finally {
    active = prev;
  }
}

/** True inside an enabled `autocast` scope (whether or not the backend has f16). */
export function isAutocast(): boolean {
  return active;
}

/** The backend's f16 extension when it reports `supportsF16` and exposes the helpers, else null. */
export function f16Backend(be: Backend): F16Backend | null {
  if (!be.supportsF16) return null;
  const x = be as Backend & Partial<F16Ops>;
  return typeof x.allocF16 === "function" && typeof x.castToF16 === "function"
    ? x as F16Backend
    : null;
}

/** True when autocast would change anything on this backend (f16 products available). */
export function ampSupported(be: Backend): boolean {
  return f16Backend(be) !== null;
}

/** The f16 backend to run products on now (autocast active and f16 available), else null. */
export function autocastBackend(be: Backend): F16Backend | null {
  return active ? f16Backend(be) : null;
}

/** An f16 copy of a whole f32 buffer (caller frees it). */
function toHalf(h: F16Backend, x: Buf): HalfHandle {
  const y = h.allocF16(x.numel);
  if (x.numel > 0) h.castToF16(x, y, x.numel);
  return y;
}

/**
 * `be.matmul(a, b, c, p)`; with `half` given, a and b are first rounded to f16 temporaries
 * (freed after the call is recorded) and c (f32) accumulates in f32.
 */
export function matmulAmp(
  be: Backend,
  half: F16Backend | null,
  a: Buf,
  b: Buf,
  c: Buf,
  p: MatmulParams,
): void {
  if (!half) {
    be.matmul(a, b, c, p);
    return;
  }
  const ha = toHalf(half, a);
  const hb = b.id === a.id ? ha : toHalf(half, b);
  try {
    half.matmul(ha, hb, c, p);
  } finally {
    half.free(ha);
    if (hb !== ha) half.free(hb);
  }
}
