/**
 * Loader for kernels/build/augment.wasm (see kernels/augment/src/lib.rs): bilinear crop+resize
 * to planar f32, colour jitter, normalization and antialiased uint8 resize. Single-threaded;
 * run one instance per Worker for parallelism.
 */
import type { RgbImage } from "./image.ts";

interface AugmentExports {
  memory: WebAssembly.Memory;
  aug_alloc(bytes: number): number;
  aug_free(ptr: number, bytes: number): void;
  aug_resample(
    src: number,
    sw: number,
    sh: number,
    bx: number,
    by: number,
    bw: number,
    bh: number,
    fullW: number,
    fullH: number,
    offX: number,
    offY: number,
    outW: number,
    outH: number,
    flip: number,
    dst: number,
  ): void;
  aug_brightness(buf: number, n: number, f: number): void;
  aug_contrast(buf: number, n: number, f: number): void;
  aug_saturation(buf: number, n: number, f: number): void;
  aug_hue(buf: number, n: number, h: number): void;
  aug_normalize(
    buf: number,
    n: number,
    m0: number,
    m1: number,
    m2: number,
    s0: number,
    s1: number,
    s2: number,
  ): void;
  aug_jitter_normalize(
    buf: number,
    n: number,
    ops: number,
    count: number,
    factors: number,
    norm: number,
  ): void;
  aug_resize_u8(src: number, sw: number, sh: number, dst: number, dw: number, dh: number): void;
}

/** Integer box in source pixels. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** URL of the compiled module. */
export const augmentWasmUrl = new URL("./build/augment.wasm", import.meta.url);

let compiled: Promise<WebAssembly.Module> | undefined;

async function compile(): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(augmentWasmUrl);
  } catch (e) {
    throw new Error(
      `kernels/augment.ts: cannot read ${augmentWasmUrl.pathname} (${(e as Error).message}); ` +
        "build it with `make kernels` or `bash kernels/build.sh augment`",
    );
  }
  return await WebAssembly.compile(bytes);
}

/** A growable scratch block inside the module's memory. */
class Scratch {
  ptr = 0;
  bytes = 0;
  constructor(private readonly ex: AugmentExports) {}
  ensure(bytes: number): number {
    if (bytes <= this.bytes) return this.ptr;
    if (this.ptr) this.ex.aug_free(this.ptr, this.bytes);
    const size = Math.max(bytes, Math.ceil(this.bytes * 1.5));
    const p = this.ex.aug_alloc(size);
    if (p === 0) throw new Error(`augment kernel: out of memory allocating ${size} bytes`);
    this.ptr = p;
    this.bytes = size;
    return p;
  }
}

/**
 * One module instance. Work happens on an internal image (`setImage`) and an internal planar
 * f32 buffer [3, H, W] (`resample` fills it; the colour ops and `normalize` edit it in place;
 * `read` copies it out).
 */
export class AugmentKernel {
  private readonly src: Scratch;
  private readonly dst: Scratch;
  private readonly params: Scratch; // [4 u32 ops][4 f32 factors][6 f32 mean, 1/std]
  private img = { width: 0, height: 0 };
  private out = { width: 0, height: 0 };

  private constructor(private readonly ex: AugmentExports) {
    this.src = new Scratch(ex);
    this.dst = new Scratch(ex);
    this.params = new Scratch(ex);
    this.params.ensure(64);
  }

  /** Instantiates a fresh module instance (the compiled module is shared per thread). */
  static async load(): Promise<AugmentKernel> {
    compiled ??= compile();
    const instance = await WebAssembly.instantiate(await compiled, {});
    return new AugmentKernel(instance.exports as unknown as AugmentExports);
  }

  /** Copies an interleaved RGB image in as the source of `resample`. */
  setImage(img: RgbImage): void {
    checkImage(img);
    const p = this.src.ensure(img.data.length);
    new Uint8Array(this.ex.memory.buffer, p, img.data.length).set(img.data);
    this.img = { width: img.width, height: img.height };
  }

  /**
   * A view of the module's source image buffer for a width×height image: fill it (e.g. with a
   * positioned file read) instead of calling setImage, saving a copy. Valid until the next call.
   */
  imageBuffer(width: number, height: number): Uint8Array {
    if (!(width >= 1 && height >= 1)) {
      throw new Error(`augment kernel: bad image ${width}×${height}`);
    }
    const n = width * height * 3;
    const p = this.src.ensure(n);
    this.img = { width, height };
    return new Uint8Array(this.ex.memory.buffer, p, n);
  }

  /** Size of the current source image. */
  get imageSize(): { width: number; height: number } {
    return { ...this.img };
  }

  /**
   * Resamples `box` of the current image as if resized to fullW × fullH (bilinear, half-pixel
   * centres, as torch interpolate with align_corners=false) and keeps the outW × outH window at
   * (offX, offY), optionally mirrored: the internal buffer becomes planar [3, outH, outW] in [0, 1].
   */
  resample(
    box: Box,
    fullW: number,
    fullH: number,
    offX: number,
    offY: number,
    outW: number,
    outH: number,
    flip: boolean,
  ): void {
    const { width, height } = this.img;
    if (
      box.w < 1 || box.h < 1 || box.x < 0 || box.y < 0 || box.x + box.w > width ||
      box.y + box.h > height
    ) {
      throw new Error(
        `augment kernel: box ${JSON.stringify(box)} outside the ${width}×${height} image`,
      );
    }
    if (offX + outW > fullW || offY + outH > fullH || outW < 1 || outH < 1) {
      throw new Error(
        `augment kernel: window ${outW}×${outH}+${offX}+${offY} outside ${fullW}×${fullH}`,
      );
    }
    const d = this.dst.ensure(3 * outW * outH * 4);
    this.ex.aug_resample(
      this.src.ptr,
      width,
      height,
      box.x,
      box.y,
      box.w,
      box.h,
      fullW,
      fullH,
      offX,
      offY,
      outW,
      outH,
      flip ? 1 : 0,
      d,
    );
    this.out = { width: outW, height: outH };
  }

  private get pixels(): number {
    return this.out.width * this.out.height;
  }

  /** x ← clamp(f·x). */
  brightness(f: number): void {
    this.ex.aug_brightness(this.dst.ptr, this.pixels, f);
  }
  /** x ← clamp(f·x + (1−f)·mean(gray)). */
  contrast(f: number): void {
    this.ex.aug_contrast(this.dst.ptr, this.pixels, f);
  }
  /** x ← clamp(f·x + (1−f)·gray). */
  saturation(f: number): void {
    this.ex.aug_saturation(this.dst.ptr, this.pixels, f);
  }
  /** Hue rotation by h ∈ [−0.5, 0.5] through HSV. */
  hue(h: number): void {
    this.ex.aug_hue(this.dst.ptr, this.pixels, h);
  }
  /** x ← (x − mean[c]) / std[c]. */
  normalize(mean: readonly number[], std: readonly number[]): void {
    this.ex.aug_normalize(
      this.dst.ptr,
      this.pixels,
      mean[0],
      mean[1],
      mean[2],
      std[0],
      std[1],
      std[2],
    );
  }

  /**
   * The colour ops `order` (0 brightness, 1 contrast, 2 saturation, 3 hue; each with
   * `factors[op]`) and then normalization, fused into one pass over the image (two when a
   * contrast op needs the mean of the image before it). Same result as calling the single ops
   * and `normalize` in turn, up to float rounding.
   */
  jitterNormalize(
    order: readonly number[],
    factors: readonly number[],
    mean: readonly number[],
    std: readonly number[],
  ): void {
    if (order.length > 4 || order.some((o) => !(o >= 0 && o <= 3))) {
      throw new Error(`augment kernel: bad colour op order ${JSON.stringify(order)}`);
    }
    const p = this.params.ptr;
    new Uint32Array(this.ex.memory.buffer, p, 4).set(order);
    new Float32Array(this.ex.memory.buffer, p + 16, 4).set(factors.slice(0, 4));
    const norm = new Float32Array(this.ex.memory.buffer, p + 32, 6);
    norm.set([mean[0], mean[1], mean[2], 1 / std[0], 1 / std[1], 1 / std[2]]);
    this.ex.aug_jitter_normalize(this.dst.ptr, this.pixels, p, order.length, p + 16, p + 32);
  }

  /** Writes an arbitrary planar [3, h, w] buffer as the internal one (for the colour ops). */
  setPlanar(data: Float32Array, width: number, height: number): void {
    if (data.length !== 3 * width * height) {
      throw new Error(`augment kernel: planar length ${data.length} != 3×${width}×${height}`);
    }
    const d = this.dst.ensure(data.length * 4);
    new Float32Array(this.ex.memory.buffer, d, data.length).set(data);
    this.out = { width, height };
  }

  /** Copies the internal planar buffer [3, H, W] into `target` at `offset` (or a new array). */
  read(target?: Float32Array, offset = 0): Float32Array {
    const n = 3 * this.pixels;
    const view = new Float32Array(this.ex.memory.buffer, this.dst.ptr, n);
    if (!target) return view.slice();
    target.set(view, offset);
    return target;
  }

  /** Antialiased (triangle filter) resize of an RGB uint8 image to dw × dh. */
  resizeU8(img: RgbImage, dw: number, dh: number): RgbImage {
    checkImage(img);
    if (dw < 1 || dh < 1) throw new Error(`augment kernel: bad resize target ${dw}×${dh}`);
    const outBytes = dw * dh * 3;
    const s = this.src.ensure(img.data.length);
    const d = this.dst.ensure(outBytes);
    new Uint8Array(this.ex.memory.buffer, s, img.data.length).set(img.data);
    this.ex.aug_resize_u8(s, img.width, img.height, d, dw, dh);
    const data = new Uint8Array(this.ex.memory.buffer, d, outBytes).slice();
    this.img = { width: 0, height: 0 }; // the source scratch now holds stale data for resample
    this.out = { width: 0, height: 0 };
    return { width: dw, height: dh, data };
  }
}

function checkImage(img: RgbImage): void {
  if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) {
    throw new Error(
      `augment kernel: image ${img.width}×${img.height} has ${img.data.length} bytes, ` +
        `expected ${img.width * img.height * 3}`,
    );
  }
}
