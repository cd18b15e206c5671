/** Shape, stride and broadcasting helpers shared by the ops (no autograd recording here). */
import type { View } from "../backend.ts";
import { coalesce } from "../shape.ts";
import { empty, numelOf, type Tensor } from "../tensor.ts";

/** Contiguous row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** View reading a contiguous tensor. */
export function contiguousView(shape: readonly number[], offset = 0): View {
  return { offset, strides: stridesOf(shape) };
}

/** Numpy-style broadcast of two shapes. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1, db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`cannot broadcast [${a}] with [${b}]`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** View that reads a contiguous tensor of `shape` broadcast to `outShape`. */
export function broadcastView(shape: readonly number[], outShape: readonly number[]): View {
  const st = stridesOf(shape);
  const r = outShape.length, off = r - shape.length;
  const strides = outShape.map((d, i) => {
    const j = i - off;
    if (j < 0) return 0;
    return shape[j] === 1 && d !== 1 ? 0 : st[j];
  });
  return { offset: 0, strides };
}

/** Collapses adjacent axes that are contiguous in every view (see coalesce), keeping rank <= 6. */
export function simplify(shape: number[], views: View[]): [number[], View[]] {
  const c = coalesce(shape, views.map((v) => v.strides));
  if (c.shape.length > 6) {
    throw new Error(`strided op of rank ${c.shape.length} > 6 after collapsing`);
  }
  return [c.shape, views.map((v, k) => ({ offset: v.offset, strides: c.strides[k] }))];
}

/** Copies `x` broadcast to `shape` into a new contiguous tensor. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const out = empty(x.backend, shape, x.dtype);
  if (out.numel === 0) return out;
  const [s, [v]] = simplify([...shape], [broadcastView(x.shape, shape)]);
  x.backend.copyStrided({ x: x.buf, vx: v, y: out.buf, yOffset: 0, shape: s });
  return out;
}

/** Sums `g` over the axes along which `shape` was broadcast to `g.shape`. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (numelOf(shape) === g.numel) return g.view(shape);
  const r = g.rank, off = r - shape.length;
  let cur = g;
  let curShape = [...g.shape];
  for (let i = 0; i < r; i++) {
    const target = i < off ? 1 : shape[i - off];
    if (target === 1 && curShape[i] !== 1) {
      const outer = numelOf(curShape.slice(0, i)), inner = numelOf(curShape.slice(i + 1));
      const nextShape = [...curShape];
      nextShape[i] = 1;
      const next = empty(g.backend, nextShape);
      g.backend.reduceSum({
        x: cur.buf,
        y: next.buf,
        outer,
        reduce: curShape[i],
        inner,
        accumulate: false,
      });
      if (cur !== g) cur.dispose();
      cur = next;
      curShape = nextShape;
    }
  }
  const res = cur.view(shape);
  if (cur !== g) cur.dispose();
  return res;
}

/** A one-element f32 constant. */
export function scalarConst(x: Tensor, value: number): Tensor {
  const t = empty(x.backend, [1]);
  x.backend.fill(t.buf, value);
  return t;
}

/** Checks dtype f32 for ops that need it. */
export function needF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== "f32") throw new Error(`${op}: ${t.describe()} must be f32`);
  }
}

/** Normalizes a possibly negative axis. */
export function axisOf(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}
