/** Dataset readers and image decoding (see each module for details). */
export * from "./types.ts";
export { BadInputPolicy, DataError, formatLocation } from "./errors.ts";
export type { BadInputOptions } from "./errors.ts";
export { readCocoCaptions, readCocoInstances } from "./coco.ts";
export type { CocoReadOptions } from "./coco.ts";
export { readFlickrCaptions, readSplitList } from "./flickr.ts";
export type { FlickrReadOptions } from "./flickr.ts";
export { discoverVocClasses, readVoc, VOC_CLASSES } from "./voc.ts";
export type { VocReadOptions } from "./voc.ts";
export { readClassFolders, readImageFolder } from "./folder.ts";
export { decodeImage, decodeImageBytes, sniffFormat } from "./image.ts";
export { decodeImagesParallel, ImageDecodePool } from "./decode_pool.ts";
export { parseCsv } from "./csv.ts";
export type { ImageCheck } from "./check.ts";
