/**
 * Flat optimizer storage for backends with `allocFlat` (webgpu): the parameters of one group are
 * moved into one device arena (each parameter keeps a buffer of its own, a part of the arena, so
 * layers are unaffected), gradients are gathered into a second arena before each step, and
 * momentum / LookAhead slow weights live in arenas of the same layout. Clipping, SGD and
 * LookAhead then take one kernel per arena instead of several per parameter tensor.
 */
import type { Backend, FlatBuf } from "../backend.ts";
import { fromBuf, type Tensor } from "../tensor.ts";

/** One arena's worth of parameters of one group. */
export interface FlatBucket {
  readonly params: Tensor[];
  /** Parameter storage: part i is params[i]'s buffer. */
  readonly p: FlatBuf;
  /** Gradient copies, gathered by `gatherGrads` before a step. */
  readonly g: FlatBuf;
}

/** True when the backend can hold optimizer state flat. */
export function canFlatten(be: Backend): boolean {
  return typeof be.allocFlat === "function" && (be.maxFlatNumel ?? 0) > 0;
}

/**
 * Moves `params` (f32, one backend) into arenas of at most the backend's flat limit (about 64
 * elements of alignment slack per part are assumed) and returns the buckets.
 */
export function flattenParams(be: Backend, params: Tensor[]): FlatBucket[] {
  const limit = be.maxFlatNumel!;
  const buckets: Tensor[][] = [];
  let cur: Tensor[] = [], used = 0;
  for (const p of params) {
    const need = p.numel + 64;
    if (cur.length > 0 && used + need > limit) {
      buckets.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(p);
    used += need;
  }
  if (cur.length > 0) buckets.push(cur);
  return buckets.map((ps) => {
    const sizes = ps.map((t) => t.numel);
    const p = be.allocFlat!(sizes), g = be.allocFlat!(sizes);
    ps.forEach((t, i) => {
      copyInto(be, t, p.parts[i]);
      t.storage.move(p.parts[i]);
    });
    return { params: ps, p, g };
  });
}

function copyInto(be: Backend, t: Tensor, dst: FlatBuf["parts"][number]): void {
  if (t.numel === 0) return;
  be.copyStrided({
    x: t.buf,
    vx: { offset: 0, strides: [1] },
    y: dst,
    yOffset: 0,
    shape: [t.numel],
  });
}

/**
 * An arena laid out like `bucket` (momentum, slow weights) with one persistent tensor per part;
 * `init` copies the parameters in (LookAhead), otherwise it starts at zero.
 */
export function mirrorBucket(
  be: Backend,
  bucket: FlatBucket,
  init: boolean,
): { flat: FlatBuf; tensors: Tensor[] } {
  const flat = be.allocFlat!(bucket.params.map((t) => t.numel));
  if (init) {
    be.copyStrided({
      x: bucket.p.whole,
      vx: { offset: 0, strides: [1] },
      y: flat.whole,
      yOffset: 0,
      shape: [flat.whole.numel],
    });
  }
  const tensors = bucket.params.map((t, i) => fromBuf(be, flat.parts[i], t.shape).persist());
  return { flat, tensors };
}

/**
 * Copies every parameter's gradient into the bucket's gradient arena; false (nothing copied)
 * when a parameter has no gradient this step (the caller then takes the per-tensor path, which
 * skips such parameters).
 */
export function gatherGrads(be: Backend, bucket: FlatBucket): boolean {
  if (bucket.params.some((t) => !t.grad)) return false;
  bucket.params.forEach((t, i) => copyInto(be, t.grad!, bucket.g.parts[i]));
  return true;
}

/** Frees an arena's `whole` handle and its parts. */
export function freeFlat(be: Backend, f: FlatBuf): void {
  for (const b of f.parts) be.free(b);
  be.free(f.whole);
}
