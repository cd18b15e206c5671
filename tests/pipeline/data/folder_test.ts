import { assertEquals, assertThrows } from "../cache/_assert.ts";
import { join } from "node:path";
import { readClassFolders, readImageFolder } from "../../../pipeline/data/folder.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

Deno.test("image folder: sorted, recursive, images only", async () => {
  const root = tempDir();
  await writeImages(root, ["b.jpg", "a.PNG"]);
  await writeImages(join(root, "sub"), ["c.jpeg"]);
  Deno.writeTextFileSync(join(root, "notes.txt"), "x");
  assertEquals(readImageFolder(root).map((r) => r.id), ["a.PNG", "b.jpg", "sub/c.jpeg"]);
  assertThrows(() => readImageFolder(join(root, "nope")), DataError, "not a folder");
});

Deno.test("class folders: classes sorted, targets index them", async () => {
  const root = tempDir();
  await writeImages(join(root, "zebra"), ["1.jpg"]);
  await writeImages(join(root, "ant"), ["1.jpg", "2.jpg"]);
  const set = readClassFolders(root);
  assertEquals(set.classes, ["ant", "zebra"]);
  assertEquals(set.images.map((i) => i.id), ["ant/1.jpg", "ant/2.jpg", "zebra/1.jpg"]);
  assertEquals([...set.targets], [0, 0, 1]);
  await writeImages(root, ["stray.jpg"]);
  assertThrows(() => readClassFolders(root), DataError, "image outside a class folder");
});
