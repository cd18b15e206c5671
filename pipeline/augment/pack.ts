/**
 * Decoding + short-side resizing of many image files, in order, spread over Deno Workers (each
 * with its own decoder and augment kernel), and packing them into shards (augment, finetune).
 */
import { AugmentKernel } from "../../kernels/augment.ts";
import { decodeImage } from "../data/image.ts";
import type { BadRecord, ImageRecord, RgbImage } from "../data/types.ts";
import { resizeShortSide, type ShardIndex, ShardWriter } from "./shards.ts";

/** Request/reply of pack_worker.ts. */
export type PackRequest = { id: number; file: string; shortSide: number };
export type PackReply =
  | { id: number; ok: true; width: number; height: number; data: Uint8Array }
  | { id: number; ok: false; message: string };

/** One decoded result: the image, or the error that decoding/resizing raised. */
export type PackResult = { file: string; image: RgbImage } | { file: string; error: Error };

/**
 * Yields the decoded images of `files`, resized so the short side is `shortSide`, in order,
 * with up to 2 files in flight per worker; `workers` 0 decodes in this thread.
 */
export async function* decodeResized(
  files: readonly string[],
  shortSide: number,
  workers: number,
): AsyncGenerator<PackResult> {
  if (workers <= 0) {
    const kernel = await AugmentKernel.load();
    for (const file of files) {
      try {
        yield { file, image: resizeShortSide(kernel, await decodeImage(file), shortSide) };
      } catch (e) {
        yield { file, error: e as Error };
      }
    }
    return;
  }
  const url = new URL("./pack_worker.ts", import.meta.url).href;
  const pool = Array.from({ length: workers }, () => new Worker(url, { type: "module" }));
  const waiting = new Map<number, (r: PackReply) => void>();
  let failure: Error | null = null;
  for (const w of pool) {
    w.onmessage = (ev: MessageEvent<PackReply>) => {
      const cb = waiting.get(ev.data.id);
      waiting.delete(ev.data.id);
      cb?.(ev.data);
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      failure = new Error(`pack worker: ${ev.message}`);
      for (const cb of waiting.values()) cb({ id: -1, ok: false, message: failure.message });
      waiting.clear();
    };
  }
  const send = (i: number) =>
    new Promise<PackReply>((resolve) => {
      if (failure) return resolve({ id: i, ok: false, message: failure.message });
      waiting.set(i, resolve);
      const req: PackRequest = { id: i, file: files[i], shortSide };
      pool[i % pool.length].postMessage(req);
    });
  try {
    const depth = 2 * pool.length;
    const queue: Promise<PackReply>[] = [];
    let next = 0;
    while (next < files.length && queue.length < depth) queue.push(send(next++));
    for (let i = 0; i < files.length; i++) {
      const r = await queue.shift()!;
      if (next < files.length) queue.push(send(next++));
      if (failure) throw failure;
      if (r.ok) {
        yield { file: files[i], image: { width: r.width, height: r.height, data: r.data } };
      } else yield { file: files[i], error: new Error(r.message) };
    }
  } finally {
    for (const w of pool) w.terminate();
  }
}

/**
 * Worker count for decoding: all cores, at most 8; $VIRTEX_WORKERS overrides (0 = decode in this
 * thread). Does not change the output.
 */
export function packWorkers(): number {
  const env = Deno.env.get("VIRTEX_WORKERS");
  if (env !== undefined && Number(env) >= 0) return Math.floor(Number(env));
  return Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

/** What packImages wrote. */
export interface PackedShards {
  index: ShardIndex;
  bytes: number; // pixel bytes written
  skipped: BadRecord[]; // images that failed to decode (skipBad only)
}

/**
 * Decodes `images` (resized to `shortSide`) into shards in `dir`, in order. An image that fails
 * to decode is an error naming it, or with `skipBad` is left out and returned in `skipped`.
 * `onImage` is called once per image (progress).
 */
export async function packImages(o: {
  images: readonly ImageRecord[];
  dir: string;
  shortSide: number;
  shardBytes?: number;
  skipBad: boolean;
  onImage?: () => void;
}): Promise<PackedShards> {
  const writer = new ShardWriter(o.dir, o.shortSide, o.shardBytes);
  const skipped: BadRecord[] = [];
  let bytes = 0, i = 0;
  for await (const r of decodeResized(o.images.map((im) => im.file), o.shortSide, packWorkers())) {
    const rec = o.images[i++];
    if ("error" in r) {
      if (!o.skipBad) throw new Error(`image "${rec.id}": ${r.error.message}`);
      skipped.push({ source: { file: rec.file }, reason: r.error.message, kind: "image" });
    } else {
      await writer.add(rec.id, r.image);
      bytes += r.image.data.length;
    }
    o.onImage?.();
  }
  return { index: await writer.finish(), bytes, skipped };
}
