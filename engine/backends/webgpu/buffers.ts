/**
 * The webgpu backend's buffer table: Buf ids → GPU memory. Ordinary buffers come from the
 * size-bucketed pool (pool.ts). `allocFlat` makes one GPU buffer (an arena) holding several
 * buffers back to back, each a Buf of its own (a *part*, bound at its byte offset), plus `whole`,
 * a Buf over the arena: the optimizer updates all parameters of a group with one kernel over
 * `whole` while every layer keeps binding its own part. Parts start on the device's storage
 * offset alignment; the padding between them is zero. The arena is destroyed once `whole` and
 * every part are freed (after the next submit, like any buffer freed while recorded work uses it).
 */
import type { Buf, DType, FlatBuf } from "../../backend.ts";
import type { BufRange, GpuContext } from "./context.ts";
import { POOL_USAGE } from "./pool.ts";

/** A buffer handle of either precision. */
export type AnyBuf = { readonly id: number; readonly numel: number };

/** Where a Buf lives. */
export interface GpuBufEntry {
  readonly id: number;
  readonly numel: number;
  readonly dtype: DType | "f16";
  readonly gpu: GPUBuffer;
  /** Byte offset inside `gpu` (parts of a flat arena; 0 otherwise). */
  readonly offset: number;
  readonly arena?: { refs: number };
}

/** Bytes of `numel` elements (f16 packs two per 32-bit word). */
export function bytesOf(numel: number, dtype: DType | "f16"): number {
  return dtype === "f16" ? Math.ceil(numel / 2) * 4 : numel * 4;
}

/** Live buffers of one backend. */
export class BufferTable {
  private live = new Map<number, GpuBufEntry>();
  private liveBytes = 0;
  private nextId = 1;
  /** Elements between part starts are a multiple of this (storage offset alignment). */
  readonly partAlign: number;

  constructor(private ctx: GpuContext, private zeroOnAlloc: boolean) {
    this.partAlign = Math.max(1, ctx.device.limits.minStorageBufferOffsetAlignment / 4);
  }

  /** The entry of a live buffer; throws for freed or foreign handles. */
  entry(b: AnyBuf): GpuBufEntry {
    const e = this.live.get(b.id);
    if (!e) throw new Error(`webgpu backend: buffer ${b.id} is not live (freed or foreign)`);
    return e;
  }

  /** The GPU range a kernel binds for `b`. */
  range(b: AnyBuf): BufRange {
    const e = this.entry(b);
    return e.arena
      ? { buffer: e.gpu, offset: e.offset, size: Math.max(4, bytesOf(e.numel, e.dtype)) }
      : { buffer: e.gpu, offset: 0 };
  }

  private checkSize(numel: number, dtype: DType | "f16"): number {
    if (!Number.isInteger(numel) || numel < 0) {
      throw new Error(`webgpu backend: alloc of invalid size ${numel}`);
    }
    const bytes = Math.max(4, bytesOf(numel, dtype));
    const limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `webgpu backend: alloc of ${bytes} bytes exceeds the device's storage binding limit ${limit}`,
      );
    }
    return bytes;
  }

  private add(e: Omit<GpuBufEntry, "id">): AnyBuf & { dtype: DType | "f16" } {
    const id = this.nextId++;
    this.live.set(id, { ...e, id });
    this.liveBytes += bytesOf(e.numel, e.dtype);
    return { id, numel: e.numel, dtype: e.dtype };
  }

  /** A pooled buffer (zeroed when reused and zeroOnAlloc is set). */
  alloc(numel: number, dtype: DType | "f16"): AnyBuf & { dtype: DType | "f16" } {
    const bytes = this.checkSize(numel, dtype);
    const reusedBefore = this.ctx.pool.reused;
    const gpu = this.ctx.pool.acquire(bytes);
    if (this.zeroOnAlloc && this.ctx.pool.reused !== reusedBefore && numel > 0) {
      this.ctx.clear(gpu, bytes);
    }
    return this.add({ numel, dtype, gpu, offset: 0 });
  }

  /** Largest `whole` allocFlat can make (elements). */
  get maxFlatNumel(): number {
    return Math.floor(this.ctx.device.limits.maxStorageBufferBindingSize / 4);
  }

  /** One zeroed arena holding f32 parts of the given sizes, and `whole` over all of it. */
  allocFlat(sizes: readonly number[]): FlatBuf {
    const starts: number[] = [];
    let total = 0;
    for (const n of sizes) {
      if (!Number.isInteger(n) || n < 0) throw new Error(`webgpu backend: flat part size ${n}`);
      starts.push(total);
      total += Math.ceil(n / this.partAlign) * this.partAlign;
    }
    const bytes = this.checkSize(Math.max(total, 1), "f32");
    const gpu = this.ctx.device.createBuffer({ size: bytes, usage: POOL_USAGE });
    const arena = { refs: sizes.length + 1 };
    const whole = this.add({ numel: total, dtype: "f32", gpu, offset: 0, arena }) as Buf;
    const parts = sizes.map((n, i) =>
      this.add({ numel: n, dtype: "f32", gpu, offset: starts[i] * 4, arena }) as Buf
    );
    return { whole, parts, offsets: starts };
  }

  /** Frees a buffer: pooled ones go back to the pool, arenas die with their last reference. */
  free(b: AnyBuf): void {
    const e = this.live.get(b.id);
    if (!e) throw new Error(`webgpu backend: double free of buffer ${b.id}`);
    this.live.delete(b.id);
    this.liveBytes -= bytesOf(e.numel, e.dtype);
    if (!e.arena) this.ctx.pool.release(e.gpu);
    else if (--e.arena.refs === 0) this.ctx.pool.discard(e.gpu);
  }

  /** Live buffer count and bytes. */
  counts(): { liveBuffers: number; liveBytes: number } {
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes };
  }

  /** Destroys every live buffer (backend teardown). */
  destroyAll(): void {
    for (const e of this.live.values()) e.gpu.destroy();
    this.live.clear();
    this.liveBytes = 0;
  }
}
