/**
 * Classification figures from scores: top-k accuracy (single-label) and mean average precision
 * over classes (multi-label, VOC-style: difficult labels 0 left out of a class's ranking, classes
 * without a positive left out of the mean).
 */
import { averagePrecision } from "./ap.ts";

/**
 * Share of rows whose target is among the k highest scores, in [0, 1]. scores [N, K]; ties are
 * broken towards the lower class index (as a stable sort), so a constant score is not a hit
 * for every class.
 */
export function topKAccuracy(
  scores: Float32Array,
  targets: Int32Array,
  classes: number,
  k: number,
): number {
  const N = targets.length;
  if (scores.length !== N * classes) {
    throw new Error(`top-k: ${scores.length} scores for ${N} rows × ${classes} classes`);
  }
  if (N === 0) return 0;
  let hits = 0;
  for (let r = 0; r < N; r++) {
    const t = targets[r], o = r * classes, st = scores[o + t];
    let rank = 0; // classes ranked before the target
    for (let j = 0; j < classes; j++) {
      const v = scores[o + j];
      if (v > st || (v === st && j < t)) rank++;
    }
    if (rank < k) hits++;
  }
  return hits / N;
}

/**
 * Mean over classes of the non-interpolated AP of scores [N, K] against labels [N, K] (1, -1, 0
 * difficult: left out). Classes without a positive are not scored (`scored` counts the rest).
 */
export function meanAveragePrecision(
  scores: Float32Array,
  labels: Int8Array,
  classes: number,
): { mAP: number; scored: number } {
  const N = labels.length / classes;
  if (scores.length !== labels.length) {
    throw new Error(`mAP: ${scores.length} scores for ${labels.length} labels`);
  }
  let sum = 0, scored = 0;
  for (let k = 0; k < classes; k++) {
    const ls: number[] = [], ss: number[] = [];
    for (let r = 0; r < N; r++) {
      const l = labels[r * classes + k];
      if (l === 0) continue;
      ls.push(l);
      ss.push(scores[r * classes + k]);
    }
    if (!ls.includes(1)) continue;
    sum += averagePrecision(ls, ss);
    scored++;
  }
  return { mAP: scored ? sum / scored : 0, scored };
}
