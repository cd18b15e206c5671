/** Shared shapes of what the dataset readers return. */

/** Where a record came from, for error messages: file plus 1-based line or a JSON path. */
export interface SourceLocation {
  file: string;
  line?: number;
  field?: string; // e.g. "annotations[17].caption"
}

export interface ImageRecord {
  id: string; // stable id: COCO image id as a string, Flickr8k file name, VOC image id
  file: string; // absolute path of the image file
}

export interface Caption {
  imageId: string;
  text: string;
  source: SourceLocation;
}

/** Images with their captions (COCO captions JSON, Flickr8k CSV). */
export interface CaptionSet {
  images: ImageRecord[];
  captions: Caption[];
}

/** Multi-label classification set (COCO instances, VOC07 split): labels 1, -1, or 0 (difficult). */
export interface LabelSet {
  classes: string[];
  images: ImageRecord[];
  labels: Int8Array; // [images.length, classes.length], row-major
}

/** A decoded RGB image, interleaved HWC uint8 (defined beside the kernels that take it). */
export type { RgbImage } from "../../kernels/image.ts";

/** A record skipped under `skipBad`, with where it was and why. */
export interface BadRecord {
  source: SourceLocation;
  reason: string;
  /** "image" for an image entry (COCO images[]); absent for a caption / label record. */
  kind?: "image";
}

/**
 * What a reader returns beside the data: the records it skipped (always empty without skipBad)
 * and how many caption records it read, so that every record is accounted for:
 * captions kept + caption records skipped = records.
 */
export interface ReadReport {
  skipped: BadRecord[];
  /** Caption records read (CSV rows after the header, COCO annotations), within the split. */
  records?: number;
}

/** Single-label classification set (ImageNet layout: one folder per class). */
export interface ClassFolderSet {
  classes: string[];
  images: ImageRecord[];
  targets: Int32Array; // [images.length], index into classes
}
