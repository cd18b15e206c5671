/**
 * Image files as batches of model input with the eval transform: each file decoded and resized
 * (short side `evalResize`) on worker threads, centre-cropped to `size` and normalised, in order.
 */
import { AugmentKernel } from "../../kernels/augment.ts";
import { decodeResized } from "../augment/pack.ts";
import { applyEval, type TransformConfig } from "../augment/transforms.ts";

/** One batch: `count` images as [count, 3, size, size] f32, starting at file `start`. */
export interface EvalBatch {
  start: number;
  count: number;
  pixels: Float32Array;
}

/** Yields `files` in batches of `batchSize` (a file that fails to decode is an error naming it). */
export async function* evalImageBatches(
  files: readonly string[],
  transform: TransformConfig,
  batchSize: number,
): AsyncGenerator<EvalBatch> {
  const kernel = await AugmentKernel.load();
  const S = transform.size, N = files.length;
  const workers = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  const decoded = decodeResized(files, transform.evalResize, workers);
  try {
    for (let start = 0; start < N; start += batchSize) {
      const count = Math.min(batchSize, N - start);
      const pixels = new Float32Array(count * 3 * S * S);
      for (let b = 0; b < count; b++) {
        const r = (await decoded.next()).value!;
        if ("error" in r) throw new Error(`${r.file}: ${r.error.message}`);
        applyEval(kernel, r.image, transform, pixels, b * 3 * S * S);
      }
      yield { start, count, pixels };
    }
  } finally {
    await decoded.return(undefined);
  }
}
