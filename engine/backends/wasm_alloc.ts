/**
 * Heap allocator for the wasm backend's shared WebAssembly.Memory. Blocks are 64-byte aligned
 * and rounded to size classes; freed blocks go to per-class free lists and are reused by the
 * next request of that class. When the memory is exhausted it grows (all threads see a shared
 * memory grow); past the 4 GiB maximum, free blocks are coalesced and best-fit searched.
 */

const ALIGN = 64;
const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE;

/** Rounds a request up to its size class: 64 B steps to 4 KiB, then 8 steps per power of 2. */
export function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/** Size-class allocator over [start, memory end), growing the memory on demand. */
export class HeapAllocator {
  private top: number;
  private readonly freeLists = new Map<number, number[]>();
  private readonly live = new Map<number, number>(); // ptr -> class bytes
  private pooled = 0;
  private liveBytes = 0;

  constructor(private readonly memory: WebAssembly.Memory, start: number) {
    this.top = Math.ceil(start / ALIGN) * ALIGN;
  }

  /** Returns the byte address of a block of at least `bytes` bytes. */
  alloc(bytes: number): number {
    const size = sizeClass(bytes);
    const list = this.freeLists.get(size);
    let ptr = list?.pop();
    if (ptr !== undefined) {
      this.pooled -= size;
    } else {
      ptr = this.fromTop(size) ?? this.fromCoalesced(size);
      if (ptr === undefined) {
        throw new Error(
          `wasm backend: out of memory allocating ${bytes} bytes ` +
            `(${this.liveBytes} live, limit ${MAX_BYTES})`,
        );
      }
    }
    this.live.set(ptr, size);
    this.liveBytes += size;
    return ptr;
  }

  /** Returns a block to its free list; throws on a pointer that is not live. */
  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`wasm backend: free of unknown block ${ptr}`);
    this.live.delete(ptr);
    this.liveBytes -= size;
    this.push(ptr, size);
  }

  stats(): { liveBlocks: number; liveBytes: number; pooledBytes: number; heapBytes: number } {
    return {
      liveBlocks: this.live.size,
      liveBytes: this.liveBytes,
      pooledBytes: this.pooled,
      heapBytes: this.top,
    };
  }

  private push(ptr: number, size: number): void {
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, list = []);
    list.push(ptr);
    this.pooled += size;
  }

  private fromTop(size: number): number | undefined {
    const end = this.top + size;
    if (end > MAX_BYTES) return undefined;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least a quarter of the current size to keep grows rare.
      const need = Math.ceil((end - have) / PAGE);
      const want = Math.max(need, Math.ceil(have / PAGE / 4));
      const pages = Math.min(want, (MAX_BYTES - have) / PAGE);
      try {
        this.memory.grow(pages);
      } catch {
        try {
          this.memory.grow(need);
        } catch {
          return undefined;
        }
      }
    }
    const ptr = this.top;
    this.top = end;
    return ptr;
  }

  /** Merges adjacent free blocks (and the top), then best-fits `size`. */
  private fromCoalesced(size: number): number | undefined {
    const blocks: [number, number][] = [];
    for (const [s, list] of this.freeLists) for (const p of list) blocks.push([p, s]);
    this.freeLists.clear();
    this.pooled = 0;
    blocks.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [p, s] of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === p) last[1] += s;
      else merged.push([p, s]);
    }
    const tail = merged[merged.length - 1];
    if (tail && tail[0] + tail[1] === this.top) {
      this.top = tail[0];
      merged.pop();
    }
    let best = -1;
    for (let i = 0; i < merged.length; i++) {
      if (merged[i][1] >= size && (best < 0 || merged[i][1] < merged[best][1])) best = i;
    }
    let ptr: number | undefined;
    if (best >= 0) {
      ptr = merged[best][0];
      const rest = merged[best][1] - size;
      if (rest > 0) merged[best] = [ptr + size, rest];
      else merged.splice(best, 1);
    }
    for (const [p, s] of merged) this.push(p, s);
    return ptr ?? this.fromTop(size);
  }
}

/**
 * The wasm backend's kernel scratch: one heap block holding `nthreads` per-thread slices of a
 * common stride, followed by a shared part. It only grows (the old block is freed then).
 */
export class ScratchArena {
  private base = 0;
  private bytes = 0;

  constructor(private readonly heap: HeapAllocator, private readonly nthreads: number) {}

  /** Address of thread 0's slice (thread t's slice starts t strides later). */
  get address(): number {
    return this.base;
  }

  /**
   * Makes the arena hold nthreads slices of `perThread` bytes (rounded to 64) plus `shared` bytes
   * after them; returns the address of the shared part.
   */
  ensure(perThread: number, shared: number): number {
    const stride = Math.ceil(perThread / ALIGN) * ALIGN;
    const need = stride * this.nthreads + shared;
    if (need > this.bytes) {
      if (this.base) this.heap.free(this.base);
      this.base = this.heap.alloc(need);
      this.bytes = need;
    }
    return this.base + stride * this.nthreads;
  }
}
