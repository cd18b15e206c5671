/**
 * Adapts an augment artifact (image shards) + a tokenize artifact (packed captions, vocabulary)
 * into the trainer's deterministic BatchSource, with train/val splits, data-efficiency subsets
 * (a percentage of images, one caption per image) and optional per-image targets (multi-label
 * classes for pretraining, class labels for fine-tuning, where there are no captions).
 */
import { join } from "node:path";
import { AugmentLoader, type Batch as LoaderBatch } from "../augment/loader.ts";
import { LeftRightSwapper } from "../augment/swap.ts";
import type { TransformConfig } from "../augment/transforms.ts";
import { hash32 } from "../../engine/backend.ts";
import { readPacked, row } from "../tokenize/packed.ts";
import { Vocab } from "../tokenize/vocab.ts";
import type { LabelSet } from "../data/types.ts";
import type { BatchSource, HostBatch } from "./trainer.ts";

/** Captions and vocabulary of a tokenize artifact. */
export interface CaptionStore {
  vocab: Vocab;
  byImage: Map<string, Int32Array[]>;
  maxLength: number;
}

/** Loads a tokenize artifact directory. */
export async function loadCaptionStore(dir: string, oneCaption = false): Promise<CaptionStore> {
  const vocab = Vocab.fromJson(
    await Deno.readTextFile(join(dir, "vocab.json")),
    join(dir, "vocab.json"),
  );
  const packed = await readPacked(dir);
  const byImage = new Map<string, Int32Array[]>();
  for (const im of packed.index.images) {
    const n = oneCaption ? Math.min(1, im.count) : im.count;
    byImage.set(im.id, Array.from({ length: n }, (_, i) => row(packed, im.first + i)));
  }
  return { vocab, byImage, maxLength: packed.index.maxLength };
}

/**
 * Shard image indices for a split: images listed in `ids` (all images with captions when null),
 * then the first `percent`% of them in a seeded order (data-efficiency runs).
 */
export function selectImages(
  shardIds: readonly string[],
  captions: CaptionStore,
  ids: readonly string[] | null,
  percent: number,
  seed: number,
): number[] {
  const want = ids ? new Set(ids) : null;
  let idx = shardIds.map((id, i) => [id, i] as const)
    .filter(([id]) => captions.byImage.has(id) && (!want || want.has(id)))
    .map(([, i]) => i);
  if (percent < 100) {
    const keep = Math.max(1, Math.round(idx.length * percent / 100));
    const k = hash32(seed ^ 0x2545f491);
    idx = idx.map((i) => [hash32((k ^ i) >>> 0), i] as const).sort((a, b) => a[0] - b[0])
      .slice(0, keep).map(([, i]) => i).sort((a, b) => a - b);
  }
  return idx;
}

/**
 * Per-image 0/1 targets over `classes` classes (HostBatch.labels): writes the row of image `id`
 * into `out` (zero-filled) at `offset`.
 */
export interface TargetSource {
  readonly classes: number;
  write(id: string, out: Float32Array, offset: number): void;
}

/** Targets of a multi-label set: 1 where the label is 1; -1 and 0 (difficult) give 0. */
export function labelTargets(ls: LabelSet): TargetSource {
  const K = ls.classes.length;
  const row = new Map<string, number>();
  ls.images.forEach((im, i) => row.set(im.id, i));
  return {
    classes: K,
    write(id, out, offset) {
      const r = row.get(id);
      if (r === undefined) return;
      for (let k = 0; k < K; k++) out[offset + k] = ls.labels[r * K + k] === 1 ? 1 : 0;
    },
  };
}

/** A BatchSource over an AugmentLoader that keeps prefetching while steps run in order. */
export class LoaderSource implements BatchSource {
  private iter: AsyncGenerator<LoaderBatch> | null = null;
  private next: [number, number] = [-1, -1];

  private constructor(
    private readonly loader: AugmentLoader,
    readonly imageSize: number,
    readonly maxLength: number,
    private readonly targets: TargetSource | null,
  ) {}

  static async open(o: {
    shardsDir: string;
    /** Caption tokens of the images (absent: batches without tokens, e.g. fine-tuning). */
    captions?: CaptionStore;
    /** Shard image indices to iterate (default: all). */
    subset?: number[];
    batchSize: number;
    seed: number;
    mode: "train" | "eval";
    transform: TransformConfig;
    workers: number;
    targets?: TargetSource | null;
  }): Promise<LoaderSource> {
    const caps = o.captions;
    const loader = await AugmentLoader.open({
      dir: o.shardsDir,
      batchSize: o.batchSize,
      seed: o.seed,
      mode: o.mode,
      transform: o.transform,
      subset: o.subset,
      workers: o.workers,
      captions: caps && {
        tokens: (id) => caps.byImage.get(id) ?? [],
        swapper: new LeftRightSwapper(caps.vocab.pieces.map((p) => p.piece)),
        maxLength: caps.maxLength,
      },
    });
    return new LoaderSource(loader, o.transform.size, caps?.maxLength ?? 0, o.targets ?? null);
  }

  get batchesPerEpoch(): number {
    return this.loader.batchesPerEpoch;
  }

  get images(): number {
    return this.loader.size;
  }

  async get(epoch: number, step: number): Promise<HostBatch> {
    if (!this.iter || this.next[0] !== epoch || this.next[1] !== step) {
      await this.iter?.return(undefined);
      this.iter = this.loader.epoch(epoch, step);
    }
    const r = await this.iter.next();
    if (r.done) throw new Error(`data loader: no batch ${step} in epoch ${epoch}`);
    this.next = step + 1 < this.batchesPerEpoch ? [epoch, step + 1] : [epoch + 1, 0];
    if (this.next[0] !== epoch) {
      await this.iter.return(undefined);
      this.iter = null;
    }
    const b = r.value;
    return {
      images: b.images,
      size: b.ids.length,
      tokens: b.tokens,
      lengths: b.lengths,
      labels: this.labelsOf(b.ids),
    };
  }

  private labelsOf(ids: string[]): Float32Array | undefined {
    const t = this.targets;
    if (!t) return undefined;
    const out = new Float32Array(ids.length * t.classes);
    ids.forEach((id, b) => t.write(id, out, b * t.classes));
    return out;
  }

  /** Shard entries' ids, in batch order, of batch (epoch, step) — for sample captions. */
  batchIds(epoch: number, step: number): string[] {
    return Array.from(this.loader.batchIndices(epoch, step), (i) => this.loader.index.images[i].id);
  }

  close(): void {
    this.iter?.return(undefined);
    this.loader.close();
  }
}
