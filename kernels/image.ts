/** Image layout shared by the image kernels and the pipeline's readers. */

/** A decoded RGB image, interleaved HWC uint8. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // length width*height*3
}
