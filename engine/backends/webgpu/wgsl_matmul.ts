/**
 * Matmul sources for the tiled GEMM template (wgsl_tile_gemm.ts): C = alpha·op(A)·op(B) + beta·C
 * with vec4 bindings for every operand whose rows, offset and batch stride are multiples of four
 * elements, plus the split-K pair (partial products into P [splits, M, N], then one epilogue
 * kernel that sums them and applies alpha/beta).
 */
import { type KernelSpec, ro, rw } from "./kernel.ts";
import { MATMUL_PARAMS, type MatmulElem } from "./wgsl_linalg.ts";
import type { TileGemmSource } from "./wgsl_tile_gemm.ts";

/** Which operands are bound as vec4 arrays (aligned), see `matmulAlignment`. */
export interface MatmulAlign {
  a4: boolean;
  b4: boolean;
  c4: boolean;
}

/** Operand layout facts needed to decide vec4 access. */
export interface MatmulLayout {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
  strideC: number;
  offsetA: number;
  offsetB: number;
  offsetC: number;
}

/**
 * vec4 access is valid for an operand when its contiguous axis length, its offset and its batch
 * stride are multiples of 4 (every vec4 group then starts on a 16-byte boundary).
 */
export function matmulAlignment(p: MatmulLayout): MatmulAlign {
  const q = (...v: number[]) => v.every((x) => x % 4 === 0);
  return {
    a4: q(p.transA ? p.M : p.K, p.offsetA, p.strideA),
    b4: q(p.transB ? p.K : p.N, p.offsetB, p.strideB),
    c4: q(p.N, p.offsetC, p.strideC),
  };
}

/** Scalar element `i` of a binding declared scalar or vec4. */
function elem(name: string, vec: boolean, i: string): string {
  return vec ? `${name}[(${i}) >> 2u][(${i}) & 3u]` : `${name}[${i}]`;
}

/**
 * Matmul for the tiled template. With `split`, z is a K-chunk and products go to the partial
 * buffer C = P [splits, M, N] (always f32, vec4 when N % 4 = 0); alpha/beta are then applied by
 * `splitKEpilogueKernel`.
 */
export function tileMatmulSource(o: {
  transA: boolean;
  transB: boolean;
  ta: MatmulElem;
  tb: MatmulElem;
  tc: MatmulElem;
  align: MatmulAlign;
  split: boolean;
}): TileGemmSource {
  const { transA, transB, ta, tb, align, split } = o;
  const tc = split ? "f32" : o.tc;
  const half = ta === "f16" || tb === "f16" || tc === "f16";
  const name = `mm_${transA ? "t" : "n"}${transB ? "t" : "n"}_${ta}${tb}${tc}_` +
    `${+align.a4}${+align.b4}${+align.c4}${split ? "_split" : ""}`;
  const idxA = `u.offA + z * u.strideA + ${transA ? "k * u.M + m" : "m * u.K + k"}`;
  const idxB = `u.offB + z * u.strideB + ${transB ? "n * u.K + k" : "k * u.N + n"}`;
  const vt = (t: MatmulElem, v: boolean) => (v ? `vec4<${t}>` : t) as `vec4<${MatmulElem}>`;
  let storeC: string, storeC4: string | undefined;
  if (split) {
    storeC = `${elem("C", align.c4, "(z * u.M + m) * u.N + n")} = v;`;
    storeC4 = align.c4 ? `C[((z * u.M + m) * u.N + n) >> 2u] = v;` : undefined;
  } else {
    const cv = elem("C", align.c4, "i");
    const wrap = (e: string) => (tc === "f16" ? `f16(${e})` : e);
    storeC = `let i = u.offC + z * u.strideC + m * u.N + n;
      if (u.beta != 0.0) { ${cv} = ${wrap(`u.alpha * v + u.beta * f32(${cv})`)}; }
      else { ${cv} = ${wrap("u.alpha * v")}; }`;
    const w4 = (e: string) => (tc === "f16" ? `vec4<f16>(${e})` : e);
    storeC4 = align.c4
      ? `let i = (u.offC + z * u.strideC + m * u.N + n) >> 2u;
      if (u.beta != 0.0) { C[i] = ${w4(`u.alpha * v + u.beta * vec4<f32>(C[i])`)}; }
      else { C[i] = ${w4("u.alpha * v")}; }`
      : undefined;
  }
  return {
    name,
    enables: half ? ["f16"] : undefined,
    params: MATMUL_PARAMS,
    bindings: [ro("A", vt(ta, align.a4)), ro("B", vt(tb, align.b4)), rw("C", vt(tc, align.c4))],
    loadA: `return f32(${elem("A", align.a4, idxA)});`,
    loadB: `return f32(${elem("B", align.b4, idxB)});`,
    loadA4: align.a4 ? `return vec4<f32>(A[(${idxA}) >> 2u]);` : undefined,
    loadB4: align.b4 ? `return vec4<f32>(B[(${idxB}) >> 2u]);` : undefined,
    storeC,
    storeC4,
    aKFast: !transA,
    bNFast: !transB,
  };
}

const memo = new Map<string, KernelSpec>();

/**
 * C[offC + i] = alpha·Σ_s Part[s·n + i] + beta·C[offC + i] for i < n = M·N (one batch), C f32 or
 * f16. One thread per element, sums in split order (deterministic).
 */
export function splitKEpilogueKernel(tc: MatmulElem): KernelSpec {
  const key = `splitk_epilogue:${tc}`;
  let s = memo.get(key);
  if (!s) {
    const wrap = (e: string) => (tc === "f16" ? `f16(${e})` : e);
    s = {
      key,
      params: [["n", "u32"], ["splits", "u32"], ["offC", "u32"], ["alpha", "f32"], ["beta", "f32"]],
      bindings: [ro("Part"), rw("C", tc)],
      enables: tc === "f16" ? ["f16"] : undefined,
      body: `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= u.n) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.splits; k = k + 1u) { s = s + Part[k * u.n + i]; }
  let ci = u.offC + i;
  if (u.beta != 0.0) { C[ci] = ${wrap("u.alpha * s + u.beta * f32(C[ci])")}; }
  else { C[ci] = ${wrap("u.alpha * s")}; }
}`,
    };
    memo.set(key, s);
  }
  return s;
}
