import { assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { readVoc } from "../../../pipeline/data/voc.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

async function voc(files: Record<string, string>, images = ["000001", "000002", "000003"]) {
  const root = tempDir();
  await writeImages(join(root, "JPEGImages"), images.map((i) => `${i}.jpg`));
  Deno.mkdirSync(join(root, "ImageSets", "Main"), { recursive: true });
  for (const [n, t] of Object.entries(files)) {
    Deno.writeTextFileSync(join(root, "ImageSets", "Main", n), t);
  }
  return root;
}

Deno.test("VOC: classes discovered, labels 1/-1/0, order of <split>.txt", async () => {
  const root = await voc({
    "test.txt": "000003\n000001\n000002\n",
    "dog_test.txt": "000001  1\n000002 -1\n000003  0\n",
    "cat_test.txt": "000001 -1\n000002  1\n000003 -1\n",
    "dog_trainval.txt": "000001 1\n",
  });
  const set = await readVoc(root, "test");
  assertEquals(set.classes, ["cat", "dog"]);
  assertEquals(set.images.map((i) => i.id), ["000003", "000001", "000002"]);
  assertEquals(set.images[0].file, join(root, "JPEGImages", "000003.jpg"));
  assertEquals([...set.labels], [-1, 0, -1, 1, 1, -1]);
  const tv = await readVoc(root, "trainval");
  assertEquals(tv.classes, ["dog"]);
  assertEquals(tv.images.map((i) => i.id), ["000001"]);
});

Deno.test("VOC: bad label, missing label, missing image name the file and line", async () => {
  const badLabel = await voc({ "dog_test.txt": "000001 1\n000002 2\n" });
  await assertRejects(
    () => readVoc(badLabel, "test"),
    DataError,
    `${join(badLabel, "ImageSets", "Main", "dog_test.txt")}:2: expected "<image id> <1|-1|0>"`,
  );
  const missingLabel = await voc({
    "dog_test.txt": "000001 1\n000002 -1\n",
    "cat_test.txt": "000001 1\n",
  });
  await assertRejects(() => readVoc(missingLabel, "test"), DataError, "no label for image 000002");
  const missingImage = await voc({ "dog_test.txt": "000001 1\n000009 -1\n" });
  await assertRejects(
    () => readVoc(missingImage, "test"),
    DataError,
    `${join(missingImage, "ImageSets", "Main", "dog_test.txt")}:2: image not found`,
  );
  const skipped = await readVoc(missingImage, "test", { skipBad: true });
  assertEquals(skipped.images.length, 1);
  assertEquals(skipped.skipped.length, 1);
  await assertRejects(() => readVoc(missingImage, "val"), DataError, "no <class>_val.txt files");
});
