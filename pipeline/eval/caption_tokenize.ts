/**
 * Caption tokenization for captioning metrics, in the spirit of the Stanford PTB tokenizer that
 * the COCO caption evaluation runs (lowercased, punctuation tokens removed), without Java:
 * lowercase; punctuation marks split off and dropped; periods kept only inside numbers ("3.5");
 * hyphens kept inside words ("t-shirt"); clitics split off as PTB does ("don't" → "do n't",
 * "man's" → "man 's"); quotes and stray apostrophes dropped.
 */

const CLITIC = /^(.+?)('s|'re|'ve|'ll|'d|'m)$/;

/** Tokens of one caption. */
export function tokenizeCaption(text: string): string[] {
  const lowered = text.normalize("NFKC").toLowerCase()
    .replace(/[\u2018\u2019\u201b\u2032]/g, "'") // curly apostrophes
    .replace(/[\u201c\u201d\u201e\u00ab\u00bb]/g, " ") // curly/angle double quotes
    .replace(/(\d)\.(?=\d)/g, "$1\u2024") // protect decimal points (one-dot leader)
    .replace(/[.,;:!?"`()[\]{}<>…]/g, " ")
    .replace(/\u2024/g, ".");
  const out: string[] = [];
  for (let raw of lowered.split(/\s+/)) {
    // Quotes and hyphens at a word's edges are punctuation, not part of the word.
    raw = raw.replace(/^['\-]+/, "").replace(/-+$/, "");
    if (raw.endsWith("'") && !raw.endsWith("''")) raw = raw.slice(0, -1); // dogs' → dogs
    raw = raw.replace(/'+$/, "");
    if (raw === "") continue;
    if (raw.length > 3 && raw.endsWith("n't")) {
      out.push(raw.slice(0, -3), "n't");
      continue;
    }
    const m = CLITIC.exec(raw);
    if (m) out.push(m[1], m[2]);
    else out.push(raw);
  }
  return out;
}
