/** The trainer tests' deterministic toy data: a caption token tied to the image's brightness. */
import type { BatchSource, HostBatch } from "../../../pipeline/pretrain/trainer.ts";

/** Image size S, caption width T and vocabulary V of the toy batches. */
export const S = 16, T = 6, V = 16;

/** n batches per epoch of B images [3, S, S] filled with one of 4 levels; caption [SOS] 4+c 8+c [EOS]. */
export function toySource(n = 8, B = 2): BatchSource {
  return {
    batchesPerEpoch: n,
    imageSize: S,
    maxLength: T,
    get(epoch: number, step: number): Promise<HostBatch> {
      const images = new Float32Array(B * 3 * S * S);
      const tokens = new Int32Array(B * T);
      const lengths = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const cls = (epoch * 7 + step * 3 + b) % 4;
        images.fill(cls / 2 - 0.75, b * 3 * S * S, (b + 1) * 3 * S * S);
        tokens.set([1, 4 + cls, 8 + cls, 2], b * T);
        lengths[b] = 4;
      }
      return Promise.resolve({ images, size: B, tokens, lengths });
    },
  };
}
