/**
 * Captioning losses over one decoder head and a visual grid:
 * - `captionLoss`: teacher-forced autoregressive cross-entropy (predict tokens[:, 1:] from
 *   tokens[:, :-1] under a causal mask), the loss of `captioning` and each direction of
 *   `bicaptioning`;
 * - `cappaLoss`: parallel-prediction captioning (CapPa, Tschannen et al. 2023). The first
 *   round(fraction × B) captions of the batch are decoded from all-[MASK] inputs with full (not
 *   causal) self-attention and no padding mask, so every position predicts its token from the
 *   image alone; the others train autoregressively as `captionLoss`. Batches arrive shuffled, so
 *   the first rows are a random subset. The loss is the mean cross-entropy over all predicted
 *   (non-padding) tokens of both parts; each part's own mean is reported too.
 */
import * as ops from "../../engine/ops/index.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import type { TransformerTextualHead } from "./textual_heads.ts";

/** Special token ids shared with the tokenizer. */
export const PAD = 0, SOS = 1, EOS = 2, MASK = 3;

/** The next-token targets tokens[:, 1:] of B captions of length T, as [B * (T - 1)]. */
export function shiftedTargets(tokens: Int32Array, B: number, T: number): Int32Array {
  const target = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    target.set(tokens.subarray(b * T + 1, (b + 1) * T), b * (T - 1));
  }
  return target;
}

/** How many targets are not padding. */
function countTargets(target: Int32Array): number {
  let n = 0;
  for (const t of target) if (t !== PAD) n++;
  return n;
}

/**
 * Autoregressive logits of captions under a head: memory [B, S, H] (projected), tokens [B, T]
 * -> logits [B, T-1, V] for inputs tokens[:, :-1] with a causal mask and each caption's padding
 * masked.
 */
export function autoregressiveLogits(
  head: TransformerTextualHead,
  memory: Tensor,
  tokens: Int32Array,
  lengths: number[],
  T: number,
): Tensor {
  const B = lengths.length;
  const input = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) input.set(tokens.subarray(b * T, b * T + T - 1), b * (T - 1));
  const ids = tensor(head.backend, input, [B, T - 1], "i32");
  const inLengths = lengths.map((l) => Math.max(1, l - 1));
  return head.decode(memory, ids, { lengths: inLengths }); // [B, T-1, V]
}

/**
 * Parallel-prediction logits: memory [B, S, H] -> logits [B, L, V] from L [MASK] inputs per
 * caption, full self-attention, no padding mask (so training and parallel decoding see the same
 * input whatever the caption's length).
 */
export function parallelLogits(
  head: TransformerTextualHead,
  memory: Tensor,
  L: number,
  o: { needCrossWeights?: boolean } = {},
): Tensor {
  const B = memory.shape[0];
  const ids = tensor(head.backend, new Int32Array(B * L).fill(MASK), [B, L], "i32");
  return head.decode(memory, ids, { causal: false, needCrossWeights: o.needCrossWeights }); // [B, L, V]
}

/** Teacher-forced captioning loss: predict tokens[:, 1:] from tokens[:, :-1]. */
export function captionLoss(
  head: TransformerTextualHead,
  grid: Tensor,
  tokens: Int32Array,
  lengths: number[],
  T: number,
): Tensor {
  const memory = head.projectVisual(grid); // [B, hw, H]
  const logits = autoregressiveLogits(head, memory, tokens, lengths, T); // [B, T-1, V]
  return ops.crossEntropy(logits, shiftedTargets(tokens, lengths.length, T), {
    ignoreIndex: PAD,
  });
}

/** Rows of a CapPa batch decoded in parallel (the first ones): round(fraction × B). */
export function parallelRows(B: number, fraction: number): number {
  return Math.round(fraction * B);
}

/**
 * CapPa loss (see module doc): `loss` over all predicted tokens, and the per-token means of the
 * `parallel` and `autoregressive` parts (absent when the batch has no row of that kind).
 */
export function cappaLoss(
  head: TransformerTextualHead,
  grid: Tensor,
  tokens: Int32Array,
  lengths: number[],
  T: number,
  fraction: number,
): { loss: Tensor; parallel?: Tensor; autoregressive?: Tensor } {
  const B = lengths.length, L = T - 1;
  const n = parallelRows(B, fraction);
  const target = shiftedTargets(tokens, B, T); // [B * L]
  const memory = head.projectVisual(grid); // [B, hw, H]
  let parallel: Tensor | undefined, autoregressive: Tensor | undefined;
  const parTarget = target.subarray(0, n * L), arTarget = target.subarray(n * L);
  const nPar = countTargets(parTarget), nAr = countTargets(arTarget);
  if (n > 0) {
    const mem = n === B ? memory : ops.slice(memory, 0, 0, n); // [n, hw, H]
    parallel = ops.crossEntropy(parallelLogits(head, mem, L), parTarget, { ignoreIndex: PAD });
  }
  if (n < B) {
    const mem = n === 0 ? memory : ops.slice(memory, 0, n, B); // [B-n, hw, H]
    const logits = autoregressiveLogits(
      head,
      mem,
      tokens.subarray(n * T),
      lengths.slice(n),
      T,
    );
    autoregressive = ops.crossEntropy(logits, arTarget, { ignoreIndex: PAD });
  }
  // Mean over every predicted token: each part's mean weighted by its share of the tokens.
  const total = Math.max(1, nPar + nAr);
  let loss: Tensor;
  if (parallel && autoregressive) {
    loss = ops.add(ops.scale(parallel, nPar / total), ops.scale(autoregressive, nAr / total));
  } else loss = (parallel ?? autoregressive)!;
  return { loss, parallel, autoregressive };
}
