/**
 * Image decode throughput (images/s) on real data, all candidates in one run:
 *   deno run -A bench/decode/main.ts [--n 7091] [--dir ../shared/data/flickr8k/images]
 *                                    [--candidates DIR]   (a node_modules parent with jpeg-js / sharp)
 * Always measures our decodeImage (WASM mozjpeg, 1 thread) and ImageDecodePool (all cores); with
 * --candidates it also measures jpeg-js and sharp installed there (not project dependencies).
 * Wrap in `flock /tmp/virtex-bench.lock` on shared machines.
 */
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { decodeImage } from "../../pipeline/data/image.ts";
import { decodeImagesParallel } from "../../pipeline/data/decode_pool.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "7091" },
    dir: { type: "string", default: "../shared/data/flickr8k/images" },
    candidates: { type: "string" },
  },
});
const dir = resolve(values.dir!);
const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /\.(jpe?g|png)$/i.test(n))
  .sort().slice(0, Number(values.n));
const paths = names.map((n) => join(dir, n));
const bytes = paths.map((p) => Deno.readFileSync(p)); // warm the page cache
const mb = bytes.reduce((a, b) => a + b.length, 0) / 1e6;
console.log(
  `${paths.length} images from ${dir} (${
    mb.toFixed(1)
  } MB), ${navigator.hardwareConcurrency} cores`,
);

async function measure(label: string, fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  const s = (performance.now() - t0) / 1000;
  const rate = paths.length / s;
  console.log(`${label.padEnd(44)} ${rate.toFixed(0).padStart(6)} img/s  (${s.toFixed(2)} s)`);
  return rate;
}

await decodeImage(paths[0]); // instantiate the codec
const ours = await measure("decodeImage (@jsquash/jpeg WASM, 1 thread)", async () => {
  for (const p of paths) await decodeImage(p);
});
const workers = navigator.hardwareConcurrency || 2;
const pool = await measure(`decodeImagesParallel (${workers} workers)`, async () => {
  await decodeImagesParallel(paths, () => {}, { workers });
});
console.log(`pool / single-thread: ${(pool / ours).toFixed(2)}×`);

if (values.candidates) {
  const require = createRequire(join(resolve(values.candidates), "x.js"));
  try {
    const jpegjs = require("jpeg-js");
    const r = await measure("jpeg-js (pure JS, 1 thread)", () => {
      for (const b of bytes) jpegjs.decode(b, { useTArray: true, formatAsRGBA: false });
      return Promise.resolve();
    });
    console.log(`  ours / jpeg-js: ${(ours / r).toFixed(2)}×`);
  } catch (e) {
    console.log(`jpeg-js: not available (${(e as Error).message.split("\n")[0]})`);
  }
  try {
    const sharp = require("sharp");
    sharp.cache(false);
    sharp.concurrency(1);
    const dec = (b: Uint8Array) => sharp(b).removeAlpha().raw().toBuffer();
    const r1 = await measure("sharp (libvips, 1 thread, sequential)", async () => {
      for (const b of bytes) await dec(b);
    });
    sharp.concurrency(workers);
    const rN = await measure(`sharp (libvips, ${workers} threads, 8 in flight)`, async () => {
      let i = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (i < bytes.length) await dec(bytes[i++]);
      }));
    });
    console.log(
      `  ours / sharp 1-thread: ${(ours / r1).toFixed(2)}×; pool / sharp ${workers}-thread: ${
        (pool / rN).toFixed(2)
      }×`,
    );
  } catch (e) {
    console.log(`sharp: not available (${(e as Error).message.split("\n")[0]})`);
  }
}
