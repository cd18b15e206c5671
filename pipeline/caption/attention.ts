/**
 * Attention maps of a generated caption as one PNG grid: the image (the model's centre crop),
 * then one tile per generated token where the decoder's head-averaged cross-attention over the
 * h×w visual grid is upsampled bicubically to the tile size, min-max scaled and overlaid as a
 * heat map, with the token written under it. The caption is written above the grid.
 */
import type { RgbImage } from "../data/types.ts";
import { blit, createImage, type Rgb } from "../image/draw.ts";
import { encodePng } from "../image/png.ts";
import { drawText, GLYPH_H, GLYPH_W, textWidth } from "./font.ts";

/** Cubic convolution weight (Keys, a = -0.75 as PyTorch's bicubic). */
function cubic(x: number, a = -0.75): number {
  x = Math.abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/**
 * Bicubic upsampling of a single-channel h×w map to H×W (half-pixel centres as
 * align_corners=False; borders clamped). Returns [H, W] row-major.
 */
export function bicubicResize(
  src: ArrayLike<number>,
  h: number,
  w: number,
  H: number,
  W: number,
): Float32Array {
  const out = new Float32Array(H * W);
  const sy = h / H, sx = w / W;
  for (let y = 0; y < H; y++) {
    const fy = (y + 0.5) * sy - 0.5, y0 = Math.floor(fy), ty = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = (x + 0.5) * sx - 0.5, x0 = Math.floor(fx), tx = fx - x0;
      let acc = 0;
      for (let m = -1; m <= 2; m++) {
        const yy = Math.min(h - 1, Math.max(0, y0 + m));
        const wy = cubic(m - ty);
        for (let n = -1; n <= 2; n++) {
          const xx = Math.min(w - 1, Math.max(0, x0 + n));
          acc += wy * cubic(n - tx) * src[yy * w + xx];
        }
      }
      out[y * W + x] = acc;
    }
  }
  return out;
}

/** Jet-like colour for v in [0, 1] (blue → cyan → yellow → red). */
export function heatColor(v: number): Rgb {
  const c = (x: number) => Math.max(0, Math.min(1, x));
  return [
    c(1.5 - Math.abs(4 * v - 3)) * 255,
    c(1.5 - Math.abs(4 * v - 2)) * 255,
    c(1.5 - Math.abs(4 * v - 1)) * 255,
  ];
}

/** Bilinear resample of the square region (x0, y0, side) of `img` to size×size. */
export function cropResize(
  img: RgbImage,
  x0: number,
  y0: number,
  side: number,
  size: number,
): RgbImage {
  const out = createImage(size, size);
  const s = side / size;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(img.height - 1, Math.max(0, y0 + (y + 0.5) * s - 0.5));
    const ya = Math.floor(fy), yb = Math.min(img.height - 1, ya + 1), ty = fy - ya;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(img.width - 1, Math.max(0, x0 + (x + 0.5) * s - 0.5));
      const xa = Math.floor(fx), xb = Math.min(img.width - 1, xa + 1), tx = fx - xa;
      for (let ch = 0; ch < 3; ch++) {
        const p = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 3 + ch];
        const v = (1 - ty) * ((1 - tx) * p(ya, xa) + tx * p(ya, xb)) +
          ty * ((1 - tx) * p(yb, xa) + tx * p(yb, xb));
        out.data[(y * size + x) * 3 + ch] = Math.round(v);
      }
    }
  }
  return out;
}

/**
 * The eval transform's centre crop (resize short side to `resize`, crop `size`) of `img`, shown at
 * `tile`×`tile`.
 */
export function evalCropView(img: RgbImage, resize: number, size: number, tile: number): RgbImage {
  const short = Math.min(img.width, img.height);
  const side = size * short / resize;
  return cropResize(img, (img.width - side) / 2, (img.height - side) / 2, side, tile);
}

/** `view` with an attention map (h×w) overlaid: bicubic upsample, min-max scale, blend. */
export function overlayAttention(
  view: RgbImage,
  attn: ArrayLike<number>,
  h: number,
  w: number,
  alpha = 0.5,
): RgbImage {
  const up = bicubicResize(attn, h, w, view.height, view.width);
  let lo = Infinity, hi = -Infinity;
  for (const v of up) (lo = Math.min(lo, v), hi = Math.max(hi, v));
  const span = hi - lo > 1e-12 ? hi - lo : 1;
  const out = createImage(view.width, view.height);
  for (let i = 0; i < up.length; i++) {
    const col = heatColor((up[i] - lo) / span);
    for (let ch = 0; ch < 3; ch++) {
      out.data[3 * i + ch] = Math.round((1 - alpha) * view.data[3 * i + ch] + alpha * col[ch]);
    }
  }
  return out;
}

/** Splits text into lines of at most `maxChars` characters at spaces. */
function wrap(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = cur ? `${cur} ${word}` : word;
    if (next.length <= maxChars) cur = next;
    else {
      if (cur) lines.push(cur);
      cur = word.slice(0, maxChars);
    }
  }
  if (cur) lines.push(cur);
  return lines;
}

/** Inputs of one attention grid. */
export interface AttentionGridInput {
  /** The original image. */
  image: RgbImage;
  /** The eval transform used by the model (short side → centre crop). */
  resize: number;
  size: number;
  caption: string;
  /** Display text of each tile (one per attention row). */
  labels: string[];
  /** Attention rows [labels.length][h*w]. */
  attention: ArrayLike<number>[];
  grid: [number, number];
  /** Tile side in pixels (160) and tiles per row (6). */
  tile?: number;
  columns?: number;
}

/** Renders the grid image (see module doc). */
export function renderAttentionGrid(g: AttentionGridInput): RgbImage {
  const tile = g.tile ?? 160, scale = 2, pad = 6;
  const n = g.labels.length + 1;
  const cols = Math.min(g.columns ?? 6, n), rows = Math.ceil(n / cols);
  const labelH = GLYPH_H * scale + 2 * pad;
  const width = cols * tile + (cols + 1) * pad;
  const captionLines = wrap(g.caption, Math.floor((width - 2 * pad) / (GLYPH_W * scale)));
  const headH = captionLines.length * (GLYPH_H * scale + 4) + 2 * pad;
  const height = headH + rows * (tile + labelH) + pad;
  const out = createImage(width, height, [255, 255, 255]);
  captionLines.forEach((line, i) =>
    drawText(out, line, pad, pad + i * (GLYPH_H * scale + 4), [0, 0, 0], scale)
  );
  const view = evalCropView(g.image, g.resize, g.size, tile);
  const [h, w] = g.grid;
  for (let k = 0; k < n; k++) {
    const x = pad + (k % cols) * (tile + pad), y = headH + Math.floor(k / cols) * (tile + labelH);
    const img = k === 0 ? view : overlayAttention(view, g.attention[k - 1], h, w);
    blit(out, img, x, y);
    let label = k === 0 ? "image" : g.labels[k - 1];
    const maxChars = Math.floor(tile / (GLYPH_W * scale));
    if (label.length > maxChars) label = label.slice(0, maxChars);
    const tw = textWidth(label, scale);
    drawText(out, label, x + Math.floor((tile - tw) / 2), y + tile + pad, [0, 0, 0], scale);
  }
  return out;
}

/** Renders and encodes the grid as PNG bytes. */
export function attentionGridPng(g: AttentionGridInput): Uint8Array {
  const img = renderAttentionGrid(g);
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 3 });
}
