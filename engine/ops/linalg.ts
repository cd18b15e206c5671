/** Matrix products: matmul / batched matmul (with transposes) and linear layers. */
import { autocastBackend, type F16Backend, matmulAmp } from "../amp.ts";
import { empty, full, numelOf, record, type Tensor } from "../tensor.ts";
import { needF32 } from "./util.ts";

interface MM {
  batch: number;
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
  bcastA: boolean; // one A for all batches
  bcastB: boolean;
  alpha?: number;
}

/** out [batch, M, N] = op(a) @ op(b), not recorded; f16 operands when `half` (autocast). */
function mmRaw(a: Tensor, b: Tensor, p: MM, half: F16Backend | null): Tensor {
  const out = empty(a.backend, [p.batch, p.M, p.N]);
  if (out.numel === 0) return out;
  if (p.K === 0) {
    a.backend.fill(out.buf, 0);
    return out;
  }
  matmulAmp(a.backend, half, a.buf, b.buf, out.buf, {
    batch: p.batch,
    M: p.M,
    N: p.N,
    K: p.K,
    transA: p.tA,
    transB: p.tB,
    strideA: p.bcastA ? 0 : p.M * p.K,
    strideB: p.bcastB ? 0 : p.K * p.N,
    strideC: p.M * p.N,
    alpha: p.alpha ?? 1,
  });
  return out;
}

/** `t` viewed with another shape; the original handle is released. */
function reshaped(t: Tensor, shape: number[]): Tensor {
  const v = t.view(shape);
  t.dispose();
  return v;
}

/** Sums [batch, R, C] over batch into [R, C]. */
function sumBatch(t: Tensor, batch: number): Tensor {
  const inner = t.numel / batch;
  const out = empty(t.backend, [inner]);
  t.backend.reduceSum({ x: t.buf, y: out.buf, outer: 1, reduce: batch, inner, accumulate: false });
  t.dispose();
  return out;
}

/**
 * alpha * op(a) @ op(b) over the last two axes. Batch dims must be equal, or one side is a plain
 * matrix (broadcast over the other's batch). transA / transB transpose the last two axes.
 */
export function matmul(
  a: Tensor,
  b: Tensor,
  transA = false,
  transB = false,
  alpha = 1,
): Tensor {
  needF32("matmul", a, b);
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`matmul needs rank >= 2: ${a.describe()} @ ${b.describe()}`);
  }
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  let M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  if (K !== Kb) throw new Error(`matmul: inner dims differ: ${a.describe()} @ ${b.describe()}`);
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  let batch: number, bcastA = false, bcastB = false, outBatch: number[];
  if (b.rank === 2 && !transA) {
    // Fold a's batch into its rows: one big GEMM.
    M = numelOf(a.shape.slice(0, -1));
    batch = 1;
    outBatch = batchA;
  } else if (b.rank === 2) {
    batch = numelOf(batchA);
    bcastB = true;
    outBatch = batchA;
  } else if (a.rank === 2) {
    batch = numelOf(batchB);
    bcastA = true;
    outBatch = batchB;
  } else {
    if (batchA.length !== batchB.length || batchA.some((d, i) => d !== batchB[i])) {
      throw new Error(`matmul: batch dims differ: ${a.describe()} @ ${b.describe()}`);
    }
    batch = numelOf(batchA);
    outBatch = batchA;
  }
  const p: MM = { batch, M, N, K, tA: transA, tB: transB, bcastA, bcastB, alpha };
  const rows = b.rank === 2 && !transA ? ar : M;
  const half = autocastBackend(a.backend); // fixed here for the backward products too
  const out = reshaped(mmRaw(a, b, p, half), [...outBatch, rows, N]);
  return record(out, "matmul", [a, b], (g) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    const bA = bcastB || bcastA ? batch : 1;
    if (a.requiresGrad) {
      // dop(A) = G op(B)^T
      ga = transA
        ? mmRaw(b, g, {
          batch,
          M: K,
          N: M,
          K: N,
          tA: transB,
          tB: true,
          bcastA: bcastB,
          bcastB: false,
          alpha,
        }, half)
        : mmRaw(g, b, {
          batch,
          M,
          N: K,
          K: N,
          tA: false,
          tB: !transB,
          bcastA: false,
          bcastB,
          alpha,
        }, half);
      if (bcastA && bA > 1) ga = sumBatch(ga, batch);
      ga = reshaped(ga, a.shape);
    }
    if (b.requiresGrad) {
      // dop(B) = op(A)^T G
      gb = transB
        ? mmRaw(g, a, {
          batch,
          M: N,
          N: K,
          K: M,
          tA: true,
          tB: transA,
          bcastA: false,
          bcastB: bcastA,
          alpha,
        }, half)
        : mmRaw(a, g, {
          batch,
          M: K,
          N,
          K: M,
          tA: !transA,
          tB: false,
          bcastA,
          bcastB: false,
          alpha,
        }, half);
      if (bcastB && bA > 1) gb = sumBatch(gb, batch);
      gb = reshaped(gb, b.shape);
    }
    return [ga, gb];
  });
}

/** y = x @ w^T + b, torch layout: x [..., in], w [out, in], b [out]. */
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  needF32("linear", x, w);
  const inF = x.shape[x.rank - 1], outF = w.shape[0];
  if (w.rank !== 2 || w.shape[1] !== inF) {
    throw new Error(`linear: weight ${w.describe()} does not fit input ${x.describe()}`);
  }
  const R = x.numel / inF;
  const be = x.backend;
  const half = autocastBackend(be); // f16 products under autocast, forward and backward
  const y = empty(be, [...x.shape.slice(0, -1), outF]);
  if (b) {
    // y = broadcast bias, then y += x w^T (beta = 1).
    be.copyStrided({
      x: b.buf,
      vx: { offset: 0, strides: [0, 1] },
      y: y.buf,
      yOffset: 0,
      shape: [R, outF],
    });
  }
  if (R > 0) {
    if (inF === 0) {
      if (!b) be.fill(y.buf, 0);
    } else {
      matmulAmp(be, half, x.buf, w.buf, y.buf, {
        batch: 1,
        M: R,
        N: outF,
        K: inF,
        transA: false,
        transB: true,
        strideA: 0,
        strideB: 0,
        strideC: 0,
        beta: b ? 1 : 0,
      });
    }
  }
  const inputs = b ? [x, w, b] : [x, w];
  return record(y, "linear", inputs, (g) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(be, x.shape);
      matmulAmp(be, half, g.buf, w.buf, gx.buf, {
        batch: 1,
        M: R,
        N: inF,
        K: outF,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
        strideC: 0,
      });
    }
    if (w.requiresGrad) {
      gw = empty(be, w.shape);
      matmulAmp(be, half, g.buf, x.buf, gw.buf, {
        batch: 1,
        M: outF,
        N: inF,
        K: R,
        transA: true,
        transB: false,
        strideA: 0,
        strideB: 0,
        strideC: 0,
      });
    }
    if (b && b.requiresGrad) {
      gb = empty(be, [outF]);
      be.reduceSum({ x: g.buf, y: gb.buf, outer: 1, reduce: R, inner: outF, accumulate: false });
    }
    return [gx, gw, gb];
  });
}

/**
 * y = x @ w[row0 : row0 + rows]^T + b[row0 : row0 + rows] without copying the weight rows
 * (the q / kv parts of a packed in_proj_weight). Gradients are full-size with zeros elsewhere.
 */
export function linearRows(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  row0: number,
  rows: number,
): Tensor {
  needF32("linearRows", x, w);
  const inF = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[1] !== inF || row0 < 0 || row0 + rows > w.shape[0]) {
    throw new Error(
      `linearRows: rows [${row0}, ${row0 + rows}) of ${w.describe()} for ${x.describe()}`,
    );
  }
  const R = x.numel / inF;
  const be = x.backend;
  const half = autocastBackend(be); // f16 products under autocast, forward and backward
  const y = empty(be, [...x.shape.slice(0, -1), rows]);
  if (b) {
    be.copyStrided({
      x: b.buf,
      vx: { offset: row0, strides: [0, 1] },
      y: y.buf,
      yOffset: 0,
      shape: [R, rows],
    });
  }
  const mm = { batch: 1, strideA: 0, strideB: 0, strideC: 0 };
  if (R > 0 && inF > 0) {
    matmulAmp(be, half, x.buf, w.buf, y.buf, {
      ...mm,
      M: R,
      N: rows,
      K: inF,
      transA: false,
      transB: true,
      offsetB: row0 * inF,
      beta: b ? 1 : 0,
    });
  } else if (!b) be.fill(y.buf, 0);
  const inputs = b ? [x, w, b] : [x, w];
  return record(y, "linearRows", inputs, (g) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(be, x.shape);
      matmulAmp(be, half, g.buf, w.buf, gx.buf, {
        ...mm,
        M: R,
        N: inF,
        K: rows,
        transA: false,
        transB: false,
        offsetB: row0 * inF,
      });
    }
    if (w.requiresGrad) {
      gw = empty(be, w.shape);
      const total = w.numel, start = row0 * inF, len = rows * inF;
      if (start > 0) be.fill(gw.buf, 0, 0, start);
      if (start + len < total) be.fill(gw.buf, 0, start + len, total - start - len);
      matmulAmp(be, half, g.buf, x.buf, gw.buf, {
        ...mm,
        M: rows,
        N: inF,
        K: R,
        transA: true,
        transB: false,
        offsetC: start,
      });
    }
    if (b && b.requiresGrad) {
      const part = empty(be, [rows]);
      be.reduceSum({ x: g.buf, y: part.buf, outer: 1, reduce: R, inner: rows, accumulate: false });
      gb = full(be, b.shape, 0);
      be.copyStrided({
        x: part.buf,
        vx: { offset: 0, strides: [1] },
        y: gb.buf,
        yOffset: row0,
        shape: [rows],
      });
      part.dispose();
    }
    return [gx, gw, gb];
  });
}
