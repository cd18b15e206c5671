import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { COCO_TO_VOC, convertCocoToVoc } from "../../../pipeline/data/coco_to_voc.ts";
import { readVoc, VOC_CLASSES } from "../../../pipeline/data/voc.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

const CATEGORIES = [
  { id: 1, name: "person" },
  { id: 3, name: "car" },
  { id: 5, name: "airplane" },
  { id: 18, name: "dog" },
  { id: 63, name: "couch" },
  { id: 72, name: "tv" },
  { id: 90, name: "toothbrush" },
];

/** COCO root with train2017 (3 images) and val2017 (2 images). */
async function cocoFixture(): Promise<string> {
  const root = tempDir();
  await writeImages(join(root, "train2017"), ["a.jpg", "b.jpg", "c.jpg"]);
  await writeImages(join(root, "val2017"), ["d.jpg", "e.jpg"]);
  Deno.mkdirSync(join(root, "annotations"));
  const doc = (images: [number, string][], anns: [number, number][]) => ({
    images: images.map(([id, file_name]) => ({ id, file_name })),
    annotations: anns.map(([image_id, category_id], i) => ({ id: i + 1, image_id, category_id })),
    categories: CATEGORIES,
  });
  Deno.writeTextFileSync(
    join(root, "annotations", "instances_train2017.json"),
    JSON.stringify(doc([[1, "a.jpg"], [2, "b.jpg"], [3, "c.jpg"]], [[1, 1], [1, 5], [2, 63], [
      3,
      90,
    ]])),
  );
  Deno.writeTextFileSync(
    join(root, "annotations", "instances_val2017.json"),
    JSON.stringify(doc([[4, "d.jpg"], [5, "e.jpg"]], [[4, 72], [4, 18], [5, 3], [5, 3]])),
  );
  return root;
}

Deno.test("COCO→VOC map covers the 20 VOC classes once each", () => {
  assertEquals(new Set(Object.values(COCO_TO_VOC)).size, 20);
  for (const v of Object.values(COCO_TO_VOC)) assert(VOC_CLASSES.includes(v), v);
});

Deno.test("convertCocoToVoc writes a VOC layout that readVoc reads back", async () => {
  const root = await cocoFixture();
  const out = join(tempDir(), "voc");
  const r = await convertCocoToVoc({ cocoRoot: root, outDir: out });
  assertEquals(r.images, { trainval: 3, test: 2 });
  const tv = await readVoc(out, "trainval");
  assertEquals(tv.classes, [...VOC_CLASSES].sort());
  assertEquals(tv.images.map((i) => i.id), ["a", "b", "c"]);
  const K = tv.classes.length;
  const pos = (set: typeof tv, i: number) =>
    set.classes.filter((_, k) => set.labels[i * K + k] === 1);
  assertEquals(pos(tv, 0), ["aeroplane", "person"]);
  assertEquals(pos(tv, 1), ["sofa"]);
  assertEquals(pos(tv, 2), []); // toothbrush is not a VOC class
  const test = await readVoc(out, "test");
  assertEquals(pos(test, 0), ["dog", "tvmonitor"]);
  assertEquals(pos(test, 1), ["car"]);
  assertEquals(r.positives.test.car, 1);
  // Images are symlinks to the originals.
  assertEquals(Deno.realPathSync(join(out, "JPEGImages", "d.jpg")), join(root, "val2017", "d.jpg"));
  // Existing output is refused without force; onlyWithVocObjects drops c.
  await assertRejects(() => convertCocoToVoc({ cocoRoot: root, outDir: out }), Error, "exists");
  const r2 = await convertCocoToVoc({
    cocoRoot: root,
    outDir: out,
    force: true,
    copy: true,
    onlyWithVocObjects: true,
  });
  assertEquals(r2.images.trainval, 2);
  assert(!Deno.lstatSync(join(out, "JPEGImages", "a.jpg")).isSymlink);
});

Deno.test("convertCocoToVoc names the bad file and leaves nothing behind", async () => {
  const root = await cocoFixture();
  Deno.writeTextFileSync(join(root, "annotations", "instances_val2017.json"), "{ not json");
  const parent = tempDir();
  const out = join(parent, "voc");
  await assertRejects(
    () => convertCocoToVoc({ cocoRoot: root, outDir: out }),
    Error,
    "instances_val2017.json",
  );
  assertEquals([...Deno.readDirSync(parent)].length, 0);
});

const COCO_TINY = "../shared/data/coco-tiny";
const haveTiny = (() => {
  try {
    return Deno.statSync(join(COCO_TINY, "annotations")).isDirectory;
  } catch {
    return false;
  }
})();
if (!haveTiny) console.log(`coco_to_voc_test: ${COCO_TINY} absent, skipping the coco-tiny test`);

Deno.test({
  name: "coco-tiny becomes a 20-class VOC set (50 trainval, 50 test)",
  ignore: !haveTiny,
  fn: async () => {
    const out = join(tempDir(), "voc");
    const r = await convertCocoToVoc({ cocoRoot: COCO_TINY, outDir: out });
    assertEquals(r.images, { trainval: 50, test: 50 });
    const test = await readVoc(out, "test");
    assertEquals(test.classes.length, 20);
    assert(r.positives.trainval.person > 10 && r.positives.test.person > 10);
  },
});
