/**
 * The throughput GEMM template for GPUs (kernel set "current"): a workgroup computes a BM×BN tile
 * of C with (BN/TN)×(BM/TM) threads, each owning TM×TN outputs (8×8 on large tiles) held as vec4
 * rows. K advances BK at a time through double-buffered shared-memory tiles stored k-major as
 * vec4, so every shared-memory read is a vec4 and one barrier per k-step suffices; the next
 * tile's global loads are issued into registers before the current tile is multiplied (register
 * prefetch). Global loads are vec4 groups along each operand's contiguous axis: one 16-byte load
 * when the source provides `loadA4`/`loadB4` (aligned plain matrices), four scalar loads
 * otherwise (gathers). Range checks are per vec4 group and fall to the scalar path only on edge
 * tiles. Thread (tx, ty) owns rows (g·WY + ty)·4 + i and columns (h·WX + tx)·4 + j, so stores
 * coalesce and shared reads of neighbouring threads are consecutive vec4s.
 *
 * Grid: x = N tiles, y = M tiles, z = batch (or K-chunk index when split).
 */
import type { KernelSpec } from "./kernel.ts";
import { accessors, type GemmSource, gemmSpec, tileEntry } from "./wgsl_gemm.ts";

/** A GEMM source that can also load/store four elements at once along its contiguous axes. */
export interface TileGemmSource extends GemmSource {
  /**
   * Body of `fn loadA4(z: u32, m: u32, k: u32) -> vec4<f32>`: A at k..k+3 (aKFast) or m..m+3,
   * all in range. Default: four loadA calls.
   */
  loadA4?: string;
  /** Body of `fn loadB4(z: u32, k: u32, n: u32) -> vec4<f32>`: n..n+3 (bNFast) or k..k+3. */
  loadB4?: string;
  /** Body of `fn storeC4(z: u32, m: u32, n: u32, v: vec4<f32>)` for columns n..n+3 in range. */
  storeC4?: string;
}

/** Tile geometry: BM×BN outputs per workgroup, TM×TN per thread (multiples of 4), K step BK. */
export interface TileShape {
  readonly BM: number;
  readonly BN: number;
  readonly TM: number;
  readonly TN: number;
  readonly BK: number;
}

/**
 * The tile shapes, largest first. Shared memory is 2·BK·(BM + BN)·4 bytes = 16 KiB for each
 * (WebGPU's default limit); 128×128 has 256 threads of 8×8, 64×64/4×4 has 256 threads of 4×4.
 */
export const TILE_SHAPES: readonly TileShape[] = [
  { BM: 128, BN: 128, TM: 8, TN: 8, BK: 8 },
  { BM: 128, BN: 64, TM: 8, TN: 8, BK: 8 },
  { BM: 64, BN: 128, TM: 8, TN: 8, BK: 8 },
  { BM: 64, BN: 64, TM: 8, TN: 8, BK: 16 },
  { BM: 64, BN: 64, TM: 4, TN: 4, BK: 16 },
  { BM: 32, BN: 32, TM: 4, TN: 4, BK: 16 },
];

/** Workgroups a GPU should get to be busy (about two per SM on a 132-SM H100). */
export const TARGET_WORKGROUPS = 256;

/** Relative per-output efficiency of each shape when the GPU is full (bigger tiles reuse more). */
function tileWeight(s: TileShape): number {
  const intensity = (s.BM * s.BN) / (s.BM + s.BN); // outputs per loaded element
  return intensity / 64; // 128×128 → 1
}

/**
 * Picks the tile shape for an M×N output repeated `batch` times: maximizes
 * useful fraction × min(1, workgroups / TARGET_WORKGROUPS) × tile weight, so big problems get
 * 128×128, skinny or small ones smaller tiles (split-K is decided separately by the caller).
 */
export function chooseTileShape(M: number, N: number, batch: number): TileShape {
  let best = TILE_SHAPES[TILE_SHAPES.length - 1], bestScore = -1;
  for (const s of TILE_SHAPES) {
    const tm = Math.ceil(M / s.BM), tn = Math.ceil(N / s.BN);
    const useful = (M * N) / (tm * s.BM * tn * s.BN);
    const fill = Math.min(1, (tm * tn * batch) / TARGET_WORKGROUPS);
    const score = useful * fill * tileWeight(s);
    if (score > bestScore * 1.0001) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

/**
 * K-splits for a single product whose tiles alone do not fill the GPU: enough chunks to reach
 * TARGET_WORKGROUPS, at most `maxSplits`, each at least `minChunk` long (a multiple of BK).
 * Returns 1 when splitting does not pay.
 */
export function chooseSplitK(
  tiles: number,
  K: number,
  BK: number,
  maxSplits = 32,
  minChunk = 512,
): { splits: number; kChunk: number } {
  if (tiles >= TARGET_WORKGROUPS / 2 || K < 2 * minChunk) return { splits: 1, kChunk: K };
  const want = Math.min(maxSplits, Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(K / minChunk));
  if (want <= 1) return { splits: 1, kChunk: K };
  const kChunk = Math.ceil(K / want / BK) * BK;
  return { splits: Math.ceil(K / kChunk), kChunk };
}

const memo = new Map<string, KernelSpec>();

/** Builds (once per source name, shape and mode) the tiled GEMM kernel for a source. */
export function tileGemmKernel(src: TileGemmSource, s: TileShape, split: boolean): KernelSpec {
  const key = `tgemm:${src.name}:${s.BM}x${s.BN}:${s.TM}x${s.TN}:k${s.BK}:${
    split ? "split" : "batch"
  }`;
  let spec = memo.get(key);
  if (!spec) memo.set(key, spec = buildTileGemm(key, src, s, split));
  return spec;
}

const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
const C4 = ["x", "y", "z", "w"];

function buildTileGemm(key: string, src: TileGemmSource, s: TileShape, split: boolean): KernelSpec {
  const { BM, BN, TM, TN, BK } = s;
  if (TM % 4 || TN % 4 || BK % 4) throw new Error(`tile gemm: bad shape ${JSON.stringify(s)}`);
  const WX = BN / TN, WY = BM / TM, T = WX * WY;
  const RM = TM / 4, RN = TN / 4;
  const A4 = BM / 4, B4 = BN / 4; // vec4s per k-row of the A and B tiles
  const groupsA = (BM * BK) / 4, groupsB = (BN * BK) / 4;
  if (groupsA % T || groupsB % T) throw new Error(`tile gemm: ${key} loads do not divide`);
  const LA = groupsA / T, LB = groupsB / T;
  const tileA = BK * A4, tileB = BK * B4;
  const K4 = BK / 4;

  // fetch = global → registers (vec4 group e of the tile), put = registers → shared buffer.
  const fetchA = src.aKFast
    ? `let k4 = e % ${K4}u; let mm = e / ${K4}u; let gm = m0 + mm; let gk = k0 + k4 * 4u;
  if (gm < u.M && gk + 3u < kEnd) { return loadA4(z, gm, gk); }
  var v = vec4<f32>(0.0);
  if (gm < u.M) { for (var i = 0u; i < 4u; i = i + 1u) { if (gk + i < kEnd) { v[i] = loadA(z, gm, gk + i); } } }
  return v;`
    : `let m4 = e % ${A4}u; let kk = e / ${A4}u; let gm = m0 + m4 * 4u; let gk = k0 + kk;
  if (gk < kEnd && gm + 3u < u.M) { return loadA4(z, gm, gk); }
  var v = vec4<f32>(0.0);
  if (gk < kEnd) { for (var i = 0u; i < 4u; i = i + 1u) { if (gm + i < u.M) { v[i] = loadA(z, gm + i, gk); } } }
  return v;`;
  const putA = src.aKFast
    ? `let k4 = e % ${K4}u; let mm = e / ${K4}u; let b = buf + k4 * ${
      4 * A4
    }u + mm / 4u; let c = mm % 4u;
  As[b][c] = v.x; As[b + ${A4}u][c] = v.y; As[b + ${2 * A4}u][c] = v.z; As[b + ${
      3 * A4
    }u][c] = v.w;`
    : `let m4 = e % ${A4}u; let kk = e / ${A4}u; As[buf + kk * ${A4}u + m4] = v;`;
  const fetchB = src.bNFast
    ? `let n4 = e % ${B4}u; let kk = e / ${B4}u; let gn = n0 + n4 * 4u; let gk = k0 + kk;
  if (gk < kEnd && gn + 3u < u.N) { return loadB4(z, gk, gn); }
  var v = vec4<f32>(0.0);
  if (gk < kEnd) { for (var i = 0u; i < 4u; i = i + 1u) { if (gn + i < u.N) { v[i] = loadB(z, gk, gn + i); } } }
  return v;`
    : `let k4 = e % ${K4}u; let nn = e / ${K4}u; let gn = n0 + nn; let gk = k0 + k4 * 4u;
  if (gn < u.N && gk + 3u < kEnd) { return loadB4(z, gk, gn); }
  var v = vec4<f32>(0.0);
  if (gn < u.N) { for (var i = 0u; i < 4u; i = i + 1u) { if (gk + i < kEnd) { v[i] = loadB(z, gk + i, gn); } } }
  return v;`;
  const putB = src.bNFast
    ? `let n4 = e % ${B4}u; let kk = e / ${B4}u; Bs[buf + kk * ${B4}u + n4] = v;`
    : `let k4 = e % ${K4}u; let nn = e / ${K4}u; let b = buf + k4 * ${
      4 * B4
    }u + nn / 4u; let c = nn % 4u;
  Bs[b][c] = v.x; Bs[b + ${B4}u][c] = v.y; Bs[b + ${2 * B4}u][c] = v.z; Bs[b + ${
      3 * B4
    }u][c] = v.w;`;
  const loadA4 = src.loadA4 ??
    (src.aKFast
      ? `return vec4<f32>(loadA(z, m, k), loadA(z, m, k + 1u), loadA(z, m, k + 2u), loadA(z, m, k + 3u));`
      : `return vec4<f32>(loadA(z, m, k), loadA(z, m + 1u, k), loadA(z, m + 2u, k), loadA(z, m + 3u, k));`);
  const loadB4 = src.loadB4 ??
    (src.bNFast
      ? `return vec4<f32>(loadB(z, k, n), loadB(z, k, n + 1u), loadB(z, k, n + 2u), loadB(z, k, n + 3u));`
      : `return vec4<f32>(loadB(z, k, n), loadB(z, k + 1u, n), loadB(z, k + 2u, n), loadB(z, k + 3u, n));`);

  const acc: string[] = [], stores: string[] = [];
  for (let g = 0; g < RM; g++) {
    for (let i = 0; i < 4; i++) {
      stores.push(`{ let m = m0 + ${g * WY * 4 + i}u + ty * 4u;`);
      stores.push(`  if (m < u.M) {`);
      for (let h = 0; h < RN; h++) {
        acc.push(`var c${g}_${i}_${h} = vec4<f32>(0.0);`);
        stores.push(`    { let n = n0 + ${h * WX * 4}u + tx * 4u; let v = c${g}_${i}_${h};`);
        stores.push(
          src.storeC4 ? `      if (n + 3u < u.N) { storeC4(z, m, n, v); } else {` : `      {`,
        );
        stores.push(
          `        for (var j = 0u; j < 4u; j = j + 1u) { if (n + j < u.N) { storeC(z, m, n + j, v[j]); } }`,
        );
        stores.push(`      } }`);
      }
      stores.push(`  } }`);
    }
  }
  const step: string[] = [];
  for (let kk = 0; kk < BK; kk++) {
    step.push(`{`);
    for (let g = 0; g < RM; g++) {
      step.push(`  let a${g} = As[bufA + ${kk * A4 + g * WY}u + ty];`);
    }
    for (let h = 0; h < RN; h++) {
      step.push(`  let b${h} = Bs[bufB + ${kk * B4 + h * WX}u + tx];`);
    }
    for (let g = 0; g < RM; g++) {
      for (let i = 0; i < 4; i++) {
        for (let h = 0; h < RN; h++) {
          step.push(
            `  c${g}_${i}_${h} = fma(vec4<f32>(a${g}.${C4[i]}), b${h}, c${g}_${i}_${h});`,
          );
        }
      }
    }
    step.push(`}`);
  }
  const kRange = split
    ? `let kBeg = min(u.K, z * u.kChunk); let kEnd = min(u.K, kBeg + u.kChunk); let zb = 0u;`
    : `let kBeg = 0u; let kEnd = u.K; let zb = z;`;
  const body = `
var<workgroup> As: array<vec4<f32>, ${2 * tileA}>;
var<workgroup> Bs: array<vec4<f32>, ${2 * tileB}>;
${accessors(src)}
fn loadA4(z: u32, m: u32, k: u32) -> vec4<f32> { ${loadA4} }
fn loadB4(z: u32, k: u32, n: u32) -> vec4<f32> { ${loadB4} }
${src.storeC4 ? `fn storeC4(z: u32, m: u32, n: u32, v: vec4<f32>) { ${src.storeC4} }` : ""}
fn fetchA(z: u32, m0: u32, k0: u32, kEnd: u32, e: u32) -> vec4<f32> {
  ${fetchA}
}
fn putA(buf: u32, e: u32, v: vec4<f32>) {
  ${putA}
}
fn fetchB(z: u32, n0: u32, k0: u32, kEnd: u32, e: u32) -> vec4<f32> {
  ${fetchB}
}
fn putB(buf: u32, e: u32, v: vec4<f32>) {
  ${putB}
}
${tileEntry(WX, WY, BM, BN)}
  ${kRange}
  let nT = (kEnd - kBeg + ${BK - 1}u) / ${BK}u;
  ${acc.join("\n  ")}
  ${lines(LA, (r) => `var ra${r} = vec4<f32>(0.0);`).join("\n  ")}
  ${lines(LB, (r) => `var rb${r} = vec4<f32>(0.0);`).join("\n  ")}
  if (nT > 0u) {
    ${
    lines(LA, (r) => `putA(0u, ${r * T}u + lid, fetchA(zb, m0, kBeg, kEnd, ${r * T}u + lid));`)
      .join("\n    ")
  }
    ${
    lines(LB, (r) => `putB(0u, ${r * T}u + lid, fetchB(zb, n0, kBeg, kEnd, ${r * T}u + lid));`)
      .join("\n    ")
  }
  }
  workgroupBarrier();
  for (var t = 0u; t < nT; t = t + 1u) {
    let bufA = (t % 2u) * ${tileA}u;
    let bufB = (t % 2u) * ${tileB}u;
    let more = t + 1u < nT;
    if (more) {
      let kn = kBeg + (t + 1u) * ${BK}u;
      ${lines(LA, (r) => `ra${r} = fetchA(zb, m0, kn, kEnd, ${r * T}u + lid);`).join("\n      ")}
      ${lines(LB, (r) => `rb${r} = fetchB(zb, n0, kn, kEnd, ${r * T}u + lid);`).join("\n      ")}
    }
    ${step.join("\n    ")}
    if (more) {
      ${lines(LA, (r) => `putA(${tileA}u - bufA, ${r * T}u + lid, ra${r});`).join("\n      ")}
      ${lines(LB, (r) => `putB(${tileB}u - bufB, ${r * T}u + lid, rb${r});`).join("\n      ")}
    }
    workgroupBarrier();
  }
  ${stores.join("\n  ")}
}`;
  return gemmSpec(key, src, body);
}
