/**
 * Reading an extract artifact's features: per split, <split>.f32 (features [N, C], little-endian),
 * <split>.labels.i8 ([N, K]: 1, -1, 0 difficult) and <split>.json ({ids, classes, dim}). Kept apart
 * from the extract stage so readers (evaluate, reports) do not load the engine.
 */
import { join } from "node:path";

/** Features and labels of one split of an extract artifact. */
export interface FeatureSplit {
  ids: string[];
  classes: string[];
  dim: number;
  features: Float32Array; // [N, dim]
  labels: Int8Array; // [N, K]
}

/** Reads one split of an extract artifact. */
export async function readFeatureSplit(dir: string, split: string): Promise<FeatureSplit> {
  const meta = JSON.parse(await Deno.readTextFile(join(dir, `${split}.json`)));
  const fb = await Deno.readFile(join(dir, `${split}.f32`));
  const lb = await Deno.readFile(join(dir, `${split}.labels.i8`));
  const features = new Float32Array(fb.buffer, fb.byteOffset, fb.byteLength / 4);
  const labels = new Int8Array(lb.buffer, lb.byteOffset, lb.byteLength);
  if (features.length !== meta.ids.length * meta.dim) {
    throw new Error(
      `${dir}/${split}.f32: ${features.length} values for ${meta.ids.length}×${meta.dim}`,
    );
  }
  if (labels.length !== meta.ids.length * meta.classes.length) {
    throw new Error(`${dir}/${split}.labels.i8 does not match ${split}.json`);
  }
  return { ...meta, features, labels };
}
