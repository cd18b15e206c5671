/**
 * Image shards: decoded images, resized so their short side is a fixed length, stored as raw
 * interleaved RGB uint8 in a few large files plus index.json. Training reads each image with
 * one positioned read and no decoding.
 *
 * Layout of a shards directory:
 *   index.json             ShardIndex
 *   shards/shard-00000.bin images back to back, [H, W, 3] uint8 each
 */
import type { AugmentKernel } from "../../kernels/augment.ts";
import type { RgbImage } from "../data/types.ts";
import { resizedSize } from "./transforms.ts";

export const SHARD_FORMAT = "virtex-shards/1";

/** Where one image lives. */
export interface ShardEntry {
  id: string;
  shard: number; // index into ShardIndex.shards
  offset: number; // byte offset in the shard file
  width: number;
  height: number;
}

/** index.json of a shards directory. */
export interface ShardIndex {
  format: typeof SHARD_FORMAT;
  shortSide: number;
  shards: string[]; // paths relative to the shards directory
  images: ShardEntry[];
}

/** Resizes `img` (antialiased) so its short side is `short`; returns it unchanged if it is. */
export function resizeShortSide(kernel: AugmentKernel, img: RgbImage, short: number): RgbImage {
  const [w, h] = resizedSize(img.width, img.height, short);
  if (w === img.width && h === img.height) return img;
  return kernel.resizeU8(img, w, h);
}

/** Appends images to shard files of at most `shardBytes` each, then writes index.json. */
export class ShardWriter {
  private readonly index: ShardIndex;
  private file: Deno.FsFile | null = null;
  private fileBytes = 0;
  private readonly ids = new Set<string>();

  constructor(
    private readonly dir: string,
    shortSide: number,
    private readonly shardBytes = 256 * 1024 * 1024,
  ) {
    this.index = { format: SHARD_FORMAT, shortSide, shards: [], images: [] };
    Deno.mkdirSync(`${dir}/shards`, { recursive: true });
  }

  /** Number of images added so far. */
  get count(): number {
    return this.index.images.length;
  }

  /** Appends one image (already resized). */
  async add(id: string, img: RgbImage): Promise<void> {
    if (this.ids.has(id)) throw new Error(`shards: duplicate image id "${id}"`);
    if (img.data.length !== img.width * img.height * 3) {
      throw new Error(
        `shards: image "${id}" has ${img.data.length} bytes for ${img.width}×${img.height}`,
      );
    }
    if (!this.file || (this.fileBytes > 0 && this.fileBytes + img.data.length > this.shardBytes)) {
      this.file?.close();
      const name = `shards/shard-${String(this.index.shards.length).padStart(5, "0")}.bin`;
      this.file = await Deno.open(`${this.dir}/${name}`, { write: true, createNew: true });
      this.index.shards.push(name);
      this.fileBytes = 0;
    }
    let written = 0;
    while (written < img.data.length) {
      written += await this.file.write(img.data.subarray(written));
    }
    this.index.images.push({
      id,
      shard: this.index.shards.length - 1,
      offset: this.fileBytes,
      width: img.width,
      height: img.height,
    });
    this.ids.add(id);
    this.fileBytes += img.data.length;
  }

  /** Closes the current shard and writes index.json. */
  async finish(): Promise<ShardIndex> {
    this.file?.close();
    this.file = null;
    await Deno.writeTextFile(`${this.dir}/index.json`, JSON.stringify(this.index));
    return this.index;
  }
}

/** Reads and checks index.json of a shards directory. */
export async function readShardIndex(dir: string): Promise<ShardIndex> {
  const path = `${dir}/index.json`;
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: cannot read shard index (${(e as Error).message})`);
  }
  const idx = raw as ShardIndex;
  if (idx?.format !== SHARD_FORMAT || !Array.isArray(idx.images) || !Array.isArray(idx.shards)) {
    throw new Error(`${path}: not a ${SHARD_FORMAT} index (field "format")`);
  }
  idx.images.forEach((e, i) => {
    if (
      typeof e.id !== "string" || !(e.shard >= 0 && e.shard < idx.shards.length) ||
      !(e.width > 0 && e.height > 0 && e.offset >= 0)
    ) {
      throw new Error(`${path}: bad entry at field "images[${i}]"`);
    }
  });
  return idx;
}

/** Synchronous positioned reads of shard images (one open handle per shard file). */
export class ShardReader {
  private readonly files = new Map<number, Deno.FsFile>();

  constructor(private readonly dir: string, private readonly shards: readonly string[]) {}

  /** Reads one image. */
  read(e: Pick<ShardEntry, "shard" | "offset" | "width" | "height">): RgbImage {
    const data = new Uint8Array(e.width * e.height * 3);
    this.readInto(e, data);
    return { width: e.width, height: e.height, data };
  }

  /** Reads one image's bytes into `data` (length width·height·3). */
  readInto(e: Pick<ShardEntry, "shard" | "offset" | "width" | "height">, data: Uint8Array): void {
    if (data.length !== e.width * e.height * 3) {
      throw new Error(`shards: buffer of ${data.length} bytes for a ${e.width}×${e.height} image`);
    }
    let f = this.files.get(e.shard);
    if (!f) {
      f = Deno.openSync(`${this.dir}/${this.shards[e.shard]}`, { read: true });
      this.files.set(e.shard, f);
    }
    f.seekSync(e.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < data.length) {
      const n = f.readSync(data.subarray(got));
      if (n === null || n === 0) {
        throw new Error(
          `${this.dir}/${this.shards[e.shard]}: truncated at byte ${e.offset + got} ` +
            `(image of ${data.length} bytes at offset ${e.offset})`,
        );
      }
      got += n;
    }
  }

  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}
