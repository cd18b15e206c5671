/**
 * The tokenize artifact's caption store: every caption as `[SOS] … [EOS]` (at most maxLength
 * ids, `[EOS]` always kept), packed as one flat little-endian Int32 array (`tokens.i32`) plus
 * Uint32 row offsets (`offsets.u32`: row r is tokens[offsets[r] .. offsets[r+1])), and
 * `index.json` mapping each image id to its rows.
 */
import { join } from "node:path";
import { EOS_ID, SOS_ID } from "./vocab.ts";

/** One image's entry in index.json: its caption rows are [first, first + count). */
export interface IndexImage {
  id: string;
  file: string;
  first: number;
  count: number;
}

/** index.json. */
export interface CaptionIndex {
  format: "virtex-captions/1";
  maxLength: number;
  rows: number;
  images: IndexImage[];
}

/** Captions as packed token rows. */
export interface PackedCaptions {
  tokens: Int32Array; // [offsets[rows]]
  offsets: Uint32Array; // [rows + 1]
  index: CaptionIndex;
}

/**
 * Wraps raw caption ids (rows given by offsets) as [SOS] … [EOS], truncating each row to
 * maxLength ids while keeping [EOS]. Returns the new flat tokens and offsets.
 */
export function frameRows(
  ids: ArrayLike<number>,
  offsets: ArrayLike<number>,
  maxLength: number,
): { tokens: Int32Array; offsets: Uint32Array; truncated: number } {
  if (maxLength < 2) throw new Error(`maxLength must be at least 2, got ${maxLength}`);
  const rows = offsets.length - 1;
  const outOff = new Uint32Array(rows + 1);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    total += Math.min(offsets[r + 1] - offsets[r], maxLength - 2) + 2;
    outOff[r + 1] = total;
  }
  const tokens = new Int32Array(total);
  let truncated = 0;
  for (let r = 0; r < rows; r++) {
    const a = offsets[r], n = offsets[r + 1] - a;
    const keep = Math.min(n, maxLength - 2);
    if (keep < n) truncated++;
    let o = outOff[r];
    tokens[o++] = SOS_ID;
    for (let i = 0; i < keep; i++) tokens[o++] = ids[a + i];
    tokens[o] = EOS_ID;
  }
  return { tokens, offsets: outOff, truncated };
}

/** The ids of one caption row. */
export function row(p: PackedCaptions, r: number): Int32Array {
  return p.tokens.subarray(p.offsets[r], p.offsets[r + 1]);
}

function bytesOf(a: Int32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Writes tokens.i32, offsets.u32 and index.json into dir (little-endian hosts). */
export async function writePacked(dir: string, p: PackedCaptions): Promise<void> {
  await Deno.writeFile(join(dir, "tokens.i32"), bytesOf(p.tokens));
  await Deno.writeFile(join(dir, "offsets.u32"), bytesOf(p.offsets));
  await Deno.writeTextFile(join(dir, "index.json"), JSON.stringify(p.index));
}

/** Reads what writePacked wrote, checking that the three files agree. */
export async function readPacked(dir: string): Promise<PackedCaptions> {
  const tb = await Deno.readFile(join(dir, "tokens.i32"));
  const ob = await Deno.readFile(join(dir, "offsets.u32"));
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json"))) as CaptionIndex;
  if (tb.byteLength % 4 || ob.byteLength % 4) throw new Error(`${dir}: truncated token files`);
  const tokens = new Int32Array(tb.buffer, tb.byteOffset, tb.byteLength / 4);
  const offsets = new Uint32Array(ob.buffer, ob.byteOffset, ob.byteLength / 4);
  if (offsets.length !== index.rows + 1 || offsets[index.rows] !== tokens.length) {
    throw new Error(`${dir}: offsets.u32 does not match tokens.i32 / index.json`);
  }
  return { tokens, offsets, index };
}
