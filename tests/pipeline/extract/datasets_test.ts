import { join } from "node:path";
import { DataError } from "../../../pipeline/data/errors.ts";
import { readLabelledSplits } from "../../../pipeline/extract/datasets.ts";
import { Cache } from "../../../pipeline/cache/store.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { extractStage } from "../../../pipeline/stages/extract.ts";
import { assertEquals, assertRejects } from "../cache/_assert.ts";
import { tempDir, writeImages } from "../data/_fixtures.ts";

/** VOC layout whose test split lacks the dog class file. */
async function vocMissingClass(): Promise<string> {
  const root = tempDir();
  await writeImages(join(root, "JPEGImages"), ["000001.jpg", "000002.jpg"]);
  const main = join(root, "ImageSets", "Main");
  Deno.mkdirSync(main, { recursive: true });
  for (
    const [n, t] of Object.entries({
      "cat_trainval.txt": "000001 1\n",
      "dog_trainval.txt": "000001 -1\n",
      "cat_test.txt": "000002 -1\n",
    })
  ) Deno.writeTextFileSync(join(main, n), t);
  return root;
}

Deno.test("VOC splits with different class files: an error naming the missing file", async () => {
  const root = await vocMissingClass();
  await assertRejects(
    () => readLabelledSplits("voc", root, ["trainval", "test"]),
    DataError,
    "ImageSets/Main/dog_test.txt: missing",
  );
  // An explicit class list reads just those classes.
  const sets = await readLabelledSplits("voc", root, ["trainval", "test"], ["cat"]);
  assertEquals(sets.map((s) => s.classes), [["cat"], ["cat"]]);
  // The extract stage fails the same way, before any work.
  const cache = new Cache(join(root, "cache"));
  await assertRejects(
    () =>
      runStage(extractStage, { path: root, weights: "random", arch: "resnet18", device: "ref" }, {
        cache,
        log: () => {},
      }),
    DataError,
    "dog_test.txt",
  );
});
