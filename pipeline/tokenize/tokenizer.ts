/**
 * Train and apply the BPE tokenizer: normalization (normalize.ts) in TypeScript, training
 * and encoding in the Rust→WASM kernel (kernels/bpe.ts), vocabulary in vocab.ts.
 */
import { BpeKernel } from "../../kernels/bpe.ts";
import { defaultNormalize, normalize, type NormalizeOptions } from "./normalize.ts";
import { frameRows } from "./packed.ts";
import { SPECIALS, UNK_ID, Vocab } from "./vocab.ts";

/** Trainer options; the defaults are the paper's / SentencePiece's. */
export interface TrainOptions extends NormalizeOptions {
  vocabSize: number; // total pieces, specials included (default 10,000)
  characterCoverage: number; // 1.0
  maxPieceLength: number; // 16 characters
  digitsApart: boolean; // no merges of digits with punctuation (SentencePiece allows "4-")
  spmCandidateWindow: boolean; // replay SentencePiece's top-5% candidate window (ties)
}

export const defaultTrainOptions: TrainOptions = {
  ...defaultNormalize,
  vocabSize: 10000,
  characterCoverage: 1,
  maxPieceLength: 16,
  digitsApart: true,
  spmCandidateWindow: true,
};

/** Trains a vocabulary on already-normalized captions (one caption per string). */
export async function trainVocab(
  normalized: string[],
  o: Partial<TrainOptions> = {},
): Promise<Vocab> {
  const opt = { ...defaultTrainOptions, ...o };
  const kernel = await BpeKernel.load();
  const trained = kernel.train(normalized, {
    vocabSize: opt.vocabSize,
    numSpecial: SPECIALS.length,
    maxPieceLength: opt.maxPieceLength,
    characterCoverage: opt.characterCoverage,
    digitsApart: opt.digitsApart,
    spmCandidateWindow: opt.spmCandidateWindow,
  });
  return Vocab.fromTrained(trained, {
    nfkd: true,
    stripAccents: opt.stripAccents,
    lowercase: opt.lowercase,
  });
}

/** Encodes and decodes with one vocabulary (one WASM instance holding its word cache). */
export class Tokenizer {
  private constructor(readonly vocab: Vocab, private readonly kernel: BpeKernel) {}

  static async create(vocab: Vocab): Promise<Tokenizer> {
    const kernel = await BpeKernel.load();
    kernel.loadVocab(vocab.normalPieces(), SPECIALS.length, UNK_ID);
    return new Tokenizer(vocab, kernel);
  }

  /** Normalizes text with the vocabulary's settings. */
  normalize(text: string): string {
    return normalize(text, this.vocab.normalization);
  }

  /** Piece ids of already-normalized lines, without [SOS]/[EOS]. */
  encodeNormalized(lines: string[]): { ids: Uint32Array; offsets: Uint32Array } {
    return this.kernel.encode(lines);
  }

  /** Piece ids of one raw caption, without [SOS]/[EOS]. */
  encode(text: string): number[] {
    return Array.from(this.kernel.encode([this.normalize(text)]).ids);
  }

  /** Raw captions as [SOS] … [EOS] rows of at most maxLength ids ([EOS] kept). */
  encodeCaptions(texts: string[], maxLength = 30) {
    const { ids, offsets } = this.kernel.encode(texts.map((t) => this.normalize(t)));
    return frameRows(ids, offsets, maxLength);
  }

  /** Ids back to normalized text. */
  decode(ids: ArrayLike<number>): string {
    return this.vocab.decode(ids);
  }

  /** The pieces of ids, for display. */
  pieces(ids: ArrayLike<number>): string[] {
    return Array.from(ids, (i) => this.vocab.pieces[i]?.piece ?? "?");
  }
}
