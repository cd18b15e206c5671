/** Reductions: sum / mean over everything or over one axis. */
import { empty, numelOf, record, type Tensor } from "../tensor.ts";
import { axisOf, broadcastTo, needF32 } from "./util.ts";

/** Sum of all elements -> [1] (a scalar for backward()). */
export function sum(x: Tensor): Tensor {
  needF32("sum", x);
  const be = x.backend;
  const y = empty(be, [1]);
  if (x.numel === 0) be.fill(y.buf, 0);
  else be.reduceSum(x.buf, y.buf, 1, x.numel, 1, false);
  return record(y, "sum", [x], (g) => [broadcastTo(g, x.shape)]);
}

/** Mean of all elements -> [1]. */
export function mean(x: Tensor): Tensor {
  needF32("mean", x);
  const be = x.backend;
  const s = empty(be, [1]);
  be.reduceSum(x.buf, s.buf, 1, x.numel, 1, false);
  const y = empty(be, [1]);
  be.axpby(s.buf, y.buf, 1 / x.numel, 0, 1);
  s.dispose();
  return record(y, "mean", [x], (g) => {
    const gs = empty(be, [1]);
    be.axpby(g.buf, gs.buf, 1 / x.numel, 0, 1);
    const gx = broadcastTo(gs, x.shape);
    gs.dispose();
    return [gx];
  });
}

/** Sum over one axis (kept as size 1 when keepDim). */
export function sumAxis(x: Tensor, axis: number, keepDim = false): Tensor {
  needF32("sumAxis", x);
  const a = axisOf(axis, x.rank);
  const outer = numelOf(x.shape.slice(0, a)), inner = numelOf(x.shape.slice(a + 1));
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const shape = keepDim ? kept : x.shape.filter((_, i) => i !== a);
  const y = empty(x.backend, shape);
  x.backend.reduceSum(x.buf, y.buf, outer, x.shape[a], inner, false);
  return record(y, "sumAxis", [x], (g) => {
    const gv = g.view(kept);
    const gx = broadcastTo(gv, x.shape);
    gv.dispose();
    return [gx];
  });
}

/** Mean over one axis. */
export function meanAxis(x: Tensor, axis: number, keepDim = false): Tensor {
  const a = axisOf(axis, x.rank);
  const s = sumAxis(x, a, keepDim);
  const n = x.shape[a];
  const y = empty(x.backend, s.shape);
  x.backend.axpby(s.buf, y.buf, 1 / n, 0, s.numel);
  return record(y, "scale", [s], (g) => {
    const gs = empty(x.backend, g.shape);
    x.backend.axpby(g.buf, gs.buf, 1 / n, 0, g.numel);
    return [gs];
  });
}
