/**
 * CIDEr-D (Vedantam et al., 2015; the variant of the COCO caption evaluation): TF-IDF weighted
 * n-gram (n = 1..4) cosine similarity between a candidate and each reference, candidate TF-IDF
 * values clipped by the reference's, times a Gaussian length penalty exp(−Δ²/2σ²) with σ = 6,
 * averaged over n and over references, times 10. Document frequencies come from the reference
 * sets (one document per image) and the IDF is log(#images) − log(max(1, df)). As in the
 * reference code, the length compared is the number of bigrams (one less than the word count).
 */
import { tokenizeCaption } from "./caption_tokenize.ts";

export interface CiderOptions {
  n?: number; // largest n-gram, default 4
  sigma?: number; // length-penalty width, default 6
}

/** One image: candidate caption and its reference captions. */
export interface CiderItem {
  candidate: string;
  references: string[];
}

export interface CiderResult {
  score: number; // corpus CIDEr-D: mean of per-image scores
  perImage: number[];
}

type Counts = Map<string, number>;

/** n-gram counts of a token list, keyed "n\u0001tok tok …" per order n (1..maxN). */
function ngramCounts(tokens: string[], maxN: number): Counts {
  const counts: Counts = new Map();
  for (let n = 1; n <= maxN; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = `${n}\u0001${tokens.slice(i, i + n).join(" ")}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

interface TfIdf {
  vec: Map<string, number>[]; // per order n−1: n-gram → tf·idf
  norm: number[]; // per order: L2 norm of vec
  length: number; // bigram count
}

function tfidf(counts: Counts, maxN: number, df: Map<string, number>, logDocs: number): TfIdf {
  const vec = Array.from({ length: maxN }, () => new Map<string, number>());
  const norm = new Array<number>(maxN).fill(0);
  let length = 0;
  for (const [key, tf] of counts) {
    const n = Number(key.slice(0, key.indexOf("\u0001")));
    const v = tf * (logDocs - Math.log(Math.max(1, df.get(key) ?? 0)));
    vec[n - 1].set(key, v);
    norm[n - 1] += v * v;
    if (n === 2) length += tf;
  }
  return { vec, norm: norm.map(Math.sqrt), length };
}

/** CIDEr-D over tokenized captions: candidates[i] against references[i]. */
export function ciderDTokens(
  candidates: string[][],
  references: string[][][],
  opts: CiderOptions = {},
): CiderResult {
  const maxN = opts.n ?? 4;
  const sigma = opts.sigma ?? 6;
  if (candidates.length !== references.length) {
    throw new Error(
      `cider: ${candidates.length} candidates but ${references.length} reference sets`,
    );
  }
  references.forEach((refs, i) => {
    if (refs.length === 0) throw new Error(`cider: image ${i} has no reference captions`);
  });
  const refCounts = references.map((refs) => refs.map((r) => ngramCounts(r, maxN)));
  // Document frequency: the number of images whose references contain the n-gram.
  const df = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const c of refs) for (const k of c.keys()) seen.add(k);
    for (const k of seen) df.set(k, (df.get(k) ?? 0) + 1);
  }
  const logDocs = Math.log(references.length);
  const perImage = candidates.map((cand, i) => {
    const h = tfidf(ngramCounts(cand, maxN), maxN, df, logDocs);
    const sum = new Array<number>(maxN).fill(0);
    for (const rc of refCounts[i]) {
      const r = tfidf(rc, maxN, df, logDocs);
      const delta = h.length - r.length;
      const penalty = Math.exp(-(delta * delta) / (2 * sigma * sigma));
      for (let n = 0; n < maxN; n++) {
        let val = 0;
        for (const [key, hv] of h.vec[n]) {
          const rv = r.vec[n].get(key) ?? 0;
          val += Math.min(hv, rv) * rv; // candidate clipped by the reference
        }
        if (h.norm[n] !== 0 && r.norm[n] !== 0) val /= h.norm[n] * r.norm[n];
        sum[n] += val * penalty;
      }
    }
    const meanOverN = sum.reduce((a, b) => a + b, 0) / maxN;
    return (meanOverN / refCounts[i].length) * 10;
  });
  const score = perImage.length ? perImage.reduce((a, b) => a + b, 0) / perImage.length : 0;
  return { score, perImage };
}

/** CIDEr-D over raw captions, tokenized with tokenizeCaption. */
export function ciderD(items: CiderItem[], opts: CiderOptions = {}): CiderResult {
  return ciderDTokens(
    items.map((it) => tokenizeCaption(it.candidate)),
    items.map((it) => it.references.map(tokenizeCaption)),
    opts,
  );
}
