/**
 * The kernel-level contract that both compute backends (`wasm`, `webgpu`) and the pure-TS
 * reference backend (`ref`, for tests) implement. The autograd layer (engine/tensor.ts,
 * engine/ops/) is written once against this interface.
 *
 * Conventions:
 * - Buffers are flat, contiguous, row-major. dtype "f32" (default) or "i32" (token ids, targets,
 *   argmax indices). Element offsets/counts are in elements, never bytes.
 * - Kernel calls only *enqueue* work and return nothing: the wasm backend may run them at once,
 *   the webgpu backend records them into a command encoder and submits on flush()/read().
 *   Nothing inside a training step needs a readback.
 * - Every kernel writes its whole output (beta = 0 means "overwrite", never "read then scale"),
 *   except where `accumulate`/`beta` says otherwise.
 * - Shapes use NCHW for images; matrices are [rows, cols].
 */

export type DType = "f32" | "i32";

/** Opaque handle to device memory. */
export interface Buf {
  readonly id: number;
  readonly numel: number;
  readonly dtype: DType;
}

export interface MatmulParams {
  batch: number; // number of independent products
  M: number;
  N: number;
  K: number;
  transA: boolean; // A stored [K, M] when true, else [M, K]
  transB: boolean; // B stored [N, K] when true, else [K, N]
  strideA: number; // elements between consecutive A matrices (0 broadcasts one A)
  strideB: number;
  strideC: number;
  offsetA?: number;
  offsetB?: number;
  offsetC?: number;
  alpha?: number; // default 1
  beta?: number; // default 0: C = alpha*op(A)@op(B) + beta*C
}

export interface Conv2dParams {
  N: number;
  C: number; // input channels
  H: number;
  W: number;
  O: number; // output channels
  KH: number;
  KW: number;
  stride: number;
  pad: number;
  OH: number; // (H + 2*pad - KH)/stride + 1
  OW: number;
}

export interface Pool2dParams {
  N: number;
  C: number;
  H: number;
  W: number;
  K: number; // window (square)
  stride: number;
  pad: number;
  OH: number;
  OW: number;
}

/** Every unary op the kernels implement (gelu is the erf form: x * 0.5 * (1 + erf(x / sqrt(2)))). */
export const UNARY_OPS = [
  "relu",
  "gelu",
  "exp",
  "log",
  "neg",
  "sqrt",
  "rsqrt",
  "tanh",
  "sigmoid",
  "abs",
  "square",
] as const;
export type UnaryOp = typeof UNARY_OPS[number];

export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min";

/** Strided view for broadcasting binary ops and strided copies (rank <= 6). */
export interface View {
  offset: number;
  strides: number[]; // in elements; 0 broadcasts that axis
}

export interface Backend {
  readonly name: "ref" | "wasm" | "webgpu";
  /** True when f16 storage/compute is available (webgpu with shader-f16). */
  readonly supportsF16: boolean;

  // ---- memory ----
  alloc(numel: number, dtype?: DType): Buf;
  free(buf: Buf): void;
  write(buf: Buf, data: Float32Array | Int32Array, offset?: number): void;
  /**
   * Reads a buffer back. The contents are captured when read() is called (after all work
   * enqueued before it), so the buffer may be freed or reused as soon as read() returns its
   * promise: callers can start a read and await it later (the trainer reads losses a step late).
   */
  read(buf: Buf): Promise<Float32Array | Int32Array>;
  fill(buf: Buf, value: number, offset?: number, count?: number): void;
  /** Submits pending work and waits for it (webgpu); no-op for synchronous backends. */
  flush(): Promise<void>;
  /** Live allocation counters, for leak tests. */
  stats(): { liveBuffers: number; liveBytes: number; pooledBytes: number };
  destroy(): void;

  /**
   * Optional (webgpu): one device allocation holding buffers of `sizes` elements back to back
   * (`parts`, used like any Buf) and `whole`, one f32 Buf over all of them with zero padding
   * between parts, so an optimizer can update many parameters with one kernel. Free `whole` and
   * every part to release it. `maxFlatNumel` bounds whole's size.
   */
  allocFlat?(sizes: readonly number[]): FlatBuf;
  readonly maxFlatNumel?: number;

  // ---- dense linear algebra ----
  matmul(a: Buf, b: Buf, c: Buf, p: MatmulParams): void;
  /** y = conv(x, w) (+ bias[O] when given). x [N,C,H,W], w [O,C,KH,KW], y [N,O,OH,OW]. */
  conv2d(a: Conv2dArgs): void;
  /** dx = conv_transpose(dy, w); overwrites dx [N,C,H,W]. */
  conv2dBackwardData(a: Conv2dBackwardDataArgs): void;
  /** dw (+)= correlation of x and dy; dw [O,C,KH,KW]. accumulate adds into dw. */
  conv2dBackwardFilter(a: Conv2dBackwardFilterArgs): void;

  // ---- elementwise ----
  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void;
  /** dx = dy * f'(x) for relu | gelu | tanh | sigmoid (x is the op's input). */
  unaryBackward(a: UnaryBackwardArgs): void;
  /** out[i] = a[va(i)] op b[vb(i)] over `shape` (out contiguous). */
  binary(a: BinaryArgs): void;
  /** y = alpha * x + beta * y over n elements (beta = 0 overwrites). */
  axpby(a: AxpbyArgs): void;
  /** y[yOffset + i] = x[vx(i)] over `shape` (y contiguous): permute/slice/concat. */
  copyStrided(a: CopyStridedArgs): void;
  /** Sums x viewed as [outer, reduce, inner] over the middle axis into y [outer, inner]. */
  reduceSum(a: ReduceSumArgs): void;
  /** out[0] (+)= sum of squares of x[0..n): for global gradient norms. */
  sumSquares(x: Buf, n: number, out: Buf, accumulate: boolean): void;
  /** x *= min(1, maxNorm / (sqrt(sumsq[0]) + 1e-6)): gradient clipping without readback. */
  clipByNorm(x: Buf, n: number, sumsq: Buf, maxNorm: number): void;

  // ---- normalization / activation with state ----
  /** Row softmax of x [rows, cols] into y. */
  softmax(x: Buf, y: Buf, rows: number, cols: number): void;
  /** dx = y * (dy - sum(dy * y)) per row. */
  softmaxBackward(a: SoftmaxBackwardArgs): void;
  /** LayerNorm over the last dim; saves mean/rstd [rows] for backward. */
  layerNorm(a: LayerNormArgs): void;
  /** Writes dx; accumulates dgamma/dbeta [cols]. */
  layerNormBackward(a: LayerNormBackwardArgs): void;
  /** Per-channel mean and biased variance of x [N,C,HW] into mean/variance [C]. */
  batchNormStats(a: BatchNormStatsArgs): void;
  /** y = (x - mean) * rstd(variance, eps) * gamma + beta, per channel (then ReLU if `relu`). */
  batchNormApply(a: BatchNormApplyArgs): void;
  /**
   * Training-mode backward (batch statistics); writes dx, accumulates dgamma/dbeta. With
   * `reluOut` (the output of a ReLU-fused apply) dy only passes where reluOut > 0.
   */
  batchNormBackward(a: BatchNormBackwardArgs): void;
  /** Max pool; argmax (i32, index into the input plane) saved for backward. */
  maxPool2d(x: Buf, y: Buf, argmax: Buf, p: Pool2dParams): void;
  maxPool2dBackward(dy: Buf, argmax: Buf, dx: Buf, p: Pool2dParams): void;

  // ---- indexing / losses / randomness ----
  /** out[i, :] = table[ids[i], :]; ids i32 [n], table [vocab, dim]. */
  embedding(a: EmbeddingArgs): void;
  /** dtable[ids[i], :] += dy[i, :]. */
  embeddingBackward(a: EmbeddingBackwardArgs): void;
  /**
   * Softmax cross-entropy per row of logits [rows, cols] against i32 targets; rows whose target
   * equals ignoreIndex get loss 0. Writes loss [rows] and dlogits = (softmax - onehot) * scale
   * (0 for ignored rows), so the backward is ready without a second pass.
   */
  crossEntropy(a: CrossEntropyArgs): void;
  /**
   * mask[i] = keep ? 1/(1-p) : 0 where keep = uniform(seed, offset + i) >= p and uniform is
   * `counterUniform` below: every backend draws the same mask.
   */
  dropoutMask(a: DropoutMaskArgs): void;

  // ---- optimizer ----
  /**
   * PyTorch SGD without dampening: d = g + weightDecay*w; m = momentum*m + d; w -= lr*m. With m
   * zeroed before the first step this equals PyTorch's first step (m = d).
   */
  sgdStep(a: SgdStepArgs): void;
  /** slow += alpha * (fast - slow); fast = slow. */
  lookaheadSync(fast: Buf, slow: Buf, n: number, alpha: number): void;
}

// ---- named operands of the kernels with more than four (one object each, shared by all backends)

/** conv2d: x [N,C,H,W], w [O,C,KH,KW], optional bias [O], y [N,O,OH,OW]. */
export interface Conv2dArgs {
  x: Buf;
  w: Buf;
  bias: Buf | null;
  y: Buf;
  geom: Conv2dParams;
}

/** conv2dBackwardData: dy [N,O,OH,OW], w [O,C,KH,KW] -> dx [N,C,H,W] (overwritten). */
export interface Conv2dBackwardDataArgs {
  dy: Buf;
  w: Buf;
  dx: Buf;
  geom: Conv2dParams;
}

/** conv2dBackwardFilter: x [N,C,H,W], dy [N,O,OH,OW] -> dw [O,C,KH,KW] (added to if accumulate). */
export interface Conv2dBackwardFilterArgs {
  x: Buf;
  dy: Buf;
  dw: Buf;
  geom: Conv2dParams;
  accumulate: boolean;
}

export interface UnaryBackwardArgs {
  op: UnaryOp;
  x: Buf; // the forward op's input [n]
  dy: Buf; // [n]
  dx: Buf; // [n], overwritten
  n: number;
}

export interface BinaryArgs {
  op: BinaryOp;
  a: Buf;
  va: View;
  b: Buf;
  vb: View;
  out: Buf; // contiguous over `shape`
  shape: number[];
}

export interface AxpbyArgs {
  x: Buf;
  y: Buf;
  alpha: number;
  beta: number;
  n: number;
}

export interface CopyStridedArgs {
  x: Buf;
  vx: View;
  y: Buf;
  yOffset: number;
  shape: number[];
}

export interface ReduceSumArgs {
  x: Buf; // [outer, reduce, inner]
  y: Buf; // [outer, inner]
  outer: number;
  reduce: number;
  inner: number;
  accumulate: boolean;
}

export interface SoftmaxBackwardArgs {
  y: Buf; // the forward softmax output [rows, cols]
  dy: Buf;
  dx: Buf;
  rows: number;
  cols: number;
}

export interface LayerNormArgs {
  x: Buf; // [rows, cols]
  gamma: Buf; // [cols]
  beta: Buf; // [cols]
  y: Buf; // [rows, cols]
  mean: Buf; // [rows], saved for backward
  rstd: Buf; // [rows], saved for backward
  rows: number;
  cols: number;
  eps: number;
}

export interface LayerNormBackwardArgs {
  x: Buf;
  gamma: Buf;
  mean: Buf;
  rstd: Buf;
  dy: Buf;
  dx: Buf; // overwritten
  dgamma: Buf; // accumulated
  dbeta: Buf; // accumulated
  rows: number;
  cols: number;
}

/** Batch-norm geometry: x viewed as [N, C, HW]. */
export interface BatchNormShape {
  N: number;
  C: number;
  HW: number;
}

export interface BatchNormStatsArgs extends BatchNormShape {
  x: Buf;
  mean: Buf; // [C]
  variance: Buf; // [C], biased
}

export interface BatchNormApplyArgs extends BatchNormShape {
  x: Buf;
  mean: Buf;
  variance: Buf;
  gamma: Buf;
  beta: Buf;
  y: Buf;
  eps: number;
  /** Fuse a ReLU: y = max(0, bn(x)). */
  relu?: boolean;
}

export interface BatchNormBackwardArgs extends BatchNormShape {
  x: Buf;
  mean: Buf;
  variance: Buf;
  gamma: Buf;
  dy: Buf;
  dx: Buf; // overwritten
  dgamma: Buf; // accumulated
  dbeta: Buf; // accumulated
  eps: number;
  /** The ReLU-fused forward's output y: the gradient flows only where y > 0. */
  reluOut?: Buf;
}

export interface EmbeddingArgs {
  ids: Buf; // i32 [n]
  table: Buf; // [vocab, dim]
  out: Buf; // [n, dim]
  n: number;
  dim: number;
}

export interface EmbeddingBackwardArgs {
  ids: Buf; // i32 [n]
  dy: Buf; // [n, dim]
  dtable: Buf; // [vocab, dim], accumulated
  n: number;
  dim: number;
}

export interface CrossEntropyArgs {
  logits: Buf; // [rows, cols]
  targets: Buf; // i32 [rows]
  loss: Buf; // [rows]
  dlogits: Buf; // [rows, cols]
  rows: number;
  cols: number;
  ignoreIndex: number;
  scale: number;
}

export interface DropoutMaskArgs {
  mask: Buf; // [n]
  n: number;
  p: number;
  seed: number;
  offset: number;
}

export interface SgdStepArgs {
  w: Buf;
  g: Buf;
  m: Buf; // momentum buffer
  n: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /**
   * Fused gradient clipping: the step uses g·min(1, maxNorm / (sqrt(sumsq[0]) + 1e-6)); g itself
   * is left unchanged.
   */
  clip?: { sumsq: Buf; maxNorm: number };
}

/** What allocFlat returns: the parts, `whole` over them, and each part's element offset in it. */
export interface FlatBuf {
  whole: Buf;
  parts: Buf[];
  offsets: number[];
}

/** 32-bit integer hash (lowbias32, public-domain constants); all arithmetic mod 2^32. */
export function hash32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Counter-based uniform in [0, 1): 24 random bits of hash32(hash32(seed) ^ counter). */
export function counterUniform(seed: number, counter: number): number {
  return (hash32((hash32(seed) ^ counter) >>> 0) >>> 8) / 16777216;
}
