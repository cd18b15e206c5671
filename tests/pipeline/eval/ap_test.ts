import { averagePrecision, voc11PointAp } from "../../../pipeline/eval/ap.ts";
import { assertClose, assertThrows } from "./_assert.ts";

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/sklearn_fixtures.json", import.meta.url)),
);

Deno.test("AP on hand-computed rankings", () => {
  // Perfect ranking → 1.
  assertClose(averagePrecision([1, 1, 0, 0], [4, 3, 2, 1]), 1, 1e-12);
  // Ranking [neg, pos, neg, pos]: recall 1/2 at precision 1/2, recall 1 at precision 2/4
  // → AP = 0.5·0.5 + 0.5·0.5 = 0.5.
  assertClose(averagePrecision([0, 1, 0, 1], [4, 3, 2, 1]), 0.5, 1e-12);
  // Ranking [pos, neg, neg, pos]: 0.5·1 + 0.5·(2/4) = 0.75.
  assertClose(averagePrecision([1, 0, 0, 1], [4, 3, 2, 1]), 0.75, 1e-12);
  // Ties form one threshold: scores (0.9 neg), (0.5 pos, 0.5 neg), (0.2 pos):
  // recall 1/2 at precision 1/3, then recall 1 at precision 2/4 → 1/6 + 1/4 = 5/12.
  assertClose(averagePrecision([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.9]), 5 / 12, 1e-12);
  // No positives → 0 (sklearn returns -0.0 with a warning).
  assertClose(averagePrecision([0, 0], [1, 2]), 0, 0);
});

Deno.test("AP equals sklearn average_precision_score on the fixture", () => {
  for (const c of fixtures.ap) {
    assertClose(averagePrecision(c.labels, c.scores), c.ap, 1e-12, JSON.stringify(c.labels));
  }
});

Deno.test("VOC 11-point AP on hand-computed rankings", () => {
  // Ranking [pos, neg, neg, pos]: precision 1 up to recall 0.5, then 0.5 up to recall 1:
  // levels 0..0.5 (6 of them) → 1, levels 0.6..1 (5) → 0.5 → (6 + 2.5) / 11.
  assertClose(voc11PointAp([1, 0, 0, 1], [4, 3, 2, 1]), 8.5 / 11, 1e-12);
  assertClose(voc11PointAp([1, 1, 0], [3, 2, 1]), 1, 1e-12);
  // Interpolation takes the best precision at recall ≥ level: [neg, pos, pos] has precision
  // 1/2 at recall 1/2 and 2/3 at recall 1 → every level gets 2/3.
  assertClose(voc11PointAp([0, 1, 1], [3, 2, 1]), 2 / 3, 1e-12);
});

Deno.test("AP rejects mismatched lengths and NaN scores", () => {
  assertThrows(() => averagePrecision([1, 0], [1]), "2 labels but 1 scores");
  assertThrows(() => averagePrecision([1, 0], [1, NaN]), "score 1 is NaN");
});
