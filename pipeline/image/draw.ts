/**
 * Tiny raster helpers on interleaved RGB uint8 images: shapes given as signed distance functions
 * (negative inside, in pixels), filled with optional antialiasing (coverage = clamp(0.5 − d, 0, 1)
 * at the pixel centre), plus rectangles, circles, rings, polygons and nearest-neighbour blits.
 * Pixel (i, j) covers [i, i+1) × [j, j+1); its centre is (i + 0.5, j + 0.5).
 */
import type { RgbImage } from "../data/types.ts";

/** An RGB colour, channels 0–255 (fractions allowed; rounded when written). */
export type Rgb = readonly [number, number, number];

/** Signed distance in pixels from (x, y) to a shape's outline: < 0 inside, > 0 outside. */
export type Sdf = (x: number, y: number) => number;

/** A point in pixel coordinates. */
export type Point = readonly [number, number];

export interface FillOptions {
  /** Smooth edges by pixel coverage (default true); false fills centres with d ≤ 0 only. */
  antialias?: boolean;
  /** Opacity 0–1 multiplied into the coverage (default 1). */
  alpha?: number;
}

/** A new image filled with one colour. */
export function createImage(width: number, height: number, fill: Rgb = [0, 0, 0]): RgbImage {
  const data = new Uint8Array(width * height * 3); // [H, W, 3]
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = fill[0];
    data[3 * i + 1] = fill[1];
    data[3 * i + 2] = fill[2];
  }
  return { width, height, data };
}

/** Coverage of the pixel centred at (x, y) by the shape whose distance there is `d`. */
export function coverage(d: number, antialias = true): number {
  if (!antialias) return d <= 0 ? 1 : 0;
  return d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
}

/**
 * Blends `rgb` into every pixel of the box [x0, x1) × [y0, y1) (clipped to the image) by the
 * coverage of `sdf`. Returns the summed coverage (the painted area in pixels).
 */
export function fillSdf(
  img: RgbImage,
  sdf: Sdf,
  box: { x0: number; y0: number; x1: number; y1: number },
  rgb: Rgb,
  opts: FillOptions = {},
): number {
  const aa = opts.antialias ?? true;
  const alpha = opts.alpha ?? 1;
  const x0 = Math.max(0, Math.floor(box.x0)), y0 = Math.max(0, Math.floor(box.y0));
  const x1 = Math.min(img.width, Math.ceil(box.x1)), y1 = Math.min(img.height, Math.ceil(box.y1));
  const d = img.data;
  let area = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const c = coverage(sdf(x + 0.5, y + 0.5), aa) * alpha;
      if (c <= 0) continue;
      area += c;
      const o = 3 * (y * img.width + x);
      d[o] = Math.round(d[o] + (rgb[0] - d[o]) * c);
      d[o + 1] = Math.round(d[o + 1] + (rgb[1] - d[o + 1]) * c);
      d[o + 2] = Math.round(d[o + 2] + (rgb[2] - d[o + 2]) * c);
    }
  }
  return area;
}

/** Distance to a circle of radius r around (cx, cy). */
export function sdCircle(cx: number, cy: number, r: number): Sdf {
  return (x, y) => Math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - r;
}

/** Distance to an axis-aligned rectangle [x, x+w] × [y, y+h]. */
export function sdRect(x: number, y: number, w: number, h: number): Sdf {
  const cx = x + w / 2, cy = y + h / 2, hw = w / 2, hh = h / 2;
  return (px, py) => {
    const dx = Math.abs(px - cx) - hw, dy = Math.abs(py - cy) - hh;
    const ox = Math.max(dx, 0), oy = Math.max(dy, 0);
    return Math.hypot(ox, oy) + Math.min(Math.max(dx, dy), 0);
  };
}

/** Exact distance to a simple polygon (any winding, convex or not), sign by even-odd rule. */
export function sdPolygon(pts: readonly Point[]): Sdf {
  const n = pts.length;
  if (n < 3) throw new Error("sdPolygon: need at least 3 points");
  // Edge j: from (ax[j], ay[j]) along (ex[j], ey[j]); inv[j] = 1 / |e|².
  const ax = new Float64Array(n), ay = new Float64Array(n);
  const ex = new Float64Array(n), ey = new Float64Array(n), inv = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const [x0, y0] = pts[j], [x1, y1] = pts[(j + 1) % n];
    ax[j] = x0, ay[j] = y0, ex[j] = x1 - x0, ey[j] = y1 - y0;
    inv[j] = 1 / (ex[j] * ex[j] + ey[j] * ey[j]);
  }
  return (px, py) => {
    let best = Infinity;
    let inside = false;
    for (let j = 0; j < n; j++) {
      const wx = px - ax[j], wy = py - ay[j];
      const t0 = (wx * ex[j] + wy * ey[j]) * inv[j];
      const t = t0 < 0 ? 0 : t0 > 1 ? 1 : t0;
      const dx = wx - ex[j] * t, dy = wy - ey[j] * t;
      const d2 = dx * dx + dy * dy;
      if (d2 < best) best = d2;
      const by = ay[j] + ey[j];
      if ((ay[j] > py) !== (by > py) && px < ax[j] + (wy * ex[j]) / ey[j]) inside = !inside;
    }
    const d = Math.sqrt(best);
    return inside ? -d : d;
  };
}

/** Union of shapes (the smallest distance). */
export function sdUnion(...shapes: Sdf[]): Sdf {
  return (x, y) => {
    let d = Infinity;
    for (const s of shapes) d = Math.min(d, s(x, y));
    return d;
  };
}

/** Shape `a` with shape `b` cut out. */
export function sdSubtract(a: Sdf, b: Sdf): Sdf {
  return (x, y) => Math.max(a(x, y), -b(x, y));
}

/** Fills an axis-aligned rectangle. */
export function fillRect(
  img: RgbImage,
  x: number,
  y: number,
  w: number,
  h: number,
  rgb: Rgb,
  opts?: FillOptions,
): number {
  return fillSdf(
    img,
    sdRect(x, y, w, h),
    { x0: x - 1, y0: y - 1, x1: x + w + 1, y1: y + h + 1 },
    rgb,
    opts,
  );
}

/** Fills a disc of radius r. */
export function fillCircle(
  img: RgbImage,
  cx: number,
  cy: number,
  r: number,
  rgb: Rgb,
  opts?: FillOptions,
): number {
  const box = { x0: cx - r - 1, y0: cy - r - 1, x1: cx + r + 1, y1: cy + r + 1 };
  return fillSdf(img, sdCircle(cx, cy, r), box, rgb, opts);
}

/** Fills a ring (annulus) between radii rInner < rOuter. */
export function fillRing(
  img: RgbImage,
  cx: number,
  cy: number,
  rOuter: number,
  rInner: number,
  rgb: Rgb,
  opts?: FillOptions,
): number {
  const box = {
    x0: cx - rOuter - 1,
    y0: cy - rOuter - 1,
    x1: cx + rOuter + 1,
    y1: cy + rOuter + 1,
  };
  return fillSdf(
    img,
    sdSubtract(sdCircle(cx, cy, rOuter), sdCircle(cx, cy, rInner)),
    box,
    rgb,
    opts,
  );
}

/** Bounding box of points, grown by `pad` pixels. */
export function boundsOf(
  pts: readonly Point[],
  pad = 1,
): { x0: number; y0: number; x1: number; y1: number } {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of pts) {
    x0 = Math.min(x0, x), y0 = Math.min(y0, y), x1 = Math.max(x1, x), y1 = Math.max(y1, y);
  }
  return { x0: x0 - pad, y0: y0 - pad, x1: x1 + pad, y1: y1 + pad };
}

/** Fills a simple polygon (even-odd). */
export function fillPolygon(
  img: RgbImage,
  pts: readonly Point[],
  rgb: Rgb,
  opts?: FillOptions,
): number {
  return fillSdf(img, sdPolygon(pts), boundsOf(pts), rgb, opts);
}

/** Fills a triangle. */
export function fillTriangle(
  img: RgbImage,
  a: Point,
  b: Point,
  c: Point,
  rgb: Rgb,
  opts?: FillOptions,
): number {
  return fillPolygon(img, [a, b, c], rgb, opts);
}

/** Copies `src` into `dst` at (x, y), each source pixel as a `scale`×`scale` block; clipped. */
export function blit(dst: RgbImage, src: RgbImage, x: number, y: number, scale = 1): void {
  for (let sy = 0; sy < src.height; sy++) {
    for (let sx = 0; sx < src.width; sx++) {
      const si = 3 * (sy * src.width + sx);
      for (let dy = 0; dy < scale; dy++) {
        const ty = y + sy * scale + dy;
        if (ty < 0 || ty >= dst.height) continue;
        for (let dx = 0; dx < scale; dx++) {
          const tx = x + sx * scale + dx;
          if (tx < 0 || tx >= dst.width) continue;
          const di = 3 * (ty * dst.width + tx);
          dst.data[di] = src.data[si];
          dst.data[di + 1] = src.data[si + 1];
          dst.data[di + 2] = src.data[si + 2];
        }
      }
    }
  }
}

/** Converts HSV (h in degrees, s and v in 0–1) to RGB 0–255. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const hh = (((h % 360) + 360) % 360) / 60;
  const c = v * s, x = c * (1 - Math.abs((hh % 2) - 1)), m = v - c;
  const [r, g, b] = hh < 1
    ? [c, x, 0]
    : hh < 2
    ? [x, c, 0]
    : hh < 3
    ? [0, c, x]
    : hh < 4
    ? [0, x, c]
    : hh < 5
    ? [x, 0, c]
    : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}
