import { assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { readReferences } from "../../../pipeline/caption/split_eval.ts";
import { tempDir, writeImages } from "../data/_fixtures.ts";

Deno.test("references from a Flickr CSV, restricted by a split of file names", async () => {
  const root = tempDir();
  await writeImages(join(root, "images"), ["a.jpg", "b.jpg", "c.jpg"]);
  const csv = join(root, "captions.txt");
  await Deno.writeTextFile(
    csv,
    'image,caption\na.jpg,a dog runs\na.jpg,"a dog, running"\nb.jpg,two cats\nc.jpg,a bird\n',
  );
  const split = join(root, "val.txt");
  await Deno.writeTextFile(split, "c.jpg\na.jpg\n");
  const refs = await readReferences(csv, { split });
  assertEquals(refs.images.map((i) => i.id), ["c.jpg", "a.jpg"]);
  assertEquals(refs.references.get("a.jpg"), ["a dog runs", "a dog, running"]);
  await Deno.writeTextFile(split, "a.jpg\nzebra.jpg\n");
  await assertRejects(() => readReferences(csv, { split }), Error, "val.txt:2");
  await Deno.remove(root, { recursive: true });
});
