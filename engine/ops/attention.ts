/** Scaled dot-product attention over heads, with causal and key-padding masks. */
import type { CounterRng } from "../rng.ts";
import { noGrad } from "../scope.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { add, scale } from "./elementwise.ts";
import { matmul } from "./linalg.ts";
import { dropout, softmax } from "./nnfunc.ts";
import { reshape } from "./shape.ts";

/** Additive mask value: exp(-1e9 - max) is exactly 0 in f32, like -inf but never NaN. */
export const MASKED = -1e9;

export interface AttentionOptions {
  /** Query i attends to keys j <= i only. */
  causal?: boolean;
  /** [B, S] f32, 1 where the key is padding (ignored), 0 elsewhere. */
  keyPaddingMask?: Tensor | null;
  dropoutP?: number;
  training?: boolean;
  rng?: CounterRng;
}

/** Additive causal mask [T, S]: MASKED where key j > query i. */
export function causalMask(like: Tensor, T: number, S: number): Tensor {
  const m = new Float32Array(T * S);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = MASKED;
  return tensor(like.backend, m, [T, S]);
}

/**
 * softmax(q k^T / sqrt(D) + masks) v for q [B, A, T, D], k and v [B, A, S, D]; returns the
 * output [B, A, T, D] and the attention weights [B, A, T, S] (before dropout).
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): { out: Tensor; weights: Tensor } {
  const [B, , T, D] = q.shape, S = k.shape[2];
  let scores = matmul(q, k, false, true, 1 / Math.sqrt(D)); // [B, A, T, S]
  if (opts.causal) scores = add(scores, causalMask(q, T, S));
  const kpm = opts.keyPaddingMask;
  if (kpm) {
    if (kpm.numel !== B * S) {
      throw new Error(`attention: key padding mask ${kpm.describe()} is not [${B}, ${S}]`);
    }
    const additive = noGrad(() => reshape(scale(kpm, MASKED), [B, 1, 1, S]));
    scores = add(scores, additive);
  }
  const weights = softmax(scores);
  const dropped = dropout(weights, opts.dropoutP ?? 0, opts.training ?? false, opts.rng);
  return { out: matmul(dropped, v), weights };
}
