/**
 * Subprocess for the decode-pool test (run with `deno run`: `deno test` type-checks each worker's
 * module graph at start, which costs seconds per worker). Prints one JSON line per image:
 * [index, width, height, sha256 of the pixels] or {"error": message}.
 */
import { createHash } from "node:crypto";
import { decodeImagesParallel } from "../../../pipeline/data/decode_pool.ts";

const rows: unknown[] = [];
try {
  await decodeImagesParallel(Deno.args, (i, img) => {
    rows[i] = [i, img.width, img.height, createHash("sha256").update(img.data).digest("hex")];
  }, { workers: 2 });
  console.log(JSON.stringify(rows));
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).message, name: (e as Error).name }));
}
