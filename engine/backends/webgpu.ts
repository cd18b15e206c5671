/**
 * WebGPU compute backend: WGSL kernels recorded into one command encoder and submitted only on
 * flush()/read() (or when the per-dispatch uniform arena fills), pooled storage buffers, and
 * pipelines compiled once per kernel specialization. See engine/backends/webgpu/ for kernels.
 */
import {
  type AxpbyArgs,
  type Backend,
  type BatchNormApplyArgs,
  type BatchNormBackwardArgs,
  type BatchNormStatsArgs,
  type BinaryArgs,
  type Buf,
  type Conv2dArgs,
  type Conv2dBackwardDataArgs,
  type Conv2dBackwardFilterArgs,
  type CopyStridedArgs,
  type CrossEntropyArgs,
  type DropoutMaskArgs,
  type DType,
  type EmbeddingArgs,
  type EmbeddingBackwardArgs,
  type FlatBuf,
  hash32,
  type LayerNormArgs,
  type LayerNormBackwardArgs,
  type MatmulParams,
  type Pool2dParams,
  type ReduceSumArgs,
  type SgdStepArgs,
  type SoftmaxBackwardArgs,
  type UnaryBackwardArgs,
  type UnaryOp,
} from "../backend.ts";
import { adapterIsFallback, adapterName } from "./webgpu/adapter.ts";
import { type BufRange, GpuContext, type Grid } from "./webgpu/context.ts";
import { isHalf, type KernelSpec } from "./webgpu/kernel.ts";
import { coalesce, numelOf } from "../shape.ts";
import { grid1d, MAX_RANK } from "./webgpu/shape.ts";
import * as ew from "./webgpu/wgsl_elementwise.ts";
import { type AnyBuf, BufferTable, type GpuBufEntry } from "./webgpu/buffers.ts";
import { GpuLinalg, type KernelSet } from "./webgpu/linalg.ts";
import { COOP_FEATURE, type CoopSupport, probeCoopOnce } from "./webgpu/coop.ts";
import type { TileShape } from "./webgpu/wgsl_tile_gemm.ts";
import * as rd from "./webgpu/wgsl_reduce.ts";
import { GpuNorm } from "./webgpu/norm.ts";

export { probeWebGpu, type WebGpuProbe } from "./webgpu/adapter.ts";

/** Options for createWebGpuBackend. */
export interface WebGpuOptions {
  powerPreference?: GPUPowerPreference;
  forceFallbackAdapter?: boolean;
  /** Cap on bytes kept on the buffer pool's free lists (default 1 GiB). */
  maxPooledBytes?: number;
  /**
   * Zero buffers on alloc like the reference backend does (default false: the engine's
   * `empty` is uninitialized and `zeros`/`full` fill explicitly; fresh GPU buffers are zero).
   */
  zeroOnAlloc?: boolean;
  /**
   * GEMM tiling family: "gpu" (shared-memory tiles), "cpu" (barrier-free direct kernels, 8×8
   * threads × 8×8 blocks, for software adapters) or "auto" (default: "cpu" on fallback adapters).
   */
  gemmProfile?: "auto" | "gpu" | "cpu";
  /**
   * Kernel set: "current" (default) or "legacy", the matmul/convolution, batch-norm and optimizer
   * kernels before issue 14, for before/after profiles in one run (bench/gpu --part profile).
   */
  kernels?: KernelSet;
  /** Legacy set: force the GEMM register block (TM×TN per thread). */
  gemmBlock?: { TM: number; TN: number; WX?: number; WY?: number };
  /** Current set, "gpu" tiling: force one tile shape (tests cover each shape). */
  gemmTile?: TileShape;
  /** Current set: split-K off (0) or forced to this many chunks (tests); default: by shape. */
  splitK?: number;
  /**
   * Submit recorded work every this many dispatches without waiting (0: only at flush / read).
   * Default 256 on hardware adapters with the current kernels, else 0.
   */
  submitEvery?: number;
  /**
   * Tensor cores for f16 products (AMP) where the adapter has `wgpu-cooperative-matrix` and a
   * variant passes the self-test at creation (default true; see webgpu/coop.ts).
   */
  coop?: boolean;
}

/**
 * Handle to an f16 buffer (webgpu extension, needs shader-f16): matmul accepts it for any of
 * A, B, C; castToF16 / castFromF16 convert; read/write/free take it like a Buf.
 */
export interface HalfBuf {
  readonly id: number;
  readonly numel: number;
  readonly dtype: "f16";
}

/** The webgpu Backend implementation. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu" as const;
  /** True when the device has shader-f16: HalfBuf storage and f16 matmul operands work. */
  readonly supportsF16: boolean;
  readonly ctx: GpuContext;
  private bufs: BufferTable;
  private dummy: GPUBuffer;
  /** The kernel set in use. */
  readonly kernels: KernelSet;
  /** Tensor-core variants verified at creation (null: none, or the adapter has no such feature). */
  readonly coop: CoopSupport | null;
  private linalg: GpuLinalg;
  private norm: GpuNorm;
  /** Why the subgroup batch-norm kernels are not used (null when they are, or never tried). */
  subgroupNote: string | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: { name: string; isFallback: boolean; hasF16: boolean },
    opts: WebGpuOptions & { coopSupport?: CoopSupport | null },
  ) {
    this.ctx = new GpuContext(device, opts.maxPooledBytes ?? 1 << 30);
    // Hardware GPUs start on a long step while JS records the rest; software adapters run a
    // submit on the CPU cores that record, so there it would only add overhead.
    // The legacy set keeps its one-submit-per-step behaviour (the "before" of bench/gpu).
    this.ctx.submitEvery = opts.submitEvery ??
      (adapterInfo.isFallback || opts.kernels === "legacy" ? 0 : 256);
    this.supportsF16 = adapterInfo.hasF16 && device.features.has("shader-f16");
    this.bufs = new BufferTable(this.ctx, opts.zeroOnAlloc ?? false);
    const prof = opts.gemmProfile ?? "auto";
    this.dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    this.kernels = opts.kernels ?? "current";
    this.coop = this.kernels === "current" && this.supportsF16 ? opts.coopSupport ?? null : null;
    const host = {
      run: this.run.bind(this),
      elemType: (b: AnyBuf) => (this.entry(b).dtype === "f16" ? "f16" as const : "f32" as const),
      alloc: (n: number) => this.alloc(n),
      free: (b: Buf) => this.free(b),
      reduceSum: this.reduceSum.bind(this),
      dummy: this.dummy,
    };
    if (this.kernels === "current") this.allocFlat = (sizes) => this.bufs.allocFlat(sizes);
    this.norm = new GpuNorm({
      ...host,
      write: (b, d) => this.write(b, d),
      read: (b) => this.read(b),
      flush: () => this.flush(),
      unary: this.unary.bind(this),
      unaryBackward: this.unaryBackward.bind(this),
    }, this.kernels === "legacy");
    this.linalg = new GpuLinalg(host, {
      kernels: this.kernels,
      cpuTiling: prof === "cpu" || (prof === "auto" && adapterInfo.isFallback),
      gemmBlock: opts.gemmBlock,
      tile: opts.gemmTile,
      splitK: opts.splitK,
      coop: this.coop,
    });
  }

  /** Tries the subgroupAdd batch-norm kernels (device with `subgroups`); see GpuNorm. */
  async useSubgroups(): Promise<boolean> {
    this.subgroupNote = await this.norm.checkSubgroups();
    return this.subgroupNote === null;
  }

  /** Applies an earlier self-test's verdict (null: passed) without running it again. */
  acceptSubgroups(note: string | null): void {
    this.subgroupNote = note;
    this.norm.subgroups = note === null;
  }

  /** True when batch norm's partial sums use subgroupAdd. */
  get subgroups(): boolean {
    return this.norm.subgroups;
  }

  /** Submission/dispatch counters and pool figures (diagnostics and batching tests). */
  counters(): { submits: number; dispatches: number; pipelines: number; poolHits: number } {
    return {
      submits: this.ctx.submits,
      dispatches: this.ctx.dispatches,
      pipelines: this.ctx.pipelineCount,
      poolHits: this.ctx.pool.reused,
    };
  }

  private entry(b: AnyBuf): GpuBufEntry {
    return this.bufs.entry(b);
  }

  /**
   * Records a kernel. Read-only bindings that alias a writable one are snapshotted into a
   * temp buffer first (WebGPU forbids one buffer as both in a dispatch). Temps go back to
   * the pool at once: any later user of that buffer is recorded after this dispatch, and the
   * queue keeps recorded work in order.
   */
  private run(
    spec: KernelSpec,
    bufs: readonly (AnyBuf | GPUBuffer)[],
    params: number[],
    grid: Grid,
  ) {
    const ranges: BufRange[] = bufs.map((b, i) => {
      if (!("id" in b && "numel" in b)) return { buffer: b as GPUBuffer, offset: 0 };
      const e = this.entry(b as AnyBuf);
      if ((e.dtype === "f16") !== isHalf(spec.bindings[i].type)) {
        throw new Error(
          `webgpu backend: ${spec.key} binding ${spec.bindings[i].name} got a ${e.dtype} buffer`,
        );
      }
      return this.bufs.range(b as AnyBuf);
    });
    const writable = new Set<GPUBuffer>();
    spec.bindings.forEach((b, i) => {
      if (!b.rw) return;
      if (writable.has(ranges[i].buffer)) {
        throw new Error(`webgpu backend: ${spec.key} binds one buffer to two outputs`);
      }
      writable.add(ranges[i].buffer);
    });
    const snap = new Map<string, GPUBuffer>();
    const temps: GPUBuffer[] = [];
    spec.bindings.forEach((b, i) => {
      const r = ranges[i];
      if (b.rw || !writable.has(r.buffer)) return;
      const size = r.size ?? r.buffer.size;
      const key = `${this.ctx.idOf(r.buffer)}@${r.offset}`;
      let tmp = snap.get(key);
      if (!tmp) {
        tmp = this.ctx.pool.acquire(size);
        this.ctx.copy(r.buffer, r.offset, tmp, 0, size);
        temps.push(tmp);
        snap.set(key, tmp);
      }
      ranges[i] = { buffer: tmp, offset: 0 };
    });
    this.ctx.dispatch(spec, ranges, params, grid);
    for (const t of temps) this.ctx.pool.release(t);
  }

  // ---- memory ----
  alloc(numel: number, dtype: DType = "f32"): Buf {
    return this.allocAny(numel, dtype) as Buf;
  }

  /** Allocates an f16 buffer (requires supportsF16). */
  allocF16(numel: number): HalfBuf {
    if (!this.supportsF16) throw new Error("webgpu backend: this device has no shader-f16");
    return this.allocAny(numel, "f16") as HalfBuf;
  }

  private allocAny(numel: number, dtype: DType | "f16"): AnyBuf {
    return this.bufs.alloc(numel, dtype);
  }

  /** See Backend.allocFlat: one arena for the optimizer's flat updates (current kernel set). */
  allocFlat?: (sizes: readonly number[]) => FlatBuf;
  /** Largest flat allocation (elements). */
  get maxFlatNumel(): number {
    return this.bufs.maxFlatNumel;
  }

  free(buf: AnyBuf): void {
    this.bufs.free(buf);
  }

  write(buf: AnyBuf, data: Float32Array | Int32Array, offset = 0): void {
    const e = this.entry(buf);
    if (offset < 0 || offset + data.length > e.numel) {
      throw new Error(
        `webgpu backend: write of ${data.length} at ${offset} overflows buffer of ${e.numel}`,
      );
    }
    if (e.dtype === "f16") {
      // stage as f32, convert on the device
      const tmp = this.alloc(data.length);
      this.write(tmp, data);
      this.castInto(tmp, "f32", buf, "f16", data.length, offset);
      this.free(tmp);
      return;
    }
    let d = data;
    if (e.dtype === "f32" && !(d instanceof Float32Array)) d = Float32Array.from(d);
    if (e.dtype === "i32" && !(d instanceof Int32Array)) d = Int32Array.from(d);
    this.ctx.upload(e.gpu, e.offset + offset * 4, d);
  }

  async read(buf: AnyBuf): Promise<Float32Array | Int32Array> {
    const e = this.entry(buf);
    if (e.dtype === "f16") {
      const tmp = this.alloc(e.numel);
      this.castInto(buf, "f16", tmp, "f32", e.numel, 0);
      try {
        return await this.read(tmp);
      } finally {
        this.free(tmp);
      }
    }
    const bytes = await this.ctx.readBytes(e.gpu, e.offset, e.numel * 4);
    return e.dtype === "f32" ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  fill(buf: Buf, value: number, offset = 0, count?: number): void {
    const e = this.entry(buf);
    if (e.dtype === "f16") throw new Error("webgpu backend: fill of an f16 buffer");
    const n = count ?? e.numel - offset;
    if (offset < 0 || n < 0 || offset + n > e.numel) {
      throw new Error(`webgpu backend: fill of ${n} at ${offset} overflows buffer of ${e.numel}`);
    }
    const bits = e.dtype === "f32"
      ? new Uint32Array(new Float32Array([value]).buffer)[0]
      : (value | 0) >>> 0;
    this.run(ew.fillKernel(), [buf], [n, offset, bits], grid1d(Math.ceil(n / 256)));
  }

  flush(): Promise<void> {
    return this.ctx.finish();
  }

  stats(): { liveBuffers: number; liveBytes: number; pooledBytes: number } {
    return { ...this.bufs.counts(), pooledBytes: this.ctx.pool.pooledBytes };
  }

  destroy(): void {
    this.bufs.destroyAll();
    this.dummy.destroy();
    this.ctx.destroy();
    this.device.destroy();
  }

  /** y[offY + i] = convert(x[i]) for i < n between f32 and f16 buffers. */
  private castInto(
    x: AnyBuf,
    from: "f32" | "f16",
    y: AnyBuf,
    to: "f32" | "f16",
    n: number,
    offY: number,
  ): void {
    this.run(ew.castKernel(from, to), [x, y], [n, offY], grid1d(Math.ceil(n / 256)));
  }

  /** Converts n f32 values into an f16 buffer (round to nearest). */
  castToF16(x: Buf, y: HalfBuf, n: number): void {
    this.castInto(x, "f32", y, "f16", n, 0);
  }

  /** Converts n f16 values into an f32 buffer (exact). */
  castFromF16(x: HalfBuf, y: Buf, n: number): void {
    this.castInto(x, "f16", y, "f32", n, 0);
  }

  // ---- dense linear algebra (engine/backends/webgpu/linalg.ts) ----
  /** Matmul; with shader-f16 any operand may be a HalfBuf (f32 accumulation). */
  matmul(a: AnyBuf, b: AnyBuf, c: AnyBuf, p: MatmulParams): void {
    this.linalg.matmul(a, b, c, p);
  }

  conv2d(a: Conv2dArgs): void {
    this.linalg.conv2d(a);
  }

  conv2dBackwardData(a: Conv2dBackwardDataArgs): void {
    this.linalg.conv2dBackwardData(a);
  }

  conv2dBackwardFilter(a: Conv2dBackwardFilterArgs): void {
    this.linalg.conv2dBackwardFilter(a);
  }

  // ---- elementwise ----
  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void {
    this.run(ew.unaryKernel(op), [x, y], [n], grid1d(Math.ceil(n / 256)));
  }

  unaryBackward({ op, x, dy, dx, n }: UnaryBackwardArgs): void {
    this.run(ew.unaryBackwardKernel(op), [x, dy, dx], [n], grid1d(Math.ceil(n / 256)));
  }

  binary({ op, a, va, b, vb, out, shape }: BinaryArgs): void {
    const n = numelOf(shape);
    if (n === 0) return;
    const c = coalesce(shape, [va.strides, vb.strides]);
    const rank = c.shape.length;
    if (rank > MAX_RANK) throw new Error(`webgpu backend: binary rank ${rank} > ${MAX_RANK}`);
    const params = [n, va.offset, vb.offset];
    for (let d = 0; d < rank; d++) params.push(c.shape[d], c.strides[0][d], c.strides[1][d]);
    this.run(ew.binaryKernel(op, rank), [a, b, out], params, grid1d(Math.ceil(n / 256)));
  }

  axpby({ x, y, alpha, beta, n }: AxpbyArgs): void {
    this.run(ew.axpbyKernel(), [x, y], [n, alpha, beta], grid1d(Math.ceil(n / 256)));
  }

  copyStrided({ x, vx, y, yOffset, shape }: CopyStridedArgs): void {
    const n = numelOf(shape);
    if (n === 0) return;
    if (this.entry(x).dtype === "f16" || this.entry(y).dtype === "f16") {
      throw new Error("webgpu backend: copyStrided of f16 buffers is not supported");
    }
    const c = coalesce(shape, [vx.strides]);
    const rank = c.shape.length;
    if (rank > MAX_RANK) throw new Error(`webgpu backend: copy rank ${rank} > ${MAX_RANK}`);
    if (rank === 1 && c.strides[0][0] === 1 && x.id !== y.id) {
      // contiguous: a plain buffer copy
      const ex = this.entry(x), ey = this.entry(y);
      this.ctx.copy(ex.gpu, ex.offset + vx.offset * 4, ey.gpu, ey.offset + yOffset * 4, n * 4);
      return;
    }
    const params = [n, vx.offset, yOffset];
    for (let d = 0; d < rank; d++) params.push(c.shape[d], c.strides[0][d]);
    this.run(ew.copyStridedKernel(rank), [x, y], params, grid1d(Math.ceil(n / 256)));
  }

  reduceSum({ x, y, outer, reduce, inner, accumulate }: ReduceSumArgs): void {
    if (outer === 0 || inner === 0) return;
    if (inner === 1) {
      const spec = rd.segmentSumKernel(false);
      this.run(spec, [x, y], [outer * reduce, reduce, outer, accumulate ? 1 : 0, 0], grid1d(outer));
      return;
    }
    const tiles = Math.ceil(inner / 64);
    this.run(
      rd.reduceColsKernel(),
      [x, y],
      [outer, reduce, inner, tiles, accumulate ? 1 : 0],
      grid1d(outer * tiles),
    );
  }

  sumSquares(x: Buf, n: number, out: Buf, accumulate: boolean): void {
    const acc = accumulate ? 1 : 0;
    if (n <= 65536) {
      this.run(rd.segmentSumKernel(true), [x, out], [n, Math.max(n, 1), 1, acc, 0], [1, 1, 1]);
      return;
    }
    const segs = Math.min(1024, Math.ceil(n / 65536));
    const chunk = Math.ceil(n / segs);
    const part = this.alloc(segs);
    this.run(rd.segmentSumKernel(true), [x, part], [n, chunk, segs, 0, 0], grid1d(segs));
    this.run(rd.segmentSumKernel(false), [part, out], [segs, segs, 1, acc, 0], [1, 1, 1]);
    this.free(part);
  }

  clipByNorm(x: Buf, n: number, sumsq: Buf, maxNorm: number): void {
    this.run(ew.clipByNormKernel(), [sumsq, x], [n, maxNorm], grid1d(Math.ceil(n / 256)));
  }

  // ---- normalization / activation with state ----
  softmax(x: Buf, y: Buf, rows: number, cols: number): void {
    this.run(rd.softmaxKernel(), [x, y], [rows, cols], grid1d(rows));
  }

  softmaxBackward({ y, dy, dx, rows, cols }: SoftmaxBackwardArgs): void {
    this.run(rd.softmaxBackwardKernel(), [y, dy, dx], [rows, cols], grid1d(rows));
  }

  layerNorm({ x, gamma, beta, y, mean, rstd, rows, cols, eps }: LayerNormArgs): void {
    this.run(
      rd.layerNormKernel(),
      [x, gamma, beta, y, mean, rstd],
      [rows, cols, eps],
      grid1d(rows),
    );
  }

  layerNormBackward(
    { x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols }: LayerNormBackwardArgs,
  ): void {
    this.run(
      rd.layerNormBackwardDxKernel(),
      [x, gamma, mean, rstd, dy, dx],
      [rows, cols],
      grid1d(rows),
    );
    this.run(
      rd.layerNormBackwardParamsKernel(),
      [x, mean, rstd, dy, dgamma, dbeta],
      [rows, cols],
      grid1d(Math.ceil(cols / 64)),
    );
  }

  batchNormStats(a: BatchNormStatsArgs): void {
    this.norm.stats(a);
  }

  batchNormApply(a: BatchNormApplyArgs): void {
    this.norm.apply(a);
  }

  batchNormBackward(a: BatchNormBackwardArgs): void {
    this.norm.backward(a);
  }

  private poolParams(p: Pool2dParams, n: number): number[] {
    return [n, p.H, p.W, p.K, p.stride, p.pad, p.OH, p.OW];
  }

  maxPool2d(x: Buf, y: Buf, argmax: Buf, p: Pool2dParams): void {
    const n = p.N * p.C * p.OH * p.OW;
    this.run(ew.maxPoolKernel(), [x, y, argmax], this.poolParams(p, n), grid1d(Math.ceil(n / 256)));
  }

  maxPool2dBackward(dy: Buf, argmax: Buf, dx: Buf, p: Pool2dParams): void {
    const n = p.N * p.C * p.H * p.W;
    this.run(
      ew.maxPoolBackwardKernel(),
      [dy, argmax, dx],
      this.poolParams(p, n),
      grid1d(Math.ceil(n / 256)),
    );
  }

  // ---- indexing / losses / randomness ----
  embedding({ ids, table, out, n, dim }: EmbeddingArgs): void {
    const vocab = Math.floor(this.entry(table).numel / dim);
    const total = n * dim;
    this.run(
      ew.embeddingKernel(),
      [ids, table, out],
      [total, dim, vocab],
      grid1d(Math.ceil(total / 256)),
    );
  }

  embeddingBackward({ ids, dy, dtable, n, dim }: EmbeddingBackwardArgs): void {
    if (n === 0 || dim === 0) return;
    const vocab = Math.floor(this.entry(dtable).numel / dim);
    const link = this.alloc(2 * n, "i32");
    this.run(ew.embeddingLinkKernel(), [ids, link], [n], grid1d(Math.ceil(n / 256)));
    const total = n * dim;
    this.run(
      ew.embeddingScatterKernel(),
      [ids, link, dy, dtable],
      [total, dim, vocab, n],
      grid1d(Math.ceil(total / 256)),
    );
    this.free(link);
  }

  crossEntropy(
    { logits, targets, loss, dlogits, rows, cols, ignoreIndex, scale }: CrossEntropyArgs,
  ): void {
    this.run(
      rd.crossEntropyKernel(),
      [logits, targets, loss, dlogits],
      [rows, cols, ignoreIndex, scale],
      grid1d(rows),
    );
  }

  dropoutMask({ mask, n, p, seed, offset }: DropoutMaskArgs): void {
    // keep iff (h >> 8) / 2^24 >= p  <=>  (h >> 8) >= ceil(p · 2^24)  (exact in doubles)
    const thresh = Math.min(16777216, Math.max(0, Math.ceil(p * 16777216)));
    this.run(
      ew.dropoutKernel(),
      [mask],
      [n, thresh, hash32(seed), offset >>> 0, 1 / (1 - p)],
      grid1d(Math.ceil(n / 256)),
    );
  }

  // ---- optimizer ----
  sgdStep({ w, g, m, n, lr, momentum, weightDecay, clip }: SgdStepArgs): void {
    this.run(
      ew.sgdKernel(clip !== undefined),
      [w, g, m, clip?.sumsq ?? this.dummy],
      [n, lr, momentum, weightDecay, clip?.maxNorm ?? 0],
      grid1d(Math.ceil(n / 256)),
    );
  }

  lookaheadSync(fast: Buf, slow: Buf, n: number, alpha: number): void {
    this.run(ew.lookaheadKernel(), [fast, slow], [n, alpha], grid1d(Math.ceil(n / 256)));
  }
}

/** Subgroup self-test results by adapter name (null: passed). */
const subgroupVerdicts = new Map<string, string | null>();

/** Creates the webgpu backend on the default adapter; throws when WebGPU is unavailable. */
export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error("webgpu backend: navigator.gpu is not available");
  const adapter = await gpu.requestAdapter({
    powerPreference: opts.powerPreference,
    forceFallbackAdapter: opts.forceFallbackAdapter,
  });
  if (!adapter) throw new Error("webgpu backend: no WebGPU adapter found");
  const hasF16 = adapter.features.has("shader-f16");
  const lim = adapter.limits;
  // timestamp-query costs nothing until a profile is started (GpuContext.startProfile)
  const wanted = ["shader-f16", "timestamp-query", "subgroups"];
  if (hasF16 && opts.coop !== false) wanted.push(COOP_FEATURE);
  const device = await adapter.requestDevice({
    requiredFeatures: wanted.filter((f) => adapter.features.has(f)) as GPUFeatureName[],
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
    },
  });
  let coopSupport: CoopSupport | null = null;
  if (device.features.has(COOP_FEATURE)) {
    const info = adapter.info as GPUAdapterInfo & { subgroupMaxSize?: number };
    coopSupport = await probeCoopOnce(gpu, adapterName(adapter), {
      powerPreference: opts.powerPreference,
      workgroup: info.subgroupMaxSize || 32,
    });
  }
  const be = new WebGpuBackend(
    device,
    { name: adapterName(adapter), isFallback: adapterIsFallback(adapter), hasF16 },
    { ...opts, coopSupport },
  );
  if (device.features.has("subgroups") && be.kernels === "current") {
    // the self-test once per adapter and process; later backends take its verdict
    const name = adapterName(adapter);
    if (!subgroupVerdicts.has(name)) {
      await be.useSubgroups();
      subgroupVerdicts.set(name, be.subgroupNote);
    } else be.acceptSubgroups(subgroupVerdicts.get(name)!);
  }
  return be;
}
