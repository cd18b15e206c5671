/**
 * Plain TypeScript (f64) reference of the augment kernels, written from the formulas of
 * torch.nn.functional.interpolate (bilinear, align_corners=false) and torchvision's
 * functional_tensor colour ops. Used by the kernel tests only.
 */
import type { Box } from "../../kernels/augment.ts";
import type { RgbImage } from "../../pipeline/data/types.ts";

function taps(len: number, full: number, off: number, out: number) {
  const scale = len / full;
  const r: { i0: number; i1: number; l: number }[] = [];
  for (let x = 0; x < out; x++) {
    const s = Math.max((x + off + 0.5) * scale - 0.5, 0);
    const i0 = Math.min(Math.floor(s), len - 1);
    r.push({ i0, i1: Math.min(i0 + 1, len - 1), l: Math.min(Math.max(s - i0, 0), 1) });
  }
  return r;
}

/** Bilinear resample of a box into planar [3, outH, outW] in [0, 1]. */
export function refResample(
  img: RgbImage,
  box: Box,
  fullW: number,
  fullH: number,
  offX: number,
  offY: number,
  outW: number,
  outH: number,
  flip: boolean,
): Float64Array {
  const tx = taps(box.w, fullW, offX, outW), ty = taps(box.h, fullH, offY, outH);
  const out = new Float64Array(3 * outW * outH);
  const px = (x: number, y: number, c: number) =>
    img.data[((box.y + y) * img.width + box.x + x) * 3 + c] / 255;
  for (let y = 0; y < outH; y++) {
    const a = ty[y];
    for (let x = 0; x < outW; x++) {
      const b = tx[flip ? outW - 1 - x : x];
      for (let c = 0; c < 3; c++) {
        const top = (1 - b.l) * px(b.i0, a.i0, c) + b.l * px(b.i1, a.i0, c);
        const bot = (1 - b.l) * px(b.i0, a.i1, c) + b.l * px(b.i1, a.i1, c);
        out[c * outW * outH + y * outW + x] = (1 - a.l) * top + a.l * bot;
      }
    }
  }
  return out;
}

const clamp = (v: number) => Math.min(Math.max(v, 0), 1);
const grayOf = (r: number, g: number, b: number) => 0.2989 * r + 0.587 * g + 0.114 * b;

/** One colour op on planar [3, n] (returns a new array). */
export function refColor(
  x: ArrayLike<number>,
  n: number,
  op: "brightness" | "contrast" | "saturation" | "hue",
  f: number,
): Float64Array {
  const o = Float64Array.from(x);
  if (op === "brightness") return o.map((v) => clamp(v * f));
  if (op === "contrast") {
    let m = 0;
    for (let i = 0; i < n; i++) m += grayOf(o[i], o[n + i], o[2 * n + i]);
    m /= n;
    return o.map((v) => clamp(f * v + (1 - f) * m));
  }
  for (let i = 0; i < n; i++) {
    const r = o[i], g = o[n + i], b = o[2 * n + i];
    if (op === "saturation") {
      const l = grayOf(r, g, b);
      o[i] = clamp(f * r + (1 - f) * l);
      o[n + i] = clamp(f * g + (1 - f) * l);
      o[2 * n + i] = clamp(f * b + (1 - f) * l);
      continue;
    }
    const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
    const cr = maxc - minc;
    const s = maxc === minc ? 0 : cr / maxc;
    let h = 0;
    if (maxc !== minc) {
      const rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
      h = maxc === r ? bc - gc : maxc === g ? 2 + rc - bc : 4 + gc - rc;
    }
    h = ((h / 6 + 1) % 1 + f + 1) % 1;
    const v = maxc;
    const i6 = Math.floor(h * 6), fr = h * 6 - i6;
    const p = clamp(v * (1 - s)), q = clamp(v * (1 - s * fr)), t = clamp(v * (1 - s * (1 - fr)));
    const k = i6 % 6;
    o[i] = [v, q, p, p, t, v][k];
    o[n + i] = [t, v, v, q, p, p][k];
    o[2 * n + i] = [p, p, t, v, v, q][k];
  }
  return o;
}
