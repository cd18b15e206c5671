import { AugmentKernel } from "../../../kernels/augment.ts";
import {
  readShardIndex,
  resizeShortSide,
  ShardReader,
  ShardWriter,
} from "../../../pipeline/augment/shards.ts";
import type { RgbImage } from "../../../pipeline/data/types.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";

function image(w: number, h: number, v: number): RgbImage {
  return {
    width: w,
    height: h,
    data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * v) & 255),
  };
}

Deno.test("shards: write, roll over to new files, read back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "virtex-shards-" });
  try {
    const w = new ShardWriter(dir, 8, 1000);
    const imgs = [image(8, 10, 3), image(12, 8, 5), image(8, 8, 7), image(20, 8, 11)];
    for (const [i, im] of imgs.entries()) await w.add(`id${i}`, im);
    await assertRejects(() => w.add("id0", imgs[0]), "duplicate");
    const idx = await w.finish();
    assertEquals(idx.images.length, 4);
    assert(idx.shards.length >= 2, `expected several shard files, got ${idx.shards.length}`);
    const back = await readShardIndex(dir);
    assertEquals(back, idx);
    const r = new ShardReader(dir, back.shards);
    back.images.forEach((e, i) => {
      const got = r.read(e);
      assertEquals([got.width, got.height, e.id], [imgs[i].width, imgs[i].height, `id${i}`]);
      assert(got.data.every((v, k) => v === imgs[i].data[k]), `image ${i} bytes`);
    });
    r.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shards: bad index and truncated shard name the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "virtex-shards-" });
  try {
    await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify({ format: "nope" }));
    await assertRejects(() => readShardIndex(dir), `${dir}/index.json`);
    const w = new ShardWriter(dir, 8);
    await w.add("a", image(8, 8, 1));
    const idx = await w.finish();
    await Deno.truncate(`${dir}/${idx.shards[0]}`, 10);
    const r = new ShardReader(dir, idx.shards);
    assertThrows(() => r.read(idx.images[0]), "truncated");
    r.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shards: resizeShortSide keeps the aspect as torchvision Resize", async () => {
  const k = await AugmentKernel.load();
  const a = resizeShortSide(k, image(40, 30, 3), 12);
  assertEquals([a.width, a.height], [16, 12]);
  const b = resizeShortSide(k, image(30, 47, 3), 12);
  assertEquals([b.width, b.height], [12, 18]); // int(12 * 47 / 30) = 18
  const c = image(12, 20, 3);
  assert(resizeShortSide(k, c, 12) === c, "already the right size: unchanged");
});
