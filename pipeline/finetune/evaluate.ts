/**
 * Scores a fine-tuned model on the val split (eval transform, batch norm in eval mode, no
 * gradients): top-1 and top-5 accuracy in percent for single-label data, counted batch by batch
 * (no [images, classes] score matrix: iNaturalist's val split has 24,426 × 8,142), and mAP in
 * percent for multi-label data (scores kept for the ranking; such sets have few classes).
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

/** { top1, top5 } or { mAP } in percent over the val images that were packed. */
export async function evaluateFinetune(
  model: FinetuneModel,
  source: LoaderSource,
  split: LabelledSplit,
): Promise<Record<string, number>> {
  const K = split.classes.length, S = source.imageSize;
  const row = new Map<string, number>();
  split.images.forEach((im, i) => row.set(im.id, i));
  let seen = 0, top1 = 0, top5 = 0;
  const scores: Float32Array[] = [], labels: Int8Array[] = [];
  for (let s = 0; s < source.batchesPerEpoch; s++) {
    const hb = await source.get(0, s);
    const rows = source.batchIds(0, s).map((id) => row.get(id)!);
    const out = noGrad(() =>
      tidy(() => model.logits(tensor(model.backend, hb.images, [hb.size, 3, S, S])))
    ); // [B, K]
    const logits = await out.f32();
    out.dispose();
    seen += rows.length;
    if (split.targets) {
      const targets = Int32Array.from(rows, (r) => split.targets![r]);
      top1 += topKAccuracy(logits, targets, K, 1) * rows.length;
      top5 += topKAccuracy(logits, targets, K, Math.min(5, K)) * rows.length;
    } else {
      scores.push(logits);
      const batch = new Int8Array(rows.length * K); // [B, K]
      rows.forEach((r, b) => batch.set(split.labels!.subarray(r * K, (r + 1) * K), b * K));
      labels.push(batch);
    }
  }
  if (split.targets) return { top1: (100 * top1) / seen, top5: (100 * top5) / seen };
  const cat = <T extends Float32Array | Int8Array>(parts: T[], make: (n: number) => T): T => {
    const all = make(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  };
  const mAP = meanAveragePrecision(
    cat(scores, (n) => new Float32Array(n)),
    cat(labels, (n) => new Int8Array(n)),
    K,
  ).mAP;
  return { mAP: 100 * mAP };
}
