import { AugmentKernel } from "../../../kernels/augment.ts";
import { readShardIndex, ShardReader } from "../../../pipeline/augment/shards.ts";
import { Cache } from "../../../pipeline/cache/store.ts";
import { encodePng } from "../../../pipeline/image/png.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { augmentStage } from "../../../pipeline/stages/augment.ts";
import type { RgbImage } from "../../../pipeline/data/types.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";

function image(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 7 + seed * 31) & 255;
      data[i + 1] = (y * 5 + seed * 17) & 255;
      data[i + 2] = ((x + y) * 3) & 255;
    }
  }
  return { width: w, height: h, data };
}

/** A Flickr-style dataset: captions.txt + images/ with three PNGs. */
async function makeDataset(): Promise<{ root: string; images: Map<string, RgbImage> }> {
  const root = await Deno.makeTempDir({ prefix: "virtex-aug-stage-" });
  await Deno.mkdir(`${root}/data/images`, { recursive: true });
  const images = new Map<string, RgbImage>();
  const rows = ["image,caption"];
  for (const [i, [w, h]] of [[40, 30], [24, 50], [32, 32]].entries()) {
    const name = `p${i}.png`;
    const img = image(w, h, i);
    images.set(name, img);
    await Deno.writeFile(`${root}/data/images/${name}`, encodePng(img));
    rows.push(`${name},a dog to the left of a cat number ${i}`);
    rows.push(`${name},"a cat, right of a dog"`);
  }
  await Deno.writeTextFile(`${root}/data/captions.txt`, rows.join("\n") + "\n");
  return { root, images };
}

const quiet = () => {};

Deno.test("augment stage: packs resized images into shards; second run is a cache hit", async () => {
  const { root, images } = await makeDataset();
  const cache = new Cache(`${root}/cache`);
  const config = { captions: `${root}/data/captions.txt`, shortSide: 16 };
  Deno.env.set("VIRTEX_WORKERS", "1");
  try {
    const first = await runStage(augmentStage, config, { cache, log: quiet });
    assert(!first.hit, "first run builds");
    assertEquals(first.artifact.manifest.summary.images, 3);
    const idx = await readShardIndex(first.artifact.dir);
    assertEquals(idx.shortSide, 16);
    assertEquals(idx.images.map((e) => [e.id, e.width, e.height]), [
      ["p0.png", 21, 16],
      ["p1.png", 16, 33],
      ["p2.png", 16, 16],
    ]);
    const kernel = await AugmentKernel.load();
    const reader = new ShardReader(first.artifact.dir, idx.shards);
    for (const e of idx.images) {
      const want = kernel.resizeU8(images.get(e.id)!, e.width, e.height);
      assertEquals(reader.read(e).data, want.data);
    }
    reader.close();
    const second = await runStage(augmentStage, config, { cache, log: quiet });
    assert(second.hit, "second run is a cache hit");
    assertEquals(second.artifact.key, first.artifact.key);
  } finally {
    Deno.env.delete("VIRTEX_WORKERS");
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("augment stage: a corrupt image fails naming it, or is skipped with skipBad", async () => {
  const { root } = await makeDataset();
  const cache = new Cache(`${root}/cache`);
  await Deno.writeFile(`${root}/data/images/p1.png`, new Uint8Array([137, 80, 78, 71, 1, 2, 3]));
  const config = { captions: `${root}/data/captions.txt`, shortSide: 16 };
  Deno.env.set("VIRTEX_WORKERS", "0"); // decode in this thread (workers are covered above)
  try {
    await assertRejects(() => runStage(augmentStage, config, { cache, log: quiet }), "p1.png");
    const r = await runStage(augmentStage, { ...config, skipBad: true }, { cache, log: quiet });
    assertEquals(r.artifact.manifest.summary.images, 2);
    assertEquals(r.artifact.manifest.summary.skippedImages, 1);
    assertEquals(r.artifact.manifest.summary.skipped, 0);
    const skipped = await Deno.readTextFile(`${r.artifact.dir}/skipped.jsonl`);
    assert(skipped.includes("p1.png"), skipped);
  } finally {
    Deno.env.delete("VIRTEX_WORKERS");
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("augment stage: replacing an image in the default images/ folder changes the key", async () => {
  const { root } = await makeDataset();
  const cache = new Cache(`${root}/cache`);
  const config = { captions: `${root}/data/captions.txt`, shortSide: 16 };
  Deno.env.set("VIRTEX_WORKERS", "0");
  try {
    const first = await runStage(augmentStage, config, { cache, log: quiet });
    assertEquals(first.artifact.manifest.inputFiles.images.length > 0, true);
    await Deno.writeFile(`${root}/data/images/p1.png`, encodePng(image(24, 50, 9)));
    const second = await runStage(augmentStage, config, { cache, log: quiet });
    assert(!second.hit, "a changed image must not be a cache hit");
    assert(second.artifact.key !== first.artifact.key);
  } finally {
    Deno.env.delete("VIRTEX_WORKERS");
    await Deno.remove(root, { recursive: true });
  }
});
