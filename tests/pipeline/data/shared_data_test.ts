/** Readers on the real data in ../shared/data (skipped when it is absent). */
import { assert, assertEquals } from "../cache/_assert.ts";
import { join } from "node:path";
import { readCocoCaptions, readCocoInstances } from "../../../pipeline/data/coco.ts";
import { readFlickrCaptions, readSplitList } from "../../../pipeline/data/flickr.ts";
import { decodeImage } from "../../../pipeline/data/image.ts";

const DATA = new URL("../../../../shared/data/", import.meta.url).pathname;
const has = (p: string) => {
  try {
    Deno.statSync(join(DATA, p));
    return true;
  } catch {
    return false;
  }
};
const FLICKR = has("flickr8k/captions.txt");
const COCO = has("coco-tiny/annotations/captions_val2017.json");
if (!FLICKR) console.log(`skipping Flickr8k reader tests: ${DATA}flickr8k absent`);
if (!COCO) console.log(`skipping coco-tiny reader tests: ${DATA}coco-tiny absent`);

Deno.test({
  name: "shared data: Flickr8k captions.txt gives 7,091 images × 5 captions; splits resolve",
  ignore: !FLICKR,
  async fn() {
    const set = await readFlickrCaptions(join(DATA, "flickr8k/captions.txt"));
    assertEquals(set.images.length, 7091);
    assertEquals(set.captions.length, 35455);
    const per = new Map<string, number>();
    for (const c of set.captions) per.set(c.imageId, (per.get(c.imageId) ?? 0) + 1);
    assertEquals(per.size, 7091);
    assert([...per.values()].every((n) => n === 5));
    assert(set.captions.some((c) => c.text.includes(",")), "quoted captions with commas parsed");
    const train = readSplitList(join(DATA, "flickr8k/splits/train.txt"));
    const val = readSplitList(join(DATA, "flickr8k/splits/val.txt"));
    assertEquals([train.length, val.length], [6091, 1000]);
    assert([...train, ...val].every((id) => per.has(id)));
    const img = await decodeImage(set.images[0].file);
    assertEquals([img.width, img.height], [128, 128]);
  },
});

interface RawCoco {
  images: { id: number; file_name: string }[];
  annotations: { image_id: number; category_id: number; caption?: string }[];
  categories: { id: number; name: string }[];
}

Deno.test({
  name: "shared data: coco-tiny gives 100 images with ≥5 captions and the right category sets",
  ignore: !COCO,
  async fn() {
    const ann = (n: string) => join(DATA, "coco-tiny/annotations", n);
    const caps = await readCocoCaptions([
      ann("captions_train2017.json"),
      ann("captions_val2017.json"),
    ]);
    assertEquals(caps.images.length, 100);
    const per = new Map<string, number>();
    for (const c of caps.captions) per.set(c.imageId, (per.get(c.imageId) ?? 0) + 1);
    assertEquals(per.size, 100);
    assert([...per.values()].every((n) => n >= 5));
    assert(caps.images.some((i) => i.file.includes("/train2017/")));
    assert(caps.images.some((i) => i.file.includes("/val2017/")));

    const files = [ann("instances_train2017.json"), ann("instances_val2017.json")];
    const inst = await readCocoInstances(files);
    assertEquals(inst.classes.length, 80);
    assertEquals(inst.images.length, 100);
    // Independent computation from the raw JSON: category names per image.
    const expected = new Map<string, Set<string>>();
    for (const f of files) {
      const raw = JSON.parse(Deno.readTextFileSync(f)) as RawCoco;
      const name = new Map(raw.categories.map((c) => [c.id, c.name]));
      for (const im of raw.images) expected.set(String(im.id), new Set());
      for (const a of raw.annotations) {
        expected.get(String(a.image_id))!.add(name.get(a.category_id)!);
      }
    }
    let checked = 0;
    for (const [i, im] of inst.images.entries()) {
      const got = new Set(inst.classes.filter((_, k) => inst.labels[i * 80 + k] === 1));
      assertEquals(got, expected.get(im.id), `image ${im.id}`);
      checked++;
    }
    assertEquals(checked, 100);
    assert([...expected.values()].some((s) => s.size >= 3), "some images have several categories");
    const img = await decodeImage(inst.images[0].file);
    assert(img.width > 100 && img.height > 100);
  },
});
