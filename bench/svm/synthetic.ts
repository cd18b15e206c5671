import { SeededRng } from "../../engine/rng.ts";
/**
 * Deterministic synthetic "frozen features" for the SVM benchmark: VOC-like multi-label data
 * where each class adds its own direction to the features of the images that contain it, on top
 * of noise and a shared component; rows are rectified and L2-normalized like pooled CNN features.
 */

/** Positive rates of the 20 synthetic classes, roughly those of VOC07 trainval. */
export const classRates = [
  0.05,
  0.05,
  0.07,
  0.04,
  0.05,
  0.04,
  0.15,
  0.07,
  0.09,
  0.03,
  0.04,
  0.08,
  0.05,
  0.05,
  0.4,
  0.05,
  0.02,
  0.05,
  0.05,
  0.05,
];

export interface SyntheticSplit {
  features: Float32Array; // [rows, dim]
  labels: Int8Array; // [rows, classes]: 1, −1, 0 (difficult)
  rows: number;
  dim: number;
}

/** The project's seeded generator with this benchmark's Gaussian (log of u + 1e-300). */
function rng(seed: number) {
  const r = new SeededRng(seed);
  const next = () => r.next();
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-300)) * Math.cos(2 * Math.PI * next());
  return { next, gauss };
}

/** Builds train and test splits from one seed (class directions shared by both). */
export function syntheticVoc(
  trainRows: number,
  testRows: number,
  dim: number,
  seed: number,
): { classes: string[]; train: SyntheticSplit; test: SyntheticSplit } {
  const k = classRates.length;
  const r = rng(seed);
  // [K, dim] class directions, with strengths spread so APs land mid-range.
  const dirs = new Float32Array(k * dim);
  for (let i = 0; i < dirs.length; i++) dirs[i] = r.gauss();
  const strength = classRates.map((_, c) => 0.08 + 0.14 * ((c * 7) % k) / k);
  const shared = Float32Array.from({ length: dim }, () => r.gauss());
  const make = (rows: number): SyntheticSplit => {
    const features = new Float32Array(rows * dim);
    const labels = new Int8Array(rows * k);
    for (let i = 0; i < rows; i++) {
      const row = features.subarray(i * dim, (i + 1) * dim);
      const sharedWeight = 0.5 + r.next();
      for (let j = 0; j < dim; j++) row[j] = r.gauss() + sharedWeight * shared[j];
      for (let c = 0; c < k; c++) {
        const u = r.next();
        if (u < classRates[c]) {
          // A positive; about 8% of them are "difficult" (weak evidence, label 0).
          const difficult = r.next() < 0.08;
          labels[i * k + c] = difficult ? 0 : 1;
          const s = strength[c] * (difficult ? 0.3 : 0.5 + r.next());
          for (let j = 0; j < dim; j++) row[j] += s * dirs[c * dim + j];
        } else {
          labels[i * k + c] = -1;
        }
      }
      let norm = 0;
      for (let j = 0; j < dim; j++) {
        row[j] = Math.max(0, row[j]);
        norm += row[j] * row[j];
      }
      const inv = 1 / Math.sqrt(norm || 1);
      for (let j = 0; j < dim; j++) row[j] *= inv;
    }
    return { features, labels, rows, dim };
  };
  const train = make(trainRows);
  const test = make(testRows);
  return { classes: classRates.map((_, c) => `class${String(c).padStart(2, "0")}`), train, test };
}
