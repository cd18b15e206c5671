/**
 * The tokenizer vocabulary: special pieces first (`<unk>`=0, also padding; `[SOS]`=1;
 * `[EOS]`=2; `[MASK]`=3), then merged pieces best-first, then single characters. Saved as
 * vocab.json and exported as a SentencePiece-style `.vocab` text file (piece TAB score).
 */
import { WORD_START } from "./normalize.ts";

/** Special pieces and their fixed ids. */
export const SPECIALS = ["<unk>", "[SOS]", "[EOS]", "[MASK]"] as const;
export const UNK_ID = 0;
export const PAD_ID = 0;
export const SOS_ID = 1;
export const EOS_ID = 2;
export const MASK_ID = 3;

/** Kind of a piece, as SentencePiece names them. */
export type PieceType = "unknown" | "user_defined" | "normal";

/** One vocabulary entry. */
export interface VocabPiece {
  piece: string;
  score: number; // SentencePiece score: 0 for specials, -rank for the others
  type: PieceType;
  freq?: number; // corpus frequency when the piece was chosen (training output)
}

/** vocab.json: what a Vocab serializes to. */
export interface VocabJson {
  format: "virtex-bpe-vocab/1";
  pieces: VocabPiece[];
  normalization: { nfkd: true; stripAccents: boolean; lowercase: boolean };
}

/** A loaded vocabulary with piece ↔ id lookup. */
export class Vocab {
  readonly ids: Map<string, number>;

  constructor(
    readonly pieces: VocabPiece[],
    readonly normalization: VocabJson["normalization"],
  ) {
    this.ids = new Map(pieces.map((p, i) => [p.piece, i]));
    for (let i = 0; i < SPECIALS.length; i++) {
      if (pieces[i]?.piece !== SPECIALS[i]) {
        throw new Error(`vocabulary: id ${i} must be ${SPECIALS[i]}, got ${pieces[i]?.piece}`);
      }
    }
    if (this.ids.size !== pieces.length) throw new Error("vocabulary: duplicate pieces");
  }

  /** Builds a vocabulary from trained pieces (merges then characters, without specials). */
  static fromTrained(
    trained: { piece: string; freq: number }[],
    normalization: VocabJson["normalization"],
  ): Vocab {
    const pieces: VocabPiece[] = SPECIALS.map((s, i) => ({
      piece: s,
      score: 0,
      type: i === UNK_ID ? "unknown" : "user_defined",
    }));
    trained.forEach((t, i) =>
      pieces.push({ piece: t.piece, score: i === 0 ? 0 : -i, type: "normal", freq: t.freq })
    );
    return new Vocab(pieces, normalization);
  }

  get size(): number {
    return this.pieces.length;
  }

  /** Id of a piece, or <unk>. */
  id(piece: string): number {
    return this.ids.get(piece) ?? UNK_ID;
  }

  /** The normal (mergeable) pieces in id order, starting at id SPECIALS.length. */
  normalPieces(): string[] {
    return this.pieces.slice(SPECIALS.length).map((p) => p.piece);
  }

  /**
   * Ids back to normalized text: pieces joined, `▁` turned into spaces; specials are dropped
   * except `<unk>`, which reads as "⁇".
   */
  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === UNK_ID) {
        s += "\u2047";
        continue;
      }
      if (id < SPECIALS.length) continue;
      const p = this.pieces[id];
      if (p === undefined) throw new Error(`decode: id ${id} is outside the vocabulary`);
      s += p.piece;
    }
    return s.replaceAll(WORD_START, " ").trim();
  }

  toJson(): VocabJson {
    return { format: "virtex-bpe-vocab/1", pieces: this.pieces, normalization: this.normalization };
  }

  /** Parses vocab.json text; `file` names the source in errors. */
  static fromJson(text: string, file = "vocab.json"): Vocab {
    let j: VocabJson;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new Error(`${file}: not JSON (${(e as Error).message})`);
    }
    if (j?.format !== "virtex-bpe-vocab/1" || !Array.isArray(j.pieces)) {
      throw new Error(`${file}: not a virtex BPE vocabulary (format field)`);
    }
    j.pieces.forEach((p, i) => {
      if (typeof p?.piece !== "string" || typeof p.score !== "number") {
        throw new Error(`${file}: pieces[${i}] needs a string "piece" and a number "score"`);
      }
    });
    try {
      return new Vocab(j.pieces, j.normalization);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }

  /** SentencePiece-style .vocab text: one "piece<TAB>score" line per id. */
  toSpmVocab(): string {
    const lines = this.pieces.map((p) => {
      const score = p.type === "normal" ? `-${-p.score}` : "0";
      return `${p.piece}\t${score}`;
    });
    return lines.join("\n") + "\n";
  }
}
