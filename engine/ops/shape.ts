/** Shape ops: reshape, permute/transpose, slice, concat, contiguous copies. */
import { empty, numelOf, record, resolveShape, type Tensor } from "../tensor.ts";
import { axisOf, simplify, stridesOf } from "./util.ts";

/** Same data, new shape (one dim may be -1). Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape(shape, x.numel);
  return record(x.view(s), "reshape", [x], (g) => [g.view(x.shape)]);
}

/** Permutes axes into a new contiguous tensor: out.shape[i] = x.shape[perm[i]]. */
export function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`permute: bad permutation [${perm}] for ${x.describe()}`);
  }
  const st = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const out = empty(x.backend, shape, x.dtype);
  if (out.numel === 0) return out;
  const [s, [v]] = simplify(shape, [{ offset: 0, strides: perm.map((p) => st[p]) }]);
  x.backend.copyStrided({ x: x.buf, vx: v, y: out.buf, yOffset: 0, shape: s });
  return out;
}

/** Permutes axes (recorded). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const inv = new Array(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return record(permuteRaw(x, perm), "permute", [x], (g) => [permuteRaw(g, inv)]);
}

/** Swaps two axes. */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  a = axisOf(a, x.rank);
  b = axisOf(b, x.rank);
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

function sliceRaw(x: Tensor, axis: number, start: number, end: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = end - start;
  const out = empty(x.backend, shape, x.dtype);
  if (out.numel === 0) return out;
  const st = stridesOf(x.shape);
  const [s, [v]] = simplify(shape, [{ offset: start * st[axis], strides: st }]);
  x.backend.copyStrided({ x: x.buf, vx: v, y: out.buf, yOffset: 0, shape: s });
  return out;
}

/**
 * Writes the pieces `parts` (each [outer, d_i, inner], contiguous) side by side along the middle
 * axis into a new [outer, sum d_i, inner] tensor; null parts are zeros of width `zeroWidth`.
 */
function joinMiddle(
  like: Tensor,
  parts: { t: Tensor | null; d: number }[],
  outer: number,
  inner: number,
  outShape: number[],
): Tensor {
  const be = like.backend;
  const total = parts.reduce((s, p) => s + p.d, 0);
  // Stage as [total, outer, inner] so every part is one contiguous block, then permute back.
  const staged = empty(be, [total, outer, inner], like.dtype);
  let at = 0;
  for (const { t, d } of parts) {
    const n = d * outer * inner;
    if (n > 0) {
      if (t === null) be.fill(staged.buf, 0, at * outer * inner, n);
      else {
        const [s, [v]] = simplify([d, outer, inner], [{
          offset: 0,
          strides: [inner, d * inner, 1],
        }]);
        be.copyStrided({ x: t.buf, vx: v, y: staged.buf, yOffset: at * outer * inner, shape: s });
      }
    }
    at += d;
  }
  const out = empty(be, outShape, like.dtype);
  if (out.numel > 0) {
    const [s, [v]] = simplify([outer, total, inner], [{
      offset: 0,
      strides: [inner, outer * inner, 1],
    }]);
    be.copyStrided({ x: staged.buf, vx: v, y: out.buf, yOffset: 0, shape: s });
  }
  staged.dispose();
  return out;
}

/** x[..., start:end, ...] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  axis = axisOf(axis, x.rank);
  if (start < 0 || end > x.shape[axis] || start > end) {
    throw new Error(`slice [${start}, ${end}) out of range for axis ${axis} of ${x.describe()}`);
  }
  const outer = numelOf(x.shape.slice(0, axis)), inner = numelOf(x.shape.slice(axis + 1));
  return record(sliceRaw(x, axis, start, end), "slice", [x], (g) => [
    joinMiddle(
      g,
      [
        { t: null, d: start },
        { t: g, d: end - start },
        { t: null, d: x.shape[axis] - end },
      ],
      outer,
      inner,
      x.shape,
    ),
  ]);
}

/** Concatenates tensors along `axis` (all other dims equal). */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error("concat of no tensors");
  const r = xs[0].rank;
  axis = axisOf(axis, r);
  for (const t of xs) {
    if (t.rank !== r || t.shape.some((d, i) => i !== axis && d !== xs[0].shape[i])) {
      throw new Error(`concat: ${t.describe()} does not match ${xs[0].describe()} on axis ${axis}`);
    }
  }
  const outer = numelOf(xs[0].shape.slice(0, axis));
  const inner = numelOf(xs[0].shape.slice(axis + 1));
  const outShape = [...xs[0].shape];
  outShape[axis] = xs.reduce((s, t) => s + t.shape[axis], 0);
  const out = joinMiddle(xs[0], xs.map((t) => ({ t, d: t.shape[axis] })), outer, inner, outShape);
  return record(out, "concat", xs, (g) => {
    let at = 0;
    return xs.map((t) => {
      const d = t.shape[axis];
      const piece = t.requiresGrad ? sliceRaw(g, axis, at, at + d) : null;
      at += d;
      return piece;
    });
  });
}

/** Adds a size-1 axis. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}
