/**
 * The `wasm` compute backend: Rust SIMD128 kernels (kernels/engine) running on all CPU cores —
 * the main thread plus N-1 Deno Workers on one shared WebAssembly.Memory (see wasm_pool.ts).
 * Every kernel runs synchronously when called; read() resolves at once.
 */
import type {
  AxpbyArgs,
  Backend,
  BatchNormApplyArgs,
  BatchNormBackwardArgs,
  BatchNormStatsArgs,
  BinaryArgs,
  BinaryOp,
  Buf,
  Conv2dArgs,
  Conv2dBackwardDataArgs,
  Conv2dBackwardFilterArgs,
  Conv2dParams,
  CopyStridedArgs,
  CrossEntropyArgs,
  DropoutMaskArgs,
  DType,
  EmbeddingArgs,
  EmbeddingBackwardArgs,
  LayerNormArgs,
  LayerNormBackwardArgs,
  MatmulParams,
  Pool2dParams,
  ReduceSumArgs,
  SgdStepArgs,
  SoftmaxBackwardArgs,
  UnaryBackwardArgs,
  UnaryOp,
  View,
} from "../backend.ts";
import { HeapAllocator } from "./wasm_alloc.ts";
import { WasmPool } from "./wasm_pool.ts";

/** Options for createWasmBackend. */
export interface WasmBackendOptions {
  /** Threads (main + workers); default navigator.hardwareConcurrency. */
  threads?: number;
  /** Initial shared memory in bytes (grows on demand up to 4 GiB); default 128 MiB. */
  initialMemoryBytes?: number;
  /** Path or URL of engine.wasm; default kernels/build/engine.wasm in this checkout. */
  wasmPath?: string | URL;
  /**
   * Convolutions with at most this many output positions per image use the batch-column path
   * (default 32; 0 turns it off, e.g. to compare paths in a benchmark).
   */
  columnBatchMaxOhw?: number;
}

const UNARY_CODES: Record<UnaryOp, number> = {
  relu: 0,
  gelu: 1,
  exp: 2,
  log: 3,
  neg: 4,
  sqrt: 5,
  rsqrt: 6,
  tanh: 7,
  sigmoid: 8,
  abs: 9,
  square: 10,
};
const BINARY_CODES: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 };
const BACKWARD_OPS = new Set<UnaryOp>(["relu", "gelu", "tanh", "sigmoid"]);
/** Below this much work (elements or flops/64) a kernel runs on the main thread only. */
const PARALLEL_MIN = 1 << 15;
/** Single products from this many multiply-adds share one packed B across threads. */
const SHARED_B_MIN_MACS = 1 << 24;
/** ... as long as the packed B stays under this many floats (64 MiB). */
const SHARED_B_MAX_FLOATS = 1 << 24;
/**
 * Default for WasmBackendOptions.columnBatchMaxOhw: convolutions whose output plane has at most
 * this many positions use the batch-column path (one [CKK, N*OH*OW] column matrix and one GEMM
 * per pass instead of one per image)...
 */
const COLUMN_BATCH_MAX_OHW = 32;
/** ... as long as its column matrix and transposed output fit in this many bytes. */
const COLUMN_BATCH_MAX_BYTES = 256 << 20;
const META_BYTES = 1024;

class WasmBuf implements Buf {
  constructor(
    readonly id: number,
    readonly numel: number,
    readonly dtype: DType,
    readonly ptr: number,
  ) {}
}

/** Creates the wasm backend: compiles kernels/build/engine.wasm and starts the thread pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  const threads = Math.max(1, Math.floor(opts.threads ?? navigator.hardwareConcurrency ?? 1));
  const path = opts.wasmPath ?? new URL("../../kernels/build/engine.wasm", import.meta.url);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      `wasm backend: cannot read ${path} (${(e as Error).message}); build it with 'make kernels'`,
    );
  }
  const pool = await WasmPool.create(bytes, threads, opts.initialMemoryBytes ?? 128 << 20);
  return new WasmBackend(pool, opts.columnBatchMaxOhw ?? COLUMN_BATCH_MAX_OHW);
}

class WasmBackend implements Backend {
  readonly name = "wasm" as const;
  readonly supportsF16 = false;
  private readonly heap: HeapAllocator;
  private readonly bufs = new Map<number, WasmBuf>();
  private nextId = 1;
  private liveBytes = 0;
  private f32View: Float32Array;
  private i32View: Int32Array;
  private f64View: Float64Array;
  private readonly meta: number;
  private readonly partials: number;
  private scratch = 0;
  private scratchBytes = 0;
  private readonly gemmWs: number;
  private destroyed = false;

  constructor(private readonly pool: WasmPool, private readonly columnBatchMaxOhw: number) {
    this.heap = new HeapAllocator(pool.memory, pool.heapStart);
    const buf = pool.memory.buffer;
    this.f32View = new Float32Array(buf);
    this.i32View = new Int32Array(buf);
    this.f64View = new Float64Array(buf);
    this.meta = this.heap.alloc(META_BYTES);
    this.partials = this.heap.alloc(8 * pool.nthreads);
    this.gemmWs = this.call0("gemm_ws_bytes");
  }

  get threads(): number {
    return this.pool.nthreads;
  }

  // ---- memory ----

  alloc(numel: number, dtype: DType = "f32"): Buf {
    this.alive();
    if (!Number.isInteger(numel) || numel < 0) {
      throw new Error(`wasm backend: alloc of invalid size ${numel}`);
    }
    const ptr = this.heap.alloc(Math.max(1, numel) * 4);
    const b = new WasmBuf(this.nextId++, numel, dtype, ptr);
    this.bufs.set(b.id, b);
    this.liveBytes += numel * 4;
    return b;
  }

  free(buf: Buf): void {
    const b = this.own(buf);
    this.bufs.delete(b.id);
    this.liveBytes -= b.numel * 4;
    this.heap.free(b.ptr);
  }

  write(buf: Buf, data: Float32Array | Int32Array, offset = 0): void {
    const b = this.own(buf);
    this.span(b, offset, data.length, "write");
    const start = b.ptr / 4 + offset;
    if (data instanceof Int32Array) this.i32().set(data, start);
    else this.f32().set(data, start);
  }

  read(buf: Buf): Promise<Float32Array | Int32Array> {
    const b = this.own(buf);
    const start = b.ptr / 4;
    const out = b.dtype === "i32"
      ? this.i32().slice(start, start + b.numel)
      : this.f32().slice(start, start + b.numel);
    return Promise.resolve(out);
  }

  fill(buf: Buf, value: number, offset = 0, count?: number): void {
    const b = this.own(buf);
    const n = count ?? b.numel - offset;
    this.span(b, offset, n, "fill");
    const start = b.ptr / 4 + offset;
    if (b.dtype === "i32") this.i32().fill(value, start, start + n);
    else this.f32().fill(value, start, start + n);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  stats(): { liveBuffers: number; liveBytes: number; pooledBytes: number } {
    return {
      liveBuffers: this.bufs.size,
      liveBytes: this.liveBytes,
      pooledBytes: this.heap.stats().pooledBytes,
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.destroy();
  }

  // ---- dense linear algebra ----

  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void {
    const { batch, M, N, K } = p;
    const [oa, ob, oc] = [p.offsetA ?? 0, p.offsetB ?? 0, p.offsetC ?? 0];
    const A = this.own(a), B = this.own(b), C = this.own(c);
    this.span(A, oa, (batch - 1) * p.strideA + M * K, "matmul A");
    this.span(B, ob, (batch - 1) * p.strideB + K * N, "matmul B");
    this.span(C, oc, (batch - 1) * p.strideC + M * N, "matmul C");
    const flops = batch * M * N * K;
    const nt = this.par(flops / 32);
    if (batch === 1 && nt > 1 && M * N * K >= SHARED_B_MIN_MACS) {
      const pbFloats = this.call0("gemm_shared_b_floats", N, K);
      if (pbFloats <= SHARED_B_MAX_FLOATS) {
        this.matmulSharedB(A.ptr + 4 * oa, B.ptr + 4 * ob, C.ptr + 4 * oc, p, nt, pbFloats);
        return;
      }
    }
    this.ensureScratch(this.gemmWs, 0);
    this.pool.run("gemm", [
      batch,
      M,
      N,
      K,
      A.ptr + 4 * oa,
      B.ptr + 4 * ob,
      C.ptr + 4 * oc,
      p.transA ? 1 : 0,
      p.transB ? 1 : 0,
      p.strideA,
      p.strideB,
      p.strideC,
      p.alpha ?? 1,
      p.beta ?? 0,
      this.scratch,
      this.gemmWs,
    ], nt);
  }

  /**
   * One product on `nt` threads: B packed once into shared panels, then threads claim blocks of
   * C's rows (about six per thread, so a thread slowed by the host holds up little).
   */
  private matmulSharedB(
    a: number,
    b: number,
    c: number,
    p: MatmulParams,
    nt: number,
    pbFloats: number,
  ): void {
    const { M, N, K } = p;
    const pb = this.ensureScratch(this.gemmWs, 4 * pbFloats);
    this.pool.run("gemm_pack_b_shared", [N, K, b, p.transB ? 1 : 0, pb], nt);
    this.pool.run("gemm_rows_shared_b", [
      M,
      N,
      K,
      a,
      p.transA ? 1 : 0,
      c,
      p.alpha ?? 1,
      p.beta ?? 0,
      pb,
      this.scratch,
      this.gemmWs,
    ], nt);
  }

  conv2d({ x, w, bias, y, geom: p }: Conv2dArgs): void {
    const X = this.own(x), Wt = this.own(w), Y = this.own(y);
    const Bi = bias ? this.own(bias) : null;
    this.convSpans(X, Wt, Y, p, "conv2d");
    if (Bi) this.span(Bi, 0, p.O, "conv2d bias");
    this.convForward(X.ptr, Wt.ptr, Bi ? Bi.ptr : 0, Y.ptr, p, 0);
  }

  /**
   * y = conv(x, w) (+ bias) on raw addresses; `extra` bytes of shared scratch are kept intact
   * (they may hold the weights, see conv2dBackwardData).
   */
  private convForward(
    x: number,
    w: number,
    bias: number,
    y: number,
    p: Conv2dParams,
    extra: number,
  ) {
    const g = geom(p);
    const nt = this.convThreads(p);
    const colBytes = this.columnBatchBytes(p);
    const shared = this.ensureScratch(this.gemmWs, align64(extra) + colBytes);
    if (colBytes) {
      // col [CKK, N*OHW]; yt = W @ col [O, N, OHW]; y [N, O, OHW] = swap(yt) + bias.
      const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW, cols = p.N * ohw;
      const col = shared + align64(extra), yt = col + 4 * ckk * cols;
      this.pool.run("im2col_batch", [x, col, p.N, ...geomNoO(p)], this.parRows(ckk, cols));
      this.gemmRaw(p.O, cols, ckk, w, col, yt, false, false, 0, nt);
      this.pool.run("swap_outer", [yt, y, p.O, p.N, ohw, bias], this.parRows(p.O * p.N, ohw));
      return;
    }
    if (this.batchParallel(p.N, nt)) {
      this.pool.run("conv2d_fwd_batch", [
        x,
        w,
        bias,
        y,
        p.N,
        ...g,
        this.scratch,
        this.gemmWs,
      ], nt);
      return;
    }
    // Few images: each image's output is split over all threads instead.
    const ohw = p.OH * p.OW;
    for (let n = 0; n < p.N; n++) {
      this.pool.run("conv2d_fwd_img", [
        x + 4 * n * p.C * p.H * p.W,
        w,
        y + 4 * n * p.O * ohw,
        ...g,
        this.scratch,
        this.gemmWs,
      ], nt);
    }
    if (bias) this.pool.run("bias_add_planes", [y, bias, p.N, p.O, ohw], nt);
  }

  conv2dBackwardData({ dy, w, dx, geom: p }: Conv2dBackwardDataArgs): void {
    const DY = this.own(dy), Wt = this.own(w), DX = this.own(dx);
    this.convSpans(DX, Wt, DY, p, "conv2dBackwardData");
    if (p.stride === 1 && p.KH === p.KW && p.pad <= p.KH - 1 && !isPointwise(p)) {
      // Stride 1: dx = conv(dy, flipped w^T, pad K-1-pad), a forward conv without col2im.
      const wBytes = 4 * p.O * p.C * p.KH * p.KW;
      const q: Conv2dParams = {
        ...p,
        C: p.O,
        H: p.OH,
        W: p.OW,
        O: p.C,
        pad: p.KH - 1 - p.pad,
        OH: p.H,
        OW: p.W,
      };
      // Reserve what the forward pass needs as well, so it does not move the flipped weights.
      const w2 = this.ensureScratch(this.gemmWs, align64(wBytes) + this.columnBatchBytes(q));
      this.pool.run("flip_weights", [Wt.ptr, w2, p.O, p.C, p.KH, p.KW], 1);
      this.convForward(DY.ptr, w2, 0, DX.ptr, q, wBytes);
      return;
    }
    const nt = this.convThreads(p);
    const colBytes = this.columnBatchBytes(p);
    if (colBytes) {
      // dyt = swap(dy) [O, N*OHW]; dcol = W^T @ dyt [CKK, N*OHW]; dx = col2im(dcol).
      const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW, cols = p.N * ohw;
      const dcol = this.ensureScratch(this.gemmWs, colBytes), dyt = dcol + 4 * ckk * cols;
      this.pool.run("swap_outer", [DY.ptr, dyt, p.N, p.O, ohw, 0], this.parRows(p.O * p.N, ohw));
      this.gemmRaw(ckk, cols, p.O, Wt.ptr, dyt, dcol, true, false, 0, nt);
      if (isPointwise(p)) {
        this.pool.run("swap_outer", [dcol, DX.ptr, p.C, p.N, ohw, 0], this.parRows(p.C * p.N, ohw));
      } else {
        this.pool.run(
          "col2im_batch",
          [dcol, DX.ptr, p.N, ...geomNoO(p)],
          this.parRows(p.N * p.C, p.H * p.W),
        );
      }
      return;
    }
    if (this.batchParallel(p.N, nt)) {
      const stride = this.convWs(p);
      this.ensureScratch(stride, 0);
      this.pool.run("conv2d_bwd_data_batch", [
        DY.ptr,
        Wt.ptr,
        DX.ptr,
        p.N,
        ...geom(p),
        this.scratch,
        stride,
      ], nt);
      return;
    }
    const ckk = p.C * p.KH * p.KW, ohw = p.OH * p.OW;
    const pointwise = isPointwise(p);
    const col = this.ensureScratch(this.gemmWs, pointwise ? 0 : ckk * ohw * 4);
    for (let n = 0; n < p.N; n++) {
      const dxi = DX.ptr + 4 * n * p.C * p.H * p.W;
      // W stored [O, CKK] is op(A)^T storage for A = W^T [CKK, O].
      this.pool.run("gemm", [
        1,
        ckk,
        ohw,
        p.O,
        Wt.ptr,
        DY.ptr + 4 * n * p.O * ohw,
        pointwise ? dxi : col,
        1,
        0,
        0,
        0,
        0,
        1,
        0,
        this.scratch,
        this.gemmWs,
      ], nt);
      if (!pointwise) this.pool.run("col2im", [col, dxi, ...geomNoO(p)], nt);
    }
  }

  conv2dBackwardFilter({ x, dy, dw, geom: p, accumulate }: Conv2dBackwardFilterArgs): void {
    const X = this.own(x), DY = this.own(dy), DW = this.own(dw);
    this.convSpans(X, DW, DY, p, "conv2dBackwardFilter");
    const nt = this.convThreads(p);
    const ckk = p.C * p.KH * p.KW, ohw = p.OH * p.OW;
    const colBytes = this.columnBatchBytes(p);
    if (colBytes) {
      // dyt = swap(dy) [O, N*OHW]; col [CKK, N*OHW]; dW (+)= dyt @ col^T.
      const cols = p.N * ohw;
      const col = this.ensureScratch(this.gemmWs, colBytes), dyt = col + 4 * ckk * cols;
      this.pool.run("swap_outer", [DY.ptr, dyt, p.N, p.O, ohw, 0], this.parRows(p.O * p.N, ohw));
      this.pool.run("im2col_batch", [X.ptr, col, p.N, ...geomNoO(p)], this.parRows(ckk, cols));
      this.gemmRaw(p.O, ckk, cols, dyt, col, DW.ptr, false, true, accumulate ? 1 : 0, nt);
      return;
    }
    if (this.batchParallel(p.N, nt)) {
      const stride = this.convWs(p);
      this.ensureScratch(stride, 0);
      this.pool.run("conv2d_bwd_filter_batch", [
        X.ptr,
        DY.ptr,
        p.N,
        ...geom(p),
        this.scratch,
        stride,
      ], nt);
      const partOffset = this.gemmWs / 4 + ckk * ohw;
      this.pool.run("reduce_partials", [
        DW.ptr,
        this.scratch,
        stride,
        partOffset,
        nt,
        p.O * ckk,
        accumulate ? 1 : 0,
      ], this.par(p.O * ckk * nt));
      return;
    }
    const pointwise = isPointwise(p);
    const col = this.ensureScratch(this.gemmWs, pointwise ? 0 : ckk * ohw * 4);
    for (let n = 0; n < p.N; n++) {
      const xi = X.ptr + 4 * n * p.C * p.H * p.W;
      if (!pointwise) this.pool.run("im2col", [xi, col, ...geomNoO(p)], nt);
      // dW [O, CKK] (+)= dy[n] [O, OHW] @ col^T, col stored [CKK, OHW] (transB).
      this.pool.run("gemm", [
        1,
        p.O,
        ckk,
        ohw,
        DY.ptr + 4 * n * p.O * ohw,
        pointwise ? xi : col,
        DW.ptr,
        0,
        1,
        0,
        0,
        0,
        1,
        n === 0 && !accumulate ? 0 : 1,
        this.scratch,
        this.gemmWs,
      ], nt);
    }
    if (p.N === 0 && !accumulate) this.fill(dw, 0);
  }

  // ---- elementwise ----

  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, n, `unary ${op} x`);
    this.span(Y, 0, n, `unary ${op} y`);
    this.pool.run("unary", [UNARY_CODES[op], X.ptr, Y.ptr, n], this.par(n * 4));
  }

  unaryBackward({ op, x, dy, dx, n }: UnaryBackwardArgs): void {
    if (!BACKWARD_OPS.has(op)) throw new Error(`wasm backend: no unaryBackward for '${op}'`);
    const X = this.own(x), DY = this.own(dy), DX = this.own(dx);
    for (const [b, what] of [[X, "x"], [DY, "dy"], [DX, "dx"]] as const) {
      this.span(b, 0, n, `unaryBackward ${what}`);
    }
    this.pool.run("unary_bwd", [UNARY_CODES[op], X.ptr, DY.ptr, DX.ptr, n], this.par(n * 4));
  }

  binary({ op, a, va, b, vb, out, shape }: BinaryArgs): void {
    const A = this.own(a), B = this.own(b), O = this.own(out);
    const total = shape.reduce((s, d) => s * d, 1);
    this.span(O, 0, total, "binary out");
    if (total === 0) return;
    this.viewSpan(A, va, shape, "binary a");
    this.viewSpan(B, vb, shape, "binary b");
    const d = coalesce(shape, [va.strides, vb.strides]);
    this.writeMeta(d.shape, d.strides[0], d.strides[1]);
    this.pool.run("binary", [
      BINARY_CODES[op],
      A.ptr + 4 * va.offset,
      B.ptr + 4 * vb.offset,
      O.ptr,
      this.meta,
    ], this.par(total));
  }

  axpby({ x, y, alpha, beta, n }: AxpbyArgs): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, n, "axpby x");
    this.span(Y, 0, n, "axpby y");
    this.pool.run("axpby", [X.ptr, Y.ptr, alpha, beta, n], this.par(n));
  }

  copyStrided({ x, vx, y, yOffset, shape }: CopyStridedArgs): void {
    const X = this.own(x), Y = this.own(y);
    const total = shape.reduce((s, d) => s * d, 1);
    this.span(Y, yOffset, total, "copyStrided y");
    if (total === 0) return;
    this.viewSpan(X, vx, shape, "copyStrided x");
    const d = coalesce(shape, [vx.strides]);
    this.writeMeta(d.shape, d.strides[0], d.strides[0]);
    this.pool.run(
      "copy_strided",
      [X.ptr + 4 * vx.offset, Y.ptr + 4 * yOffset, this.meta],
      this.par(total),
    );
  }

  reduceSum({ x, y, outer, reduce, inner, accumulate }: ReduceSumArgs): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, outer * reduce * inner, "reduceSum x");
    this.span(Y, 0, outer * inner, "reduceSum y");
    this.pool.run(
      "reduce_sum",
      [X.ptr, Y.ptr, outer, reduce, inner, accumulate ? 1 : 0],
      this.par(outer * reduce * inner),
    );
  }

  sumSquares(x: Buf, n: number, out: Buf, accumulate: boolean): void {
    const X = this.own(x), O = this.own(out);
    this.span(X, 0, n, "sumSquares x");
    this.span(O, 0, 1, "sumSquares out");
    const nt = this.par(n);
    this.pool.run("sum_squares_partial", [X.ptr, n, this.partials], nt);
    const f64 = this.f64();
    let s = 0;
    for (let t = 0; t < nt; t++) s += f64[this.partials / 8 + t];
    const f32 = this.f32();
    f32[O.ptr / 4] = accumulate ? f32[O.ptr / 4] + s : s;
  }

  clipByNorm(x: Buf, n: number, sumsq: Buf, maxNorm: number): void {
    const X = this.own(x), S = this.own(sumsq);
    this.span(X, 0, n, "clipByNorm x");
    this.span(S, 0, 1, "clipByNorm sumsq");
    this.pool.run("clip_by_norm", [X.ptr, n, S.ptr, maxNorm], this.par(n));
  }

  // ---- normalization ----

  softmax(x: Buf, y: Buf, rows: number, cols: number): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, rows * cols, "softmax x");
    this.span(Y, 0, rows * cols, "softmax y");
    this.pool.run("softmax", [X.ptr, Y.ptr, rows, cols], this.parRows(rows, cols * 8));
  }

  softmaxBackward({ y, dy, dx, rows, cols }: SoftmaxBackwardArgs): void {
    const Y = this.own(y), DY = this.own(dy), DX = this.own(dx);
    for (const b of [Y, DY, DX]) this.span(b, 0, rows * cols, "softmaxBackward");
    this.pool.run("softmax_bwd", [Y.ptr, DY.ptr, DX.ptr, rows, cols], this.parRows(rows, cols));
  }

  layerNorm({ x, gamma, beta, y, mean, rstd, rows, cols, eps }: LayerNormArgs): void {
    const [X, G, Bt, Y, Mn, Rs] = [x, gamma, beta, y, mean, rstd].map((b) => this.own(b));
    this.span(X, 0, rows * cols, "layerNorm x");
    this.span(Y, 0, rows * cols, "layerNorm y");
    this.span(G, 0, cols, "layerNorm gamma");
    this.span(Bt, 0, cols, "layerNorm beta");
    this.span(Mn, 0, rows, "layerNorm mean");
    this.span(Rs, 0, rows, "layerNorm rstd");
    this.pool.run(
      "layer_norm",
      [X.ptr, G.ptr, Bt.ptr, Y.ptr, Mn.ptr, Rs.ptr, rows, cols, eps],
      this.parRows(rows, cols * 3),
    );
  }

  layerNormBackward(
    { x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols }: LayerNormBackwardArgs,
  ): void {
    const [X, G, Mn, Rs, DY, DX, DG, DB] = [x, gamma, mean, rstd, dy, dx, dgamma, dbeta].map((
      b,
    ) => this.own(b));
    for (const b of [X, DY, DX]) this.span(b, 0, rows * cols, "layerNormBackward");
    for (const b of [G, DG, DB]) this.span(b, 0, cols, "layerNormBackward params");
    for (const b of [Mn, Rs]) this.span(b, 0, rows, "layerNormBackward stats");
    const nt = this.parRows(rows, cols * 4);
    const stride = Math.ceil((8 * cols) / 64) * 64;
    this.ensureScratch(stride, 0);
    const part = this.scratch;
    this.pool.run("layer_norm_bwd", [
      X.ptr,
      G.ptr,
      Mn.ptr,
      Rs.ptr,
      DY.ptr,
      DX.ptr,
      rows,
      cols,
      part,
      stride,
    ], nt);
    this.pool.run("reduce_partials", [DG.ptr, part, stride, 0, nt, cols, 1], 1);
    this.pool.run("reduce_partials", [DB.ptr, part, stride, cols, nt, cols, 1], 1);
  }

  batchNormStats({ x, mean, variance, N, C, HW }: BatchNormStatsArgs): void {
    const X = this.own(x), Mn = this.own(mean), V = this.own(variance);
    this.span(X, 0, N * C * HW, "batchNormStats x");
    this.span(Mn, 0, C, "batchNormStats mean");
    this.span(V, 0, C, "batchNormStats var");
    this.pool.run("bn_stats", [X.ptr, Mn.ptr, V.ptr, N, C, HW], this.parRows(C, N * HW * 2));
  }

  batchNormApply({ x, mean, variance, gamma, beta, y, N, C, HW, eps }: BatchNormApplyArgs): void {
    const [X, Mn, V, G, Bt, Y] = [x, mean, variance, gamma, beta, y].map((b) => this.own(b));
    this.span(X, 0, N * C * HW, "batchNormApply x");
    this.span(Y, 0, N * C * HW, "batchNormApply y");
    for (const b of [Mn, V, G, Bt]) this.span(b, 0, C, "batchNormApply params");
    this.pool.run(
      "bn_apply",
      [X.ptr, Mn.ptr, V.ptr, G.ptr, Bt.ptr, Y.ptr, N, C, HW, eps],
      this.parRows(N * C, HW),
    );
  }

  batchNormBackward(
    { x, mean, variance, gamma, dy, dx, dgamma, dbeta, N, C, HW, eps }: BatchNormBackwardArgs,
  ): void {
    const [X, Mn, V, G, DY, DX, DG, DB] = [x, mean, variance, gamma, dy, dx, dgamma, dbeta].map(
      (b) => this.own(b),
    );
    for (const b of [X, DY, DX]) this.span(b, 0, N * C * HW, "batchNormBackward");
    for (const b of [Mn, V, G, DG, DB]) this.span(b, 0, C, "batchNormBackward params");
    this.pool.run(
      "bn_bwd",
      [X.ptr, Mn.ptr, V.ptr, G.ptr, DY.ptr, DX.ptr, DG.ptr, DB.ptr, N, C, HW, eps],
      this.parRows(C, N * HW * 3),
    );
  }

  maxPool2d(x: Buf, y: Buf, argmax: Buf, p: Pool2dParams): void {
    const X = this.own(x), Y = this.own(y), A = this.own(argmax);
    const planes = p.N * p.C;
    this.span(X, 0, planes * p.H * p.W, "maxPool2d x");
    this.span(Y, 0, planes * p.OH * p.OW, "maxPool2d y");
    this.span(A, 0, planes * p.OH * p.OW, "maxPool2d argmax");
    this.pool.run(
      "max_pool",
      [X.ptr, Y.ptr, A.ptr, planes, p.H, p.W, p.K, p.stride, p.pad, p.OH, p.OW],
      this.parRows(planes, p.OH * p.OW * p.K * p.K),
    );
  }

  maxPool2dBackward(dy: Buf, argmax: Buf, dx: Buf, p: Pool2dParams): void {
    const DY = this.own(dy), A = this.own(argmax), DX = this.own(dx);
    const planes = p.N * p.C;
    this.span(DY, 0, planes * p.OH * p.OW, "maxPool2dBackward dy");
    this.span(A, 0, planes * p.OH * p.OW, "maxPool2dBackward argmax");
    this.span(DX, 0, planes * p.H * p.W, "maxPool2dBackward dx");
    this.pool.run(
      "max_pool_bwd",
      [DY.ptr, A.ptr, DX.ptr, planes, p.H * p.W, p.OH * p.OW],
      this.parRows(planes, p.H * p.W),
    );
  }

  // ---- indexing / losses / randomness ----

  embedding({ ids, table, out, n, dim }: EmbeddingArgs): void {
    const I = this.own(ids), T = this.own(table), O = this.own(out);
    this.span(I, 0, n, "embedding ids");
    this.span(O, 0, n * dim, "embedding out");
    this.checkIds(I, n, T.numel / dim, "embedding");
    this.pool.run("embedding", [I.ptr, T.ptr, O.ptr, n, dim], this.parRows(n, dim));
  }

  embeddingBackward({ ids, dy, dtable, n, dim }: EmbeddingBackwardArgs): void {
    const I = this.own(ids), DY = this.own(dy), T = this.own(dtable);
    this.span(I, 0, n, "embeddingBackward ids");
    this.span(DY, 0, n * dim, "embeddingBackward dy");
    this.checkIds(I, n, T.numel / dim, "embeddingBackward");
    this.pool.run("embedding_bwd", [I.ptr, DY.ptr, T.ptr, n, dim], this.par(n * dim));
  }

  crossEntropy(
    { logits, targets, loss, dlogits, rows, cols, ignoreIndex, scale }: CrossEntropyArgs,
  ): void {
    const L = this.own(logits), T = this.own(targets), LS = this.own(loss);
    const D = this.own(dlogits);
    this.span(L, 0, rows * cols, "crossEntropy logits");
    this.span(D, 0, rows * cols, "crossEntropy dlogits");
    this.span(LS, 0, rows, "crossEntropy loss");
    this.span(T, 0, rows, "crossEntropy targets");
    const i32 = this.i32();
    for (let r = 0; r < rows; r++) {
      const t = i32[T.ptr / 4 + r];
      if (t !== ignoreIndex && (t < 0 || t >= cols)) {
        throw new Error(`crossEntropy: target ${t} at row ${r} is outside [0, ${cols})`);
      }
    }
    this.pool.run(
      "cross_entropy",
      [L.ptr, T.ptr, LS.ptr, D.ptr, rows, cols, ignoreIndex, scale],
      this.parRows(rows, cols * 8),
    );
  }

  dropoutMask({ mask, n, p, seed, offset }: DropoutMaskArgs): void {
    const M = this.own(mask);
    this.span(M, 0, n, "dropoutMask");
    this.pool.run("dropout_mask", [M.ptr, n, p, seed >>> 0, offset >>> 0], this.par(n * 4));
  }

  // ---- optimizer ----

  sgdStep({ w, g, m, n, lr, momentum, weightDecay }: SgdStepArgs): void {
    const W = this.own(w), G = this.own(g), Mo = this.own(m);
    for (const b of [W, G, Mo]) this.span(b, 0, n, "sgdStep");
    this.pool.run("sgd_step", [W.ptr, G.ptr, Mo.ptr, n, lr, momentum, weightDecay], this.par(n));
  }

  lookaheadSync(fast: Buf, slow: Buf, n: number, alpha: number): void {
    const F = this.own(fast), S = this.own(slow);
    this.span(F, 0, n, "lookaheadSync fast");
    this.span(S, 0, n, "lookaheadSync slow");
    this.pool.run("lookahead_sync", [F.ptr, S.ptr, n, alpha], this.par(n));
  }

  // ---- helpers ----

  private alive(): void {
    if (this.destroyed) throw new Error("wasm backend used after destroy()");
  }

  private own(buf: Buf): WasmBuf {
    this.alive();
    const b = this.bufs.get(buf.id);
    if (!b || b !== buf) throw new Error(`wasm backend: buffer ${buf.id} is freed or foreign`);
    return b;
  }

  private span(b: WasmBuf, offset: number, count: number, what: string): void {
    if (offset < 0 || count < 0 || offset + count > b.numel) {
      throw new Error(
        `${what}: range [${offset}, ${offset + count}) outside buffer of ${b.numel} elements`,
      );
    }
  }

  private viewSpan(b: WasmBuf, v: View, shape: number[], what: string): void {
    if (v.strides.length !== shape.length) {
      throw new Error(`${what}: view rank ${v.strides.length} != shape rank ${shape.length}`);
    }
    let lo = v.offset, hi = v.offset;
    shape.forEach((d, i) => {
      const s = v.strides[i] * (d - 1);
      if (s < 0) lo += s;
      else hi += s;
    });
    if (lo < 0 || hi >= b.numel) {
      throw new Error(`${what}: view reaches [${lo}, ${hi}] outside buffer of ${b.numel}`);
    }
  }

  private convSpans(x: WasmBuf, w: WasmBuf, y: WasmBuf, p: Conv2dParams, what: string): void {
    if (
      p.OH !== Math.floor((p.H + 2 * p.pad - p.KH) / p.stride) + 1 ||
      p.OW !== Math.floor((p.W + 2 * p.pad - p.KW) / p.stride) + 1
    ) throw new Error(`${what}: OH/OW do not match H/W, kernel, stride and pad`);
    this.span(x, 0, p.N * p.C * p.H * p.W, `${what} input`);
    this.span(w, 0, p.O * p.C * p.KH * p.KW, `${what} weight`);
    this.span(y, 0, p.N * p.O * p.OH * p.OW, `${what} output`);
  }

  private checkIds(ids: WasmBuf, n: number, rows: number, what: string): void {
    const i32 = this.i32();
    for (let i = 0; i < n; i++) {
      const id = i32[ids.ptr / 4 + i];
      if (id < 0 || id >= rows) throw new Error(`${what}: id ${id} at ${i} outside [0, ${rows})`);
    }
  }

  /** Threads for `work` independent elements. */
  private par(work: number): number {
    return work >= PARALLEL_MIN ? this.pool.nthreads : 1;
  }

  /** Threads for a row-split kernel: never more than there are rows. */
  private parRows(rows: number, perRow: number): number {
    return Math.min(rows, this.par(rows * perRow));
  }

  private convThreads(p: Conv2dParams): number {
    return this.par((p.N * p.O * p.OH * p.OW * p.C * p.KH * p.KW) / 32);
  }

  /**
   * Scratch bytes of the batch-column path (column matrix + transposed output) when `p` takes
   * it, else 0.
   */
  private columnBatchBytes(p: Conv2dParams): number {
    const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW;
    const bytes = align64(4 * ckk * p.N * ohw) + 4 * p.O * p.N * ohw;
    return ohw <= this.columnBatchMaxOhw && bytes <= COLUMN_BATCH_MAX_BYTES ? bytes : 0;
  }

  /** One (unbatched) GEMM on raw addresses: c = op(a) @ op(b) + beta * c, on `nt` threads. */
  private gemmRaw(
    M: number,
    N: number,
    K: number,
    a: number,
    b: number,
    c: number,
    transA: boolean,
    transB: boolean,
    beta: number,
    nt: number,
  ): void {
    const args = [1, M, N, K, a, b, c, transA ? 1 : 0, transB ? 1 : 0, 0, 0, 0, 1, beta];
    this.pool.run("gemm", [...args, this.scratch, this.gemmWs], nt);
  }

  private batchParallel(n: number, nt: number): boolean {
    // Images are claimed dynamically, so two per thread keep the threads busy.
    return nt === 1 || n >= 2 * nt;
  }

  private convWs(p: Conv2dParams): number {
    const floats = this.call0("conv_ws_floats", p.C, p.O, p.KH, p.KW, p.OH, p.OW);
    return Math.ceil((floats * 4) / 64) * 64;
  }

  /**
   * Makes the scratch arena hold nthreads blocks of `perThread` bytes plus `shared` bytes after
   * them; returns the address of the shared part.
   */
  private ensureScratch(perThread: number, shared: number): number {
    const stride = Math.ceil(perThread / 64) * 64;
    const need = stride * this.pool.nthreads + shared;
    if (need > this.scratchBytes) {
      if (this.scratch) this.heap.free(this.scratch);
      this.scratch = this.heap.alloc(need);
      this.scratchBytes = need;
    }
    return this.scratch + stride * this.pool.nthreads;
  }

  private writeMeta(shape: number[], sa: number[], sb: number[]): void {
    const i32 = this.i32();
    const base = this.meta / 4;
    const r = shape.length;
    i32[base] = r;
    for (let i = 0; i < r; i++) {
      i32[base + 1 + i] = shape[i];
      i32[base + 1 + r + i] = sa[i];
      i32[base + 1 + 2 * r + i] = sb[i];
    }
  }

  private call0(name: string, ...args: number[]): number {
    return (this.pool.exports[name] as (...a: number[]) => number)(...args);
  }

  private refresh(): void {
    const buf = this.pool.memory.buffer;
    if (buf.byteLength !== this.f32View.byteLength) {
      this.f32View = new Float32Array(buf);
      this.i32View = new Int32Array(buf);
      this.f64View = new Float64Array(buf);
    }
  }

  private f32(): Float32Array {
    this.refresh();
    return this.f32View;
  }

  private i32(): Int32Array {
    this.refresh();
    return this.i32View;
  }

  private f64(): Float64Array {
    this.refresh();
    return this.f64View;
  }
}

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

function geom(p: Conv2dParams): number[] {
  return [p.C, p.H, p.W, p.O, p.KH, p.KW, p.stride, p.pad, p.OH, p.OW];
}

function geomNoO(p: Conv2dParams): number[] {
  return [p.C, p.H, p.W, p.KH, p.KW, p.stride, p.pad, p.OH, p.OW];
}

function isPointwise(p: Conv2dParams): boolean {
  return p.KH === 1 && p.KW === 1 && p.stride === 1 && p.pad === 0;
}

/**
 * Drops size-1 axes and merges adjacent axes that are contiguous in every operand (the output
 * is contiguous), so most broadcasts become a short loop nest with long inner rows.
 */
export function coalesce(
  shape: number[],
  strides: number[][],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    // Merge axis d into the previous kept axis when (prev, d) is one strided run everywhere.
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
      continue;
    }
    outShape.push(shape[d]);
    strides.forEach((s, k) => outStrides[k].push(s[d]));
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}
