import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { decodeImage, decodeImageBytes, sniffFormat } from "../../../pipeline/data/image.ts";
import { DataError } from "../../../pipeline/data/errors.ts";
import { createHash } from "node:crypto";
import { makeJpeg, makePng, tempDir } from "./_fixtures.ts";

Deno.test("decodeImage: PNG is exact, JPEG has its size and close pixels", async () => {
  const dir = tempDir();
  const { bytes, rgb } = await makePng(5, 4, 3);
  Deno.writeFileSync(join(dir, "x.png"), bytes);
  const png = await decodeImage(join(dir, "x.png"));
  assertEquals([png.width, png.height], [5, 4]);
  assertEquals(png.data, rgb);
  const jpg = await makeJpeg(16, 12, 3);
  assertEquals(sniffFormat(jpg), "jpeg");
  const img = await decodeImageBytes(jpg, "x.jpg");
  assertEquals([img.width, img.height, img.data.length], [16, 12, 16 * 12 * 3]);
  assert(Math.abs(img.data[2] - ((3 * 53) & 255)) < 12, `blue ${img.data[2]}`);
});

Deno.test("decodeImage: corrupt, truncated and non-images fail naming the file", async () => {
  const dir = tempDir();
  const jpg = await makeJpeg(32, 32, 1);
  const garbled = jpg.slice();
  for (let i = 20; i < 200; i++) garbled[i] = 0x12;
  Deno.writeFileSync(join(dir, "garbled.jpg"), garbled);
  await assertRejects(
    () => decodeImage(join(dir, "garbled.jpg")),
    DataError,
    `${join(dir, "garbled.jpg")}: corrupt JPEG`,
  );
  Deno.writeFileSync(join(dir, "cut.jpg"), jpg.slice(0, jpg.length >> 1));
  await assertRejects(
    () => decodeImage(join(dir, "cut.jpg")),
    DataError,
    "cut.jpg: corrupt JPEG: truncated",
  );
  const { bytes } = await makePng();
  Deno.writeFileSync(join(dir, "cut.png"), bytes.slice(0, bytes.length - 16));
  await assertRejects(() => decodeImage(join(dir, "cut.png")), DataError, "cut.png: corrupt PNG");
  Deno.writeTextFileSync(join(dir, "text.jpg"), "hello");
  await assertRejects(
    () => decodeImage(join(dir, "text.jpg")),
    DataError,
    "text.jpg: not a JPEG or PNG",
  );
  await assertRejects(() => decodeImage(join(dir, "none.jpg")), DataError, "none.jpg: cannot read");
  // the decoder still works after failures
  assertEquals((await decodeImageBytes(jpg, "ok.jpg")).width, 32);
});

Deno.test("decodeImagesParallel matches decodeImage; a bad file rejects naming it", async () => {
  const dir = tempDir();
  const paths: string[] = [];
  for (let i = 0; i < 6; i++) {
    const p = join(dir, `${i}.jpg`);
    Deno.writeFileSync(p, await makeJpeg(8 + i, 8, i));
    paths.push(p);
  }
  const run = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./pool_helper.ts", import.meta.url).pathname, ...paths],
      stdout: "piped",
    }).output();
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  const expected = [];
  for (const [i, p] of paths.entries()) {
    const img = await decodeImage(p);
    expected.push([i, img.width, img.height, createHash("sha256").update(img.data).digest("hex")]);
  }
  assertEquals(await run(), expected);
  Deno.writeTextFileSync(paths[3], "not an image");
  assertEquals(await run(), {
    name: "DataError",
    error: `${paths[3]}: not a JPEG or PNG image (unrecognised header)`,
  });
});
