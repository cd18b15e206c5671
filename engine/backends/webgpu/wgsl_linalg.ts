/**
 * GEMM sources for matmul and the implicit-GEMM convolutions (see wgsl_gemm.ts for the tiling).
 * Convolution index maps (NCHW, weights [O, C, KH, KW], KHW = KH·KW, OHW = OH·OW):
 * - forward:        C[o, j]  = Σ_k W[o, k] · X̂[k, j],   k = (c, kh, kw), j = (oh, ow), z = image
 * - backward data:  dX[c, p] = Σ_k W[o, c, kh, kw] · dŶ[k, p], k = (o, kh, kw), p = (h, w), z = image
 * - backward filter: dW[o, q] = Σ_k dY[o, k] · X̂[k, q],  k = (image, oh, ow), q = (c, kh, kw)
 */
import { ro, rw } from "./kernel.ts";
import type { ParamField } from "./kernel.ts";
import type { GemmSource } from "./wgsl_gemm.ts";

/** Batch strides and element offsets of A, B, C (the matmul kernels' layout uniforms). */
export const MATMUL_LAYOUT_PARAMS: readonly ParamField[] = [
  ["strideA", "u32"],
  ["strideB", "u32"],
  ["strideC", "u32"],
  ["offA", "u32"],
  ["offB", "u32"],
  ["offC", "u32"],
];

/** Layout plus C = alpha·A·B + beta·C. */
export const MATMUL_PARAMS: readonly ParamField[] = [
  ...MATMUL_LAYOUT_PARAMS,
  ["alpha", "f32"],
  ["beta", "f32"],
];

/** Storage element type of a matmul operand: f32, or f16 (needs shader-f16). */
export type MatmulElem = "f32" | "f16";

/**
 * Matmul: C = alpha·op(A)·op(B) + beta·C over batches with strides and offsets. Operands may be
 * stored as f16 (converted on load; products accumulate in f32; an f16 C is rounded on store).
 */
export function matmulSource(
  transA: boolean,
  transB: boolean,
  ta: MatmulElem = "f32",
  tb: MatmulElem = "f32",
  tc: MatmulElem = "f32",
): GemmSource {
  const half = ta === "f16" || tb === "f16" || tc === "f16";
  const typeTag = half ? `_${ta}${tb}${tc}` : "";
  const store = tc === "f16"
    ? `if (u.beta != 0.0) { C[i] = f16(u.alpha * v + u.beta * f32(C[i])); }
      else { C[i] = f16(u.alpha * v); }`
    : `if (u.beta != 0.0) { C[i] = u.alpha * v + u.beta * C[i]; } else { C[i] = u.alpha * v; }`;
  return {
    name: `matmul_${transA ? "t" : "n"}${transB ? "t" : "n"}${typeTag}`,
    enables: half ? ["f16"] : undefined,
    params: MATMUL_PARAMS,
    bindings: [ro("A", ta), ro("B", tb), rw("C", tc)],
    loadA: transA
      ? `return f32(A[u.offA + z * u.strideA + k * u.M + m]);`
      : `return f32(A[u.offA + z * u.strideA + m * u.K + k]);`,
    loadB: transB
      ? `return f32(B[u.offB + z * u.strideB + n * u.K + k]);`
      : `return f32(B[u.offB + z * u.strideB + k * u.N + n]);`,
    storeC: `let i = u.offC + z * u.strideC + m * u.N + n;
      ${store}`,
    aKFast: !transA,
    bNFast: !transB,
  };
}

/** Convolution geometry fields shared by the three conv kernels. */
export const CONV_PARAMS: readonly ParamField[] = [
  ["C", "u32"],
  ["H", "u32"],
  ["W", "u32"],
  ["O", "u32"],
  ["KH", "u32"],
  ["KW", "u32"],
  ["stride", "u32"],
  ["pad", "u32"],
  ["OH", "u32"],
  ["OW", "u32"],
  ["flag", "u32"], // forward: has bias; backward filter: accumulate
];

/** Gathers x[img, c, oh·s−pad+kh, ow·s−pad+kw] (0 outside the image). */
const GATHER_X = `
fn gatherX(img: u32, c: u32, kh: u32, kw: u32, oh: u32, ow: u32) -> f32 {
  let ih = i32(oh * u.stride + kh) - i32(u.pad);
  let iw = i32(ow * u.stride + kw) - i32(u.pad);
  if (ih < 0 || iw < 0 || ih >= i32(u.H) || iw >= i32(u.W)) { return 0.0; }
  return X[((img * u.C + c) * u.H + u32(ih)) * u.W + u32(iw)];
}`;

/** Forward conv: M = O, N = OH·OW, K = C·KH·KW, z = image. */
export function convForwardSource(): GemmSource {
  return {
    name: "conv_fwd",
    params: CONV_PARAMS,
    bindings: [ro("X"), ro("Wt"), ro("Bias"), rw("Y")],
    loadA: `return Wt[m * u.K + k];`,
    loadB: `let khw = u.KH * u.KW;
      let c = k / khw; let r = k % khw;
      return gatherX(z, c, r / u.KW, r % u.KW, n / u.OW, n % u.OW);`,
    helpers: GATHER_X,
    storeC: `var b = 0.0;
      if (u.flag != 0u) { b = Bias[m]; }
      Y[(z * u.O + m) * u.N + n] = v + b;`,
    aKFast: true,
    bNFast: true,
  };
}

/** Backward data: M = C, N = H·W, K = O·KH·KW, z = image; dX overwritten. */
export function convBackwardDataSource(): GemmSource {
  return {
    name: "conv_bwd_data",
    params: CONV_PARAMS,
    bindings: [ro("DY"), ro("Wt"), rw("DX")],
    loadA: `let khw = u.KH * u.KW;
      let o = k / khw; let r = k % khw;
      return Wt[(o * u.C + m) * khw + r];`,
    loadB: `let khw = u.KH * u.KW;
      let o = k / khw; let r = k % khw;
      let kh = r / u.KW; let kw = r % u.KW;
      let th = i32(n / u.W + u.pad) - i32(kh);
      let tw = i32(n % u.W + u.pad) - i32(kw);
      if (th < 0 || tw < 0) { return 0.0; }
      let s = u.stride;
      let uh = u32(th); let uw = u32(tw);
      if (uh % s != 0u || uw % s != 0u) { return 0.0; }
      let oh = uh / s; let ow = uw / s;
      if (oh >= u.OH || ow >= u.OW) { return 0.0; }
      return DY[((z * u.O + o) * u.OH + oh) * u.OW + ow];`,
    storeC: `DX[(z * u.C + m) * u.N + n] = v;`,
    aKFast: true,
    bNFast: true,
  };
}

/**
 * Backward filter: M = O, N = C·KH·KW, K = images·OH·OW. With `split`, z is a K-chunk and the
 * result goes to a partial buffer P [splits, O, N] (summed by a reduce afterwards).
 */
export function convBackwardFilterSource(split: boolean): GemmSource {
  return {
    name: split ? "conv_bwd_filter_split" : "conv_bwd_filter",
    params: CONV_PARAMS,
    bindings: [ro("DY"), ro("X"), rw("DW")],
    loadA: `let ohw = u.OH * u.OW;
      let img = k / ohw; let j = k % ohw;
      return DY[(img * u.O + m) * ohw + j];`,
    loadB: `let ohw = u.OH * u.OW; let khw = u.KH * u.KW;
      let img = k / ohw; let j = k % ohw;
      let c = n / khw; let r = n % khw;
      return gatherX(img, c, r / u.KW, r % u.KW, j / u.OW, j % u.OW);`,
    helpers: GATHER_X,
    storeC: split ? `DW[(z * u.M + m) * u.N + n] = v;` : `let i = m * u.N + n;
      if (u.flag != 0u) { DW[i] = DW[i] + v; } else { DW[i] = v; }`,
    aKFast: true,
    bNFast: false,
  };
}
