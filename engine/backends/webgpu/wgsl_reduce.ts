/**
 * Reduction-shaped kernels: one 256-thread workgroup per row (softmax, layer norm, cross-entropy,
 * per-channel batch norm) with shared-memory tree reductions, plus column reductions with a
 * 64×4 workgroup (64 columns, 4 row-partitions combined in shared memory). All are
 * deterministic: every sum has a fixed order for a given shape.
 */
import { FLAT_WG, type KernelSpec, ro, rw, WG_BUILTINS } from "./kernel.ts";

const memo = new Map<string, KernelSpec>();
function cached(key: string, make: () => Omit<KernelSpec, "key">): KernelSpec {
  let s = memo.get(key);
  if (!s) memo.set(key, s = { key, ...make() });
  return s;
}

/** Shared-memory tree sum over the 256 threads of a workgroup (fixed order). */
export const WG_SUM = `
var<workgroup> red: array<f32, 256>;
fn wgSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** WG_SUM plus the matching max. */
const WG_REDUCE = `${WG_SUM}
fn wgMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** Opening of a one-workgroup-per-row entry point; defines `row` and `base` = row·cols. */
const ROW_MAIN = `${WG_REDUCE}
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let row = ${FLAT_WG};
  if (row >= u.rows) { return; }
  let base = row * u.cols;`;

/** Row softmax. */
export function softmaxKernel(): KernelSpec {
  return cached(`softmax`, () => ({
    params: [["rows", "u32"], ["cols", "u32"]],
    bindings: [ro("X"), rw("Y")],
    body: `${ROW_MAIN}
  var m = -3.4028235e38;
  for (var c = lid; c < u.cols; c = c + 256u) { m = max(m, X[base + c]); }
  m = wgMax(m, lid);
  var s = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) { s = s + exp(X[base + c] - m); }
  s = wgSum(s, lid);
  let inv = 1.0 / s;
  for (var c = lid; c < u.cols; c = c + 256u) { Y[base + c] = exp(X[base + c] - m) * inv; }
}`,
  }));
}

/** dx = y · (dy − Σ dy·y) per row. */
export function softmaxBackwardKernel(): KernelSpec {
  return cached(`softmax_bwd`, () => ({
    params: [["rows", "u32"], ["cols", "u32"]],
    bindings: [ro("Y"), ro("DY"), rw("DX")],
    body: `${ROW_MAIN}
  var s = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) { s = s + DY[base + c] * Y[base + c]; }
  s = wgSum(s, lid);
  for (var c = lid; c < u.cols; c = c + 256u) {
    DX[base + c] = Y[base + c] * (DY[base + c] - s);
  }
}`,
  }));
}

/** Softmax cross-entropy with ignore index; writes loss[row] and dlogits. */
export function crossEntropyKernel(): KernelSpec {
  return cached(`cross_entropy`, () => ({
    params: [["rows", "u32"], ["cols", "u32"], ["ignore", "i32"], ["scale", "f32"]],
    bindings: [ro("X"), ro("T", "i32"), rw("L"), rw("D")],
    body: `${ROW_MAIN}
  let t = T[row];
  if (t == u.ignore || t < 0 || u32(t) >= u.cols) {
    for (var c = lid; c < u.cols; c = c + 256u) { D[base + c] = 0.0; }
    if (lid == 0u) { L[row] = 0.0; }
    return;
  }
  var m = -3.4028235e38;
  for (var c = lid; c < u.cols; c = c + 256u) { m = max(m, X[base + c]); }
  m = wgMax(m, lid);
  var s = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) { s = s + exp(X[base + c] - m); }
  s = wgSum(s, lid);
  let lse = m + log(s);
  if (lid == 0u) { L[row] = lse - X[base + u32(t)]; }
  for (var c = lid; c < u.cols; c = c + 256u) {
    let p = exp(X[base + c] - lse);
    D[base + c] = (p - select(0.0, 1.0, c == u32(t))) * u.scale;
  }
}`,
  }));
}

/** LayerNorm over the last dim; saves mean and rstd per row. */
export function layerNormKernel(): KernelSpec {
  return cached(`layer_norm`, () => ({
    params: [["rows", "u32"], ["cols", "u32"], ["eps", "f32"]],
    bindings: [ro("X"), ro("G"), ro("B"), rw("Y"), rw("Mean"), rw("Rstd")],
    body: `${ROW_MAIN}
  var s = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) { s = s + X[base + c]; }
  let mean = wgSum(s, lid) / f32(u.cols);
  var v = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) { let d = X[base + c] - mean; v = v + d * d; }
  let rs = 1.0 / sqrt(wgSum(v, lid) / f32(u.cols) + u.eps);
  if (lid == 0u) { Mean[row] = mean; Rstd[row] = rs; }
  for (var c = lid; c < u.cols; c = c + 256u) {
    Y[base + c] = (X[base + c] - mean) * rs * G[c] + B[c];
  }
}`,
  }));
}

/** LayerNorm backward, dx part (one workgroup per row). */
export function layerNormBackwardDxKernel(): KernelSpec {
  return cached(`layer_norm_bwd_dx`, () => ({
    params: [["rows", "u32"], ["cols", "u32"]],
    bindings: [ro("X"), ro("G"), ro("Mean"), ro("Rstd"), ro("DY"), rw("DX")],
    body: `${ROW_MAIN}
  let mean = Mean[row];
  let rs = Rstd[row];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = lid; c < u.cols; c = c + 256u) {
    let g = DY[base + c] * G[c];
    sg = sg + g;
    sgx = sgx + g * (X[base + c] - mean) * rs;
  }
  let n = f32(u.cols);
  let mg = wgSum(sg, lid) / n;
  let mgx = wgSum(sgx, lid) / n;
  for (var c = lid; c < u.cols; c = c + 256u) {
    let xh = (X[base + c] - mean) * rs;
    DX[base + c] = rs * (DY[base + c] * G[c] - mg - xh * mgx);
  }
}`,
  }));
}

/** Column-reduction entry: 64 columns × 4 row partitions per workgroup. */
const COL_MAIN = `
var<workgroup> part: array<f32, 256>;
var<workgroup> part2: array<f32, 256>;
@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) l3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = ${FLAT_WG};`;

/** LayerNorm backward, parameter part: dgamma[c] += Σ dy·x̂, dbeta[c] += Σ dy over rows. */
export function layerNormBackwardParamsKernel(): KernelSpec {
  return cached(`layer_norm_bwd_params`, () => ({
    params: [["rows", "u32"], ["cols", "u32"]],
    bindings: [ro("X"), ro("Mean"), ro("Rstd"), ro("DY"), rw("DG"), rw("DB")],
    body: `${COL_MAIN}
  let c = g * 64u + l3.x;
  var sg = 0.0;
  var sb = 0.0;
  if (c < u.cols) {
    for (var r = l3.y; r < u.rows; r = r + 4u) {
      let dy = DY[r * u.cols + c];
      sg = sg + dy * (X[r * u.cols + c] - Mean[r]) * Rstd[r];
      sb = sb + dy;
    }
  }
  part[lid] = sg;
  part2[lid] = sb;
  workgroupBarrier();
  if (l3.y == 0u && c < u.cols) {
    DG[c] = DG[c] + ((part[lid] + part[lid + 64u]) + (part[lid + 128u] + part[lid + 192u]));
    DB[c] = DB[c] + ((part2[lid] + part2[lid + 64u]) + (part2[lid + 128u] + part2[lid + 192u]));
  }
}`,
  }));
}

/**
 * y[o, j] (+)= Σ_r x[o, r, j] for inner > 1: workgroup g covers 64 columns of one outer index.
 * Grid = outer · ceil(inner/64) workgroups.
 */
export function reduceColsKernel(): KernelSpec {
  return cached(`reduce_cols`, () => ({
    params: [["outer", "u32"], ["reduce", "u32"], ["inner", "u32"], ["tiles", "u32"], [
      "acc",
      "u32",
    ]],
    bindings: [ro("X"), rw("Y")],
    body: `${COL_MAIN}
  let o = g / u.tiles;
  let j = (g % u.tiles) * 64u + l3.x;
  var s = 0.0;
  if (o < u.outer && j < u.inner) {
    let base = o * u.reduce * u.inner + j;
    for (var r = l3.y; r < u.reduce; r = r + 4u) { s = s + X[base + r * u.inner]; }
  }
  part[lid] = s;
  workgroupBarrier();
  if (l3.y == 0u && o < u.outer && j < u.inner) {
    let t = (part[lid] + part[lid + 64u]) + (part[lid + 128u] + part[lid + 192u]);
    let yi = o * u.inner + j;
    if (u.acc != 0u) { Y[yi] = Y[yi] + t; } else { Y[yi] = t; }
  }
}`,
  }));
}

/**
 * Segment sums with one workgroup per segment: out[g] (+)= Σ f(x[i]) for i in
 * [g·chunk, min(n, (g+1)·chunk)), f = square or identity. Used for reduceSum with inner = 1
 * (segments = rows) and for sumSquares (partials, then one final pass).
 */
export function segmentSumKernel(square: boolean): KernelSpec {
  return cached(`segment_sum:${square ? "sq" : "id"}`, () => ({
    params: [["n", "u32"], ["chunk", "u32"], ["segs", "u32"], ["acc", "u32"], ["outOff", "u32"]],
    bindings: [ro("X"), rw("Y")],
    body: `${WG_REDUCE}
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let g = ${FLAT_WG};
  if (g >= u.segs) { return; }
  let beg = g * u.chunk;
  let end = min(u.n, beg + u.chunk);
  var s = 0.0;
  for (var i = beg + lid; i < end; i = i + 256u) {
    let x = X[i];
    s = s + ${square ? "x * x" : "x"};
  }
  let t = wgSum(s, lid);
  if (lid == 0u) {
    let yi = u.outOff + g;
    if (u.acc != 0u) { Y[yi] = Y[yi] + t; } else { Y[yi] = t; }
  }
}`,
  }));
}

/** Per-channel entry: one workgroup per channel c over x [N, C, HW]. */
const CHANNEL_MAIN = `${WG_REDUCE}
@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let c = ${FLAT_WG};
  if (c >= u.C) { return; }
  let cnt = u.N * u.HW;`;

/** Index of the t-th element (t < N·HW) of channel c. */
const CH_INDEX =
  `fn chIdx(c: u32, t: u32) -> u32 { return ((t / u.HW) * u.C + c) * u.HW + t % u.HW; }`;

/** Batch-norm batch statistics: mean and biased variance per channel (two-pass). */
export function batchNormStatsKernel(): KernelSpec {
  return cached(`bn_stats`, () => ({
    params: [["N", "u32"], ["C", "u32"], ["HW", "u32"]],
    bindings: [ro("X"), rw("Mean"), rw("Var")],
    body: `${CH_INDEX}
${CHANNEL_MAIN}
  var s = 0.0;
  for (var t = lid; t < cnt; t = t + 256u) { s = s + X[chIdx(c, t)]; }
  let mean = wgSum(s, lid) / f32(cnt);
  var v = 0.0;
  for (var t = lid; t < cnt; t = t + 256u) { let d = X[chIdx(c, t)] - mean; v = v + d * d; }
  let variance = wgSum(v, lid) / f32(cnt);
  if (lid == 0u) { Mean[c] = mean; Var[c] = variance; }
}`,
  }));
}

/** Batch-norm training backward: writes dx, accumulates dgamma/dbeta, one workgroup per channel. */
export function batchNormBackwardKernel(): KernelSpec {
  return cached(`bn_bwd`, () => ({
    params: [["N", "u32"], ["C", "u32"], ["HW", "u32"], ["eps", "f32"]],
    bindings: [ro("X"), ro("Mean"), ro("Var"), ro("G"), ro("DY"), rw("DX"), rw("DG"), rw("DB")],
    body: `${CH_INDEX}
${CHANNEL_MAIN}
  let mean = Mean[c];
  let rs = 1.0 / sqrt(Var[c] + u.eps);
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var t = lid; t < cnt; t = t + 256u) {
    let i = chIdx(c, t);
    let dy = DY[i];
    sdy = sdy + dy;
    sdyx = sdyx + dy * (X[i] - mean) * rs;
  }
  sdy = wgSum(sdy, lid);
  sdyx = wgSum(sdyx, lid);
  if (lid == 0u) { DG[c] = DG[c] + sdyx; DB[c] = DB[c] + sdy; }
  let n = f32(cnt);
  let k = G[c] * rs;
  for (var t = lid; t < cnt; t = t + 256u) {
    let i = chIdx(c, t);
    let xh = (X[i] - mean) * rs;
    DX[i] = k * (DY[i] - sdy / n - xh * sdyx / n);
  }
}`,
  }));
}
