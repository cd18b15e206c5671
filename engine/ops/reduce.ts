/** Reductions: sum / mean over everything or over one axis. */
import { empty, numelOf, record, type Tensor } from "../tensor.ts";
import { axisOf, broadcastTo, needF32 } from "./util.ts";

/** Sum of all elements -> [1] (a scalar for backward()). */
export function sum(x: Tensor): Tensor {
  needF32("sum", x);
  const be = x.backend;
  const y = empty(be, [1]);
  if (x.numel === 0) be.fill(y.buf, 0);
  else be.reduceSum({ x: x.buf, y: y.buf, outer: 1, reduce: x.numel, inner: 1, accumulate: false });
  return record(y, "sum", [x], (g) => [broadcastTo(g, x.shape)]);
}

/** Mean of all elements -> [1]. */
export function mean(x: Tensor): Tensor {
  needF32("mean", x);
  const be = x.backend;
  const s = empty(be, [1]);
  be.reduceSum({ x: x.buf, y: s.buf, outer: 1, reduce: x.numel, inner: 1, accumulate: false });
  const y = empty(be, [1]);
  be.axpby({ x: s.buf, y: y.buf, alpha: 1 / x.numel, beta: 0, n: 1 });
  s.dispose();
  return record(y, "mean", [x], (g) => {
    const gs = empty(be, [1]);
    be.axpby({ x: g.buf, y: gs.buf, alpha: 1 / x.numel, beta: 0, n: 1 });
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
  x.backend.reduceSum({ x: x.buf, y: y.buf, outer, reduce: x.shape[a], inner, accumulate: false });
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
  x.backend.axpby({ x: s.buf, y: y.buf, alpha: 1 / n, beta: 0, n: s.numel });
  return record(y, "scale", [s], (g) => {
    const gs = empty(x.backend, g.shape);
    x.backend.axpby({ x: g.buf, y: gs.buf, alpha: 1 / n, beta: 0, n: g.numel });
    return [gs];
  });
}
