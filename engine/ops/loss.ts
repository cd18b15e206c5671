/** Losses: softmax cross-entropy (ignore index), KL divergence to target distributions, BCE. */
import { empty, record, type Tensor, tensor } from "../tensor.ts";
import { needF32 } from "./util.ts";

export type Reduction = "mean" | "sum";

/** Multiplies `d` by the scalar upstream gradient g [1] into a new tensor. */
function timesScalar(d: Tensor, g: Tensor, shape: readonly number[] = d.shape): Tensor {
  const out = empty(d.backend, shape);
  d.backend.binary({
    op: "mul",
    a: d.buf,
    va: { offset: 0, strides: [1] },
    b: g.buf,
    vb: { offset: 0, strides: [0] },
    out: out.buf,
    shape: [d.numel],
  });
  return out;
}

/** Sums `rowLoss` and multiplies by `scale` -> [1]. */
function total(rowLoss: Tensor, scale: number): Tensor {
  const be = rowLoss.backend;
  const s = empty(be, [1]);
  be.reduceSum({
    x: rowLoss.buf,
    y: s.buf,
    outer: 1,
    reduce: rowLoss.numel,
    inner: 1,
    accumulate: false,
  });
  const y = empty(be, [1]);
  be.axpby({ x: s.buf, y: y.buf, alpha: scale, beta: 0, n: 1 });
  s.dispose();
  return y;
}

/** Throws unless there is one target per row, each a class id or the ignore index. */
function checkTargets(
  op: string,
  targets: Int32Array,
  rows: number,
  cols: number,
  ignore: number,
): void {
  if (targets.length !== rows) throw new Error(`${op}: ${targets.length} targets for ${rows} rows`);
  for (let i = 0; i < rows; i++) {
    const t = targets[i];
    if (t !== ignore && (t < 0 || t >= cols)) {
      throw new Error(`${op}: target ${t} at row ${i} outside [0, ${cols})`);
    }
  }
}

export interface CrossEntropyOptions {
  ignoreIndex?: number; // default -100 (PyTorch)
  reduction?: Reduction; // default "mean" over non-ignored rows
  /** Number of non-ignored rows; required for "mean" when targets is a device tensor. */
  count?: number;
}

/**
 * The backend's fused softmax cross-entropy: per-row losses [rows] (0 where the target is
 * `ignoreIndex`) and the gradient of their sum times `scale` w.r.t. logits [..., C].
 */
function crossEntropyKernel(
  logits: Tensor,
  targets: Tensor,
  ignoreIndex: number,
  scale: number,
): { rowLoss: Tensor; dlogits: Tensor } {
  const be = logits.backend;
  const cols = logits.shape[logits.rank - 1], rows = logits.numel / cols;
  const rowLoss = empty(be, [rows]), dlogits = empty(be, logits.shape);
  be.crossEntropy({
    logits: logits.buf,
    targets: targets.buf,
    loss: rowLoss.buf,
    dlogits: dlogits.buf,
    rows,
    cols,
    ignoreIndex,
    scale,
  });
  return { rowLoss, dlogits };
}

/**
 * Softmax cross-entropy of logits [..., C] against class ids (Int32Array on the host, or an i32
 * tensor with opts.count). Mean is over rows whose target is not ignoreIndex, as PyTorch.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Int32Array | Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  needF32("crossEntropy", logits);
  const ignore = opts.ignoreIndex ?? -100, reduction = opts.reduction ?? "mean";
  const cols = logits.shape[logits.rank - 1], rows = logits.numel / cols;
  const be = logits.backend;
  let count = opts.count;
  let tgt: Tensor;
  if (targets instanceof Int32Array) {
    checkTargets("crossEntropy", targets, rows, cols, ignore);
    count ??= targets.reduce((n, t) => n + (t === ignore ? 0 : 1), 0);
    tgt = tensor(be, targets, [rows], "i32");
  } else {
    if (targets.numel !== rows || targets.dtype !== "i32") {
      throw new Error(`crossEntropy: targets ${targets.describe()} for ${rows} rows`);
    }
    if (count === undefined && reduction === "mean") {
      throw new Error("crossEntropy: pass opts.count (non-ignored rows) with device targets");
    }
    tgt = targets;
  }
  const scale = reduction === "sum" ? 1 : (count! > 0 ? 1 / count! : 0);
  const { rowLoss, dlogits } = crossEntropyKernel(logits, tgt, ignore, scale);
  if (tgt !== targets) tgt.dispose();
  const y = total(rowLoss, scale);
  rowLoss.dispose();
  const out = record(y, "crossEntropy", [logits], (g) => [timesScalar(dlogits, g)]);
  if (!out.requiresGrad) dlogits.dispose();
  return out;
}

/**
 * Per-row softmax cross-entropy of logits [..., C] against host class ids: [rows], 0 where the
 * target is `ignoreIndex`. For scoring (e.g. sequence log-likelihoods); records no gradient.
 */
export function crossEntropyRows(
  logits: Tensor,
  targets: Int32Array,
  ignoreIndex = -100,
): Tensor {
  needF32("crossEntropyRows", logits);
  const cols = logits.shape[logits.rank - 1], rows = logits.numel / cols;
  checkTargets("crossEntropyRows", targets, rows, cols, ignoreIndex);
  const tgt = tensor(logits.backend, targets, [rows], "i32");
  const { rowLoss, dlogits } = crossEntropyKernel(logits, tgt, ignoreIndex, 0);
  tgt.dispose();
  dlogits.dispose();
  return rowLoss;
}

export type KlReduction = "batchmean" | "sum" | "mean";

/**
 * KL(target || softmax(logits)) per row, as PyTorch's kl_div(log_softmax(logits), target):
 * sum_j t_j (log t_j - log p_j), with 0 log 0 = 0. logits and target [..., C]; "batchmean"
 * divides by the number of rows, "mean" by the number of elements.
 */
export function klDivergence(
  logits: Tensor,
  target: Tensor,
  reduction: KlReduction = "batchmean",
): Tensor {
  needF32("klDivergence", logits, target);
  if (target.numel !== logits.numel) {
    throw new Error(`klDivergence: target ${target.describe()} vs logits ${logits.describe()}`);
  }
  const cols = logits.shape[logits.rank - 1], rows = logits.numel / cols, n = logits.numel;
  const scale = reduction === "sum" ? 1 : reduction === "batchmean" ? 1 / rows : 1 / n;
  const be = logits.backend;
  const flat = { offset: 0, strides: [1] }, one = { offset: 0, strides: [0] };
  const p = empty(be, logits.shape);
  be.softmax(logits.buf, p.buf, rows, cols);
  // The floor is a normal f32: GPUs that flush denormals to zero (NVIDIA) would turn a denormal
  // floor into 0, and then 0 · log 0 = NaN for every zero target.
  const tiny = empty(be, [1]);
  be.fill(tiny.buf, 1e-30);
  // Element terms: t * (log max(t, tiny) - log max(p, tiny)).
  const a = empty(be, [n]), b = empty(be, [n]);
  be.binary({ op: "max", a: target.buf, va: flat, b: tiny.buf, vb: one, out: a.buf, shape: [n] });
  be.unary("log", a.buf, b.buf, n);
  be.binary({ op: "max", a: p.buf, va: flat, b: tiny.buf, vb: one, out: a.buf, shape: [n] });
  const lp = empty(be, [n]);
  be.unary("log", a.buf, lp.buf, n);
  be.binary({ op: "sub", a: b.buf, va: flat, b: lp.buf, vb: flat, out: a.buf, shape: [n] });
  be.binary({ op: "mul", a: target.buf, va: flat, b: a.buf, vb: flat, out: b.buf, shape: [n] });
  const y = total(b, scale);
  a.dispose(), b.dispose(), lp.dispose(), tiny.dispose();
  const out = record(y, "klDivergence", [logits], (g) => {
    // d/dlogits = (p * rowsum(t) - t) * scale * g
    const rs = empty(be, [rows]);
    be.reduceSum({
      x: target.buf,
      y: rs.buf,
      outer: rows,
      reduce: cols,
      inner: 1,
      accumulate: false,
    });
    const d = empty(be, [n]);
    be.binary({
      op: "mul",
      a: p.buf,
      va: { offset: 0, strides: [cols, 1] },
      b: rs.buf,
      vb: {
        offset: 0,
        strides: [1, 0],
      },
      out: d.buf,
      shape: [rows, cols],
    });
    const d2 = empty(be, [n]);
    be.binary({ op: "sub", a: d.buf, va: flat, b: target.buf, vb: flat, out: d2.buf, shape: [n] });
    be.axpby({ x: d2.buf, y: d.buf, alpha: scale, beta: 0, n });
    const gx = timesScalar(d, g, logits.shape);
    rs.dispose(), d.dispose(), d2.dispose();
    return [gx];
  });
  if (!out.requiresGrad) p.dispose();
  return out;
}

/**
 * Binary cross-entropy with logits for multi-label targets in [0, 1] (same shape):
 * max(x, 0) - x t + log(1 + exp(-|x|)), mean over all elements by default.
 */
export function bceWithLogits(
  logits: Tensor,
  target: Tensor,
  reduction: Reduction = "mean",
): Tensor {
  needF32("bceWithLogits", logits, target);
  if (target.numel !== logits.numel) {
    throw new Error(`bceWithLogits: target ${target.describe()} vs logits ${logits.describe()}`);
  }
  const n = logits.numel, be = logits.backend;
  const scale = reduction === "sum" ? 1 : 1 / n;
  const flat = { offset: 0, strides: [1] }, one = { offset: 0, strides: [0] };
  const c1 = empty(be, [1]);
  be.fill(c1.buf, 1);
  const a = empty(be, [n]), b = empty(be, [n]), c = empty(be, [n]);
  be.unary("abs", logits.buf, a.buf, n);
  be.unary("neg", a.buf, b.buf, n);
  be.unary("exp", b.buf, a.buf, n);
  be.binary({ op: "add", a: a.buf, va: flat, b: c1.buf, vb: one, out: b.buf, shape: [n] });
  be.unary("log", b.buf, a.buf, n); // log(1 + exp(-|x|))
  be.unary("relu", logits.buf, b.buf, n);
  be.binary({ op: "add", a: a.buf, va: flat, b: b.buf, vb: flat, out: c.buf, shape: [n] });
  be.binary({
    op: "mul",
    a: logits.buf,
    va: flat,
    b: target.buf,
    vb: flat,
    out: a.buf,
    shape: [n],
  });
  be.binary({ op: "sub", a: c.buf, va: flat, b: a.buf, vb: flat, out: b.buf, shape: [n] });
  const y = total(b, scale);
  a.dispose(), b.dispose(), c.dispose(), c1.dispose();
  return record(y, "bceWithLogits", [logits], (g) => {
    const s = empty(be, [n]), d = empty(be, [n]);
    be.unary("sigmoid", logits.buf, s.buf, n);
    be.binary({ op: "sub", a: s.buf, va: flat, b: target.buf, vb: flat, out: d.buf, shape: [n] });
    be.axpby({ x: d.buf, y: s.buf, alpha: scale, beta: 0, n });
    const gx = timesScalar(s, g, logits.shape);
    s.dispose(), d.dispose();
    return [gx];
  });
}
