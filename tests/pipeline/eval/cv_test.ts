import { foldRows, stratifiedKFold } from "../../../pipeline/eval/cv.ts";
import { assertEquals, assertThrows } from "./_assert.ts";

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/sklearn_fixtures.json", import.meta.url)),
);

Deno.test("stratifiedKFold equals sklearn StratifiedKFold(3) (no shuffle)", () => {
  for (const c of fixtures.folds) {
    assertEquals(Array.from(stratifiedKFold(c.labels, 3)), c.folds, JSON.stringify(c.labels));
  }
});

Deno.test("stratifiedKFold by hand: blocks in data order per class", () => {
  // Labels (first seen: 1 → class 0, then −1 → class 1). Sorted encoded: [0,0,0,0,1,1,1,1,1];
  // dealt round-robin to 3 folds: class 0 gets 2/1/1, class 1 gets 1/2/2 (positions 4..8 mod 3
  // = 1,2,0,1,2). Class 0 samples (ids 0,2,4,6) → folds 0,0,1,2; class 1 samples (1,3,5,7,8)
  // → folds 0,1,1,2,2.
  const folds = stratifiedKFold([1, -1, 1, -1, 1, -1, 1, -1, -1], 3);
  assertEquals(Array.from(folds), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  const { train, test } = foldRows(folds, 1);
  assertEquals(Array.from(test), [3, 4, 5]);
  assertEquals(Array.from(train), [0, 1, 2, 6, 7, 8]);
});

Deno.test("stratifiedKFold rejects too many splits", () => {
  assertThrows(() => stratifiedKFold([1, -1], 3), "greater than the number of members");
  assertThrows(() => stratifiedKFold([1, -1, 1], 1), "n_splits");
});
