/**
 * Bootstrap confidence intervals over test images: the test set is resampled with replacement
 * (same size, seeded), the metric recomputed on each resample, and the interval read off the
 * resampled metrics' quantiles. It answers "how much would this figure move on another test set of
 * the same size from the same distribution" — what decides whether two backbones differ by more
 * than noise on a few hundred images.
 *
 * Average precision is biased upwards under resampling: a positive drawn twice sits twice at its
 * rank, and the second copy sees the first above it. With rare positives (a few per class) the
 * resampled mAPs can all lie above the estimate, and the plain percentile interval then excludes
 * it. The mAP interval is therefore bias-shifted: its quantiles are moved by the estimate minus
 * the resamples' mean, keeping the width the resampling measured, centred as the estimate is.
 */
import { SeededRng } from "../../engine/rng.ts";
import { averagePrecision } from "./ap.ts";

/** How the bootstrap is run. */
export interface BootstrapOptions {
  /** Resamples (default 1000). */
  samples?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** Two-sided coverage (default 0.95). */
  level?: number;
}

/** A point estimate's percentile interval, in the metric's own unit. */
export interface Interval {
  low: number;
  high: number;
  level: number;
  samples: number;
}

/** One class of a multi-label test set: labels 1 / -1 / 0 (difficult, left out) and scores. */
export interface ScoredClass {
  labels: Int8Array; // [test rows]
  scores: Float32Array | Float64Array; // [test rows]
}

function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Percentile interval of `values`, moved by `shift` and clamped to [0, 1]. */
function interval(values: Float64Array, level: number, shift = 0): Interval {
  values.sort();
  const a = (1 - level) / 2;
  const clamp = (x: number) => Math.min(1, Math.max(0, x + shift));
  return {
    low: clamp(quantile(values, a)),
    high: clamp(quantile(values, 1 - a)),
    level,
    samples: values.length,
  };
}

/** Row indices of each resample, drawn once and shared by every class (paired over classes). */
function* resamples(rows: number, o: BootstrapOptions): Generator<Uint32Array> {
  const rng = new SeededRng(o.seed ?? 0);
  const idx = new Uint32Array(rows);
  for (let b = 0; b < (o.samples ?? 1000); b++) {
    for (let i = 0; i < rows; i++) idx[i] = rng.int(rows);
    yield idx;
  }
}

/** mAP of the rows `idx` (a class with no positive among them is left out of the mean). */
function mapOfRows(classes: ScoredClass[], idx: ArrayLike<number>): number | null {
  const truth: boolean[] = [], score: number[] = [];
  let sum = 0, counted = 0;
  for (const c of classes) {
    truth.length = 0;
    score.length = 0;
    let pos = 0;
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      const l = c.labels[r];
      if (l === 0) continue;
      truth.push(l > 0);
      score.push(c.scores[r]);
      if (l > 0) pos++;
    }
    if (pos === 0) continue;
    sum += averagePrecision(truth, score);
    counted++;
  }
  return counted > 0 ? sum / counted : null;
}

/**
 * Bias-shifted interval of mAP (mean non-interpolated AP over classes, in the unit of
 * averagePrecision) by resampling test images. In a resample a class with no positive left is
 * dropped from the mean, as the protocol drops classes without test positives.
 */
export function bootstrapMapInterval(classes: ScoredClass[], o: BootstrapOptions = {}): Interval {
  if (classes.length === 0) throw new Error("bootstrap: no classes");
  const rows = classes[0].labels.length;
  const estimate = mapOfRows(classes, Uint32Array.from({ length: rows }, (_, i) => i));
  if (estimate === null) throw new Error("bootstrap: no class has a test positive");
  const out: number[] = [];
  for (const idx of resamples(rows, o)) {
    const m = mapOfRows(classes, idx);
    if (m !== null) out.push(m);
  }
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  return interval(Float64Array.from(out), o.level ?? 0.95, estimate - mean);
}

/** Interval of accuracy (fraction correct) by resampling test images. */
export function bootstrapAccuracyInterval(correct: ArrayLike<boolean>, o: BootstrapOptions = {}) {
  const rows = correct.length;
  if (rows === 0) throw new Error("bootstrap: no test rows");
  const out: number[] = [];
  for (const idx of resamples(rows, o)) {
    let n = 0;
    for (const r of idx) if (correct[r]) n++;
    out.push(n / rows);
  }
  return interval(Float64Array.from(out), o.level ?? 0.95);
}
