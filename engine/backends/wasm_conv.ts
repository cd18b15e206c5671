/**
 * Convolution planning for the wasm backend: which kernel sequence runs a convolution pass, on
 * raw addresses (the backend has checked the buffers).
 *
 * The choice, the same for all three passes (forward, data gradient, filter gradient):
 * 1. Batch-column: when an output plane is small (OH*OW <= columnBatchMaxOhw, default 32, and the
 *    column matrix fits in COLUMN_BATCH_MAX_BYTES), the whole batch becomes one [C*KH*KW, N*OH*OW]
 *    column matrix and one threaded GEMM (which itself packs B once into shared panels when the
 *    product is large): per-image GEMMs of a 2x2 or 4x4 plane are too thin to use the cores.
 * 2. Batch-parallel: with one thread, or at least two images per thread, threads claim whole
 *    images and each runs its image's implicit-im2col GEMM alone (no synchronisation per image;
 *    the filter gradient sums per-thread partials in a fixed order, so it is deterministic).
 * 3. Per-image: few large images; each image's GEMM is split over all threads in turn.
 * The stride-1 data gradient of a square kernel is a forward convolution of dy with the flipped,
 * transposed weights (no col2im), planned by the same rules.
 */
import type { Conv2dParams } from "../backend.ts";
import type { ScratchArena } from "./wasm_alloc.ts";
import type { WasmGemm } from "./wasm_gemm.ts";
import type { WasmPool } from "./wasm_pool.ts";

/** Default output-plane size at or below which the batch-column path is taken. */
export const COLUMN_BATCH_MAX_OHW = 32;
/** ... as long as its column matrix and transposed output fit in this many bytes. */
const COLUMN_BATCH_MAX_BYTES = 256 << 20;

/** Plans and runs the convolution passes of the wasm backend. */
export class WasmConv {
  constructor(
    private readonly pool: WasmPool,
    private readonly scratch: ScratchArena,
    private readonly gemm: WasmGemm,
    private readonly columnBatchMaxOhw: number,
  ) {}

  /**
   * y = conv(x, w) (+ bias; 0 for none) on raw addresses; `extra` bytes at the start of the
   * shared scratch are kept intact (they may hold the weights, see backwardData).
   */
  forward(
    { x, w, bias, y }: { x: number; w: number; bias: number; y: number },
    p: Conv2dParams,
    extra = 0,
  ): void {
    const nt = this.threads(p);
    const colBytes = this.columnBatchBytes(p);
    const shared = this.scratch.ensure(this.gemm.wsBytes, align64(extra) + colBytes);
    if (colBytes) {
      // col [CKK, N*OHW]; yt = W @ col [O, N, OHW]; y [N, O, OHW] = swap(yt) + bias.
      const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW, cols = p.N * ohw;
      const col = shared + align64(extra), yt = col + 4 * ckk * cols;
      this.pool.call("im2col_batch", { x, col, n: p.N, ...geomNoO(p) }, this.rows(ckk, cols));
      this.gemm.single(
        { M: p.O, N: cols, K: ckk, a: w, b: col, c: yt, transA: false, transB: false, beta: 0 },
        nt,
      );
      this.pool.call(
        "swap_outer",
        { src: yt, dst: y, a: p.O, b: p.N, l: ohw, bias },
        this.rows(p.O * p.N, ohw),
      );
      return;
    }
    const ws = { ws: this.scratch.address, ws_stride: this.gemm.wsBytes };
    if (this.batchParallel(p.N, nt)) {
      this.pool.call("conv2d_fwd_batch", { x, w, bias, y, n: p.N, ...geom(p), ...ws }, nt);
      return;
    }
    // Few images: each image's output is split over all threads instead.
    const ohw = p.OH * p.OW;
    for (let n = 0; n < p.N; n++) {
      this.pool.call("conv2d_fwd_img", {
        x: x + 4 * n * p.C * p.H * p.W,
        w,
        y: y + 4 * n * p.O * ohw,
        ...geom(p),
        ...ws,
      }, nt);
    }
    if (bias) this.pool.call("bias_add_planes", { y, bias, n: p.N, o: p.O, hw: ohw }, nt);
  }

  /** dx = conv_transpose(dy, w), overwriting dx, on raw addresses. */
  backwardData({ dy, w, dx }: { dy: number; w: number; dx: number }, p: Conv2dParams): void {
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
      const w2 = this.scratch.ensure(this.gemm.wsBytes, align64(wBytes) + this.columnBatchBytes(q));
      this.pool.call("flip_weights", { w, w2, o: p.O, c: p.C, kh: p.KH, kw: p.KW }, 1);
      this.forward({ x: dy, w: w2, bias: 0, y: dx }, q, wBytes);
      return;
    }
    const nt = this.threads(p);
    const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW;
    const colBytes = this.columnBatchBytes(p);
    if (colBytes) {
      // dyt = swap(dy) [O, N*OHW]; dcol = W^T @ dyt [CKK, N*OHW]; dx = col2im(dcol).
      const cols = p.N * ohw;
      const dcol = this.scratch.ensure(this.gemm.wsBytes, colBytes), dyt = dcol + 4 * ckk * cols;
      this.swapOuter(dy, dyt, p.N, p.O, ohw);
      this.gemm.single(
        { M: ckk, N: cols, K: p.O, a: w, b: dyt, c: dcol, transA: true, transB: false, beta: 0 },
        nt,
      );
      if (isPointwise(p)) this.swapOuter(dcol, dx, p.C, p.N, ohw);
      else {
        this.pool.call(
          "col2im_batch",
          { col: dcol, dx, n: p.N, ...geomNoO(p) },
          this.rows(p.N * p.C, p.H * p.W),
        );
      }
      return;
    }
    if (this.batchParallel(p.N, nt)) {
      const stride = this.convWs(p);
      this.scratch.ensure(stride, 0);
      this.pool.call("conv2d_bwd_data_batch", {
        dy,
        w,
        dx,
        n: p.N,
        ...geom(p),
        ws: this.scratch.address,
        ws_stride: stride,
      }, nt);
      return;
    }
    const pointwise = isPointwise(p);
    const col = this.scratch.ensure(this.gemm.wsBytes, pointwise ? 0 : ckk * ohw * 4);
    for (let n = 0; n < p.N; n++) {
      const dxi = dx + 4 * n * p.C * p.H * p.W;
      // W stored [O, CKK] is op(A)^T storage for A = W^T [CKK, O].
      this.gemm.single({
        M: ckk,
        N: ohw,
        K: p.O,
        a: w,
        b: dy + 4 * n * p.O * ohw,
        c: pointwise ? dxi : col,
        transA: true,
        transB: false,
        beta: 0,
      }, nt);
      if (!pointwise) this.pool.call("col2im", { col, dx: dxi, ...geomNoO(p) }, nt);
    }
  }

  /** dw (+)= correlation of x and dy, on raw addresses. */
  backwardFilter(
    { x, dy, dw }: { x: number; dy: number; dw: number },
    p: Conv2dParams,
    accumulate: boolean,
  ): void {
    const nt = this.threads(p);
    const ckk = p.C * p.KH * p.KW, ohw = p.OH * p.OW;
    const colBytes = this.columnBatchBytes(p);
    if (colBytes) {
      // dyt = swap(dy) [O, N*OHW]; col [CKK, N*OHW]; dW (+)= dyt @ col^T.
      const cols = p.N * ohw;
      const col = this.scratch.ensure(this.gemm.wsBytes, colBytes), dyt = col + 4 * ckk * cols;
      this.swapOuter(dy, dyt, p.N, p.O, ohw);
      this.pool.call("im2col_batch", { x, col, n: p.N, ...geomNoO(p) }, this.rows(ckk, cols));
      this.gemm.single({
        M: p.O,
        N: ckk,
        K: cols,
        a: dyt,
        b: col,
        c: dw,
        transA: false,
        transB: true,
        beta: accumulate ? 1 : 0,
      }, nt);
      return;
    }
    if (this.batchParallel(p.N, nt)) {
      const stride = this.convWs(p);
      this.scratch.ensure(stride, 0);
      const base = this.scratch.address;
      this.pool.call("conv2d_bwd_filter_batch", {
        x,
        dy,
        n: p.N,
        ...geom(p),
        ws: base,
        ws_stride: stride,
      }, nt);
      // Each thread's partial dW sits after its packing space and column block.
      this.pool.call("reduce_partials", {
        dst: dw,
        base,
        stride,
        offset_floats: this.gemm.wsBytes / 4 + ckk * ohw,
        count: nt,
        n: p.O * ckk,
        accumulate,
      }, this.pool.threadsFor(p.O * ckk * nt));
      return;
    }
    const pointwise = isPointwise(p);
    const col = this.scratch.ensure(this.gemm.wsBytes, pointwise ? 0 : ckk * ohw * 4);
    for (let n = 0; n < p.N; n++) {
      const xi = x + 4 * n * p.C * p.H * p.W;
      if (!pointwise) this.pool.call("im2col", { x: xi, col, ...geomNoO(p) }, nt);
      // dW [O, CKK] (+)= dy[n] [O, OHW] @ col^T, col stored [CKK, OHW] (transB).
      this.gemm.single({
        M: p.O,
        N: ckk,
        K: ohw,
        a: dy + 4 * n * p.O * ohw,
        b: pointwise ? xi : col,
        c: dw,
        transA: false,
        transB: true,
        beta: n === 0 && !accumulate ? 0 : 1,
      }, nt);
    }
  }

  /** dst [b, a, l] = src [a, b, l] with the two outer axes swapped. */
  private swapOuter(src: number, dst: number, a: number, b: number, l: number): void {
    this.pool.call("swap_outer", { src, dst, a, b, l, bias: 0 }, this.rows(a * b, l));
  }

  private threads(p: Conv2dParams): number {
    return this.pool.threadsFor((p.N * p.O * p.OH * p.OW * p.C * p.KH * p.KW) / 32);
  }

  private rows(rows: number, perRow: number): number {
    return this.pool.threadsForRows(rows, perRow);
  }

  /** Scratch bytes of the batch-column path (column matrix + transposed output), else 0. */
  private columnBatchBytes(p: Conv2dParams): number {
    const ohw = p.OH * p.OW, ckk = p.C * p.KH * p.KW;
    const bytes = align64(4 * ckk * p.N * ohw) + 4 * p.O * p.N * ohw;
    return ohw <= this.columnBatchMaxOhw && bytes <= COLUMN_BATCH_MAX_BYTES ? bytes : 0;
  }

  private batchParallel(n: number, nt: number): boolean {
    // Images are claimed dynamically, so two per thread keep the threads busy.
    return nt === 1 || n >= 2 * nt;
  }

  /** Per-thread workspace of the batch-parallel backward kernels, in bytes. */
  private convWs(p: Conv2dParams): number {
    const floats = this.pool.query("conv_ws_floats", {
      c: p.C,
      o: p.O,
      kh: p.KH,
      kw: p.KW,
      oh: p.OH,
      ow: p.OW,
    });
    return align64(floats * 4);
  }
}

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

/** The geometry parameters the conv kernels take, named as in their Rust signatures. */
function geom(p: Conv2dParams) {
  return { ...geomNoO(p), o: p.O };
}

/** As geom, for the kernels that take no output-channel count. */
function geomNoO(p: Conv2dParams) {
  return {
    c: p.C,
    h: p.H,
    wd: p.W,
    kh: p.KH,
    kw: p.KW,
    s: p.stride,
    p: p.pad,
    oh: p.OH,
    ow: p.OW,
  };
}

function isPointwise(p: Conv2dParams): boolean {
  return p.KH === 1 && p.KW === 1 && p.stride === 1 && p.pad === 0;
}
