/**
 * Caption side of the horizontal flip: swap the whole words "left" and "right" in token ids.
 * Works on any SentencePiece-style vocabulary given as its array of piece strings, where "▁"
 * marks the start of a word.
 */

/** Word-start marker of SentencePiece pieces. */
export const WORD_START = "\u2581";

/** A special piece: `<unk>`, `[SOS]`, `[EOS]`, `[MASK]` and the like. */
function isSpecial(piece: string): boolean {
  return /^<[^<>]+>$/.test(piece) || /^\[[^\[\]]+\]$/.test(piece);
}

/** Swaps left↔right token ids where each is a whole word. */
export class LeftRightSwapper {
  readonly leftId: number;
  readonly rightId: number;
  /** Per id: 1 when a token continues the word before it (starts with a letter or digit). */
  private readonly continues: Uint8Array;

  constructor(pieces: readonly string[]) {
    this.leftId = pieces.indexOf(WORD_START + "left");
    this.rightId = pieces.indexOf(WORD_START + "right");
    this.continues = new Uint8Array(pieces.length);
    pieces.forEach((p, i) => {
      if (!isSpecial(p) && !p.startsWith(WORD_START) && /^[\p{L}\p{N}\p{M}]/u.test(p)) {
        this.continues[i] = 1;
      }
    });
  }

  /** Whether both words are single pieces of the vocabulary (otherwise swap is a no-op). */
  get available(): boolean {
    return this.leftId >= 0 && this.rightId >= 0;
  }

  /**
   * Returns a copy of `ids` with "▁left" and "▁right" exchanged wherever the next token does not
   * continue the word ("lefts" = "▁left" + "s" stays; "left." and "left [EOS]" swap).
   * `length` limits the scan (tokens past it, e.g. padding, are copied unchanged).
   */
  swap(ids: Int32Array, length = ids.length): Int32Array {
    const out = ids.slice();
    if (!this.available) return out;
    for (let i = 0; i < length; i++) {
      const t = ids[i];
      if (t !== this.leftId && t !== this.rightId) continue;
      const next = i + 1 < length ? ids[i + 1] : -1;
      if (next >= 0 && next < this.continues.length && this.continues[next]) continue;
      out[i] = t === this.leftId ? this.rightId : this.leftId;
    }
    return out;
  }
}
