/**
 * f64 reference implementations of the engine's ops, written independently of the backends,
 * as the ground truth for forward values and (via central finite differences) gradients.
 * Arrays are flat row-major Float64Array; shapes are passed explicitly.
 */
import { counterUniform } from "../../engine/backend.ts";
import { erf } from "../../engine/math.ts";

export type F = Float64Array;

export const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function strides(s: readonly number[]): number[] {
  const st = new Array(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1] * s[i + 1];
  return st;
}

/** Calls fn with the multi-index of every element of shape. */
function forIdx(shape: readonly number[], fn: (idx: number[], flat: number) => void) {
  const n = numel(shape), idx = new Array(shape.length).fill(0);
  for (let f = 0; f < n; f++) {
    fn(idx, f);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** Broadcasting binary op. */
export function binary(
  a: F,
  sa: number[],
  b: F,
  sb: number[],
  fn: (x: number, y: number) => number,
): { d: F; s: number[] } {
  const r = Math.max(sa.length, sb.length);
  const pa = [...new Array(r - sa.length).fill(1), ...sa];
  const pb = [...new Array(r - sb.length).fill(1), ...sb];
  const s = pa.map((d, i) => Math.max(d, pb[i]));
  const sta = strides(pa), stb = strides(pb);
  const out = new Float64Array(numel(s));
  forIdx(s, (idx, f) => {
    let ia = 0, ib = 0;
    for (let d = 0; d < r; d++) {
      if (pa[d] !== 1) ia += idx[d] * sta[d];
      if (pb[d] !== 1) ib += idx[d] * stb[d];
    }
    out[f] = fn(a[ia], b[ib]);
  });
  return { d: out, s };
}

export const map = (x: F, fn: (v: number) => number): F => x.map(fn);
export const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
export const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** op(a) @ op(b) batched: a [batch, ...] with per-batch strides (0 = broadcast). */
export function matmul(
  a: F,
  b: F,
  batch: number,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
  bcastA = false,
  bcastB = false,
): F {
  const out = new Float64Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    const oa = bcastA ? 0 : t * M * K, ob = bcastB ? 0 : t * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += (tA ? a[oa + k * M + m] : a[oa + m * K + k]) *
            (tB ? b[ob + n * K + k] : b[ob + k * N + n]);
        }
        out[(t * M + m) * N + n] = s;
      }
    }
  }
  return out;
}

export function permute(x: F, shape: number[], perm: number[]): F {
  const st = strides(shape), os = perm.map((p) => shape[p]);
  const out = new Float64Array(x.length);
  forIdx(os, (idx, f) => {
    let o = 0;
    for (let d = 0; d < idx.length; d++) o += idx[d] * st[perm[d]];
    out[f] = x[o];
  });
  return out;
}

export function slice(x: F, shape: number[], axis: number, s: number, e: number): F {
  const outer = numel(shape.slice(0, axis)), inner = numel(shape.slice(axis + 1));
  const D = shape[axis], out = new Float64Array(outer * (e - s) * inner);
  let f = 0;
  for (let o = 0; o < outer; o++) {
    for (let d = s; d < e; d++) {
      for (let i = 0; i < inner; i++) out[f++] = x[(o * D + d) * inner + i];
    }
  }
  return out;
}

export function concat(xs: F[], shapes: number[][], axis: number): F {
  const outer = numel(shapes[0].slice(0, axis)), inner = numel(shapes[0].slice(axis + 1));
  const out = new Float64Array(xs.reduce((n, x) => n + x.length, 0));
  let f = 0;
  for (let o = 0; o < outer; o++) {
    xs.forEach((x, k) => {
      const D = shapes[k][axis];
      for (let d = 0; d < D; d++) {
        for (let i = 0; i < inner; i++) out[f++] = x[(o * D + d) * inner + i];
      }
    });
  }
  return out;
}

export function conv2d(
  x: F,
  w: F,
  bias: F | null,
  N: number,
  C: number,
  H: number,
  W: number,
  O: number,
  K: number,
  stride: number,
  pad: number,
): F {
  const OH = Math.floor((H + 2 * pad - K) / stride) + 1,
    OW = Math.floor((W + 2 * pad - K) / stride) + 1;
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let s = bias ? bias[o] : 0;
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < K; kh++) {
              for (let kw = 0; kw < K; kw++) {
                const ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                s += x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * K + kh) * K + kw];
              }
            }
          }
          y[((n * O + o) * OH + oh) * OW + ow] = s;
        }
      }
    }
  }
  return y;
}

export function maxPool(
  x: F,
  NC: number,
  H: number,
  W: number,
  K: number,
  st: number,
  pad: number,
): F {
  const OH = Math.floor((H + 2 * pad - K) / st) + 1, OW = Math.floor((W + 2 * pad - K) / st) + 1;
  const y = new Float64Array(NC * OH * OW);
  for (let p = 0; p < NC; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity;
        for (let kh = 0; kh < K; kh++) {
          for (let kw = 0; kw < K; kw++) {
            const ih = oh * st - pad + kh, iw = ow * st - pad + kw;
            if (ih >= 0 && iw >= 0 && ih < H && iw < W) m = Math.max(m, x[(p * H + ih) * W + iw]);
          }
        }
        y[(p * OH + oh) * OW + ow] = m;
      }
    }
  }
  return y;
}

/** Batch norm with batch statistics (training) over [N, C, HW]. */
export function batchNormTrain(x: F, g: F, b: F, N: number, C: number, HW: number, eps: number): F {
  const y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let m = 0, v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) m += x[(n * C + c) * HW + i];
    m /= N * HW;
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) v += (x[(n * C + c) * HW + i] - m) ** 2;
    }
    v /= N * HW;
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < HW; i++) {
        const k = (n * C + c) * HW + i;
        y[k] = (x[k] - m) / Math.sqrt(v + eps) * g[c] + b[c];
      }
    }
  }
  return y;
}

export function batchNormEval(
  x: F,
  g: F,
  b: F,
  rm: F,
  rv: F,
  N: number,
  C: number,
  HW: number,
  eps: number,
): F {
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < HW; i++) {
        const k = (n * C + c) * HW + i;
        y[k] = (x[k] - rm[c]) / Math.sqrt(rv[c] + eps) * g[c] + b[c];
      }
    }
  }
  return y;
}

export function layerNorm(x: F, g: F, b: F, rows: number, cols: number, eps: number): F {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = 0, v = 0;
    for (let c = 0; c < cols; c++) m += x[r * cols + c];
    m /= cols;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c] - m) ** 2;
    v /= cols;
    for (let c = 0; c < cols; c++) {
      y[r * cols + c] = (x[r * cols + c] - m) / Math.sqrt(v + eps) * g[c] + b[c];
    }
  }
  return y;
}

export function softmax(x: F, rows: number, cols: number): F {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity, s = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) y[r * cols + c] = Math.exp(x[r * cols + c] - m) / s;
  }
  return y;
}

export function logSoftmax(x: F, rows: number, cols: number): F {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity, s = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - m - Math.log(s);
  }
  return y;
}

/** Dropout with the engine's counter-based mask. */
export function dropout(x: F, p: number, seed: number, offset: number): F {
  return x.map((v, i) => (counterUniform(seed, offset + i) >= p ? v / (1 - p) : 0));
}

/**
 * Attention for q [B,A,T,D], k/v [B,A,S,D]; kpm [B,S] (1 = padded) or null; returns [B,A,T,D].
 */
export function attention(
  q: F,
  k: F,
  v: F,
  B: number,
  A: number,
  T: number,
  S: number,
  D: number,
  causal: boolean,
  kpm: F | null,
): F {
  const out = new Float64Array(B * A * T * D);
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      const base = b * A + a;
      for (let t = 0; t < T; t++) {
        const sc = new Float64Array(S);
        for (let s = 0; s < S; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(base * T + t) * D + d] * k[(base * S + s) * D + d];
          sc[s] = dot / Math.sqrt(D);
          if ((causal && s > t) || (kpm && kpm[b * S + s] > 0.5)) sc[s] = -Infinity;
        }
        const p = softmax(sc.map((x) => (x === -Infinity ? -1e300 : x)), 1, S);
        for (let s = 0; s < S; s++) if (sc[s] === -Infinity) p[s] = 0;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let s = 0; s < S; s++) acc += p[s] * v[(base * S + s) * D + d];
          out[(base * T + t) * D + d] = acc;
        }
      }
    }
  }
  return out;
}

export const sum = (x: F) => x.reduce((a, b) => a + b, 0);
