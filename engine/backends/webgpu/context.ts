/**
 * Command recording for the webgpu backend: one open command encoder (and compute pass) that
 * every kernel call appends to, a uniform arena that gives each dispatch its own parameter slot,
 * the pipeline cache, and submission. Nothing is submitted until `submit()` — called by the
 * backend's flush()/read(), or early (without waiting) when the uniform arena fills up.
 */
import { assembleWgsl, type KernelSpec, paramBytes } from "./kernel.ts";
import { BufferPool } from "./pool.ts";

interface CompiledKernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  paramBytes: number;
}

/** Dispatch grid in workgroups. */
export type Grid = readonly [number, number, number];

/** One timed dispatch of a profile: the op label set by the caller, the kernel and its GPU time. */
export interface DispatchTiming {
  label: string;
  kernel: string;
  /** GPU nanoseconds between the pass's begin and end timestamps. */
  ns: number;
}

/** A storage binding: a buffer, or `size` bytes of it from `offset` (parts of a flat arena). */
export interface BufRange {
  buffer: GPUBuffer;
  offset: number;
  size?: number;
}

/** Timestamp queries per query set (two per dispatch). */
const QUERIES = 4096;

const ARENA_BYTES = 2 << 20;
const UPLOAD_BYTES = 4 << 20;

/** Owns the device-side recording state shared by all kernels of one backend instance. */
export class GpuContext {
  readonly pool: BufferPool;
  /** Number of queue submissions and recorded dispatches so far (for batching tests). */
  submits = 0;
  dispatches = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private kernels = new Map<string, CompiledKernel>();
  /** Bind groups by kernel + buffer identities (params come in through a dynamic offset). */
  private groups = new Map<string, GPUBindGroup>();
  private bufIds = new WeakMap<GPUBuffer, number>();
  private nextBufId = 1;
  private arena: GPUBuffer;
  private arenaCpu = new ArrayBuffer(ARENA_BYTES);
  private arenaU32 = new Uint32Array(this.arenaCpu);
  private arenaI32 = new Int32Array(this.arenaCpu);
  private arenaF32 = new Float32Array(this.arenaCpu);
  private arenaUsed = 0;
  private arenaAlign: number;
  private upArena: GPUBuffer;
  private upCpu = new Uint8Array(UPLOAD_BYTES);
  private upUsed = 0;
  private errors: string[] = [];
  /**
   * Submit after this many dispatches even while recording continues (0: only on
   * flush/read/arena overflow), so a GPU starts on a long step before JS has recorded all of it.
   */
  submitEvery = 0;
  private sinceSubmit = 0;
  /** Label attached to the dispatches recorded next (profiling; set by the caller). */
  opLabel = "";
  private profile: {
    sets: GPUQuerySet[];
    used: number; // queries used in the last set
    labels: { label: string; kernel: string }[];
  } | null = null;

  constructor(readonly device: GPUDevice, maxPooledBytes: number) {
    this.pool = new BufferPool(device, maxPooledBytes);
    this.arenaAlign = Math.max(16, device.limits.minUniformBufferOffsetAlignment);
    this.arena = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.upArena = device.createBuffer({
      size: UPLOAD_BYTES,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener("uncapturederror", (e) => {
      this.errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** True when commands are recorded but not yet submitted. */
  get pending(): boolean {
    return this.encoder !== null;
  }

  /** Throws (once) if the device reported validation or out-of-memory errors. */
  checkErrors(): void {
    if (this.errors.length === 0) return;
    const msg = this.errors.join("\n");
    this.errors = [];
    throw new Error(`webgpu backend: device error(s):\n${msg}`);
  }

  private compiled(spec: KernelSpec): CompiledKernel {
    let k = this.kernels.get(spec.key);
    if (k) return k;
    const code = assembleWgsl(spec);
    const module = this.device.createShaderModule({ code, label: spec.key });
    const entries: GPUBindGroupLayoutEntry[] = [{
      binding: 0,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "uniform", hasDynamicOffset: true },
    }];
    spec.bindings.forEach((b, i) =>
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.rw ? "storage" : "read-only-storage" },
      })
    );
    const layout = this.device.createBindGroupLayout({ entries, label: spec.key });
    const pipeline = this.device.createComputePipeline({
      label: spec.key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    k = { pipeline, layout, paramBytes: paramBytes(spec.params) };
    this.kernels.set(spec.key, k);
    return k;
  }

  /** Number of distinct compiled pipelines. */
  get pipelineCount(): number {
    return this.kernels.size;
  }

  private getEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Writes `values` into a fresh uniform slot typed by the spec's param fields. */
  private writeParams(spec: KernelSpec, values: readonly number[], bytes: number): number {
    if (values.length !== spec.params.length) {
      throw new Error(
        `webgpu backend: kernel ${spec.key} takes ${spec.params.length} params, got ${values.length}`,
      );
    }
    if (this.arenaUsed + bytes > ARENA_BYTES) this.submit();
    const off = this.arenaUsed;
    const w = off >> 2;
    spec.params.forEach(([, t], i) => {
      const v = values[i];
      if (t === "f32") this.arenaF32[w + i] = v;
      else if (t === "i32") this.arenaI32[w + i] = v;
      else this.arenaU32[w + i] = v >>> 0;
    });
    this.arenaUsed = Math.ceil((off + bytes) / this.arenaAlign) * this.arenaAlign;
    return off;
  }

  /**
   * Records one dispatch of `spec` with storage buffers bound in declaration order and the
   * given parameter values; a grid with a zero dimension records nothing.
   */
  dispatch(spec: KernelSpec, buffers: readonly BufRange[], params: readonly number[], grid: Grid) {
    if (grid[0] === 0 || grid[1] === 0 || grid[2] === 0) return;
    if (buffers.length !== spec.bindings.length) {
      throw new Error(`webgpu backend: kernel ${spec.key} binds ${spec.bindings.length} buffers`);
    }
    const k = this.compiled(spec);
    const off = this.writeParams(spec, params, k.paramBytes);
    const group = this.bindGroup(spec.key, k, buffers);
    if (this.profile) this.timedPass(spec.key);
    else if (!this.pass) this.pass = this.getEncoder().beginComputePass();
    this.pass!.setPipeline(k.pipeline);
    this.pass!.setBindGroup(0, group, [off]);
    this.pass!.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.dispatches++;
    if (this.profile) this.endPass();
    if (this.submitEvery > 0 && ++this.sinceSubmit >= this.submitEvery) this.submit();
  }

  /** True when the device can time passes (the backend requests timestamp-query if offered). */
  get canProfile(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * Starts timing every dispatch: each gets its own compute pass with begin/end timestamp
   * writes (the extra passes cost a little; use it for profiles, not for throughput figures).
   */
  startProfile(): void {
    if (!this.canProfile) throw new Error("webgpu backend: the device has no timestamp-query");
    this.endPass();
    this.profile = { sets: [], used: QUERIES, labels: [] };
  }

  private timedPass(kernel: string): void {
    const p = this.profile!;
    this.endPass();
    if (p.used + 2 > QUERIES) {
      p.sets.push(this.device.createQuerySet({ type: "timestamp", count: QUERIES }));
      p.used = 0;
    }
    const querySet = p.sets[p.sets.length - 1];
    this.pass = this.getEncoder().beginComputePass({
      timestampWrites: {
        querySet,
        beginningOfPassWriteIndex: p.used,
        endOfPassWriteIndex: p.used + 1,
      },
    });
    p.used += 2;
    p.labels.push({ label: this.opLabel, kernel });
  }

  /** Stops timing; waits for the GPU and returns every dispatch timed since startProfile(). */
  async stopProfile(): Promise<DispatchTiming[]> {
    const p = this.profile;
    if (!p) throw new Error("webgpu backend: stopProfile without startProfile");
    this.profile = null;
    this.endPass();
    const bytes = QUERIES * 8;
    const resolved = p.sets.map((qs, i) => {
      const count = i === p.sets.length - 1 ? p.used : QUERIES;
      const dst = this.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      const read = this.device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      if (count > 0) this.getEncoder().resolveQuerySet(qs, 0, count, dst, 0);
      this.getEncoder().copyBufferToBuffer(dst, 0, read, 0, bytes);
      return { qs, dst, read };
    });
    this.submit();
    const out: DispatchTiming[] = [];
    try {
      for (const [i, r] of resolved.entries()) {
        await r.read.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(r.read.getMappedRange().slice(0));
        r.read.unmap();
        const count = i === resolved.length - 1 ? p.used : QUERIES;
        for (let q = 0; q < count; q += 2) {
          const d = t[q + 1] - t[q];
          out.push({ ...p.labels[out.length], ns: d > 0n ? Number(d) : 0 });
        }
      }
    } finally {
      for (const r of resolved) {
        r.qs.destroy();
        r.dst.destroy();
        r.read.destroy();
      }
    }
    this.checkErrors();
    return out;
  }

  /** A stable small id for a GPU buffer (bind-group cache keys). */
  idOf(b: GPUBuffer): number {
    return this.bufId(b);
  }

  private bufId(b: GPUBuffer): number {
    let id = this.bufIds.get(b);
    if (id === undefined) this.bufIds.set(b, id = this.nextBufId++);
    return id;
  }

  /**
   * The bind group of a kernel over these buffers, cached: pooled buffers come back as the same
   * objects step after step, so a training loop reuses its groups. The cache is cleared when it
   * grows large (entries of destroyed buffers can never match again).
   */
  private bindGroup(key: string, k: CompiledKernel, buffers: readonly BufRange[]): GPUBindGroup {
    let gk = key;
    for (const b of buffers) gk += `|${this.bufId(b.buffer)}@${b.offset}`;
    let g = this.groups.get(gk);
    if (g) return g;
    if (this.groups.size >= 8192) this.groups.clear();
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.arena, offset: 0, size: k.paramBytes },
    }];
    buffers.forEach((b, i) =>
      entries.push({
        binding: i + 1,
        resource: b.size === undefined
          ? { buffer: b.buffer }
          : { buffer: b.buffer, offset: b.offset, size: b.size },
      })
    );
    g = this.device.createBindGroup({ layout: k.layout, entries });
    this.groups.set(gk, g);
    return g;
  }

  /** Records a zero-fill of the first `bytes` bytes (a multiple of 4) of a buffer. */
  clear(buf: GPUBuffer, bytes: number): void {
    this.endPass();
    this.getEncoder().clearBuffer(buf, 0, bytes);
  }

  /** Records a buffer-to-buffer copy (bytes, multiples of 4). */
  copy(src: GPUBuffer, srcOff: number, dst: GPUBuffer, dstOff: number, bytes: number): void {
    if (bytes === 0) return;
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src, srcOff, dst, dstOff, bytes);
  }

  /**
   * Uploads host data into `dst` at `byteOffset`, ordered after everything recorded so far:
   * straight through the queue when nothing is pending; otherwise staged in the upload arena
   * (written to the GPU just before the submit) and copied by a recorded command. Data that
   * does not fit the arena submits the pending work first, then goes straight through.
   */
  upload(dst: GPUBuffer, byteOffset: number, data: Float32Array | Int32Array): void {
    const bytes = data.byteLength;
    if (bytes === 0) return;
    if (this.pending && this.upUsed + bytes > UPLOAD_BYTES) this.submit();
    if (!this.pending) {
      this.device.queue.writeBuffer(dst, byteOffset, data);
      return;
    }
    const off = this.upUsed;
    this.upCpu.set(new Uint8Array(data.buffer, data.byteOffset, bytes), off);
    this.upUsed = Math.ceil((off + bytes) / 16) * 16;
    this.copy(this.upArena, off, dst, byteOffset, bytes);
  }

  /** Submits the recorded commands without waiting; resets the uniform arena. */
  submit(): void {
    this.endPass();
    if (this.encoder) {
      if (this.arenaUsed > 0) {
        this.device.queue.writeBuffer(this.arena, 0, this.arenaCpu, 0, this.arenaUsed);
      }
      if (this.upUsed > 0) {
        this.device.queue.writeBuffer(this.upArena, 0, this.upCpu, 0, this.upUsed);
      }
      this.device.queue.submit([this.encoder.finish()]);
      this.submits++;
      this.encoder = null;
    }
    this.sinceSubmit = 0;
    this.pool.afterSubmit();
    this.arenaUsed = 0;
    this.upUsed = 0;
  }

  /** Submits pending work and waits until the GPU has finished it. */
  async finish(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors();
  }

  /** Copies `bytes` from `src` (after all recorded work) to the host. One submit, one wait. */
  async readBytes(src: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const size = Math.max(4, bytes);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.copy(src, byteOffset, staging, 0, bytes);
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
      const out = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      this.checkErrors();
      return out;
    } finally {
      staging.destroy();
    }
  }

  /** Releases the device's resources. */
  destroy(): void {
    this.encoder = null;
    this.pass = null;
    this.pool.trim();
    this.arena.destroy();
    this.upArena.destroy();
    this.kernels.clear();
    this.groups.clear();
  }
}
