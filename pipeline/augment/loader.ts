/**
 * Batch iterator over a shards directory: [B, 3, S, S] f32 images (train or eval transform)
 * plus padded caption token batches. Everything random is a pure function of
 * (seed, epoch, image index), so a run can restart at any batch and get the same data.
 * With workers > 0, augmentation runs in Deno Workers and the next `prefetch` batches are
 * prepared while the caller computes on the current one.
 */
import { counterUniform, hash32 } from "../../engine/backend.ts";
import { AugmentKernel } from "../../kernels/augment.ts";
import { readShardIndex, type ShardIndex, ShardReader } from "./shards.ts";
import type { LeftRightSwapper } from "./swap.ts";
import { sampleKey, sampleTrainParams, type TransformConfig } from "./transforms.ts";
import { type JobItem, runItems, type WorkerReply, type WorkerRequest } from "./worker.ts";

/** Caption tokens of the images, for token batches. */
export interface CaptionSource {
  /** Encoded captions ([SOS] … [EOS]) of the image with this id; at least one. */
  tokens(imageId: string): readonly Int32Array[];
  /** Swaps left/right on flipped samples when given. */
  swapper?: LeftRightSwapper;
  /** Token batch width L; longer captions are cut (keeping the last token). */
  maxLength: number;
}

export interface LoaderOptions {
  dir: string; // shards directory (the augment artifact)
  batchSize: number;
  seed: number;
  mode: "train" | "eval";
  transform: TransformConfig;
  captions?: CaptionSource;
  /** Image indices (into the shard index) to iterate; all by default. */
  subset?: readonly number[];
  shuffle?: boolean; // default: train
  dropLast?: boolean; // default: train
  workers?: number; // 0 = augment in this thread (default 0)
  prefetch?: number; // batches in flight with workers (default 2)
}

/** One batch. Shapes: B = batch size (the last eval batch may be smaller), L = maxLength. */
export interface Batch {
  epoch: number;
  step: number; // batch index within the epoch
  indices: Int32Array; // [B] image indices into the shard index
  ids: string[]; // [B]
  flips: Uint8Array; // [B]
  images: Float32Array; // [B, 3, S, S]
  tokens?: Int32Array; // [B, L], 0-padded
  lengths?: Int32Array; // [B]
}

/** Order of the dataset positions in one epoch: a seeded Fisher–Yates shuffle, or identity. */
export function epochOrder(seed: number, epoch: number, n: number, shuffle: boolean): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  if (!shuffle) return order;
  const key = hash32((hash32((seed ^ 0x5bd1e995) >>> 0) + epoch) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(counterUniform(key, i) * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A pool of augmentation workers. */
class WorkerPool {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.onmessage = (ev: MessageEvent<WorkerReply>) => {
        const m = ev.data;
        if (m.type === "ready") return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.type === "done") p.resolve();
        else p.reject(new Error(m.message));
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        for (const p of this.pending.values()) p.reject(new Error(`augment worker: ${ev.message}`));
        this.pending.clear();
      };
    }
  }

  static async start(n: number, init: WorkerRequest): Promise<WorkerPool> {
    const url = new URL("./worker.ts", import.meta.url).href;
    const workers = Array.from({ length: n }, () => new Worker(url, { type: "module" }));
    await Promise.all(workers.map((w) =>
      new Promise<void>((resolve, reject) => {
        w.onmessage = (ev: MessageEvent<WorkerReply>) => {
          if (ev.data.type === "ready") resolve();
          else if (ev.data.type === "error") reject(new Error(ev.data.message));
        };
        w.onerror = (ev) => {
          ev.preventDefault();
          reject(new Error(`augment worker failed to start: ${ev.message}`));
        };
        w.postMessage(init);
      })
    )).catch((e) => {
      for (const w of workers) w.terminate();
      throw e;
    });
    return new WorkerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  run(worker: number, items: JobItem[], out: SharedArrayBuffer, offset: number): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const msg: WorkerRequest = { type: "job", id, items, out, offset };
      this.workers[worker].postMessage(msg);
    });
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    for (const p of this.pending.values()) p.reject(new Error("augment loader closed"));
    this.pending.clear();
  }
}

/** Deterministic, prefetching batch iterator over an augment artifact. */
export class AugmentLoader {
  private constructor(
    private readonly opt: LoaderOptions,
    readonly index: ShardIndex,
    private readonly positions: Int32Array, // dataset position -> image index
    private readonly kernel: AugmentKernel | null,
    private readonly reader: ShardReader | null,
    private readonly pool: WorkerPool | null,
  ) {}

  /** Opens the shards directory and starts the workers. */
  static async open(opt: LoaderOptions): Promise<AugmentLoader> {
    if (!(opt.batchSize >= 1)) throw new Error(`augment loader: batchSize ${opt.batchSize} < 1`);
    const index = await readShardIndex(opt.dir);
    const positions = opt.subset
      ? Int32Array.from(opt.subset)
      : Int32Array.from({ length: index.images.length }, (_, i) => i);
    for (const p of positions) {
      if (!(p >= 0 && p < index.images.length)) {
        throw new Error(`augment loader: subset index ${p} outside ${index.images.length} images`);
      }
    }
    const workers = opt.workers ?? 0;
    if (workers > 0) {
      const pool = await WorkerPool.start(workers, {
        type: "init",
        dir: opt.dir,
        shards: index.shards,
        transform: opt.transform,
      });
      return new AugmentLoader(opt, index, positions, null, null, pool);
    }
    const kernel = await AugmentKernel.load();
    return new AugmentLoader(
      opt,
      index,
      positions,
      kernel,
      new ShardReader(opt.dir, index.shards),
      null,
    );
  }

  private get train(): boolean {
    return this.opt.mode === "train";
  }

  /** Number of images iterated per epoch. */
  get size(): number {
    return this.positions.length;
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    const n = this.positions.length, b = this.opt.batchSize;
    return (this.opt.dropLast ?? this.train) ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** Image indices of batch `step` of `epoch`. */
  batchIndices(epoch: number, step: number): Int32Array {
    const order = epochOrder(
      this.opt.seed,
      epoch,
      this.positions.length,
      this.opt.shuffle ?? this.train,
    );
    return this.indicesFrom(order, step);
  }

  private indicesFrom(order: Int32Array, step: number): Int32Array {
    const b = this.opt.batchSize;
    const lo = step * b, hi = Math.min(lo + b, order.length);
    return Int32Array.from(order.subarray(lo, hi), (p) => this.positions[p]);
  }

  /** Plans the per-image work and the token batch of one batch (cheap; main thread). */
  private plan(epoch: number, step: number, indices: Int32Array) {
    const cfg = this.opt.transform;
    const B = indices.length;
    const items: JobItem[] = [];
    const flips = new Uint8Array(B);
    const ids: string[] = [];
    const caps = this.opt.captions;
    const L = caps?.maxLength ?? 0;
    const tokens = caps ? new Int32Array(B * L) : undefined;
    const lengths = caps ? new Int32Array(B) : undefined;
    indices.forEach((idx, b) => {
      const e = this.index.images[idx];
      ids.push(e.id);
      const params = this.train
        ? sampleTrainParams(sampleKey(this.opt.seed, epoch, idx), e.width, e.height, cfg)
        : null;
      flips[b] = params?.flip ? 1 : 0;
      items.push({ shard: e.shard, offset: e.offset, width: e.width, height: e.height, params });
      if (caps && tokens && lengths) {
        const all = caps.tokens(e.id);
        if (all.length === 0) throw new Error(`augment loader: image "${e.id}" has no captions`);
        const pick = params ? Math.min(Math.floor(params.caption * all.length), all.length - 1) : 0;
        let t = all[pick];
        if (t.length > L) { // cut, keeping the final token ([EOS])
          const c = t.slice(0, L);
          c[L - 1] = t[t.length - 1];
          t = c;
        }
        if (params?.flip && caps.swapper) t = caps.swapper.swap(t);
        tokens.set(t, b * L);
        lengths[b] = t.length;
      }
    });
    return { epoch, step, indices, ids, flips, items, tokens, lengths };
  }

  /** Produces one batch (in this thread, or spread over the workers). */
  private async produce(epoch: number, step: number, order: Int32Array): Promise<Batch> {
    const p = this.plan(epoch, step, this.indicesFrom(order, step));
    const S = this.opt.transform.size, block = 3 * S * S, B = p.items.length;
    let images: Float32Array;
    if (this.pool) {
      const sab = new SharedArrayBuffer(B * block * 4);
      const W = Math.min(this.pool.size, B);
      const jobs: Promise<void>[] = [];
      for (let w = 0; w < W; w++) {
        const lo = Math.floor((w * B) / W), hi = Math.floor(((w + 1) * B) / W);
        jobs.push(this.pool.run(w, p.items.slice(lo, hi), sab, lo * block));
      }
      await Promise.all(jobs);
      images = new Float32Array(sab);
    } else {
      images = new Float32Array(B * block);
      runItems(this.kernel!, this.reader!, this.opt.transform, p.items, images, 0);
    }
    return {
      epoch,
      step,
      indices: p.indices,
      ids: p.ids,
      flips: p.flips,
      images,
      tokens: p.tokens,
      lengths: p.lengths,
    };
  }

  /** Batch `step` of `epoch`, computed on its own (no prefetch). */
  batch(epoch: number, step: number): Promise<Batch> {
    const order = epochOrder(
      this.opt.seed,
      epoch,
      this.positions.length,
      this.opt.shuffle ?? this.train,
    );
    return this.produce(epoch, step, order);
  }

  /**
   * Iterates the batches of `epoch` from `startStep` (for exact resume). With workers, up to
   * `prefetch` batches ahead are being augmented while the caller works on the current one.
   */
  async *epoch(epoch: number, startStep = 0): AsyncGenerator<Batch> {
    const order = epochOrder(
      this.opt.seed,
      epoch,
      this.positions.length,
      this.opt.shuffle ?? this.train,
    );
    const end = this.batchesPerEpoch;
    if (!this.pool) {
      for (let s = startStep; s < end; s++) yield await this.produce(epoch, s, order);
      return;
    }
    const depth = Math.max(1, this.opt.prefetch ?? 2);
    const queue: Promise<Batch>[] = [];
    let next = startStep;
    const fill = () => {
      while (queue.length < depth && next < end) {
        const pr = this.produce(epoch, next++, order);
        pr.catch(() => {}); // surfaced when awaited
        queue.push(pr);
      }
    };
    fill();
    while (queue.length > 0) {
      const b = await queue.shift()!;
      fill();
      yield b;
    }
  }

  /** Stops the workers and closes the shard files. */
  close(): void {
    this.pool?.close();
    this.reader?.close();
  }
}
