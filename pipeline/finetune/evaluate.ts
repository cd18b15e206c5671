/**
 * Scores a fine-tuned model on the val split (eval transform, batch norm in eval mode, no
 * gradients): top-1 and top-5 accuracy in percent for single-label data, mAP in percent for
 * multi-label data.
 */
import { noGrad, tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import { meanAveragePrecision, topKAccuracy } from "../eval/classification.ts";
import type { LoaderSource } from "../pretrain/data.ts";
import type { LabelledSplit } from "./data.ts";
import type { FinetuneModel } from "./model.ts";

/** The figure that ranks evaluations (higher is better) for single- and multi-label data. */
export function rankingFigure(multiLabel: boolean): "top1" | "mAP" {
  return multiLabel ? "mAP" : "top1";
}

/** Logits [N, K] of every val image, in `split.images` order (rows of images not packed: 0). */
export async function valLogits(
  model: FinetuneModel,
  source: LoaderSource,
  split: LabelledSplit,
): Promise<{ logits: Float32Array; seen: Uint8Array }> {
  const K = split.classes.length, S = source.imageSize;
  const row = new Map<string, number>();
  split.images.forEach((im, i) => row.set(im.id, i));
  const logits = new Float32Array(split.images.length * K);
  const seen = new Uint8Array(split.images.length);
  for (let s = 0; s < source.batchesPerEpoch; s++) {
    const hb = await source.get(0, s);
    const ids = source.batchIds(0, s);
    const out = noGrad(() =>
      tidy(() => model.logits(tensor(model.backend, hb.images, [hb.size, 3, S, S])))
    ); // [B, K]
    const v = await out.f32();
    out.dispose();
    ids.forEach((id, b) => {
      const r = row.get(id)!;
      logits.set(v.subarray(b * K, (b + 1) * K), r * K);
      seen[r] = 1;
    });
  }
  return { logits, seen };
}

/** { top1, top5 } or { mAP } in percent over the val images that were packed. */
export async function evaluateFinetune(
  model: FinetuneModel,
  source: LoaderSource,
  split: LabelledSplit,
): Promise<Record<string, number>> {
  const K = split.classes.length;
  const { logits, seen } = await valLogits(model, source, split);
  const rows = [...seen.keys()].filter((r) => seen[r]);
  const pick = <T extends Float32Array | Int8Array>(a: T, width: number): T => {
    const out = new (a.constructor as new (n: number) => T)(rows.length * width);
    rows.forEach((r, i) => out.set(a.subarray(r * width, (r + 1) * width), i * width));
    return out;
  };
  const scores = pick(logits, K);
  if (split.targets) {
    const targets = Int32Array.from(rows, (r) => split.targets![r]);
    return {
      top1: 100 * topKAccuracy(scores, targets, K, 1),
      top5: 100 * topKAccuracy(scores, targets, K, Math.min(5, K)),
    };
  }
  return { mAP: 100 * meanAveragePrecision(scores, pick(split.labels!, K), K).mAP };
}
