/** Top-k accuracy and multi-label mAP on hand-checked cases (AP values from sklearn's definition). */
import assert from "node:assert";
import { meanAveragePrecision, topKAccuracy } from "../../../pipeline/eval/classification.ts";

Deno.test("top-k accuracy: ranks, ties broken towards the lower class", () => {
  // deno-fmt-ignore
  const scores = Float32Array.from([
    0.1, 0.7, 0.2, // target 1: rank 0
    0.5, 0.3, 0.2, // target 2: rank 2
    0.3, 0.3, 0.3, // target 1: rank 1 (tie with class 0)
  ]);
  const targets = Int32Array.from([1, 2, 1]);
  assert.strictEqual(topKAccuracy(scores, targets, 3, 1), 1 / 3);
  assert.strictEqual(topKAccuracy(scores, targets, 3, 2), 2 / 3);
  assert.strictEqual(topKAccuracy(scores, targets, 3, 3), 1);
  assert.throws(() => topKAccuracy(scores, targets, 4, 1), /scores/);
});

Deno.test("mAP: difficult labels left out, classes without positives not scored", () => {
  // 4 images × 3 classes. Class 0: positives ranked 1st and 3rd → AP (1 + 2/3) / 2.
  // Class 1: the top-scored image is difficult (0) and left out → AP 1. Class 2: no positive.
  // deno-fmt-ignore
  const labels = Int8Array.from([
    1, 0, -1,
    -1, 1, -1,
    1, -1, -1,
    -1, -1, -1,
  ]);
  // deno-fmt-ignore
  const scores = Float32Array.from([
    0.9, 0.9, 0.1,
    0.8, 0.8, 0.2,
    0.7, 0.1, 0.3,
    0.1, 0.2, 0.4,
  ]);
  const r = meanAveragePrecision(scores, labels, 3);
  assert.strictEqual(r.scored, 2);
  assert(Math.abs(r.mAP - ((1 + 2 / 3) / 2 + 1) / 2) < 1e-12, String(r.mAP));
});
