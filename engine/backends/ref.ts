/**
 * Pure-TypeScript reference backend: plain f32 loops over Float32Array / Int32Array storage.
 * Correct and readable rather than fast; it is the oracle the wasm and webgpu backends are
 * tested against kernel by kernel, and the backend the engine's own tests run on.
 */
import {
  type AxpbyArgs,
  type Backend,
  type BatchNormApplyArgs,
  type BatchNormBackwardArgs,
  type BatchNormStatsArgs,
  type BinaryArgs,
  type BinaryOp,
  type Buf,
  type Conv2dArgs,
  type Conv2dBackwardDataArgs,
  type Conv2dBackwardFilterArgs,
  type CopyStridedArgs,
  counterUniform,
  type CrossEntropyArgs,
  type DropoutMaskArgs,
  type DType,
  type EmbeddingArgs,
  type EmbeddingBackwardArgs,
  type LayerNormArgs,
  type LayerNormBackwardArgs,
  type MatmulParams,
  type Pool2dParams,
  type ReduceSumArgs,
  type SgdStepArgs,
  type SoftmaxBackwardArgs,
  type UnaryBackwardArgs,
  type UnaryOp,
  type View,
} from "../backend.ts";
import { erf } from "../math.ts";

interface RefBuf extends Buf {
  data: Float32Array | Int32Array;
}

/** Walks a contiguous index over `shape` and yields the strided offset of each element. */
function forEachStrided(shape: number[], view: View, fn: (i: number, off: number) => void) {
  const rank = shape.length;
  let total = 1;
  for (const s of shape) total *= s;
  if (total === 0) return;
  const idx = new Array(rank).fill(0);
  let off = view.offset;
  for (let i = 0; i < total; i++) {
    fn(i, off);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      off += view.strides[d];
      if (idx[d] < shape[d]) break;
      off -= view.strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case "relu":
      return (x) => (x > 0 ? x : 0);
    case "gelu":
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case "exp":
      return Math.exp;
    case "log":
      return Math.log;
    case "neg":
      return (x) => -x;
    case "sqrt":
      return Math.sqrt;
    case "rsqrt":
      return (x) => 1 / Math.sqrt(x);
    case "tanh":
      return Math.tanh;
    case "sigmoid":
      return (x) => 1 / (1 + Math.exp(-x));
    case "abs":
      return Math.abs;
    case "square":
      return (x) => x * x;
  }
}

function unaryDeriv(op: UnaryOp): (x: number) => number {
  switch (op) {
    case "relu":
      return (x) => (x > 0 ? 1 : 0);
    case "gelu":
      return (x) =>
        0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case "tanh":
      return (x) => 1 - Math.tanh(x) ** 2;
    case "sigmoid":
      return (x) => {
        const s = 1 / (1 + Math.exp(-x));
        return s * (1 - s);
      };
    case "exp":
      return Math.exp;
    case "log":
      return (x) => 1 / x;
    case "neg":
      return () => -1;
    case "sqrt":
      return (x) => 0.5 / Math.sqrt(x);
    case "rsqrt":
      return (x) => -0.5 / (x * Math.sqrt(x));
    case "abs":
      return (x) => Math.sign(x);
    case "square":
      return (x) => 2 * x;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case "add":
      return (a, b) => a + b;
    case "sub":
      return (a, b) => a - b;
    case "mul":
      return (a, b) => a * b;
    case "div":
      return (a, b) => a / b;
    case "max":
      return Math.max;
    case "min":
      return Math.min;
  }
}

/** The reference backend; `stats()` counts live buffers and bytes for leak tests. */
export class RefBackend implements Backend {
  readonly name = "ref" as const;
  readonly supportsF16 = false;
  private nextId = 1;
  private live = new Map<number, RefBuf>();
  private liveBytes = 0;
  /** Total allocations and frees since creation (diagnostics). */
  allocCount = 0;
  freeCount = 0;

  private d(b: Buf): Float32Array | Int32Array {
    const r = this.live.get(b.id);
    if (!r) throw new Error(`ref backend: buffer ${b.id} is not live (freed or foreign)`);
    return r.data;
  }
  private f(b: Buf): Float32Array {
    const d = this.d(b);
    if (!(d instanceof Float32Array)) throw new Error(`ref backend: buffer ${b.id} is not f32`);
    return d;
  }
  private i(b: Buf): Int32Array {
    const d = this.d(b);
    if (!(d instanceof Int32Array)) throw new Error(`ref backend: buffer ${b.id} is not i32`);
    return d;
  }

  // ---- memory ----
  alloc(numel: number, dtype: DType = "f32"): Buf {
    const data = dtype === "f32" ? new Float32Array(numel) : new Int32Array(numel);
    const buf: RefBuf = { id: this.nextId++, numel, dtype, data };
    this.live.set(buf.id, buf);
    this.liveBytes += numel * 4;
    this.allocCount++;
    return { id: buf.id, numel, dtype };
  }
  free(buf: Buf): void {
    const r = this.live.get(buf.id);
    if (!r) throw new Error(`ref backend: double free of buffer ${buf.id}`);
    this.live.delete(buf.id);
    this.liveBytes -= r.numel * 4;
    this.freeCount++;
  }
  write(buf: Buf, data: Float32Array | Int32Array, offset = 0): void {
    const d = this.d(buf);
    if (offset + data.length > d.length) {
      throw new Error(`ref backend: write of ${data.length} at ${offset} overflows ${d.length}`);
    }
    if (d instanceof Float32Array) d.set(Float32Array.from(data), offset);
    else d.set(Int32Array.from(data), offset);
  }
  read(buf: Buf): Promise<Float32Array | Int32Array> {
    return Promise.resolve(this.d(buf).slice());
  }
  fill(buf: Buf, value: number, offset = 0, count?: number): void {
    const d = this.d(buf);
    d.fill(value, offset, offset + (count ?? d.length - offset));
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  stats(): { liveBuffers: number; liveBytes: number; pooledBytes: number } {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes, pooledBytes: 0 };
  }
  destroy(): void {
    this.live.clear();
    this.liveBytes = 0;
  }

  // ---- dense linear algebra ----
  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
    const A = this.f(a), B = this.f(b), C = this.f(c);
    const { M, N, K } = p;
    const alpha = p.alpha ?? 1, beta = p.beta ?? 0;
    const acc = new Float64Array(N);
    for (let bt = 0; bt < p.batch; bt++) {
      const oa = (p.offsetA ?? 0) + bt * p.strideA;
      const ob = (p.offsetB ?? 0) + bt * p.strideB;
      const oc = (p.offsetC ?? 0) + bt * p.strideC;
      for (let m = 0; m < M; m++) {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const av = p.transA ? A[oa + k * M + m] : A[oa + m * K + k];
          if (av === 0) continue;
          if (p.transB) { for (let n = 0; n < N; n++) acc[n] += av * B[ob + n * K + k]; }
          else for (let n = 0; n < N; n++) acc[n] += av * B[ob + k * N + n];
        }
        const row = oc + m * N;
        for (let n = 0; n < N; n++) {
          C[row + n] = beta === 0 ? alpha * acc[n] : alpha * acc[n] + beta * C[row + n];
        }
      }
    }
  }

  conv2d({ x, w, bias, y, geom: p }: Conv2dArgs): void {
    const X = this.f(x), Wt = this.f(w), Y = this.f(y);
    const Bs = bias ? this.f(bias) : null;
    const { N, C, H, W, O, KH, KW, stride, pad, OH, OW } = p;
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            let s = Bs ? Bs[o] : 0;
            for (let c = 0; c < C; c++) {
              for (let kh = 0; kh < KH; kh++) {
                const ih = oh * stride - pad + kh;
                if (ih < 0 || ih >= H) continue;
                for (let kw = 0; kw < KW; kw++) {
                  const iw = ow * stride - pad + kw;
                  if (iw < 0 || iw >= W) continue;
                  s += X[((n * C + c) * H + ih) * W + iw] * Wt[((o * C + c) * KH + kh) * KW + kw];
                }
              }
            }
            Y[((n * O + o) * OH + oh) * OW + ow] = s;
          }
        }
      }
    }
  }

  conv2dBackwardData({ dy, w, dx, geom: p }: Conv2dBackwardDataArgs): void {
    const DY = this.f(dy), Wt = this.f(w), DX = this.f(dx);
    const { N, C, H, W, O, KH, KW, stride, pad, OH, OW } = p;
    DX.fill(0, 0, N * C * H * W);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            const g = DY[((n * O + o) * OH + oh) * OW + ow];
            for (let c = 0; c < C; c++) {
              for (let kh = 0; kh < KH; kh++) {
                const ih = oh * stride - pad + kh;
                if (ih < 0 || ih >= H) continue;
                for (let kw = 0; kw < KW; kw++) {
                  const iw = ow * stride - pad + kw;
                  if (iw < 0 || iw >= W) continue;
                  DX[((n * C + c) * H + ih) * W + iw] += g * Wt[((o * C + c) * KH + kh) * KW + kw];
                }
              }
            }
          }
        }
      }
    }
  }

  conv2dBackwardFilter({ x, dy, dw, geom: p, accumulate }: Conv2dBackwardFilterArgs): void {
    const X = this.f(x), DY = this.f(dy), DW = this.f(dw);
    const { N, C, H, W, O, KH, KW, stride, pad, OH, OW } = p;
    for (let o = 0; o < O; o++) {
      for (let c = 0; c < C; c++) {
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            let s = 0;
            for (let n = 0; n < N; n++) {
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * stride - pad + kh;
                if (ih < 0 || ih >= H) continue;
                for (let ow = 0; ow < OW; ow++) {
                  const iw = ow * stride - pad + kw;
                  if (iw < 0 || iw >= W) continue;
                  s += X[((n * C + c) * H + ih) * W + iw] * DY[((n * O + o) * OH + oh) * OW + ow];
                }
              }
            }
            const idx = ((o * C + c) * KH + kh) * KW + kw;
            DW[idx] = accumulate ? DW[idx] + s : s;
          }
        }
      }
    }
  }

  // ---- elementwise ----
  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void {
    const X = this.f(x), Y = this.f(y), fn = unaryFn(op);
    for (let i = 0; i < n; i++) Y[i] = fn(X[i]);
  }
  unaryBackward({ op, x, dy, dx, n }: UnaryBackwardArgs): void {
    const X = this.f(x), DY = this.f(dy), DX = this.f(dx), fn = unaryDeriv(op);
    for (let i = 0; i < n; i++) DX[i] = DY[i] * fn(X[i]);
  }
  binary({ op, a, va, b, vb, out, shape }: BinaryArgs): void {
    const A = this.f(a), B = this.f(b), O = this.f(out), fn = binaryFn(op);
    const offA = new Int32Array(shape.reduce((s, v) => s * v, 1));
    forEachStrided(shape, va, (i, off) => (offA[i] = off));
    forEachStrided(shape, vb, (i, off) => (O[i] = fn(A[offA[i]], B[off])));
  }
  axpby({ x, y, alpha, beta, n }: AxpbyArgs): void {
    const X = this.f(x), Y = this.f(y);
    for (let i = 0; i < n; i++) Y[i] = beta === 0 ? alpha * X[i] : alpha * X[i] + beta * Y[i];
  }
  copyStrided({ x, vx, y, yOffset, shape }: CopyStridedArgs): void {
    const X = this.d(x), Y = this.d(y);
    forEachStrided(shape, vx, (i, off) => (Y[yOffset + i] = X[off]));
  }
  reduceSum({ x, y, outer, reduce, inner, accumulate }: ReduceSumArgs): void {
    const X = this.f(x), Y = this.f(y);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let s = 0;
        for (let r = 0; r < reduce; r++) s += X[(o * reduce + r) * inner + j];
        const idx = o * inner + j;
        Y[idx] = accumulate ? Y[idx] + s : s;
      }
    }
  }
  sumSquares(x: Buf, n: number, out: Buf, accumulate: boolean): void {
    const X = this.f(x), O = this.f(out);
    let s = 0;
    for (let i = 0; i < n; i++) s += X[i] * X[i];
    O[0] = accumulate ? O[0] + s : s;
  }
  clipByNorm(x: Buf, n: number, sumsq: Buf, maxNorm: number): void {
    const X = this.f(x);
    const coef = Math.min(1, maxNorm / (Math.sqrt(this.f(sumsq)[0]) + 1e-6));
    if (coef < 1) { for (let i = 0; i < n; i++) X[i] *= coef; }
  }

  // ---- normalization ----
  softmax(x: Buf, y: Buf, rows: number, cols: number): void {
    const X = this.f(x), Y = this.f(y);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let m = -Infinity;
      for (let c = 0; c < cols; c++) m = Math.max(m, X[o + c]);
      let s = 0;
      for (let c = 0; c < cols; c++) {
        const e = Math.exp(X[o + c] - m);
        Y[o + c] = e;
        s += e;
      }
      for (let c = 0; c < cols; c++) Y[o + c] /= s;
    }
  }
  softmaxBackward({ y, dy, dx, rows, cols }: SoftmaxBackwardArgs): void {
    const Y = this.f(y), DY = this.f(dy), DX = this.f(dx);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += DY[o + c] * Y[o + c];
      for (let c = 0; c < cols; c++) DX[o + c] = Y[o + c] * (DY[o + c] - s);
    }
  }
  layerNorm({ x, gamma, beta, y, mean, rstd, rows, cols, eps }: LayerNormArgs): void {
    const X = this.f(x), G = this.f(gamma), Bt = this.f(beta), Y = this.f(y);
    const MU = this.f(mean), RS = this.f(rstd);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let m = 0;
      for (let c = 0; c < cols; c++) m += X[o + c];
      m /= cols;
      let v = 0;
      for (let c = 0; c < cols; c++) v += (X[o + c] - m) ** 2;
      v /= cols;
      const rs = 1 / Math.sqrt(v + eps);
      MU[r] = m;
      RS[r] = rs;
      for (let c = 0; c < cols; c++) Y[o + c] = (X[o + c] - m) * rs * G[c] + Bt[c];
    }
  }
  layerNormBackward(
    { x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols }: LayerNormBackwardArgs,
  ): void {
    const X = this.f(x), G = this.f(gamma), MU = this.f(mean), RS = this.f(rstd);
    const DY = this.f(dy), DX = this.f(dx), DG = this.f(dgamma), DB = this.f(dbeta);
    for (let r = 0; r < rows; r++) {
      const o = r * cols, m = MU[r], rs = RS[r];
      let sumG = 0, sumGX = 0;
      for (let c = 0; c < cols; c++) {
        const xh = (X[o + c] - m) * rs;
        const g = DY[o + c] * G[c];
        sumG += g;
        sumGX += g * xh;
        DG[c] += DY[o + c] * xh;
        DB[c] += DY[o + c];
      }
      for (let c = 0; c < cols; c++) {
        const xh = (X[o + c] - m) * rs;
        const g = DY[o + c] * G[c];
        DX[o + c] = rs * (g - sumG / cols - xh * sumGX / cols);
      }
    }
  }
  batchNormStats({ x, mean, variance, N, C, HW }: BatchNormStatsArgs): void {
    const X = this.f(x), MU = this.f(mean), V = this.f(variance);
    const cnt = N * HW;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) s += X[o + i];
      }
      const m = s / cnt;
      let v = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) v += (X[o + i] - m) ** 2;
      }
      MU[c] = m;
      V[c] = v / cnt;
    }
  }
  batchNormApply(
    { x, mean, variance, gamma, beta, y, N, C, HW, eps, relu }: BatchNormApplyArgs,
  ): void {
    const X = this.f(x), MU = this.f(mean), V = this.f(variance);
    const G = this.f(gamma), Bt = this.f(beta), Y = this.f(y);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * HW;
        const sc = G[c] / Math.sqrt(V[c] + eps);
        for (let i = 0; i < HW; i++) {
          const v = (X[o + i] - MU[c]) * sc + Bt[c];
          Y[o + i] = relu && !(v > 0) ? 0 : v;
        }
      }
    }
  }
  batchNormBackward(
    { x, mean, variance, gamma, dy, dx, dgamma, dbeta, N, C, HW, eps, reluOut }:
      BatchNormBackwardArgs,
  ): void {
    const X = this.f(x), MU = this.f(mean), V = this.f(variance), G = this.f(gamma);
    const DX = this.f(dx), DG = this.f(dgamma), DB = this.f(dbeta);
    let DY = this.f(dy);
    if (reluOut) {
      const R = this.f(reluOut);
      DY = DY.map((g, i) => (R[i] > 0 ? g : 0));
    }
    const cnt = N * HW;
    for (let c = 0; c < C; c++) {
      const rs = 1 / Math.sqrt(V[c] + eps);
      let sdy = 0, sdyx = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) {
          sdy += DY[o + i];
          sdyx += DY[o + i] * (X[o + i] - MU[c]) * rs;
        }
      }
      DG[c] += sdyx;
      DB[c] += sdy;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) {
          const xh = (X[o + i] - MU[c]) * rs;
          DX[o + i] = G[c] * rs * (DY[o + i] - sdy / cnt - xh * sdyx / cnt);
        }
      }
    }
  }
  maxPool2d(x: Buf, y: Buf, argmax: Buf, p: Pool2dParams): void {
    const X = this.f(x), Y = this.f(y), AM = this.i(argmax);
    const { N, C, H, W, K, stride, pad, OH, OW } = p;
    for (let nc = 0; nc < N * C; nc++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let best = -Infinity, bi = -1;
          for (let kh = 0; kh < K; kh++) {
            const ih = oh * stride - pad + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < K; kw++) {
              const iw = ow * stride - pad + kw;
              if (iw < 0 || iw >= W) continue;
              const v = X[nc * H * W + ih * W + iw];
              if (v > best || bi < 0) {
                best = v;
                bi = ih * W + iw;
              }
            }
          }
          const o = (nc * OH + oh) * OW + ow;
          Y[o] = best;
          AM[o] = bi;
        }
      }
    }
  }
  maxPool2dBackward(dy: Buf, argmax: Buf, dx: Buf, p: Pool2dParams): void {
    const DY = this.f(dy), AM = this.i(argmax), DX = this.f(dx);
    const { N, C, H, W, OH, OW } = p;
    DX.fill(0, 0, N * C * H * W);
    for (let nc = 0; nc < N * C; nc++) {
      for (let i = 0; i < OH * OW; i++) {
        const o = nc * OH * OW + i;
        DX[nc * H * W + AM[o]] += DY[o];
      }
    }
  }

  // ---- indexing / losses / randomness ----
  embedding({ ids, table, out, n, dim }: EmbeddingArgs): void {
    const I = this.i(ids), T = this.f(table), O = this.f(out);
    const vocab = T.length / dim;
    for (let i = 0; i < n; i++) {
      const id = I[i];
      if (id < 0 || id >= vocab) throw new Error(`embedding: id ${id} out of range [0, ${vocab})`);
      O.set(T.subarray(id * dim, id * dim + dim), i * dim);
    }
  }
  embeddingBackward({ ids, dy, dtable, n, dim }: EmbeddingBackwardArgs): void {
    const I = this.i(ids), DY = this.f(dy), DT = this.f(dtable);
    for (let i = 0; i < n; i++) {
      const o = I[i] * dim;
      for (let j = 0; j < dim; j++) DT[o + j] += DY[i * dim + j];
    }
  }
  crossEntropy(
    { logits, targets, loss, dlogits, rows, cols, ignoreIndex, scale }: CrossEntropyArgs,
  ): void {
    const X = this.f(logits), T = this.i(targets), L = this.f(loss), D = this.f(dlogits);
    for (let r = 0; r < rows; r++) {
      const o = r * cols, t = T[r];
      if (t === ignoreIndex) {
        L[r] = 0;
        D.fill(0, o, o + cols);
        continue;
      }
      let m = -Infinity;
      for (let c = 0; c < cols; c++) m = Math.max(m, X[o + c]);
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(X[o + c] - m);
      const lse = m + Math.log(s);
      L[r] = lse - X[o + t];
      for (let c = 0; c < cols; c++) {
        D[o + c] = (Math.exp(X[o + c] - lse) - (c === t ? 1 : 0)) * scale;
      }
    }
  }
  dropoutMask({ mask, n, p, seed, offset }: DropoutMaskArgs): void {
    const M = this.f(mask);
    const keepScale = 1 / (1 - p);
    for (let i = 0; i < n; i++) M[i] = counterUniform(seed, offset + i) >= p ? keepScale : 0;
  }

  // ---- optimizer ----
  sgdStep({ w, g, m, n, lr, momentum, weightDecay, clip }: SgdStepArgs): void {
    const Wt = this.f(w), G = this.f(g), Mo = this.f(m);
    let coef = 1;
    if (clip) coef = Math.min(1, clip.maxNorm / (Math.sqrt(this.f(clip.sumsq)[0]) + 1e-6));
    for (let i = 0; i < n; i++) {
      const d = G[i] * coef + weightDecay * Wt[i];
      Mo[i] = momentum * Mo[i] + d;
      Wt[i] -= lr * Mo[i];
    }
  }
  lookaheadSync(fast: Buf, slow: Buf, n: number, alpha: number): void {
    const F = this.f(fast), S = this.f(slow);
    for (let i = 0; i < n; i++) {
      S[i] += alpha * (F[i] - S[i]);
      F[i] = S[i];
    }
  }
}

/** Creates a fresh reference backend. */
export function createRefBackend(): Promise<Backend> {
  return Promise.resolve(new RefBackend());
}
