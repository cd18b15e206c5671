/**
 * Caption normalization as in VirTex: Unicode NFKD, combining marks (accents) stripped,
 * lowercased, whitespace collapsed to single spaces and trimmed. SentencePiece's `▁` marks the
 * start of each word in pieces (see WORD_START).
 */

/** The SentencePiece word-start marker (U+2581). */
export const WORD_START = "\u2581";

/** Options of normalize(); the defaults are the paper's. */
export interface NormalizeOptions {
  stripAccents: boolean;
  lowercase: boolean;
}

export const defaultNormalize: NormalizeOptions = { stripAccents: true, lowercase: true };

const MARKS = /\p{M}+/gu;
const NON_ASCII = /[^\t-~]/; // anything but tab, newline, … and printable ASCII
const SPACES = /[\s\u2581]+/gu;

/** Normalizes one caption ("  Café  au LAIT " → "cafe au lait"). */
export function normalize(text: string, o: NormalizeOptions = defaultNormalize): string {
  if (!NON_ASCII.test(text)) { // fast path: NFKD and mark stripping change nothing in ASCII
    return (o.lowercase ? text.toLowerCase() : text).replace(SPACES, " ").trim();
  }
  let s = text.normalize("NFKD");
  if (o.stripAccents) s = s.replace(MARKS, "");
  if (o.lowercase) s = s.toLowerCase();
  if (o.stripAccents && o.lowercase) s = s.replace(MARKS, ""); // e.g. "İ" lowercases to i + mark
  return s.replace(SPACES, " ").trim();
}
