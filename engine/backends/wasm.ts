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
import { coalesce } from "../shape.ts";
import { HeapAllocator, ScratchArena } from "./wasm_alloc.ts";
import { COLUMN_BATCH_MAX_OHW, WasmConv } from "./wasm_conv.ts";
import { WasmGemm } from "./wasm_gemm.ts";
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
   * (default 32; 0 turns it off, e.g. to compare paths in a benchmark). See wasm_conv.ts.
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
  private readonly scratch: ScratchArena;
  private readonly gemm: WasmGemm;
  private readonly conv: WasmConv;
  private destroyed = false;

  constructor(private readonly pool: WasmPool, columnBatchMaxOhw: number) {
    this.heap = new HeapAllocator(pool.memory, pool.heapStart);
    const buf = pool.memory.buffer;
    this.f32View = new Float32Array(buf);
    this.i32View = new Int32Array(buf);
    this.f64View = new Float64Array(buf);
    this.meta = this.heap.alloc(META_BYTES);
    this.partials = this.heap.alloc(8 * pool.nthreads);
    this.scratch = new ScratchArena(this.heap, pool.nthreads);
    this.gemm = new WasmGemm(pool, this.scratch);
    this.conv = new WasmConv(pool, this.scratch, this.gemm, columnBatchMaxOhw);
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
    this.gemm.matmul({ a: A.ptr + 4 * oa, b: B.ptr + 4 * ob, c: C.ptr + 4 * oc }, p);
  }

  conv2d({ x, w, bias, y, geom: p }: Conv2dArgs): void {
    const X = this.own(x), Wt = this.own(w), Y = this.own(y);
    const Bi = bias ? this.own(bias) : null;
    this.convSpans(X, Wt, Y, p, "conv2d");
    if (Bi) this.span(Bi, 0, p.O, "conv2d bias");
    this.conv.forward({ x: X.ptr, w: Wt.ptr, bias: Bi ? Bi.ptr : 0, y: Y.ptr }, p);
  }

  conv2dBackwardData({ dy, w, dx, geom: p }: Conv2dBackwardDataArgs): void {
    const DY = this.own(dy), Wt = this.own(w), DX = this.own(dx);
    this.convSpans(DX, Wt, DY, p, "conv2dBackwardData");
    this.conv.backwardData({ dy: DY.ptr, w: Wt.ptr, dx: DX.ptr }, p);
  }

  conv2dBackwardFilter({ x, dy, dw, geom: p, accumulate }: Conv2dBackwardFilterArgs): void {
    const X = this.own(x), DY = this.own(dy), DW = this.own(dw);
    this.convSpans(X, DW, DY, p, "conv2dBackwardFilter");
    if (p.N === 0) {
      if (!accumulate) this.fill(dw, 0);
      return;
    }
    this.conv.backwardFilter({ x: X.ptr, dy: DY.ptr, dw: DW.ptr }, p, accumulate);
  }

  // ---- elementwise ----

  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, n, `unary ${op} x`);
    this.span(Y, 0, n, `unary ${op} y`);
    this.pool.call("unary", { op: UNARY_CODES[op], x: X.ptr, y: Y.ptr, n }, this.par(n * 4));
  }

  unaryBackward({ op, x, dy, dx, n }: UnaryBackwardArgs): void {
    if (!BACKWARD_OPS.has(op)) throw new Error(`wasm backend: no unaryBackward for '${op}'`);
    const X = this.own(x), DY = this.own(dy), DX = this.own(dx);
    for (const [b, what] of [[X, "x"], [DY, "dy"], [DX, "dx"]] as const) {
      this.span(b, 0, n, `unaryBackward ${what}`);
    }
    this.pool.call(
      "unary_bwd",
      { op: UNARY_CODES[op], x: X.ptr, dy: DY.ptr, dx: DX.ptr, n },
      this.par(n * 4),
    );
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
    this.pool.call("binary", {
      op: BINARY_CODES[op],
      a: A.ptr + 4 * va.offset,
      b: B.ptr + 4 * vb.offset,
      out: O.ptr,
      meta: this.meta,
    }, this.par(total));
  }

  axpby({ x, y, alpha, beta, n }: AxpbyArgs): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, n, "axpby x");
    this.span(Y, 0, n, "axpby y");
    this.pool.call("axpby", { x: X.ptr, y: Y.ptr, alpha, beta, n }, this.par(n));
  }

  copyStrided({ x, vx, y, yOffset, shape }: CopyStridedArgs): void {
    const X = this.own(x), Y = this.own(y);
    const total = shape.reduce((s, d) => s * d, 1);
    this.span(Y, yOffset, total, "copyStrided y");
    if (total === 0) return;
    this.viewSpan(X, vx, shape, "copyStrided x");
    const d = coalesce(shape, [vx.strides]);
    this.writeMeta(d.shape, d.strides[0], d.strides[0]);
    this.pool.call(
      "copy_strided",
      { x: X.ptr + 4 * vx.offset, y: Y.ptr + 4 * yOffset, meta: this.meta },
      this.par(total),
    );
  }

  reduceSum({ x, y, outer, reduce, inner, accumulate }: ReduceSumArgs): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, outer * reduce * inner, "reduceSum x");
    this.span(Y, 0, outer * inner, "reduceSum y");
    this.pool.call(
      "reduce_sum",
      { x: X.ptr, y: Y.ptr, outer, reduce, inner, accumulate },
      this.par(outer * reduce * inner),
    );
  }

  sumSquares(x: Buf, n: number, out: Buf, accumulate: boolean): void {
    const X = this.own(x), O = this.own(out);
    this.span(X, 0, n, "sumSquares x");
    this.span(O, 0, 1, "sumSquares out");
    const nt = this.par(n);
    this.pool.call("sum_squares_partial", { x: X.ptr, n, partials: this.partials }, nt);
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
    this.pool.call("clip_by_norm", { x: X.ptr, n, sumsq: S.ptr, max_norm: maxNorm }, this.par(n));
  }

  // ---- normalization ----

  softmax(x: Buf, y: Buf, rows: number, cols: number): void {
    const X = this.own(x), Y = this.own(y);
    this.span(X, 0, rows * cols, "softmax x");
    this.span(Y, 0, rows * cols, "softmax y");
    this.pool.call("softmax", { x: X.ptr, y: Y.ptr, rows, cols }, this.parRows(rows, cols * 8));
  }

  softmaxBackward({ y, dy, dx, rows, cols }: SoftmaxBackwardArgs): void {
    const Y = this.own(y), DY = this.own(dy), DX = this.own(dx);
    for (const b of [Y, DY, DX]) this.span(b, 0, rows * cols, "softmaxBackward");
    this.pool.call(
      "softmax_bwd",
      { y: Y.ptr, dy: DY.ptr, dx: DX.ptr, rows, cols },
      this.parRows(rows, cols),
    );
  }

  layerNorm({ x, gamma, beta, y, mean, rstd, rows, cols, eps }: LayerNormArgs): void {
    const [X, G, Bt, Y, Mn, Rs] = [x, gamma, beta, y, mean, rstd].map((b) => this.own(b));
    this.span(X, 0, rows * cols, "layerNorm x");
    this.span(Y, 0, rows * cols, "layerNorm y");
    this.span(G, 0, cols, "layerNorm gamma");
    this.span(Bt, 0, cols, "layerNorm beta");
    this.span(Mn, 0, rows, "layerNorm mean");
    this.span(Rs, 0, rows, "layerNorm rstd");
    this.pool.call("layer_norm", {
      x: X.ptr,
      gamma: G.ptr,
      beta: Bt.ptr,
      y: Y.ptr,
      mean: Mn.ptr,
      rstd: Rs.ptr,
      rows,
      cols,
      eps,
    }, this.parRows(rows, cols * 3));
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
    this.scratch.ensure(stride, 0);
    const part = this.scratch.address;
    this.pool.call("layer_norm_bwd", {
      x: X.ptr,
      gamma: G.ptr,
      mean: Mn.ptr,
      rstd: Rs.ptr,
      dy: DY.ptr,
      dx: DX.ptr,
      rows,
      cols,
      part,
      part_stride: stride,
    }, nt);
    // Each thread's partial sums: dgamma [cols] then dbeta [cols], one stride apart.
    const partials = { base: part, stride, count: nt, n: cols, accumulate: true };
    this.pool.call("reduce_partials", { dst: DG.ptr, offset_floats: 0, ...partials }, 1);
    this.pool.call("reduce_partials", { dst: DB.ptr, offset_floats: cols, ...partials }, 1);
  }

  batchNormStats({ x, mean, variance, N, C, HW }: BatchNormStatsArgs): void {
    const X = this.own(x), Mn = this.own(mean), V = this.own(variance);
    this.span(X, 0, N * C * HW, "batchNormStats x");
    this.span(Mn, 0, C, "batchNormStats mean");
    this.span(V, 0, C, "batchNormStats var");
    this.pool.call(
      "bn_stats",
      { x: X.ptr, mean: Mn.ptr, var: V.ptr, n: N, c: C, hw: HW },
      this.parRows(C, N * HW * 2),
    );
  }

  batchNormApply(
    { x, mean, variance, gamma, beta, y, N, C, HW, eps, relu }: BatchNormApplyArgs,
  ): void {
    const [X, Mn, V, G, Bt, Y] = [x, mean, variance, gamma, beta, y].map((b) => this.own(b));
    this.span(X, 0, N * C * HW, "batchNormApply x");
    this.span(Y, 0, N * C * HW, "batchNormApply y");
    for (const b of [Mn, V, G, Bt]) this.span(b, 0, C, "batchNormApply params");
    this.pool.call("bn_apply", {
      x: X.ptr,
      mean: Mn.ptr,
      var: V.ptr,
      gamma: G.ptr,
      beta: Bt.ptr,
      y: Y.ptr,
      n: N,
      c: C,
      hw: HW,
      eps,
    }, this.parRows(N * C, HW));
    // The ReLU fusion is a GPU memory-traffic saving; here it is the same two passes as before.
    if (relu) this.unary("relu", y, y, N * C * HW);
  }

  batchNormBackward(a: BatchNormBackwardArgs): void {
    if (!a.reluOut) return this.batchNormBackwardPlain(a);
    // dy through the fused ReLU first (relu' of its output equals relu' of its input).
    const n = a.N * a.C * a.HW;
    const masked = this.alloc(n);
    this.unaryBackward({ op: "relu", x: a.reluOut, dy: a.dy, dx: masked, n });
    this.batchNormBackwardPlain({ ...a, dy: masked, reluOut: undefined });
    this.free(masked);
  }

  private batchNormBackwardPlain(
    { x, mean, variance, gamma, dy, dx, dgamma, dbeta, N, C, HW, eps }: BatchNormBackwardArgs,
  ): void {
    const [X, Mn, V, G, DY, DX, DG, DB] = [x, mean, variance, gamma, dy, dx, dgamma, dbeta].map(
      (b) => this.own(b),
    );
    for (const b of [X, DY, DX]) this.span(b, 0, N * C * HW, "batchNormBackward");
    for (const b of [Mn, V, G, DG, DB]) this.span(b, 0, C, "batchNormBackward params");
    this.pool.call("bn_bwd", {
      x: X.ptr,
      mean: Mn.ptr,
      var: V.ptr,
      gamma: G.ptr,
      dy: DY.ptr,
      dx: DX.ptr,
      dgamma: DG.ptr,
      dbeta: DB.ptr,
      n: N,
      c: C,
      hw: HW,
      eps,
    }, this.parRows(C, N * HW * 3));
  }

  maxPool2d(x: Buf, y: Buf, argmax: Buf, p: Pool2dParams): void {
    const X = this.own(x), Y = this.own(y), A = this.own(argmax);
    const planes = p.N * p.C;
    this.span(X, 0, planes * p.H * p.W, "maxPool2d x");
    this.span(Y, 0, planes * p.OH * p.OW, "maxPool2d y");
    this.span(A, 0, planes * p.OH * p.OW, "maxPool2d argmax");
    this.pool.call("max_pool", {
      x: X.ptr,
      y: Y.ptr,
      argmax: A.ptr,
      planes,
      h: p.H,
      w: p.W,
      k: p.K,
      s: p.stride,
      pad: p.pad,
      oh: p.OH,
      ow: p.OW,
    }, this.parRows(planes, p.OH * p.OW * p.K * p.K));
  }

  maxPool2dBackward(dy: Buf, argmax: Buf, dx: Buf, p: Pool2dParams): void {
    const DY = this.own(dy), A = this.own(argmax), DX = this.own(dx);
    const planes = p.N * p.C;
    this.span(DY, 0, planes * p.OH * p.OW, "maxPool2dBackward dy");
    this.span(A, 0, planes * p.OH * p.OW, "maxPool2dBackward argmax");
    this.span(DX, 0, planes * p.H * p.W, "maxPool2dBackward dx");
    this.pool.call(
      "max_pool_bwd",
      { dy: DY.ptr, argmax: A.ptr, dx: DX.ptr, planes, hw_in: p.H * p.W, hw_out: p.OH * p.OW },
      this.parRows(planes, p.H * p.W),
    );
  }

  // ---- indexing / losses / randomness ----

  embedding({ ids, table, out, n, dim }: EmbeddingArgs): void {
    const I = this.own(ids), T = this.own(table), O = this.own(out);
    this.span(I, 0, n, "embedding ids");
    this.span(O, 0, n * dim, "embedding out");
    this.checkIds(I, n, T.numel / dim, "embedding");
    this.pool.call(
      "embedding",
      { ids: I.ptr, table: T.ptr, out: O.ptr, n, dim },
      this.parRows(n, dim),
    );
  }

  embeddingBackward({ ids, dy, dtable, n, dim }: EmbeddingBackwardArgs): void {
    const I = this.own(ids), DY = this.own(dy), T = this.own(dtable);
    this.span(I, 0, n, "embeddingBackward ids");
    this.span(DY, 0, n * dim, "embeddingBackward dy");
    this.checkIds(I, n, T.numel / dim, "embeddingBackward");
    this.pool.call(
      "embedding_bwd",
      { ids: I.ptr, dy: DY.ptr, dtable: T.ptr, n, dim },
      this.par(n * dim),
    );
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
    this.pool.call("cross_entropy", {
      logits: L.ptr,
      targets: T.ptr,
      loss: LS.ptr,
      dlogits: D.ptr,
      rows,
      cols,
      ignore: ignoreIndex,
      scale,
    }, this.parRows(rows, cols * 8));
  }

  dropoutMask({ mask, n, p, seed, offset }: DropoutMaskArgs): void {
    const M = this.own(mask);
    this.span(M, 0, n, "dropoutMask");
    this.pool.call(
      "dropout_mask",
      { mask: M.ptr, n, p, seed: seed >>> 0, offset: offset >>> 0 },
      this.par(n * 4),
    );
  }

  // ---- optimizer ----

  sgdStep(a: SgdStepArgs): void {
    const { w, g, m, n, lr, momentum, weightDecay, clip } = a;
    if (clip) {
      // clip a copy (the fused form leaves g as it is), then the plain step
      const gc = this.alloc(n);
      this.axpby({ x: g, y: gc, alpha: 1, beta: 0, n });
      this.clipByNorm(gc, n, clip.sumsq, clip.maxNorm);
      this.sgdStep({ ...a, g: gc, clip: undefined });
      this.free(gc);
      return;
    }
    const W = this.own(w), G = this.own(g), Mo = this.own(m);
    for (const b of [W, G, Mo]) this.span(b, 0, n, "sgdStep");
    this.pool.call(
      "sgd_step",
      { w: W.ptr, g: G.ptr, m: Mo.ptr, n, lr, momentum, wd: weightDecay },
      this.par(n),
    );
  }

  lookaheadSync(fast: Buf, slow: Buf, n: number, alpha: number): void {
    const F = this.own(fast), S = this.own(slow);
    this.span(F, 0, n, "lookaheadSync fast");
    this.span(S, 0, n, "lookaheadSync slow");
    this.pool.call("lookahead_sync", { fast: F.ptr, slow: S.ptr, n, alpha }, this.par(n));
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
    return this.pool.threadsFor(work);
  }

  /** Threads for a row-split kernel: never more than there are rows. */
  private parRows(rows: number, perRow: number): number {
    return this.pool.threadsForRows(rows, perRow);
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
