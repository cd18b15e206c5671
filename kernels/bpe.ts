/**
 * Loader for kernels/build/bpe.wasm: SentencePiece-compatible BPE training and encoding (see
 * kernels/bpe/src/lib.rs). Text goes in as UTF-8 through the module's alloc/free exports.
 */

interface BpeExports {
  memory: WebAssembly.Memory;
  bpe_alloc(len: number): number;
  bpe_free(ptr: number, len: number): void;
  bpe_train(
    text: number,
    len: number,
    vocabSize: number,
    nMeta: number,
    maxPieceLen: number,
    coverage: number,
    flags: number,
  ): number;
  bpe_result_ptr(): number;
  bpe_result_len(): number;
  bpe_load_vocab(text: number, len: number, firstId: number, unk: number): number;
  bpe_encode(text: number, len: number): number;
  bpe_ids_ptr(): number;
  bpe_ids_len(): number;
  bpe_offsets_ptr(): number;
  bpe_offsets_len(): number;
}

/** Trainer settings (sizes count pieces, lengths count characters). */
export interface BpeTrainOptions {
  vocabSize: number; // total, special pieces included
  numSpecial: number; // ids 0..numSpecial-1 are reserved for special pieces
  maxPieceLength: number; // SentencePiece default: 16
  characterCoverage: number; // 1.0: every character is a piece
  digitsApart: boolean; // never merge digits with punctuation
  spmCandidateWindow: boolean; // replay SentencePiece's top-5% candidate window
}

/** A trained piece: its text and its frequency in the corpus when it was chosen. */
export interface TrainedPiece {
  piece: string;
  freq: number;
}

/** Encoded lines: ids of line i are ids[offsets[i] .. offsets[i+1]). */
export interface EncodedLines {
  ids: Uint32Array;
  offsets: Uint32Array;
}

/** URL of the compiled module. */
export const bpeWasmUrl = new URL("./build/bpe.wasm", import.meta.url);

let compiled: Promise<WebAssembly.Module> | undefined;

async function compile(): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(bpeWasmUrl);
  } catch (e) {
    throw new Error(
      `kernels/bpe.ts: cannot read ${bpeWasmUrl.pathname} (${(e as Error).message}); ` +
        "build it with `make kernels` or `bash kernels/build.sh bpe`",
    );
  }
  return await WebAssembly.compile(bytes);
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** One instance of the BPE module (its own memory, one loaded vocabulary at a time). */
export class BpeKernel {
  private constructor(private readonly ex: BpeExports) {}

  /** Instantiates a fresh module instance. */
  static async load(): Promise<BpeKernel> {
    compiled ??= compile();
    const instance = await WebAssembly.instantiate(await compiled, {});
    return new BpeKernel(instance.exports as unknown as BpeExports);
  }

  /** Copies bytes into module memory, runs f(ptr, len), frees them. */
  private withBytes<T>(bytes: Uint8Array, f: (ptr: number, len: number) => T): T {
    const ptr = this.ex.bpe_alloc(bytes.length);
    try {
      new Uint8Array(this.ex.memory.buffer, ptr, bytes.length).set(bytes);
      return f(ptr, bytes.length);
    } finally {
      this.ex.bpe_free(ptr, bytes.length);
    }
  }

  private result(): string {
    const p = this.ex.bpe_result_ptr();
    const n = this.ex.bpe_result_len();
    return fromUtf8.decode(new Uint8Array(this.ex.memory.buffer, p, n));
  }

  /**
   * Trains on normalized lines (words separated by single spaces). Returns the pieces that
   * follow the special ones, in id order: merges first, then single characters.
   */
  train(lines: string[], o: BpeTrainOptions): TrainedPiece[] {
    const bytes = utf8.encode(lines.join("\n"));
    const flags = (o.digitsApart ? 1 : 0) | (o.spmCandidateWindow ? 2 : 0);
    const n = this.withBytes(bytes, (p, len) =>
      this.ex.bpe_train(
        p,
        len,
        o.vocabSize,
        o.numSpecial,
        o.maxPieceLength,
        o.characterCoverage,
        flags,
      ));
    const text = this.result();
    if (n < 0) throw new Error(`BPE training failed: ${text}`);
    const out: TrainedPiece[] = [];
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const tab = line.lastIndexOf("\t");
      out.push({ piece: line.slice(0, tab), freq: Number(line.slice(tab + 1)) });
    }
    return out;
  }

  /** Loads the vocabulary used by encode(): pieces[i] gets id firstId + i. */
  loadVocab(pieces: string[], firstId: number, unkId: number): void {
    const bytes = utf8.encode(pieces.join("\n"));
    this.withBytes(bytes, (p, len) => this.ex.bpe_load_vocab(p, len, firstId, unkId));
  }

  /** Encodes normalized lines (no '\n' inside; words separated by single spaces). */
  encode(lines: string[]): EncodedLines {
    const bytes = utf8.encode(lines.join("\n"));
    if (bytes.length === 0) {
      return { ids: new Uint32Array(0), offsets: new Uint32Array(lines.length + 1) };
    }
    const n = this.withBytes(bytes, (p, len) => this.ex.bpe_encode(p, len));
    if (n < 0) throw new Error("BpeKernel.encode: no vocabulary loaded");
    const mem = this.ex.memory.buffer;
    const ids = new Uint32Array(mem, this.ex.bpe_ids_ptr(), this.ex.bpe_ids_len()).slice();
    const offsets = new Uint32Array(mem, this.ex.bpe_offsets_ptr(), this.ex.bpe_offsets_len())
      .slice();
    return { ids, offsets };
  }
}
