/**
 * Caption decoding over a step function that gives next-token log-probabilities for a set of
 * prefixes: greedy, beam search and nucleus (top-p) sampling. The step function is the only tie
 * to the model, so the search logic is tested on hand-made distributions.
 *
 * Beam search follows kdexd/virtex's AutoRegressiveBeamSearch (v1.2, without back-pointers): the
 * first step takes the top `beamSize` tokens; each later step expands every beam by its top
 * `perNodeBeamSize` tokens (after forbidding an immediate repeat of its last token) and keeps the
 * `beamSize` best by summed log-probability; a beam that produced [EOS] can only produce [EOS] at
 * no cost, so finished beams keep their score (no length normalisation); decoding stops when every
 * beam ended or after `maxSteps` tokens, and the best beam is returned.
 */
import { EOS, MASK, PAD, SOS } from "../model/tasks.ts";
import { SeededRng } from "../../engine/rng.ts";

/** Decoding methods that run token by token over a step function. */
export const STEP_METHODS = ["greedy", "beam", "nucleus"] as const;
export type StepMethod = typeof STEP_METHODS[number];

/**
 * Decoding methods `caption --decode` accepts: the step methods, and `parallel` (every position
 * at once from all-[MASK] inputs, for cappa models; see parallelPick).
 */
export const DECODE_METHODS = [...STEP_METHODS, "parallel"] as const;
export type DecodeMethod = typeof DECODE_METHODS[number];

/**
 * Next-token log-probabilities for each prefix (every prefix starts with [SOS] and all have the
 * same length): one Float32Array of vocabulary size per prefix.
 */
export type StepFn = (prefixes: number[][]) => Promise<Float32Array[]>;

/** Options shared by the decoders. */
export interface DecodeOptions {
  /** Most tokens generated, [EOS] included (30). */
  maxSteps?: number;
  /** Beam width (5). */
  beamSize?: number;
  /** Candidates per beam at each step (2, as the reference). */
  perNodeBeamSize?: number;
  /** Nucleus probability mass (0.9). */
  topP?: number;
  /** Sampling seed (0). */
  seed?: number;
}

/** A decoded caption: token ids without [SOS]/[EOS], and its summed log-probability. */
export interface Decoded {
  tokens: number[];
  logprob: number;
}

/**
 * Log-softmax of one logits row with the tokens that are never generated ([PAD]/<unk>, [SOS],
 * [MASK]) set to -Infinity.
 */
export function logSoftmaxGenerable(logits: Float32Array): Float32Array {
  const out = new Float32Array(logits.length);
  let max = -Infinity;
  for (let v = 0; v < logits.length; v++) {
    if (v !== PAD && v !== SOS && v !== MASK && logits[v] > max) max = logits[v];
  }
  let sum = 0;
  for (let v = 0; v < logits.length; v++) {
    if (v !== PAD && v !== SOS && v !== MASK) sum += Math.exp(logits[v] - max);
  }
  const lse = max + Math.log(sum);
  for (let v = 0; v < logits.length; v++) {
    out[v] = v === PAD || v === SOS || v === MASK ? -Infinity : logits[v] - lse;
  }
  return out;
}

function strip(seq: number[]): number[] {
  const end = seq.indexOf(EOS);
  return end < 0 ? seq : seq.slice(0, end);
}

/** Index of the largest value (first on ties). */
function argmax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}

/** Greedy decoding: the most likely token at each step until [EOS]. */
export async function greedyDecode(step: StepFn, o: DecodeOptions = {}): Promise<Decoded> {
  const maxSteps = o.maxSteps ?? 30;
  const seq: number[] = [];
  let logprob = 0;
  for (let t = 0; t < maxSteps; t++) {
    const [row] = await step([[SOS, ...seq]]);
    const tok = argmax(row);
    logprob += row[tok];
    seq.push(tok);
    if (tok === EOS) break;
  }
  return { tokens: strip(seq), logprob };
}

/** Indices of the k largest values, best first (lower index first on ties). */
function topK(row: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let v = 0; v < row.length; v++) {
    if (idx.length < k) {
      idx.push(v);
      idx.sort((a, b) => row[b] - row[a] || a - b);
    } else if (row[v] > row[idx[k - 1]]) {
      idx[k - 1] = v;
      idx.sort((a, b) => row[b] - row[a] || a - b);
    }
  }
  return idx;
}

/** Beam search as described in the module doc; returns the best beam. */
export async function beamSearch(step: StepFn, o: DecodeOptions = {}): Promise<Decoded> {
  return (await beamSearchAll(step, o))[0];
}

/** Beam search returning every final beam, best first. */
export async function beamSearchAll(step: StepFn, o: DecodeOptions = {}): Promise<Decoded[]> {
  const K = o.beamSize ?? 5, P = o.perNodeBeamSize ?? 2, maxSteps = o.maxSteps ?? 30;
  const [first] = await step([[SOS]]);
  let beams = topK(first, K).map((tok) => ({ seq: [tok], score: first[tok] }));
  for (let t = 1; t < maxSteps; t++) {
    if (beams.every((b) => b.seq[b.seq.length - 1] === EOS)) break;
    const rows = await step(beams.map((b) => [SOS, ...b.seq]));
    const cands: { seq: number[]; score: number; order: number }[] = [];
    beams.forEach((b, i) => {
      const last = b.seq[b.seq.length - 1];
      let row: Float32Array;
      if (last === EOS) {
        row = new Float32Array(rows[i].length).fill(-Infinity);
        row[EOS] = 0;
      } else {
        row = rows[i].slice();
        row[last] = -10000; // no immediate repeat
      }
      topK(row, P).forEach((tok, j) => {
        cands.push({ seq: [...b.seq, tok], score: b.score + row[tok], order: i * P + j });
      });
    });
    cands.sort((a, b) => b.score - a.score || a.order - b.order);
    beams = cands.slice(0, K).map(({ seq, score }) => ({ seq, score }));
  }
  return beams.map((b) => ({ tokens: strip(b.seq), logprob: b.score }));
}

/**
 * The nucleus of one log-probability row: the fewest most-likely tokens whose probability sums
 * to at least `p`, with their probabilities renormalised.
 */
export function nucleus(row: Float32Array, p: number): { tokens: number[]; probs: number[] } {
  const order = [...row.keys()].filter((v) => row[v] > -Infinity)
    .sort((a, b) => row[b] - row[a] || a - b);
  const tokens: number[] = [], probs: number[] = [];
  let mass = 0;
  for (const v of order) {
    const q = Math.exp(row[v]);
    tokens.push(v);
    probs.push(q);
    mass += q;
    if (mass >= p) break;
  }
  return { tokens, probs: probs.map((q) => q / mass) };
}

/** Nucleus sampling: each token drawn from the top-p nucleus (seeded). */
export async function nucleusSample(step: StepFn, o: DecodeOptions = {}): Promise<Decoded> {
  const maxSteps = o.maxSteps ?? 30, p = o.topP ?? 0.9;
  const rng = new SeededRng(o.seed ?? 0);
  const rand = () => rng.next();
  const seq: number[] = [];
  let logprob = 0;
  for (let t = 0; t < maxSteps; t++) {
    const [row] = await step([[SOS, ...seq]]);
    const { tokens, probs } = nucleus(row, p);
    let u = rand(), k = 0;
    while (k < tokens.length - 1 && u >= probs[k]) u -= probs[k++];
    const tok = tokens[k];
    logprob += row[tok];
    seq.push(tok);
    if (tok === EOS) break;
  }
  return { tokens: strip(seq), logprob };
}

/**
 * Parallel decoding's choice from one pass: `rows` holds the next-token log-probabilities of every
 * position (logSoftmaxGenerable of the logits); each position takes its most likely token and the
 * caption ends at the first [EOS].
 */
export function parallelPick(rows: Float32Array[]): Decoded {
  const seq: number[] = [];
  let logprob = 0;
  for (const row of rows) {
    const tok = argmax(row);
    logprob += row[tok];
    seq.push(tok);
    if (tok === EOS) break;
  }
  return { tokens: strip(seq), logprob };
}

/** Decodes with the named step method. */
export function decode(
  method: StepMethod,
  step: StepFn,
  o: DecodeOptions = {},
): Promise<Decoded> {
  switch (method) {
    case "greedy":
      return greedyDecode(step, o);
    case "beam":
      return beamSearch(step, o);
    case "nucleus":
      return nucleusSample(step, o);
  }
}
