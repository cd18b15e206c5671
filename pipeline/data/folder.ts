/** Plain image folders: a flat (or nested) folder of images, and one-folder-per-class layouts. */
import { join, relative, resolve } from "node:path";
import { DataError } from "./errors.ts";
import type { ClassFolderSet, ImageRecord } from "./types.ts";

const IMAGE_EXT = /\.(jpe?g|png)$/i;

function walkImages(root: string, dir: string, out: ImageRecord[]): void {
  const entries = [...Deno.readDirSync(dir)].sort((
    a,
    b,
  ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory) walkImages(root, p, out);
    else if (IMAGE_EXT.test(e.name)) {
      out.push({ id: relative(root, p).split("\\").join("/"), file: p });
    }
  }
}

/** Every .jpg/.jpeg/.png under `dir` (recursively), sorted; ids are "/"-separated relative paths. */
export function readImageFolder(dir: string): ImageRecord[] {
  const root = resolve(dir);
  try {
    if (!Deno.statSync(root).isDirectory) throw new Error();
  } catch {
    throw new DataError({ file: dir }, "not a folder");
  }
  const out: ImageRecord[] = [];
  walkImages(root, root, out);
  return out;
}

/**
 * ImageNet-style layout: `dir/<class>/<image>`. Classes are the sub-folder names sorted; each image
 * is labelled with its folder's class index. Images directly under `dir` are an error.
 */
export function readClassFolders(dir: string): ClassFolderSet {
  const root = resolve(dir);
  try {
    if (!Deno.statSync(root).isDirectory) throw new Error();
  } catch {
    throw new DataError({ file: dir }, "not a folder");
  }
  const classes: string[] = [];
  for (const e of Deno.readDirSync(root)) {
    if (e.isDirectory) classes.push(e.name);
    else if (IMAGE_EXT.test(e.name)) {
      throw new DataError({ file: join(root, e.name) }, "image outside a class folder");
    }
  }
  classes.sort();
  if (classes.length === 0) throw new DataError({ file: dir }, "no class folders");
  const images: ImageRecord[] = [];
  const targets: number[] = [];
  classes.forEach((c, k) => {
    const recs: ImageRecord[] = [];
    walkImages(join(root, c), join(root, c), recs);
    for (const r of recs) {
      images.push({ id: `${c}/${r.id}`, file: r.file });
      targets.push(k);
    }
  });
  return { classes, images, targets: Int32Array.from(targets) };
}
