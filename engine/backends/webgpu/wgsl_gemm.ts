/**
 * One tiled GEMM template for every matrix-product-shaped kernel: plain/batched matmul and the
 * three implicit-GEMM convolutions. A workgroup of WX×WY threads (16×16 on GPUs) computes a
 * (WY·TM)×(WX·TN) tile of C; each thread keeps a TM×TN register block (rows ty+WY·i, cols tx+WX·j, so shared-memory
 * reads are conflict-free and global stores coalesce). K advances in steps of 16 through
 * shared-memory tiles As [16][BM] and Bs [16][BN]. Loaders and the store are WGSL functions
 * supplied per kernel, so im2col-style gathers happen on the fly without a materialized matrix.
 *
 * Grid: x = N tiles, y = M tiles, z = batch (or K-split index when `split`).
 */
import type { BindingSpec, KernelSpec, ParamField } from "./kernel.ts";

/** Per-kernel GEMM description. */
export interface GemmSource {
  name: string;
  params: readonly ParamField[];
  bindings: readonly BindingSpec[];
  /** `enable` directives (e.g. "f16" for half-precision storage). */
  enables?: readonly string[];
  /** Extra WGSL helper functions the loaders call. */
  helpers?: string;
  /** Body of `fn loadA(z: u32, m: u32, k: u32) -> f32` (called only in range). */
  loadA: string;
  /** Body of `fn loadB(z: u32, k: u32, n: u32) -> f32` (called only in range). */
  loadB: string;
  /** Body of `fn storeC(z: u32, m: u32, n: u32, v: f32)` (called only in range). */
  storeC: string;
  /** Consecutive threads load consecutive k of A (A is k-contiguous), else consecutive m. */
  aKFast: boolean;
  /** Consecutive threads load consecutive n of B, else consecutive k. */
  bNFast: boolean;
}

/**
 * Tiling choice: WX×WY threads per workgroup, each with a TM×TN register block (tile
 * (WY·TM)×(WX·TN)); `split` makes z index K-chunks of `kChunk`.
 */
export interface GemmTiling {
  TM: number;
  TN: number;
  WX?: number; // default 16
  WY?: number; // default 16
  split: boolean;
  /**
   * Barrier-free variant for CPU adapters: each thread reads its operands straight from
   * global memory (the CPU caches do the tiling); no shared memory, no workgroup barriers.
   */
  direct?: boolean;
}

/** Uniform fields every GEMM kernel starts with. */
export const GEMM_COMMON_PARAMS: readonly ParamField[] = [
  ["M", "u32"],
  ["N", "u32"],
  ["K", "u32"],
  ["kChunk", "u32"],
  ["zBase", "u32"],
];

const BK = 16;

/**
 * Tile sizes for a problem. GPUs: 16×16 threads with 4×4 blocks (64×64 tiles) when both dims
 * allow, 2×2 blocks (32×32) otherwise. CPU (software) adapters run a workgroup as a loop over
 * SIMD lanes and barriers are costly there: 8×8 threads × 8×8 blocks reading operands directly
 * (no shared memory) measured about 2× the shared-memory kernel's throughput on llvmpipe.
 */
export function chooseTiling(M: number, N: number, cpu = false): GemmTiling {
  if (cpu) {
    return M >= 48 && N >= 48
      ? { TM: 8, TN: 8, WX: 8, WY: 8, split: false, direct: true }
      : { TM: 4, TN: 4, WX: 8, WY: 8, split: false, direct: true };
  }
  const big = M >= 64 && N >= 64;
  return { TM: big ? 4 : 2, TN: big ? 4 : 2, split: false };
}

/** Rows and columns of C one workgroup covers. */
export function tileDims(t: GemmTiling): { BM: number; BN: number } {
  return { BM: (t.WY ?? 16) * t.TM, BN: (t.WX ?? 16) * t.TN };
}

const memo = new Map<string, KernelSpec>();

/** Builds (once per source name and tiling) the kernel spec for a GEMM source. */
export function gemmKernel(src: GemmSource, t: GemmTiling): KernelSpec {
  const key = `gemm:${src.name}:${t.WX ?? 16}x${t.WY ?? 16}:${t.TM}x${t.TN}:${
    t.split ? "split" : "batch"
  }${t.direct ? ":direct" : ""}`;
  let spec = memo.get(key);
  if (!spec) memo.set(key, spec = buildGemm(key, src, t));
  return spec;
}

function buildGemm(key: string, src: GemmSource, t: GemmTiling): KernelSpec {
  if (t.direct) return buildDirectGemm(key, src, t);
  const { TM, TN } = t;
  const WX = t.WX ?? 16, WY = t.WY ?? 16, T = WX * WY;
  const BM = WY * TM, BN = WX * TN;
  if ((BM * BK) % T !== 0 || (BN * BK) % T !== 0) throw new Error("gemm: bad tiling");
  const loadsA = (BM * BK) / T, loadsB = (BN * BK) / T;
  // Row pitch of the shared tiles: +1 when consecutive threads store down a column (k-fast
  // loads), so those stores hit distinct banks on GPUs.
  const SA = src.aKFast ? BM + 1 : BM, SB = src.bNFast ? BN : BN + 1;
  const idxA = src.aKFast
    ? `let kk = e % ${BK}u; let mm = e / ${BK}u;`
    : `let mm = e % ${BM}u; let kk = e / ${BM}u;`;
  const idxB = src.bNFast
    ? `let nn = e % ${BN}u; let kk = e / ${BN}u;`
    : `let kk = e % ${BK}u; let nn = e / ${BK}u;`;
  const decl: string[] = [];
  const fmas: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      decl.push(`var c${i}_${j} = 0.0;`);
      fmas.push(`c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);
      stores.push(
        `if (gm${i} < u.M && gn${j} < u.N) { storeC(z, gm${i}, gn${j}, c${i}_${j}); }`,
      );
    }
  }
  const aRegs = Array.from({ length: TM }, (_, i) => `let a${i} = As[ka + ty + ${WY * i}u];`);
  const bRegs = Array.from({ length: TN }, (_, j) => `let b${j} = Bs[kb + tx + ${WX * j}u];`);
  const gms = Array.from({ length: TM }, (_, i) => `let gm${i} = m0 + ty + ${WY * i}u;`);
  const gns = Array.from({ length: TN }, (_, j) => `let gn${j} = n0 + tx + ${WX * j}u;`);
  const kRange = t.split
    ? `let kBeg = z * u.kChunk; let kEnd = min(u.K, kBeg + u.kChunk);`
    : `let kBeg = 0u; let kEnd = u.K;`;
  const body = `
var<workgroup> As: array<f32, ${BK * SA}>;
var<workgroup> Bs: array<f32, ${BK * SB}>;
${accessors(src)}
${tileEntry(WX, WY, BM, BN)}
  ${kRange}
  ${decl.join("\n  ")}
  for (var k0 = kBeg; k0 < kEnd; k0 = k0 + ${BK}u) {
    for (var r = 0u; r < ${loadsA}u; r = r + 1u) {
      let e = r * ${T}u + lid;
      ${idxA}
      let gm = m0 + mm;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < u.M && gk < kEnd) { v = loadA(z, gm, gk); }
      As[kk * ${SA}u + mm] = v;
    }
    for (var r = 0u; r < ${loadsB}u; r = r + 1u) {
      let e = r * ${T}u + lid;
      ${idxB}
      let gn = n0 + nn;
      let gk = k0 + kk;
      var v = 0.0;
      if (gn < u.N && gk < kEnd) { v = loadB(z, gk, gn); }
      Bs[kk * ${SB}u + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk = kk + 1u) {
      let ka = kk * ${SA}u;
      let kb = kk * ${SB}u;
      ${aRegs.join("\n      ")}
      ${bRegs.join("\n      ")}
      ${fmas.join("\n      ")}
    }
    workgroupBarrier();
  }
  ${gms.join("\n  ")}
  ${gns.join("\n  ")}
  ${stores.join("\n  ")}
}`;
  return gemmSpec(key, src, body);
}

/**
 * Opening of a tiled GEMM entry point with WX×WY threads and BM×BN tiles: thread (tx, ty), flat
 * index lid, tile origin (m0, n0) and z (batch or K-chunk, offset by u.zBase).
 */
export function tileEntry(WX: number, WY: number, BM: number, BN: number): string {
  return `@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tx = lid3.x;
  let ty = lid3.y;
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  let z = wid.z + u.zBase;`;
}

/** The source's helper code and its loadA / loadB / storeC functions, as WGSL. */
export function accessors(src: GemmSource): string {
  return `${src.helpers ?? ""}
fn loadA(z: u32, m: u32, k: u32) -> f32 { ${src.loadA} }
fn loadB(z: u32, k: u32, n: u32) -> f32 { ${src.loadB} }
fn storeC(z: u32, m: u32, n: u32, v: f32) { ${src.storeC} }`;
}

/** A GEMM kernel: the common GEMM uniforms plus the source's own parameters and bindings. */
export function gemmSpec(key: string, src: GemmSource, body: string): KernelSpec {
  return {
    key,
    params: [...GEMM_COMMON_PARAMS, ...src.params],
    bindings: src.bindings,
    body,
    enables: src.enables,
  };
}

/** The barrier-free GEMM (see GemmTiling.direct): same loaders, stores and grid. */
function buildDirectGemm(key: string, src: GemmSource, t: GemmTiling): KernelSpec {
  const { TM, TN } = t;
  const WX = t.WX ?? 16, WY = t.WY ?? 16;
  const BM = WY * TM, BN = WX * TN;
  const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
  const acc: string[] = [], fmas: string[] = [], stores: string[] = [];
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      acc.push(`var c${i}_${j} = 0.0;`);
      fmas.push(`c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);
      stores.push(`if (gm${i} < u.M && gn${j} < u.N) { storeC(z, gm${i}, gn${j}, c${i}_${j}); }`);
    }
  }
  const kRange = t.split
    ? `let kBeg = z * u.kChunk; let kEnd = min(u.K, kBeg + u.kChunk);`
    : `let kBeg = 0u; let kEnd = u.K;`;
  const body = `
${accessors(src)}
@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let m0 = wid.y * ${BM}u + lid3.y;
  let n0 = wid.x * ${BN}u + lid3.x;
  let z = wid.z + u.zBase;
  ${kRange}
  ${lines(TM, (i) => `let gm${i} = m0 + ${WY * i}u;`).join("\n  ")}
  ${lines(TN, (j) => `let gn${j} = n0 + ${WX * j}u;`).join("\n  ")}
  ${lines(TM, (i) => `let mi${i} = min(gm${i}, u.M - 1u);`).join("\n  ")}
  ${lines(TN, (j) => `let nj${j} = min(gn${j}, u.N - 1u);`).join("\n  ")}
  ${acc.join("\n  ")}
  for (var k = kBeg; k < kEnd; k = k + 1u) {
    ${lines(TM, (i) => `let a${i} = loadA(z, mi${i}, k);`).join("\n    ")}
    ${lines(TN, (j) => `let b${j} = loadB(z, k, nj${j});`).join("\n    ")}
    ${fmas.join("\n    ")}
  }
  ${stores.join("\n  ")}
}`;
  return gemmSpec(key, src, body);
}
