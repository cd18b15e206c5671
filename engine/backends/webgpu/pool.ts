/**
 * Size-bucketed pool of GPU storage buffers. Freed buffers go onto a free list for their bucket
 * and are handed out again by later allocations of the same bucket; the pool destroys buffers
 * only when it grows past its byte cap or is trimmed. Reuse inside one command encoder is safe:
 * WebGPU orders dispatches and copies of a queue, so a later writer never overtakes a reader.
 * Destruction is deferred to `afterSubmit()`: a buffer freed while commands that use it are still
 * being recorded must live until those commands are submitted (destroying it earlier fails the
 * submit with "buffer has been destroyed").
 */

/** Usage flags every pooled buffer has. */
export const POOL_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

/**
 * Rounds a byte size up to its bucket: at least 256 bytes, then four buckets per power of two
 * (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), so rounding wastes at most 25%.
 */
export function bucketBytes(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

/** The free lists plus counters; `device` creates buffers on a miss. */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pooled = 0;
  /** Buffers over the cap, destroyed once the commands recorded so far are submitted. */
  private doomed: GPUBuffer[] = [];
  /** Buffers created (misses) and reused (hits), for diagnostics. */
  created = 0;
  reused = 0;

  constructor(private device: GPUDevice, private maxPooledBytes: number) {}

  /** A buffer of at least `bytes` bytes (its `size` is the bucket size). */
  acquire(bytes: number): GPUBuffer {
    const size = bucketBytes(bytes);
    const list = this.free.get(size);
    const hit = list?.pop();
    if (hit) {
      this.pooled -= size;
      this.reused++;
      return hit;
    }
    this.created++;
    return this.device.createBuffer({ size, usage: POOL_USAGE });
  }

  /** Returns a buffer to its bucket (destroying it instead when the pool is full). */
  release(buf: GPUBuffer): void {
    const size = buf.size;
    if (this.pooled + size > this.maxPooledBytes) {
      this.doomed.push(buf);
      return;
    }
    let list = this.free.get(size);
    if (!list) this.free.set(size, list = []);
    list.push(buf);
    this.pooled += size;
  }

  /** Destroys a buffer that is not pooled (an arena) once the commands recorded so far are submitted. */
  discard(buf: GPUBuffer): void {
    this.doomed.push(buf);
  }

  /** Bytes held on free lists. */
  get pooledBytes(): number {
    return this.pooled;
  }

  /** Destroys the buffers released over the cap; call right after a queue submit. */
  afterSubmit(): void {
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
  }

  /** Destroys every pooled buffer (and those waiting for a submit: call after the last one). */
  trim(): void {
    this.afterSubmit();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooled = 0;
  }
}
