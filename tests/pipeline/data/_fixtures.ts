/** Builds small dataset fixtures (images, COCO JSON, Flickr CSV, VOC layout) in temp folders. */
import encodeJpeg from "@jsquash/jpeg/encode.js";
import encodePng from "@jsquash/png/encode.js";
import { join } from "node:path";

function pixels(w: number, h: number, seed: number): Uint8ClampedArray {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data[4 * i] = (i * 7 + seed * 31) & 255;
    data[4 * i + 1] = (i * 3 + seed * 17) & 255;
    data[4 * i + 2] = (seed * 53) & 255;
    data[4 * i + 3] = 255;
  }
  return data;
}

/** A w×h JPEG with a deterministic pattern. */
export async function makeJpeg(w = 16, h = 12, seed = 1): Promise<Uint8Array> {
  const img = { data: pixels(w, h, seed), width: w, height: h, colorSpace: "srgb" };
  return new Uint8Array(await encodeJpeg(img as unknown as ImageData, { quality: 95 }));
}

/** A w×h PNG with a deterministic pattern; returns the bytes and the RGB pixels it holds. */
export async function makePng(
  w = 5,
  h = 4,
  seed = 2,
): Promise<{ bytes: Uint8Array; rgb: Uint8Array }> {
  const data = pixels(w, h, seed);
  const img = { data, width: w, height: h, colorSpace: "srgb" };
  const bytes = new Uint8Array(await encodePng(img as unknown as ImageData));
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set(data.subarray(4 * i, 4 * i + 3), 3 * i);
  return { bytes, rgb };
}

/** A fresh temp folder. */
export function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "virtex-data-test-" });
}

/** Writes `names` as JPEGs into `dir` (created). */
export async function writeImages(dir: string, names: string[]): Promise<void> {
  Deno.mkdirSync(dir, { recursive: true });
  for (const [i, n] of names.entries()) Deno.writeFileSync(join(dir, n), await makeJpeg(16, 12, i));
}
