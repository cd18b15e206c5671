import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { readCocoCaptions, readCocoInstances } from "../../../pipeline/data/coco.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

/** COCO layout: <root>/annotations/*.json, <root>/val2017/*.jpg. */
async function layout(files: Record<string, unknown>): Promise<string> {
  const root = tempDir();
  await writeImages(join(root, "val2017"), ["001.jpg", "002.jpg", "003.jpg"]);
  Deno.mkdirSync(join(root, "annotations"));
  for (const [name, doc] of Object.entries(files)) {
    const text = typeof doc === "string" ? doc : JSON.stringify(doc, null, 1);
    Deno.writeTextFileSync(join(root, "annotations", name), text);
  }
  return root;
}

const IMAGES = [
  { id: 1, file_name: "001.jpg" },
  { id: 2, file_name: "002.jpg" },
  { id: 3, file_name: "003.jpg" },
];
const CAPTIONS = {
  images: IMAGES,
  annotations: [
    { image_id: 2, id: 10, caption: "A bus." },
    { image_id: 1, id: 11, caption: "A dog on a sofa." },
    { image_id: 2, id: 12, caption: "A red bus on a street." },
  ],
};

Deno.test("COCO captions: images with captions, ids as strings, files in <split>/", async () => {
  const root = await layout({ "captions_val2017.json": CAPTIONS });
  const path = join(root, "annotations", "captions_val2017.json");
  const set = await readCocoCaptions(path);
  assertEquals(set.images.map((i) => i.id), ["1", "2"]); // image 3 has no caption
  assertEquals(set.images[0].file, join(root, "val2017", "001.jpg"));
  assertEquals(set.captions.map((c) => [c.imageId, c.text]), [
    ["2", "A bus."],
    ["1", "A dog on a sofa."],
    ["2", "A red bus on a street."],
  ]);
  assertEquals(set.captions[1].source, { file: path, field: "annotations[1]" });
});

Deno.test("COCO captions: bad input names file and field or line", async () => {
  const broken = await layout({ "captions_val2017.json": '{"images": [\n  {"id": 1,}\n]}' });
  await assertRejects(
    () => readCocoCaptions(join(broken, "annotations", "captions_val2017.json")),
    DataError,
    "captions_val2017.json:2: malformed JSON",
  );
  const unknownImage = await layout({
    "captions_val2017.json": {
      images: IMAGES,
      annotations: [...CAPTIONS.annotations, { image_id: 99, caption: "ghost" }],
    },
  });
  await assertRejects(
    () => readCocoCaptions(join(unknownImage, "annotations", "captions_val2017.json")),
    DataError,
    "(annotations[3].image_id): caption names image id 99",
  );
  const empty = await layout({
    "captions_val2017.json": { images: IMAGES, annotations: [{ image_id: 1, caption: " " }] },
  });
  await assertRejects(
    () => readCocoCaptions(join(empty, "annotations", "captions_val2017.json")),
    DataError,
    "(annotations[0].caption): empty caption",
  );
  const missingFile = await layout({
    "captions_val2017.json": {
      images: [...IMAGES, { id: 4, file_name: "004.jpg" }],
      annotations: [{ image_id: 4, caption: "x" }],
    },
  });
  const p = join(missingFile, "annotations", "captions_val2017.json");
  await assertRejects(
    () => readCocoCaptions(p),
    DataError,
    "(images[3].file_name): image not found",
  );
  const skipped = await readCocoCaptions(p, { skipBad: true });
  assertEquals(skipped.images, []);
  // The image entry, and its caption (counted, not silently dropped): captions + skipped
  // caption records = records read.
  assertEquals(skipped.skipped.map((s) => [s.source.field, s.kind]), [
    ["images[3].file_name", "image"],
    ["annotations[0].image_id", undefined],
  ]);
  assertEquals(skipped.records, 1);
});

Deno.test("COCO captions: skipBad counts every bad annotation and keeps the rest", async () => {
  const root = await layout({
    "captions_val2017.json": {
      images: IMAGES,
      annotations: [
        ...CAPTIONS.annotations,
        { image_id: 99, caption: "ghost" },
        { image_id: 3, caption: "" },
        { image_id: 3 },
      ],
    },
  });
  const set = await readCocoCaptions(join(root, "annotations", "captions_val2017.json"), {
    skipBad: true,
  });
  assertEquals(set.captions.length, 3);
  assertEquals(set.skipped.map((s) => s.source.field), [
    "annotations[3].image_id",
    "annotations[4].caption",
    "annotations[5].caption",
  ]);
});

Deno.test("COCO instances: category set per image over categories ordered by id", async () => {
  const root = await layout({
    "instances_val2017.json": {
      images: IMAGES,
      categories: [{ id: 18, name: "dog" }, { id: 1, name: "person" }, { id: 6, name: "bus" }],
      annotations: [
        { image_id: 1, category_id: 18 },
        { image_id: 1, category_id: 1 },
        { image_id: 1, category_id: 1 },
        { image_id: 2, category_id: 6, iscrowd: 1 },
      ],
    },
  });
  const path = join(root, "annotations", "instances_val2017.json");
  const set = await readCocoInstances(path);
  assertEquals(set.classes, ["person", "bus", "dog"]);
  assertEquals(set.images.map((i) => i.id), ["1", "2", "3"]);
  assertEquals([...set.labels], [1, -1, 1, -1, 1, -1, -1, -1, -1]);
  const bad = await layout({
    "instances_val2017.json": {
      images: IMAGES,
      categories: [{ id: 1, name: "person" }],
      annotations: [{ image_id: 1, category_id: 7 }],
    },
  });
  const e = await assertRejects(
    () => readCocoInstances(join(bad, "annotations", "instances_val2017.json")),
    DataError,
    "(annotations[0].category_id): unknown category id 7",
  );
  assert(e.message.startsWith(join(bad, "annotations", "instances_val2017.json")));
});
