/**
 * Average precision of a ranking. `averagePrecision` equals scikit-learn's
 * average_precision_score (non-interpolated: Σ_k (R_k − R_{k−1}) · P_k over distinct score
 * thresholds, tied scores forming one threshold); `voc11PointAp` is the PASCAL VOC2007 11-point
 * interpolated AP (mean over recall levels 0, 0.1, …, 1 of the best precision at that recall or
 * above) on the same precision/recall points.
 */

/** One point of the precision/recall curve per distinct score, from highest score down. */
export interface PrCurve {
  precision: Float64Array;
  recall: Float64Array;
  positives: number;
}

/** Precision/recall at each distinct threshold; labels > 0 (or true) are positives. */
export function precisionRecallCurve(
  labels: ArrayLike<number | boolean>,
  scores: ArrayLike<number>,
): PrCurve {
  const n = labels.length;
  if (scores.length !== n) {
    throw new Error(`average precision: ${n} labels but ${scores.length} scores`);
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new Error(`average precision: score ${i} is NaN`);
    order[i] = i;
  }
  order.sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < n; i++) if (Number(labels[i]) > 0) positives++;
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k];
    if (Number(labels[i]) > 0) tp++;
    else fp++;
    const last = k === n - 1 || scores[order[k + 1]] !== scores[i];
    if (last) {
      precision.push(tp / (tp + fp));
      recall.push(positives > 0 ? tp / positives : 0);
    }
  }
  return { precision: Float64Array.from(precision), recall: Float64Array.from(recall), positives };
}

/** Non-interpolated AP, equal to sklearn.metrics.average_precision_score (0 without positives). */
export function averagePrecision(
  labels: ArrayLike<number | boolean>,
  scores: ArrayLike<number>,
): number {
  const { precision, recall, positives } = precisionRecallCurve(labels, scores);
  if (positives === 0) return 0;
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < recall.length; k++) {
    ap += (recall[k] - prevRecall) * precision[k];
    prevRecall = recall[k];
  }
  return ap;
}

/** PASCAL VOC2007 11-point interpolated AP (0 without positives). */
export function voc11PointAp(
  labels: ArrayLike<number | boolean>,
  scores: ArrayLike<number>,
): number {
  const { precision, recall, positives } = precisionRecallCurve(labels, scores);
  if (positives === 0) return 0;
  let sum = 0;
  for (let t = 0; t <= 10; t++) {
    const level = t / 10;
    let best = 0;
    for (let k = 0; k < recall.length; k++) {
      // Small slack so that e.g. recall 0.3 (= 3/10 in floating point) counts for level 0.3.
      if (recall[k] >= level - 1e-12 && precision[k] > best) best = precision[k];
    }
    sum += best;
  }
  return sum / 11;
}
