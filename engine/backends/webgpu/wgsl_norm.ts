/**
 * Batch norm for the "current" kernel set, over x viewed as [N, C, HW]:
 * - statistics in two kernels (partial sums with subgroupAdd where the device has subgroups and
 *   the backend's self-test passed): workgroups over (channel, chunk of images) each reduce their chunk
 *   exactly (sum, then the sum of squared deviations from the chunk mean, re-read from cache),
 *   then one thread per channel merges the chunks (Chan's pairwise formula), so thousands of
 *   workgroups share the work that one workgroup per channel did before;
 * - apply (optionally fused with ReLU) and the backward's dx pass run four consecutive elements
 *   per thread, with one division per thread to find the channel instead of one per element;
 * - backward (optionally through the fused ReLU: dy is masked where the forward output is 0) in
 *   three kernels: chunk partials of Σdy and Σdy·x̂, a per-channel merge that accumulates
 *   dgamma/dbeta and the two dx coefficients, then dx.
 * Inside a chunk, thread (io, j) covers image io of every `per` images and column j, with
 * per = max(1, 256 / HW), so small feature maps (7×7) still use most of the workgroup. Every sum
 * has a fixed order for a given shape (deterministic).
 */
import { FLAT_WG, type KernelSpec, ro, rw, WG_BUILTINS } from "./kernel.ts";
import { WG_SUM } from "./wgsl_reduce.ts";

const memo = new Map<string, KernelSpec>();
function cached(key: string, make: () => Omit<KernelSpec, "key">): KernelSpec {
  let s = memo.get(key);
  if (!s) memo.set(key, s = { key, ...make() });
  return s;
}

/** Images per chunk and chunk count for N images of C channels (about 1024 workgroups). */
export function bnChunks(N: number, C: number): { perChunk: number; chunks: number } {
  const want = Math.max(1, Math.min(N, Math.ceil(1024 / Math.max(1, C))));
  const perChunk = Math.ceil(N / want);
  return { perChunk, chunks: Math.ceil(N / perChunk) };
}

const SHAPE_PARAMS = [
  ["N", "u32"],
  ["C", "u32"],
  ["HW", "u32"],
  ["perChunk", "u32"],
  ["chunks", "u32"],
] as const;

/**
 * The same sum with subgroupAdd (devices with the `subgroups` feature): one partial per
 * subgroup in shared memory, then every thread adds those in order (fixed order, one barrier
 * pair instead of eight).
 */
const SG_SUM = `
var<private> sgid: u32;
var<private> sgsize: u32;
var<workgroup> red: array<f32, 256>;
fn wgSum(v: f32, lid: u32) -> f32 {
  let s = subgroupAdd(v);
  if (sgid == 0u) { red[lid / sgsize] = s; }
  workgroupBarrier();
  var t = 0.0;
  for (var i = 0u; i < 256u / sgsize; i = i + 1u) { t = t + red[i]; }
  workgroupBarrier();
  return t;
}`;

/**
 * Opening of a (channel, chunk) workgroup: c, ch, the image range [i0, i1), the thread's lane
 * (io, j0), `per`, `jstep`, `inLane` and the element count `cnt` of the chunk. With `sg` the sums
 * use subgroupAdd (the subgroup builtins are copied to module scope for wgSum).
 */
function chunkMain(sg: boolean): string {
  const builtins = sg
    ? `${WG_BUILTINS}, @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_size) sgs: u32`
    : WG_BUILTINS;
  return `${sg ? SG_SUM : WG_SUM}
@compute @workgroup_size(256)
fn main(${builtins}) {
  ${sg ? "sgid = sgi; sgsize = sgs;" : ""}
  let g = ${FLAT_WG};
  if (g >= u.C * u.chunks) { return; }
  let c = g % u.C;
  let ch = g / u.C;
  let i0 = ch * u.perChunk;
  let i1 = min(u.N, i0 + u.perChunk);
  let per = max(1u, 256u / u.HW);
  let inLane = lid < per * u.HW;
  let io = lid / u.HW;
  let j0 = lid % u.HW;
  let jstep = select(u.HW, 256u, u.HW >= 256u);
  let cnt = f32((i1 - i0) * u.HW);`;
}

/** Loop over this thread's elements of the chunk; `idx` is the element's flat index. */
function chunkLoop(body: string): string {
  return `if (inLane) {
    for (var img = i0 + io; img < i1; img = img + per) {
      let base = (img * u.C + c) * u.HW;
      for (var j = j0; j < u.HW; j = j + jstep) { let idx = base + j; ${body} }
    }
  }`;
}

/** Partial statistics Part[(c·chunks + ch)·2 + {0, 1}] = (chunk sum, chunk Σ(x − chunk mean)²). */
export function bnPartialStatsKernel(sg = false): KernelSpec {
  return cached(`bn2_partial_stats${sg ? ":sg" : ""}`, () => ({
    params: SHAPE_PARAMS,
    bindings: [ro("X"), rw("Part")],
    enables: sg ? ["subgroups"] : undefined,
    body: `${chunkMain(sg)}
  var s = 0.0;
  ${chunkLoop("s = s + X[idx];")}
  let sum = wgSum(s, lid);
  let m = sum / cnt;
  var q = 0.0;
  ${chunkLoop("let d = X[idx] - m; q = q + d * d;")}
  let m2 = wgSum(q, lid);
  if (lid == 0u) { Part[(c * u.chunks + ch) * 2u] = sum; Part[(c * u.chunks + ch) * 2u + 1u] = m2; }
}`,
  }));
}

/** Per-channel merge of the partials into mean and biased variance (one thread per channel). */
export function bnFinalizeStatsKernel(): KernelSpec {
  return cached("bn2_finalize_stats", () => ({
    params: SHAPE_PARAMS,
    bindings: [ro("Part"), rw("Mean"), rw("Var")],
    body: `
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let c = ${FLAT_WG} * 256u + lid;
  if (c >= u.C) { return; }
  let n = f32(u.N * u.HW);
  var sum = 0.0;
  for (var k = 0u; k < u.chunks; k = k + 1u) { sum = sum + Part[(c * u.chunks + k) * 2u]; }
  let mean = sum / n;
  var m2 = 0.0;
  for (var k = 0u; k < u.chunks; k = k + 1u) {
    let nk = f32((min(u.N, (k + 1u) * u.perChunk) - k * u.perChunk) * u.HW);
    let d = Part[(c * u.chunks + k) * 2u] / nk - mean;
    m2 = m2 + Part[(c * u.chunks + k) * 2u + 1u] + nk * d * d;
  }
  Mean[c] = mean;
  Var[c] = m2 / n;
}`,
  }));
}

/** Four consecutive elements per thread; `plane`, `c`, `j` follow the element (no per-element div). */
function quadLoop(body: string): string {
  return `
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let first = (${FLAT_WG} * 256u + lid) * 4u;
  if (first >= u.n) { return; }
  var plane = first / u.HW;
  var j = first % u.HW;
  var c = plane % u.C;
  for (var q = 0u; q < 4u; q = q + 1u) {
    let i = first + q;
    if (i >= u.n) { break; }
    ${body}
    j = j + 1u;
    if (j == u.HW) { j = 0u; plane = plane + 1u; c = plane % u.C; }
  }
}`;
}

/** y = (x − mean[c])·gamma[c]/sqrt(var[c] + eps) + beta[c], then max(y, 0) when relu. */
export function bnApplyKernel(relu: boolean): KernelSpec {
  return cached(`bn2_apply:${relu ? "relu" : "id"}`, () => ({
    params: [["n", "u32"], ["C", "u32"], ["HW", "u32"], ["eps", "f32"]],
    bindings: [ro("X"), ro("Mean"), ro("Var"), ro("G"), ro("B"), rw("Y")],
    body: quadLoop(`let sc = G[c] / sqrt(Var[c] + u.eps);
    let y = (X[i] - Mean[c]) * sc + B[c];
    Y[i] = ${relu ? "max(y, 0.0)" : "y"};`),
  }));
}

/** dy through the fused ReLU: zero where the forward output R is not positive. */
function gradExpr(relu: boolean, i: string): string {
  return relu ? `select(0.0, DY[${i}], R[${i}] > 0.0)` : `DY[${i}]`;
}

/** Backward partials Part[(c·chunks + ch)·2 + {0, 1}] = (Σ g, Σ g·x̂) with g the (masked) dy. */
export function bnBackwardPartialKernel(relu: boolean, sg = false): KernelSpec {
  return cached(`bn2_bwd_partial:${relu ? "relu" : "id"}${sg ? ":sg" : ""}`, () => ({
    params: [...SHAPE_PARAMS, ["eps", "f32"]],
    bindings: [ro("X"), ro("Mean"), ro("Var"), ro("DY"), ro("R"), rw("Part")],
    enables: sg ? ["subgroups"] : undefined,
    body: `${chunkMain(sg)}
  let mean = Mean[c];
  let rs = 1.0 / sqrt(Var[c] + u.eps);
  var sg = 0.0;
  var sgx = 0.0;
  ${
      chunkLoop(
        `let gv = ${gradExpr(relu, "idx")}; sg = sg + gv; sgx = sgx + gv * (X[idx] - mean) * rs;`,
      )
    }
  let a = wgSum(sg, lid);
  let b = wgSum(sgx, lid);
  if (lid == 0u) { Part[(c * u.chunks + ch) * 2u] = a; Part[(c * u.chunks + ch) * 2u + 1u] = b; }
}`,
  }));
}

/**
 * Per-channel merge of the backward partials: dgamma[c] += Σ g·x̂, dbeta[c] += Σ g, and
 * Coef[2c..2c+1] = (Σ g / n, Σ g·x̂ / n) for the dx pass.
 */
export function bnBackwardFinalizeKernel(): KernelSpec {
  return cached("bn2_bwd_finalize", () => ({
    params: SHAPE_PARAMS,
    bindings: [ro("Part"), rw("DG"), rw("DB"), rw("Coef")],
    body: `
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let c = ${FLAT_WG} * 256u + lid;
  if (c >= u.C) { return; }
  var sg = 0.0;
  var sgx = 0.0;
  for (var k = 0u; k < u.chunks; k = k + 1u) {
    sg = sg + Part[(c * u.chunks + k) * 2u];
    sgx = sgx + Part[(c * u.chunks + k) * 2u + 1u];
  }
  DG[c] = DG[c] + sgx;
  DB[c] = DB[c] + sg;
  let n = f32(u.N * u.HW);
  Coef[2u * c] = sg / n;
  Coef[2u * c + 1u] = sgx / n;
}`,
  }));
}

/** dx = gamma[c]·rstd·(g − Σg/n − x̂·Σg·x̂/n). */
export function bnBackwardDxKernel(relu: boolean): KernelSpec {
  return cached(`bn2_bwd_dx:${relu ? "relu" : "id"}`, () => ({
    params: [["n", "u32"], ["C", "u32"], ["HW", "u32"], ["eps", "f32"]],
    bindings: [ro("X"), ro("Mean"), ro("Var"), ro("G"), ro("DY"), ro("R"), ro("Coef"), rw("DX")],
    body: quadLoop(`let rs = 1.0 / sqrt(Var[c] + u.eps);
    let xh = (X[i] - Mean[c]) * rs;
    DX[i] = G[c] * rs * (${gradExpr(relu, "i")} - Coef[2u * c] - xh * Coef[2u * c + 1u]);`),
  }));
}
