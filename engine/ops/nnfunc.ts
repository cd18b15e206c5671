/** Softmax, dropout, embedding lookup. */
import { type CounterRng, defaultRng } from "../rng.ts";
import { empty, full, record, type Tensor } from "../tensor.ts";
import { needF32 } from "./util.ts";

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  needF32("softmax", x);
  const cols = x.shape[x.rank - 1], rows = x.numel / cols;
  const be = x.backend;
  const y = empty(be, x.shape);
  be.softmax(x.buf, y.buf, rows, cols);
  return record(y, "softmax", [x], (g) => {
    const gx = empty(be, x.shape);
    be.softmaxBackward({ y: y.buf, dy: g.buf, dx: gx.buf, rows, cols });
    return [gx];
  });
}

/**
 * Inverted dropout with a counter-based mask: identity when not training or p = 0.
 * Draws x.numel counters from `rng`.
 */
export function dropout(
  x: Tensor,
  p: number,
  training: boolean,
  rng: CounterRng = defaultRng,
): Tensor {
  if (!training || p === 0) return x;
  if (p < 0 || p >= 1) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  const be = x.backend;
  const mask = empty(be, x.shape);
  be.dropoutMask({ mask: mask.buf, n: x.numel, p, seed: rng.seed, offset: rng.take(x.numel) });
  const y = empty(be, x.shape);
  const v = { offset: 0, strides: [1] };
  be.binary({ op: "mul", a: x.buf, va: v, b: mask.buf, vb: v, out: y.buf, shape: [x.numel] });
  const out = record(y, "dropout", [x], (g) => {
    const gx = empty(be, x.shape);
    be.binary({ op: "mul", a: g.buf, va: v, b: mask.buf, vb: v, out: gx.buf, shape: [x.numel] });
    return [gx];
  });
  if (!out.requiresGrad) mask.dispose();
  return out;
}

/** Rows of `table` [V, D] picked by i32 `ids` [...] -> [..., D]. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  if (ids.dtype !== "i32") throw new Error(`embedding: ids ${ids.describe()} must be i32`);
  const [V, D] = table.shape;
  const be = table.backend;
  const out = empty(be, [...ids.shape, D]);
  if (ids.numel > 0) {
    be.embedding({ ids: ids.buf, table: table.buf, out: out.buf, n: ids.numel, dim: D });
  }
  return record(out, "embedding", [table], (g) => {
    const gt = full(be, [V, D], 0);
    if (ids.numel > 0) {
      be.embeddingBackward({ ids: ids.buf, dy: g.buf, dtable: gt.buf, n: ids.numel, dim: D });
    }
    return [gt];
  });
}
