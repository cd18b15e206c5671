/**
 * Convolution sources specialised per shape (kernel set "current"): the geometry (channels,
 * image size, kernel, stride, padding) is baked into each shader as WGSL constants, so the index
 * arithmetic of the implicit-GEMM gathers divides by constants (multiply-shift) instead of
 * uniforms. The batch is not baked (grid z), so one pipeline serves every batch size.
 *
 * - forward:         Y[o, j]   = Σ_k W[o, k]·X̂[k, j],  k = (c, kh, kw), j = (oh, ow), z = image
 * - backward data:   one GEMM per stride phase (rh, rw): the pixels h ≡ rh − pad (mod s) only
 *                    receive taps kh ≡ rh (mod s), so each phase is a dense GEMM over
 *                    k = (o, th, tw), kh = rh + s·th, with no work on the zeros a plain transposed
 *                    convolution would multiply; stride 1 is the single phase (0, 0)
 * - backward filter: dW[o, q] = Σ_k dY[o, k]·X̂[k, q], k = (image, oh, ow), q = (c, kh, kw),
 *                    with z = K-chunk when split (partials summed afterwards)
 * 1×1 stride-1 forward and data-gradient convolutions are plain batched matmuls (see linalg.ts).
 */
import type { Conv2dParams } from "../../backend.ts";
import { ro, rw } from "./kernel.ts";
import type { TileGemmSource } from "./wgsl_tile_gemm.ts";

/** The baked geometry (everything but the batch). */
export function convGeomKey(p: Conv2dParams): string {
  return `${p.C}x${p.H}x${p.W}_${p.O}_${p.KH}x${p.KW}s${p.stride}p${p.pad}`;
}

/** WGSL constants for a geometry: cC, cH, cW, cO, cKH, cKW, cS, cP, cOH, cOW and products. */
function consts(p: Conv2dParams, extra: Record<string, number> = {}): string {
  const all: Record<string, number> = {
    cC: p.C,
    cH: p.H,
    cW: p.W,
    cO: p.O,
    cKH: p.KH,
    cKW: p.KW,
    cS: p.stride,
    cP: p.pad,
    cOH: p.OH,
    cOW: p.OW,
    cKHW: p.KH * p.KW,
    cOHW: p.OH * p.OW,
    cHW: p.H * p.W,
    cK: p.C * p.KH * p.KW,
    ...extra,
  };
  return Object.entries(all).map(([k, v]) => `const ${k} = ${v}u;`).join("\n");
}

/** x[img, c, oh·s + kh − pad, ow·s + kw − pad], 0 outside the image. */
const GATHER_X = `
fn gatherX(img: u32, c: u32, kh: u32, kw: u32, oh: u32, ow: u32) -> f32 {
  let ih = i32(oh * cS + kh) - i32(cP);
  let iw = i32(ow * cS + kw) - i32(cP);
  if (ih < 0 || iw < 0 || ih >= i32(cH) || iw >= i32(cW)) { return 0.0; }
  return X[((img * cC + c) * cH + u32(ih)) * cW + u32(iw)];
}`;

/** Forward convolution: M = O, N = OH·OW, K = C·KH·KW, z = image; flag = has bias. */
export function convFwdSource(p: Conv2dParams): TileGemmSource {
  const w4 = (p.C * p.KH * p.KW) % 4 === 0, y4 = (p.OH * p.OW) % 4 === 0;
  return {
    name: `cf_${convGeomKey(p)}`,
    params: [["flag", "u32"]],
    bindings: [
      ro("X"),
      ro("Wt", w4 ? "vec4<f32>" : "f32"),
      ro("Bias"),
      rw("Y", y4 ? "vec4<f32>" : "f32"),
    ],
    helpers: consts(p) + GATHER_X,
    loadA: w4 ? `let i = m * cK + k; return Wt[i >> 2u][i & 3u];` : `return Wt[m * cK + k];`,
    loadA4: w4 ? `return Wt[(m * cK + k) >> 2u];` : undefined,
    loadB: `let c = k / cKHW; let r = k % cKHW;
      return gatherX(z, c, r / cKW, r % cKW, n / cOW, n % cOW);`,
    storeC: `var b = 0.0;
      if (u.flag != 0u) { b = Bias[m]; }
      let i = (z * cO + m) * cOHW + n;
      ${y4 ? "Y[i >> 2u][i & 3u]" : "Y[i]"} = v + b;`,
    storeC4: y4
      ? `var b = 0.0;
      if (u.flag != 0u) { b = Bias[m]; }
      Y[((z * cO + m) * cOHW + n) >> 2u] = v + vec4<f32>(b);`
      : undefined,
    aKFast: true,
    bNFast: true,
  };
}

/**
 * One stride phase of the data gradient. Pixels h = h0 + s·i (i < nh) with h + pad ≡ rh (mod s)
 * take taps kh = rh + s·th (th < ntH) from dY row oh = bh + i − th, bh = (h0 + pad − rh) / s;
 * likewise along w.
 */
export interface ConvPhase {
  rh: number;
  rw: number;
  h0: number;
  w0: number;
  nh: number;
  nw: number;
  ntH: number;
  ntW: number;
  bh: number;
  bw: number;
}

/** The s² phases of a geometry (some may have no pixels or no taps). */
export function convPhases(p: Conv2dParams): ConvPhase[] {
  const s = p.stride;
  const out: ConvPhase[] = [];
  const axis = (r: number, size: number, k: number) => {
    const x0 = (((r - p.pad) % s) + s) % s;
    return {
      x0,
      n: x0 < size ? Math.ceil((size - x0) / s) : 0,
      nt: r < k ? Math.ceil((k - r) / s) : 0,
      b: (x0 + p.pad - r) / s,
    };
  };
  for (let rh = 0; rh < s; rh++) {
    for (let rw = 0; rw < s; rw++) {
      const h = axis(rh, p.H, p.KH), w = axis(rw, p.W, p.KW);
      out.push({
        rh,
        rw,
        h0: h.x0,
        w0: w.x0,
        nh: h.n,
        nw: w.n,
        ntH: h.nt,
        ntW: w.nt,
        bh: h.b,
        bw: w.b,
      });
    }
  }
  return out;
}

/** Data gradient of one phase: M = C, N = nh·nw, K = O·ntH·ntW, z = image; writes its pixels. */
export function convBwdDataSource(p: Conv2dParams, ph: ConvPhase): TileGemmSource {
  const c = consts(p, {
    cRH: ph.rh,
    cRW: ph.rw,
    cH0: ph.h0,
    cW0: ph.w0,
    cNW: Math.max(1, ph.nw),
    cNTW: Math.max(1, ph.ntW),
    cNT: Math.max(1, ph.ntH * ph.ntW),
    cBH: ph.bh,
    cBW: ph.bw,
  });
  const phase = `${ph.rh}${ph.rw}`;
  return {
    name: `cd_${convGeomKey(p)}_${phase}`,
    params: [],
    bindings: [ro("DY"), ro("Wt"), rw("DX")],
    helpers: c,
    loadA: `let o = k / cNT; let t = k % cNT;
      let kh = cRH + cS * (t / cNTW); let kw = cRW + cS * (t % cNTW);
      return Wt[((o * cC + m) * cKH + kh) * cKW + kw];`,
    loadB: `let o = k / cNT; let t = k % cNT;
      let oh = i32(cBH + n / cNW) - i32(t / cNTW);
      let ow = i32(cBW + n % cNW) - i32(t % cNTW);
      if (oh < 0 || ow < 0 || oh >= i32(cOH) || ow >= i32(cOW)) { return 0.0; }
      return DY[((z * cO + o) * cOH + u32(oh)) * cOW + u32(ow)];`,
    storeC: `let h = cH0 + cS * (n / cNW); let w = cW0 + cS * (n % cNW);
      DX[((z * cC + m) * cH + h) * cW + w] = v;`,
    aKFast: true,
    bNFast: true,
  };
}

/**
 * Filter gradient: M = O, N = C·KH·KW, K = images·OH·OW. With `split`, z is a K-chunk and the
 * result goes to partials P [splits, O, N]; otherwise flag = accumulate into dW. dY (and, for
 * 1×1 stride-1 unpadded convolutions, X) are read as vec4 along k when OH·OW % 4 = 0.
 */
export function convBwdFilterSource(p: Conv2dParams, split: boolean): TileGemmSource {
  const d4 = (p.OH * p.OW) % 4 === 0;
  const pointwise = p.KH === 1 && p.KW === 1 && p.stride === 1 && p.pad === 0;
  const x4 = d4 && pointwise;
  return {
    name: `cw_${convGeomKey(p)}${split ? "_split" : ""}`,
    params: [["flag", "u32"]],
    bindings: [ro("DY", d4 ? "vec4<f32>" : "f32"), ro("X", x4 ? "vec4<f32>" : "f32"), rw("DW")],
    helpers: consts(p) + (x4 ? "" : GATHER_X),
    loadA: `let img = k / cOHW; let i = (img * cO + m) * cOHW + k % cOHW;
      return ${d4 ? "DY[i >> 2u][i & 3u]" : "DY[i]"};`,
    loadA4: d4 ? `return DY[((k / cOHW) * cO * cOHW + m * cOHW + k % cOHW) >> 2u];` : undefined,
    loadB: x4
      ? `let i = ((k / cHW) * cC + n) * cHW + k % cHW; return X[i >> 2u][i & 3u];`
      : `let img = k / cOHW; let j = k % cOHW; let c = n / cKHW; let r = n % cKHW;
      return gatherX(img, c, r / cKW, r % cKW, j / cOW, j % cOW);`,
    loadB4: x4 ? `return X[(((k / cHW) * cC + n) * cHW + k % cHW) >> 2u];` : undefined,
    storeC: split ? `DW[(z * u.M + m) * u.N + n] = v;` : `let i = m * u.N + n;
      if (u.flag != 0u) { DW[i] = DW[i] + v; } else { DW[i] = v; }`,
    aKFast: true,
    bNFast: false,
  };
}
