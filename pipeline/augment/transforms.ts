/**
 * Image transforms for pretraining and feature extraction, with torchvision's semantics:
 * train = RandomResizedCrop(size, scale, ratio) → RandomHorizontalFlip(p) →
 * RandomApply(ColorJitter(b, c, s, h), p) → Normalize(mean, std);
 * eval = Resize(short side) → CenterCrop(size) → Normalize. Random draws come from a
 * counter-based RNG keyed by (seed, epoch, index), so any sample can be recomputed anywhere.
 */
import { z } from "zod";
import { counterUniform, hash32 } from "../../engine/backend.ts";
import type { AugmentKernel, Box } from "../../kernels/augment.ts";
import type { RgbImage } from "../data/types.ts";

/** Transform settings; defaults are VirTex's (ImageNet mean/std, 224 crops). */
export const transformSchema = z.strictObject({
  size: z.number().int().min(1).default(224),
  scale: z.tuple([z.number().gt(0), z.number().max(1)]).default([0.2, 1]),
  ratio: z.tuple([z.number().gt(0), z.number().gt(0)]).default([3 / 4, 4 / 3]),
  flipP: z.number().min(0).max(1).default(0.5),
  jitter: z.strictObject({
    p: z.number().min(0).max(1).default(0.8),
    brightness: z.number().min(0).default(0.4),
    contrast: z.number().min(0).default(0.4),
    saturation: z.number().min(0).default(0.4),
    hue: z.number().min(0).max(0.5).default(0.1),
  }).prefault({}),
  mean: z.tuple([z.number(), z.number(), z.number()]).default([0.485, 0.456, 0.406]),
  std: z.tuple([z.number().gt(0), z.number().gt(0), z.number().gt(0)]).default([
    0.229,
    0.224,
    0.225,
  ]),
  /** Eval transform: short side is resized to this, then a centre crop of `size`. */
  evalResize: z.number().int().min(1).default(256),
}).refine((c) => c.evalResize >= c.size, {
  message: "evalResize must be >= size (centre crop inside the resized image)",
  path: ["evalResize"],
}).refine((c) => c.scale[0] <= c.scale[1], {
  message: "scale must be [low, high] with low <= high (share of the image area)",
  path: ["scale"],
}).refine((c) => c.ratio[0] <= c.ratio[1], {
  message: "ratio must be [low, high] with low <= high (crop aspect ratio)",
  path: ["ratio"],
});
export type TransformConfig = z.infer<typeof transformSchema>;

/** The colour ops in ColorJitter's numbering: 0 brightness, 1 contrast, 2 saturation, 3 hue. */
export type JitterOp = 0 | 1 | 2 | 3;

/** Everything random about one training sample. */
export interface TrainParams {
  box: Box; // crop in source pixels
  flip: boolean;
  jitter: { order: JitterOp[]; factors: [number, number, number, number] } | null;
  caption: number; // uniform in [0, 1): which caption of the image to use
}

// RNG slots per sample (counterUniform counters).
const SLOT_FLIP = 0;
const SLOT_JITTER_APPLY = 1;
const SLOT_FACTORS = 2; // 4 slots
const SLOT_ORDER = 6; // 3 slots
const SLOT_CAPTION = 9;
const SLOT_CROP = 16; // 4 slots per attempt, 10 attempts

/** The RNG key of sample `index` in `epoch` under `seed`. */
export function sampleKey(seed: number, epoch: number, index: number): number {
  return hash32((hash32((hash32(seed >>> 0) + epoch) >>> 0) ^ (index >>> 0)) >>> 0);
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's RandomResizedCrop.get_params: 10 attempts at a box with area share in `scale`
 * and log-uniform aspect ratio in `ratio`, else a centre crop clamped to the ratio range.
 */
export function sampleCrop(
  u: (slot: number) => number,
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): Box {
  const area = width * height;
  const lr0 = Math.log(ratio[0]), lr1 = Math.log(ratio[1]);
  for (let a = 0; a < 10; a++) {
    const s = SLOT_CROP + 4 * a;
    const target = area * (scale[0] + (scale[1] - scale[0]) * u(s));
    const aspect = Math.exp(lr0 + (lr1 - lr0) * u(s + 1));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const y = Math.floor(u(s + 2) * (height - h + 1));
      const x = Math.floor(u(s + 3) * (width - w + 1));
      return { x, y, w, h };
    }
  }
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), w, h };
}

/** Draws crop, flip, colour jitter and caption choice for one sample of a width×height image. */
export function sampleTrainParams(
  key: number,
  width: number,
  height: number,
  cfg: TransformConfig,
): TrainParams {
  const u = (slot: number) => counterUniform(key, slot);
  const box = sampleCrop(u, width, height, cfg.scale, cfg.ratio);
  const flip = u(SLOT_FLIP) < cfg.flipP;
  let jitter: TrainParams["jitter"] = null;
  const j = cfg.jitter;
  if (u(SLOT_JITTER_APPLY) < j.p) {
    const lerp = (lo: number, hi: number, t: number) => lo + (hi - lo) * t;
    const factors: [number, number, number, number] = [
      lerp(Math.max(0, 1 - j.brightness), 1 + j.brightness, u(SLOT_FACTORS)),
      lerp(Math.max(0, 1 - j.contrast), 1 + j.contrast, u(SLOT_FACTORS + 1)),
      lerp(Math.max(0, 1 - j.saturation), 1 + j.saturation, u(SLOT_FACTORS + 2)),
      lerp(-j.hue, j.hue, u(SLOT_FACTORS + 3)),
    ];
    const order: JitterOp[] = [0, 1, 2, 3];
    for (let i = 3; i > 0; i--) { // Fisher–Yates: a uniform random permutation
      const k = Math.floor(u(SLOT_ORDER + 3 - i) * (i + 1));
      [order[i], order[k]] = [order[k], order[i]];
    }
    const strength = [j.brightness, j.contrast, j.saturation, j.hue];
    jitter = { order: order.filter((op) => strength[op] > 0), factors };
  }
  return { box, flip, jitter, caption: u(SLOT_CAPTION) };
}

/** Applies one colour op to the kernel's current planar buffer. */
export function applyJitterOp(kernel: AugmentKernel, op: JitterOp, factor: number): void {
  if (op === 0) kernel.brightness(factor);
  else if (op === 1) kernel.contrast(factor);
  else if (op === 2) kernel.saturation(factor);
  else kernel.hue(factor);
}

/**
 * Train transform of `img` under `params`: writes normalized planar f32 [3, size, size] into
 * `out` at element `offset`.
 */
export function applyTrain(
  kernel: AugmentKernel,
  img: RgbImage,
  params: TrainParams,
  cfg: TransformConfig,
  out: Float32Array,
  offset = 0,
): void {
  kernel.setImage(img);
  applyTrainLoaded(kernel, params, cfg, out, offset);
}

/** applyTrain on the image already in the kernel (setImage or a filled imageBuffer). */
export function applyTrainLoaded(
  kernel: AugmentKernel,
  params: TrainParams,
  cfg: TransformConfig,
  out: Float32Array,
  offset = 0,
): void {
  const s = cfg.size;
  kernel.resample(params.box, s, s, 0, 0, s, s, params.flip);
  const j = params.jitter;
  kernel.jitterNormalize(j?.order ?? [], j?.factors ?? [1, 1, 1, 0], cfg.mean, cfg.std);
  kernel.read(out, offset);
}

/** torchvision Resize(short) output size for a width×height image. */
export function resizedSize(width: number, height: number, short: number): [number, number] {
  if (width <= height) return [short, Math.trunc(short * height / width)];
  return [Math.trunc(short * width / height), short];
}

/** Geometry of Resize(resize) → CenterCrop(crop): resized size and crop offsets. */
export function evalGeometry(
  width: number,
  height: number,
  resize: number,
  crop: number,
): { fullW: number; fullH: number; offX: number; offY: number } {
  const [fullW, fullH] = resizedSize(width, height, resize);
  return {
    fullW,
    fullH,
    offX: roundHalfEven((fullW - crop) / 2),
    offY: roundHalfEven((fullH - crop) / 2),
  };
}

/** Eval transform: resize short side to cfg.evalResize, centre crop cfg.size, normalize. */
export function applyEval(
  kernel: AugmentKernel,
  img: RgbImage,
  cfg: TransformConfig,
  out: Float32Array,
  offset = 0,
): void {
  kernel.setImage(img);
  applyEvalLoaded(kernel, cfg, out, offset);
}

/** applyEval on the image already in the kernel (setImage or a filled imageBuffer). */
export function applyEvalLoaded(
  kernel: AugmentKernel,
  cfg: TransformConfig,
  out: Float32Array,
  offset = 0,
): void {
  const s = cfg.size;
  const { width, height } = kernel.imageSize;
  const g = evalGeometry(width, height, cfg.evalResize, s);
  kernel.resample(
    { x: 0, y: 0, w: width, h: height },
    g.fullW,
    g.fullH,
    g.offX,
    g.offY,
    s,
    s,
    false,
  );
  kernel.normalize(cfg.mean, cfg.std);
  kernel.read(out, offset);
}
