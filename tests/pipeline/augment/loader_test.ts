import { AugmentKernel } from "../../../kernels/augment.ts";
import { AugmentLoader, type Batch, epochOrder } from "../../../pipeline/augment/loader.ts";
import { ShardWriter } from "../../../pipeline/augment/shards.ts";
import { LeftRightSwapper } from "../../../pipeline/augment/swap.ts";
import { applyEval, transformSchema } from "../../../pipeline/augment/transforms.ts";
import type { RgbImage } from "../../../pipeline/data/types.ts";
import { assert, assertEquals } from "./_assert.ts";

const pieces = [
  "<unk>",
  "[SOS]",
  "[EOS]",
  "[MASK]",
  "\u2581a",
  "\u2581left",
  "\u2581right",
  "\u2581dog",
];
const SOS = 1, EOS = 2, A = 4, LEFT = 5, RIGHT = 6, DOG = 7;

function image(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width: w, height: h, data };
}

/** A shards dir of 10 small images of assorted shapes. */
async function makeShards(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "virtex-aug-loader-" });
  const w = new ShardWriter(dir, 24, 4000); // small shards: several files
  for (let i = 0; i < 10; i++) {
    await w.add(`img${i}`, image(24 + (i % 3) * 5, 24 + (i % 2) * 7, i + 1));
  }
  await w.finish();
  return dir;
}

const cfg = transformSchema.parse({ size: 16, evalResize: 20 });
const captions = {
  tokens: (id: string) => [
    Int32Array.from([SOS, A, DOG, LEFT, EOS]),
    Int32Array.from([SOS, DOG, RIGHT, Number(id.slice(3)) + 10, EOS]),
  ],
  swapper: new LeftRightSwapper(pieces),
  maxLength: 6,
};

async function collect(loader: AugmentLoader, epoch: number, start = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch, start)) out.push({ ...b, images: b.images.slice() });
  return out;
}

function sameBatches(a: Batch[], b: Batch[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) =>
    JSON.stringify([x.indices, x.flips, x.tokens].map((v) => Array.from(v!))) ===
      JSON.stringify([b[i].indices, b[i].flips, b[i].tokens].map((v) => Array.from(v!))) &&
    x.images.every((v, k) => v === b[i].images[k])
  );
}

Deno.test("augment loader: deterministic per (seed, epoch, index), workers = in-process", async () => {
  const dir = await makeShards();
  const opts = { dir, batchSize: 4, seed: 3, mode: "train" as const, transform: cfg, captions };
  const a = await AugmentLoader.open(opts);
  const b = await AugmentLoader.open({ ...opts, workers: 2, prefetch: 2 });
  try {
    assertEquals(a.batchesPerEpoch, 2); // 10 images, batch 4, drop last
    const e0 = await collect(a, 0), e0w = await collect(b, 0);
    assert(sameBatches(e0, e0w), "workers give the same batches as in-process");
    assert(sameBatches(e0, await collect(a, 0)), "same epoch twice is identical");
    const e1 = await collect(a, 1);
    assert(!sameBatches(e0, e1), "another epoch differs");
    // Resume from step 1 reproduces the tail of the epoch.
    assert(sameBatches(e0.slice(1), await collect(b, 0, 1)), "resume from step 1");
    assertEquals(e0[0].images.length, 4 * 3 * 16 * 16);
    // A sample depends on its image index and epoch, not its batch position.
    const c = await AugmentLoader.open({ ...opts, batchSize: 2 });
    const small = await collect(c, 0);
    const idx = e0[0].indices[2];
    const where = small.flatMap((x) => Array.from(x.indices)).indexOf(idx);
    const blk = 3 * 16 * 16;
    const x1 = e0[0].images.subarray(2 * blk, 3 * blk);
    const x2 = small[Math.floor(where / 2)].images.subarray(
      (where % 2) * blk,
      (where % 2 + 1) * blk,
    );
    assert(x1.every((v, k) => v === x2[k]), "same image index → same augmentation");
    c.close();
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("augment loader: flipped samples carry swapped captions", async () => {
  const dir = await makeShards();
  const loader = await AugmentLoader.open({
    dir,
    batchSize: 5,
    seed: 11,
    mode: "train",
    transform: cfg,
    captions,
  });
  try {
    let flipped = 0, plain = 0;
    for (let epoch = 0; epoch < 4; epoch++) {
      for await (const b of loader.epoch(epoch)) {
        for (let i = 0; i < b.indices.length; i++) {
          const t = Array.from(b.tokens!.subarray(i * 6, i * 6 + b.lengths![i]));
          const id = Number(b.ids[i].slice(3)) + 10;
          const options = b.flips[i]
            ? [[SOS, A, DOG, RIGHT, EOS], [SOS, DOG, LEFT, id, EOS]]
            : [[SOS, A, DOG, LEFT, EOS], [SOS, DOG, RIGHT, id, EOS]];
          assert(
            options.some((o) => JSON.stringify(o) === JSON.stringify(t)),
            `caption ${t} (flip ${b.flips[i]})`,
          );
          assertEquals(b.tokens![i * 6 + 5], 0, "padding");
          if (b.flips[i]) flipped++;
          else plain++;
        }
      }
    }
    assert(flipped > 5 && plain > 5, `flip rate looks wrong: ${flipped} flipped, ${plain} not`);
  } finally {
    loader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("augment loader: eval mode is the eval transform in dataset order", async () => {
  const dir = await makeShards();
  const loader = await AugmentLoader.open({
    dir,
    batchSize: 4,
    seed: 0,
    mode: "eval",
    transform: cfg,
    workers: 1,
  });
  const kernel = await AugmentKernel.load();
  try {
    const batches = await collect(loader, 0);
    assertEquals(batches.map((b) => b.indices.length), [4, 4, 2]); // keeps the last partial batch
    assertEquals(batches.flatMap((b) => Array.from(b.indices)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const want = new Float32Array(3 * 16 * 16);
    applyEval(kernel, image(34, 31, 6), cfg, want); // image 5 as written
    const got = batches[1].images.subarray(3 * 16 * 16, 2 * 3 * 16 * 16);
    assert(got.every((v, k) => v === want[k]), "eval output equals applyEval on the stored image");
  } finally {
    loader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("augment loader: epoch order is a permutation, seeded", () => {
  const o = epochOrder(1, 0, 100, true);
  assertEquals(Array.from(o).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assertEquals(Array.from(o), Array.from(epochOrder(1, 0, 100, true)));
  assert(o.some((v, i) => v !== epochOrder(1, 1, 100, true)[i]));
  assert(o.some((v, i) => v !== epochOrder(2, 0, 100, true)[i]));
  assertEquals(Array.from(epochOrder(1, 0, 5, false)), [0, 1, 2, 3, 4]);
});
