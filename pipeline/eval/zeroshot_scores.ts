/**
 * Caption likelihoods for zero-shot classification: the teacher-forced log-likelihood of every
 * prompt given every image, under the forward decoder and (bicaptioning) the backward decoder on
 * the reversed prompt, averaged over the directions used. The backbone and the visual projection
 * run once per image batch; the (image, prompt) pairs then go through the decoder in chunks of
 * `pairBatch` rows, each row's memory gathered from the batch's memory by image index, so the
 * visual features are never recomputed per prompt.
 */
import * as ops from "../../engine/ops/index.ts";
import { noGrad, tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { autoregressiveLogits, PAD, shiftedTargets } from "../model/caption_losses.ts";
import { type PretrainingModel, reverseCaptions } from "../model/tasks.ts";
import type { TransformerTextualHead } from "../model/textual_heads.ts";

/** Decoder directions: forward reads the prompt left to right, backward right to left. */
export const DIRECTIONS = ["both", "forward", "backward"] as const;
export type Directions = typeof DIRECTIONS[number];

/** The decoder heads `directions` asks of a model (throws when it has no backward decoder). */
export function headsFor(
  model: PretrainingModel,
  directions: Directions,
): { head: TransformerTextualHead; reversed: boolean }[] {
  if (!model.textual) throw new Error(`task ${model.config.task} has no caption decoder`);
  const fwd = { head: model.textual, reversed: false };
  if (directions === "forward") return [fwd];
  if (!model.backwardTextual) {
    if (directions === "backward") {
      throw new Error(
        `zeroshot.directions "backward": a ${model.config.task} model has no backward decoder`,
      );
    }
    return [fwd]; // "both" on a one-direction model: its only decoder
  }
  const bwd = { head: model.backwardTextual, reversed: true };
  return directions === "backward" ? [bwd] : [fwd, bwd];
}

/** Prompts as a padded [P, T] id matrix with lengths. */
export interface PromptMatrix {
  tokens: Int32Array; // [P, T]
  lengths: number[]; // [P]
  T: number;
}

/** Pads prompt id lists into a PromptMatrix. */
export function promptMatrix(prompts: readonly number[][]): PromptMatrix {
  const T = Math.max(2, ...prompts.map((p) => p.length));
  const tokens = new Int32Array(prompts.length * T);
  prompts.forEach((p, i) => tokens.set(p, i * T));
  return { tokens, lengths: prompts.map((p) => p.length), T };
}

/**
 * Log-likelihood of each prompt given each image, [B * P] image-major (row b*P + p), averaged
 * over the heads. `images` [B, 3, S, S] is run through the backbone once; the model must be in
 * eval mode.
 */
export async function promptLogLikelihoods(
  model: PretrainingModel,
  images: Tensor,
  prompts: PromptMatrix,
  o: { directions: Directions; pairBatch: number },
): Promise<Float32Array> {
  const heads = headsFor(model, o.directions);
  const B = images.shape[0], P = prompts.lengths.length, T = prompts.T;
  const reversed = reverseCaptions(prompts.tokens, prompts.lengths, T);
  // Projected memory per head: [B, S*H] tables (one when the heads share the projection).
  const tables = noGrad(() =>
    tidy(() => {
      const grid = model.visual.forward(images); // [B, C, h, w]
      const byProjection = new Map<unknown, Tensor>();
      return heads.map(({ head }) => {
        let t = byProjection.get(head.visualProjection);
        if (!t) {
          const m = head.projectVisual(grid); // [B, S, H]
          t = ops.reshape(m, [B, m.shape[1] * m.shape[2]]); // [B, S*H]
          byProjection.set(head.visualProjection, t);
        }
        return t;
      });
    })
  );
  const out = new Float32Array(B * P);
  try {
    for (let lo = 0; lo < B * P; lo += o.pairBatch) {
      const n = Math.min(o.pairBatch, B * P - lo);
      const imageIds = Int32Array.from({ length: n }, (_, i) => Math.floor((lo + i) / P));
      for (const [h, { head, reversed: rev }] of heads.entries()) {
        const src = rev ? reversed : prompts.tokens;
        const tokens = new Int32Array(n * T), lengths: number[] = [];
        for (let i = 0; i < n; i++) {
          const p = (lo + i) % P;
          tokens.set(src.subarray(p * T, (p + 1) * T), i * T);
          lengths.push(prompts.lengths[p]);
        }
        const nll = noGrad(() =>
          tidy(() => {
            const table = tables[h];
            const H = head.spec.hidden, SH = table.shape[1];
            const rows = ops.embedding(tensor(table.backend, imageIds, [n], "i32"), table); // [n, S*H]
            const memory = ops.reshape(rows, [n, SH / H, H]); // [n, S, H]
            const logits = autoregressiveLogits(head, memory, tokens, lengths, T); // [n, T-1, V]
            return ops.crossEntropyRows(logits, shiftedTargets(tokens, n, T), PAD); // [n*(T-1)]
          })
        );
        const v = await nll.f32();
        nll.dispose();
        for (let i = 0; i < n; i++) {
          let sum = 0;
          for (let t = 0; t < T - 1; t++) sum += v[i * (T - 1) + t];
          out[lo + i] -= sum / heads.length;
        }
      }
    }
  } finally {
    for (const t of new Set(tables)) t.dispose();
  }
  return out;
}
