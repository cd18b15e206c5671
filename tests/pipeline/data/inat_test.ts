/** The iNaturalist 2018 reader on the committed fixture (tests/fixtures/inat2018) and bad input. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { readInat } from "../../../pipeline/data/inat.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { tempDir } from "./_fixtures.ts";

const FIXTURE = fileURLToPath(new URL("../../fixtures/inat2018/", import.meta.url));

Deno.test("iNat 2018: classes by category id, one label per image, files under the root", async () => {
  const train = await readInat(join(FIXTURE, "train2018.json"));
  assertEquals(train.classes, ["Quercus robur", "Cyanocitta cristata", "Danaus plexippus"]);
  assertEquals(train.categoryIds, [0, 1, 2]);
  assertEquals(train.images.length, 18);
  assertEquals(Array.from(train.targets), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
  assertEquals(train.images[0].id, "100");
  assertEquals(train.images[0].file, join(FIXTURE, "train_val2018/Plantae/0/train2018_100.jpg"));
  assertEquals(train.records, 18);
  const val = await readInat(join(FIXTURE, "val2018.json"), { categoryIds: train.categoryIds });
  assertEquals(val.images.length, 9);
  assertEquals(Array.from(val.targets), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
});

function writeDoc(doc: unknown): string {
  const dir = tempDir();
  Deno.mkdirSync(join(dir, "img"));
  for (const n of ["a.jpg", "b.jpg"]) Deno.writeFileSync(join(dir, "img", n), new Uint8Array(4));
  const path = join(dir, "val2018.json");
  Deno.writeTextFileSync(path, JSON.stringify(doc));
  return path;
}

const IMAGES = [{ id: 1, file_name: "img/a.jpg" }, { id: 2, file_name: "img/b.jpg" }];
const CATS = [{ id: 7, name: "x" }, { id: 9, name: "y" }];

Deno.test("iNat: an unlabelled image, a second label and an unknown category name the field", async () => {
  const unlabelled = writeDoc({
    images: IMAGES,
    categories: CATS,
    annotations: [{ id: 1, image_id: 1, category_id: 7 }],
  });
  const e1 = await assertRejects(() => readInat(unlabelled), DataError);
  assert(/image 2 has no annotation/.test(e1.message), e1.message);
  // With skipBad the image is dropped and listed.
  const skipped = await readInat(unlabelled, { skipBad: true });
  assertEquals(skipped.images.map((i) => i.id), ["1"]);
  assertEquals(skipped.skipped.length, 1);

  const twice = writeDoc({
    images: IMAGES,
    categories: CATS,
    annotations: [
      { id: 1, image_id: 1, category_id: 7 },
      { id: 2, image_id: 2, category_id: 7 },
      { id: 3, image_id: 1, category_id: 9 },
    ],
  });
  const e2 = await assertRejects(() => readInat(twice), DataError);
  assert(e2.message.includes("annotations[2].category_id"), e2.message);
  assert(/one label/.test(e2.message), e2.message);

  const unknown = writeDoc({
    images: IMAGES,
    categories: CATS,
    annotations: [{ id: 1, image_id: 1, category_id: 7 }, { id: 2, image_id: 2, category_id: 8 }],
  });
  const e3 = await assertRejects(() => readInat(unknown), DataError);
  assert(e3.message.includes("annotations[1].category_id"), e3.message);
  // Against another split's class list, a category outside it is an error too.
  const e4 = await assertRejects(
    () => readInat(twice, { categoryIds: [9] }),
    DataError,
  );
  assert(/training split's/.test(e4.message), e4.message);
});

Deno.test("iNat: a missing image file names the images[] entry", async () => {
  const path = writeDoc({
    images: [...IMAGES, { id: 3, file_name: "img/missing.jpg" }],
    categories: CATS,
    annotations: [],
  });
  const e = await assertRejects(() => readInat(path), DataError);
  assert(e.message.includes("images[2]"), e.message);
});
