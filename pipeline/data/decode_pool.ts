/**
 * Parallel image decoding on Deno Workers (the WASM codec is single-threaded, so one worker per
 * core multiplies throughput). Errors are DataErrors naming the file, as with decodeImage().
 */
import { DataError } from "./errors.ts";
import type { RgbImage } from "./types.ts";

interface Reply {
  id: number;
  width?: number;
  height?: number;
  data?: Uint8Array;
  error?: string;
  file?: string;
}

/** A pool of decoder workers; call close() when done. */
export class ImageDecodePool {
  #workers: Worker[] = [];
  #load: number[] = [];
  #pending = new Map<
    number,
    { resolve: (i: RgbImage) => void; reject: (e: Error) => void; w: number }
  >();
  #next = 0;

  /** Starts `size` workers (default: hardware concurrency). */
  constructor(size = navigator.hardwareConcurrency || 2) {
    for (let w = 0; w < Math.max(1, size); w++) {
      const worker = new Worker(new URL("./decode_worker.ts", import.meta.url), { type: "module" });
      worker.onmessage = (ev: MessageEvent<Reply>) => this.#settle(ev.data);
      worker.onerror = (ev) => {
        ev.preventDefault();
        for (const [id, p] of this.#pending) {
          if (p.w === w) {
            this.#pending.delete(id);
            p.reject(new Error(`image decoder worker failed: ${ev.message}`));
          }
        }
      };
      this.#workers.push(worker);
      this.#load.push(0);
    }
  }

  #settle(r: Reply): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    this.#load[p.w]--;
    if (r.error !== undefined) p.reject(new DataError({ file: r.file ?? "?" }, r.error));
    else p.resolve({ width: r.width!, height: r.height!, data: r.data! });
  }

  /** Decodes one JPEG/PNG file on the least-loaded worker. */
  decode(path: string): Promise<RgbImage> {
    let w = 0;
    for (let i = 1; i < this.#load.length; i++) if (this.#load[i] < this.#load[w]) w = i;
    const id = this.#next++;
    this.#load[w]++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, w });
      this.#workers[w].postMessage({ id, path });
    });
  }

  /** Stops the workers; pending decodes are rejected. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    for (const p of this.#pending.values()) p.reject(new Error("image decode pool closed"));
    this.#pending.clear();
    this.#workers = [];
  }
}

/**
 * Decodes many files in parallel, keeping at most `inFlight` per worker queued, and calls
 * `onImage(index, image)` in completion order. Returns when all are done (rejects on the first
 * error).
 */
export async function decodeImagesParallel(
  paths: string[],
  onImage: (index: number, image: RgbImage) => void | Promise<void>,
  opts: { workers?: number; inFlight?: number } = {},
): Promise<void> {
  const pool = new ImageDecodePool(opts.workers);
  const limit = (opts.workers ?? (navigator.hardwareConcurrency || 2)) * (opts.inFlight ?? 4);
  let next = 0;
  try {
    const runOne = async (): Promise<void> => {
      while (next < paths.length) {
        const i = next++;
        await onImage(i, await pool.decode(paths[i]));
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, paths.length) }, runOne));
  } finally {
    pool.close();
  }
}
