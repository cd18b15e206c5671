import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { readFlickrCaptions, readSplitList } from "../../../pipeline/data/flickr.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

async function fixture(csv: string): Promise<string> {
  const dir = tempDir();
  await writeImages(join(dir, "images"), ["a.jpg", "b.jpg", "c.jpg"]);
  Deno.writeTextFileSync(join(dir, "captions.txt"), csv);
  return join(dir, "captions.txt");
}

const GOOD =
  'image,caption\na.jpg,A dog runs .\na.jpg,"A dog, brown, runs"\nb.jpg,"Say ""cheese"""\n' +
  "c.jpg,A cat sits .\nb.jpg,Two people .\n";

Deno.test("Flickr CSV: images in first-mention order, captions with locations", async () => {
  const path = await fixture(GOOD);
  const set = await readFlickrCaptions(path);
  assertEquals(set.images.map((i) => i.id), ["a.jpg", "b.jpg", "c.jpg"]);
  assertEquals(set.images[0].file, join(path, "..", "images", "a.jpg"));
  assertEquals(set.captions.map((c) => [c.imageId, c.text, c.source.line]), [
    ["a.jpg", "A dog runs .", 2],
    ["a.jpg", "A dog, brown, runs", 3],
    ["b.jpg", 'Say "cheese"', 4],
    ["c.jpg", "A cat sits .", 5],
    ["b.jpg", "Two people .", 6],
  ]);
  assertEquals(set.skipped, []);
  const only = await readFlickrCaptions(path, { only: new Set(["b.jpg"]) });
  assertEquals(only.captions.length, 2);
});

Deno.test("Flickr CSV: missing image, empty caption, malformed row fail naming file:line", async () => {
  const missing = await fixture("image,caption\na.jpg,ok\nzzz.jpg,names a missing image\n");
  const e1 = await assertRejects(() => readFlickrCaptions(missing), DataError, `${missing}:3`);
  assert(e1.message.includes("image not found"), e1.message);
  const empty = await fixture('image,caption\na.jpg,ok\nb.jpg,"  "\n');
  await assertRejects(
    () => readFlickrCaptions(empty),
    DataError,
    `${empty}:3 (caption): empty caption`,
  );
  const stray = await fixture('image,caption\na.jpg,ok\nb.jpg,bad "quote\n');
  await assertRejects(() => readFlickrCaptions(stray), DataError, `${stray}:3: malformed CSV`);
  const unterminated = await fixture('image,caption\na.jpg,ok\nb.jpg,"open\nc.jpg,x\n');
  await assertRejects(() => readFlickrCaptions(unterminated), DataError, `${unterminated}:3`);
  const fields = await fixture("image,caption\na.jpg\n");
  await assertRejects(
    () => readFlickrCaptions(fields),
    DataError,
    `${fields}:2: expected 2 fields`,
  );
  const header = await fixture("file,text\na.jpg,x\n");
  await assertRejects(
    () => readFlickrCaptions(header),
    DataError,
    `${header}:1: expected a header`,
  );
});

Deno.test("Flickr CSV: skipBad skips and counts bad rows", async () => {
  const path = await fixture(GOOD + 'zzz.jpg,missing\nc.jpg,""\nb.jpg,x "y\n');
  const set = await readFlickrCaptions(path, { skipBad: true });
  assertEquals(set.captions.length, 5);
  assertEquals(set.skipped.map((s) => s.source.line), [7, 8, 9]);
  assert(set.skipped[0].reason.includes("image not found"));
});

Deno.test("Flickr CSV: a corrupt image is found with checkImages=decode", async () => {
  const path = await fixture(GOOD);
  Deno.writeFileSync(
    join(path, "..", "images", "c.jpg"),
    new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3]),
  );
  await readFlickrCaptions(path); // exists: fine
  await assertRejects(
    () => readFlickrCaptions(path, { checkImages: "decode" }),
    DataError,
    `${path}:5 (image): bad image`,
  );
  const set = await readFlickrCaptions(path, { checkImages: "decode", skipBad: true });
  assertEquals(set.images.map((i) => i.id), ["a.jpg", "b.jpg"]);
  assertEquals(set.skipped.length, 1);
});

Deno.test("split lists ignore blanks and comments", () => {
  const p = join(tempDir(), "train.txt");
  Deno.writeTextFileSync(p, "# train\na.jpg\n\nb.jpg\r\n");
  assertEquals(readSplitList(p), ["a.jpg", "b.jpg"]);
});

Deno.test("Flickr CSV --skip-bad: an unbalanced quote skips its row alone, every row counted", async () => {
  // 20 images x 5 captions = 100 rows; the row on line 4 opens a quote it never closes, and later
  // rows hold quoted captions whose quotes would otherwise pair up with it.
  const dir = tempDir();
  const names = Array.from({ length: 20 }, (_, i) => `im${i}.jpg`);
  await writeImages(join(dir, "images"), names);
  const rows = names.flatMap((n, i) =>
    Array.from(
      { length: 5 },
      (_, k) => (k === 2 ? `${n},"A quoted, caption ${i}"` : `${n},plain ${i}.${k}`),
    )
  );
  rows[2] = `${names[0]},"An unbalanced quote on line 4`;
  const path = join(dir, "captions.txt");
  Deno.writeTextFileSync(path, ["image,caption", ...rows].join("\n") + "\n");
  await assertRejects(() => readFlickrCaptions(path), DataError, "captions.txt:4");
  const set = await readFlickrCaptions(path, { skipBad: true });
  assertEquals(set.records, 100);
  assertEquals(set.captions.length, 99);
  assertEquals(set.skipped.map((s) => s.source.line), [4]);
  assertEquals(set.captions.length + set.skipped.length, set.records);
  assertEquals(set.images.length, 20);
  assertEquals(set.captions.filter((c) => c.text.startsWith("A quoted")).length, 19);
});
