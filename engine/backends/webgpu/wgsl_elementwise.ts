/**
 * Elementwise-family kernels: one generic shader per op family, specialized by op name (and by
 * rank for strided views). Every kernel here runs one thread per output element with 256-wide
 * workgroups on a 2-D grid (see FLAT_WG), so any element count fits the dispatch limits.
 */
import type { BinaryOp, UnaryOp } from "../../backend.ts";
import { FLAT_WG, type KernelSpec, type ParamField, ro, rw, WG_BUILTINS } from "./kernel.ts";

const memo = new Map<string, KernelSpec>();
function cached(key: string, make: () => Omit<KernelSpec, "key">): KernelSpec {
  let s = memo.get(key);
  if (!s) memo.set(key, s = { key, ...make() });
  return s;
}

/** Opening of a one-thread-per-element entry point; defines `i` and returns when i >= u.n. */
const ELEM_MAIN = `@compute @workgroup_size(256)
fn main(${WG_BUILTINS}) {
  let i = ${FLAT_WG} * 256u + lid;
  if (i >= u.n) { return; }`;

/**
 * Standard normal CDF Φ(x) = erfc(−x/√2)/2 with the Chebyshev erfc fit (fractional error
 * < 1.2e-7 for all arguments), evaluated on |z| so the tail keeps relative accuracy.
 */
export const WGSL_NORMAL_CDF = `
fn erfcPos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p);
}
fn normalCdf(x: f32) -> f32 {
  let z = abs(x) * 0.70710678118654752;
  let c = erfcPos(z);
  if (x >= 0.0) { return 1.0 - 0.5 * c; }
  return 0.5 * c;
}`;

const UNARY_EXPR: Record<UnaryOp, string> = {
  relu: `select(0.0, x, x > 0.0)`,
  gelu: `x * normalCdf(x)`,
  exp: `exp(x)`,
  log: `log(x)`,
  neg: `-x`,
  sqrt: `sqrt(x)`,
  rsqrt: `1.0 / sqrt(x)`,
  tanh: `tanh(clamp(x, -20.0, 20.0))`,
  sigmoid: `1.0 / (1.0 + exp(-x))`,
  abs: `abs(x)`,
  square: `x * x`,
};

/** f'(x) for every unary op. */
const UNARY_DERIV: Record<UnaryOp, string> = {
  relu: `select(0.0, 1.0, x > 0.0)`,
  gelu: `normalCdf(x) + x * exp(-0.5 * x * x) * 0.39894228040143268`,
  exp: `exp(x)`,
  log: `1.0 / x`,
  neg: `-1.0`,
  sqrt: `0.5 / sqrt(x)`,
  rsqrt: `-0.5 / (x * sqrt(x))`,
  tanh: `1.0 - tanh(clamp(x, -20.0, 20.0)) * tanh(clamp(x, -20.0, 20.0))`,
  sigmoid: `(1.0 / (1.0 + exp(-x))) * (1.0 - 1.0 / (1.0 + exp(-x)))`,
  abs: `sign(x)`,
  square: `2.0 * x`,
};

/** y[i] = f(x[i]). */
export function unaryKernel(op: UnaryOp): KernelSpec {
  return cached(`unary:${op}`, () => ({
    params: [["n", "u32"]],
    bindings: [ro("X"), rw("Y")],
    body: `${WGSL_NORMAL_CDF}
${ELEM_MAIN}
  let x = X[i];
  Y[i] = ${UNARY_EXPR[op]};
}`,
  }));
}

/** dx[i] = dy[i] · f'(x[i]). */
export function unaryBackwardKernel(op: UnaryOp): KernelSpec {
  return cached(`unary_bwd:${op}`, () => ({
    params: [["n", "u32"]],
    bindings: [ro("X"), ro("DY"), rw("DX")],
    body: `${WGSL_NORMAL_CDF}
${ELEM_MAIN}
  let x = X[i];
  DX[i] = DY[i] * (${UNARY_DERIV[op]});
}`,
  }));
}

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: `a + b`,
  sub: `a - b`,
  mul: `a * b`,
  div: `a / b`,
  max: `max(a, b)`,
  min: `min(a, b)`,
};

/** Fields shape_d / stride fields for a rank-`rank` strided walk over `views`. */
function stridedParams(rank: number, views: string[]): ParamField[] {
  const f: ParamField[] = [];
  for (let d = 0; d < rank; d++) {
    f.push([`s${d}`, "u32"]);
    for (const v of views) f.push([`${v}${d}`, "i32"]);
  }
  return f;
}

/** WGSL that decomposes `i` over the shape and accumulates offsets `off<v>` for each view. */
function stridedIndex(rank: number, views: string[]): string {
  const lines = [`var rem = i;`];
  for (const v of views) lines.push(`var off${v} = u.off${v.toUpperCase()};`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`{ let c = i32(rem % u.s${d}); rem = rem / u.s${d};`);
    for (const v of views) lines.push(`  off${v} = off${v} + c * u.${v}${d};`);
    lines.push(`}`);
  }
  return lines.join("\n  ");
}

/** out[i] = a[viewA(i)] op b[viewB(i)] for a rank-`rank` (coalesced) shape. */
export function binaryKernel(op: BinaryOp, rank: number): KernelSpec {
  return cached(`binary:${op}:${rank}`, () => ({
    params: [["n", "u32"], ["offA", "i32"], ["offB", "i32"], ...stridedParams(rank, ["a", "b"])],
    bindings: [ro("A"), ro("B"), rw("O")],
    body: `${ELEM_MAIN}
  ${stridedIndex(rank, ["a", "b"])}
  let a = A[offa];
  let b = B[offb];
  O[i] = ${BINARY_EXPR[op]};
}`,
  }));
}

/** y[offY + i] = x[view(i)], on raw 32-bit words (any dtype). */
export function copyStridedKernel(rank: number): KernelSpec {
  return cached(`copy_strided:${rank}`, () => ({
    params: [["n", "u32"], ["offX", "i32"], ["offY", "u32"], ...stridedParams(rank, ["x"])],
    bindings: [ro("X", "u32"), rw("Y", "u32")],
    body: `${ELEM_MAIN}
  ${stridedIndex(rank, ["x"])}
  Y[u.offY + i] = X[offx];
}`,
  }));
}

/** buf[off + i] = bits for i < n (raw words, so one kernel fills f32 and i32). */
export function fillKernel(): KernelSpec {
  return cached(`fill`, () => ({
    params: [["n", "u32"], ["off", "u32"], ["bits", "u32"]],
    bindings: [rw("O", "u32")],
    body: `${ELEM_MAIN}
  O[u.off + i] = u.bits;
}`,
  }));
}

/** y = alpha·x + beta·y (beta = 0 never reads y). */
export function axpbyKernel(): KernelSpec {
  return cached(`axpby`, () => ({
    params: [["n", "u32"], ["alpha", "f32"], ["beta", "f32"]],
    bindings: [ro("X"), rw("Y")],
    body: `${ELEM_MAIN}
  if (u.beta == 0.0) { Y[i] = u.alpha * X[i]; } else { Y[i] = u.alpha * X[i] + u.beta * Y[i]; }
}`,
  }));
}

/** x *= min(1, maxNorm / (sqrt(sumsq[0]) + 1e-6)). */
export function clipByNormKernel(): KernelSpec {
  return cached(`clip_by_norm`, () => ({
    params: [["n", "u32"], ["maxNorm", "f32"]],
    bindings: [ro("S"), rw("X")],
    body: `${ELEM_MAIN}
  let coef = u.maxNorm / (sqrt(S[0]) + 1e-6);
  if (coef < 1.0) { X[i] = X[i] * coef; }
}`,
  }));
}

/**
 * SGD with momentum and weight decay (PyTorch semantics without dampening); with `clip`, the
 * gradient is first scaled by min(1, maxNorm / (sqrt(S[0]) + 1e-6)) (clipByNorm fused in).
 */
export function sgdKernel(clip = false): KernelSpec {
  return cached(`sgd${clip ? ":clip" : ""}`, () => ({
    params: [["n", "u32"], ["lr", "f32"], ["momentum", "f32"], ["wd", "f32"], ["maxNorm", "f32"]],
    bindings: [rw("Wt"), ro("G"), rw("Mo"), ro("S")],
    body: `${ELEM_MAIN}
  var g = G[i];
  ${clip ? "let coef = u.maxNorm / (sqrt(S[0]) + 1e-6); if (coef < 1.0) { g = g * coef; }" : ""}
  let d = g + u.wd * Wt[i];
  let m = u.momentum * Mo[i] + d;
  Mo[i] = m;
  Wt[i] = Wt[i] - u.lr * m;
}`,
  }));
}

/** slow += alpha·(fast − slow); fast = slow. */
export function lookaheadKernel(): KernelSpec {
  return cached(`lookahead`, () => ({
    params: [["n", "u32"], ["alpha", "f32"]],
    bindings: [rw("F"), rw("S")],
    body: `${ELEM_MAIN}
  let s = S[i] + u.alpha * (F[i] - S[i]);
  S[i] = s;
  F[i] = s;
}`,
  }));
}

/**
 * Dropout mask with the same counter hash as engine/backend.ts: keep iff
 * (hash32(hseed ^ (offset + i)) >> 8) >= thresh, where thresh = ceil(p · 2^24) and
 * hseed = hash32(seed) come from the host; u32 arithmetic wraps exactly like Math.imul.
 */
export function dropoutKernel(): KernelSpec {
  return cached(`dropout`, () => ({
    params: [["n", "u32"], ["thresh", "u32"], ["hseed", "u32"], ["offset", "u32"], [
      "scale",
      "f32",
    ]],
    bindings: [rw("Mask")],
    body: `
fn hash32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  x = x ^ (x >> 16u);
  return x;
}
${ELEM_MAIN}
  let h = hash32(u.hseed ^ (u.offset + i)) >> 8u;
  Mask[i] = select(0.0, u.scale, h >= u.thresh);
}`,
  }));
}

/** out[i, d] = table[ids[i], d] (0 for out-of-range ids). n = rows·dim. */
export function embeddingKernel(): KernelSpec {
  return cached(`embedding`, () => ({
    params: [["n", "u32"], ["dim", "u32"], ["vocab", "u32"]],
    bindings: [ro("Ids", "i32"), ro("T"), rw("O")],
    body: `${ELEM_MAIN}
  let row = i / u.dim;
  let id = Ids[row];
  if (id < 0 || u32(id) >= u.vocab) { O[i] = 0.0; return; }
  O[i] = T[u32(id) * u.dim + i % u.dim];
}`,
  }));
}

/**
 * Embedding backward, pass 1 (one thread per position i): Link[i] = 1 if i is the first
 * occurrence of its id, else 0; Link[n + i] = next position with the same id, or −1.
 */
export function embeddingLinkKernel(): KernelSpec {
  return cached(`embedding_link`, () => ({
    params: [["n", "u32"]],
    bindings: [ro("Ids", "i32"), rw("Link", "i32")],
    body: `${ELEM_MAIN}
  let id = Ids[i];
  var first = 1;
  for (var j = 0u; j < i; j = j + 1u) { if (Ids[j] == id) { first = 0; break; } }
  var next = -1;
  for (var j = i + 1u; j < u.n; j = j + 1u) { if (Ids[j] == id) { next = i32(j); break; } }
  Link[i] = first;
  Link[u.n + i] = next;
}`,
  }));
}

/**
 * Embedding backward, pass 2 (one thread per (first-occurrence position, column)): walks the
 * chain of equal ids in position order, adding each dy row into dtable — the same order as a
 * sequential scatter-add, so the result is deterministic. n = rows·dim.
 */
export function embeddingScatterKernel(): KernelSpec {
  return cached(`embedding_scatter`, () => ({
    params: [["n", "u32"], ["dim", "u32"], ["vocab", "u32"], ["rows", "u32"]],
    bindings: [ro("Ids", "i32"), ro("Link", "i32"), ro("DY"), rw("DT")],
    body: `${ELEM_MAIN}
  let row = i / u.dim;
  let d = i % u.dim;
  if (Link[row] == 0) { return; }
  let id = Ids[row];
  if (id < 0 || u32(id) >= u.vocab) { return; }
  let t = u32(id) * u.dim + d;
  var acc = DT[t];
  var j = i32(row);
  loop {
    acc = acc + DY[u32(j) * u.dim + d];
    j = Link[u.rows + u32(j)];
    if (j < 0) { break; }
  }
  DT[t] = acc;
}`,
  }));
}

const POOL_PARAMS: ParamField[] = [
  ["n", "u32"],
  ["H", "u32"],
  ["W", "u32"],
  ["K", "u32"],
  ["stride", "u32"],
  ["pad", "u32"],
  ["OH", "u32"],
  ["OW", "u32"],
];

/** Max pool, one thread per output; argmax = first maximal index ih·W+iw in the plane. */
export function maxPoolKernel(): KernelSpec {
  return cached(`maxpool`, () => ({
    params: POOL_PARAMS,
    bindings: [ro("X"), rw("Y"), rw("AM", "i32")],
    body: `${ELEM_MAIN}
  let ohw = u.OH * u.OW;
  let plane = i / ohw;
  let j = i % ohw;
  let oh = j / u.OW;
  let ow = j % u.OW;
  let base = plane * u.H * u.W;
  var best = 0.0;
  var bi = -1;
  for (var kh = 0u; kh < u.K; kh = kh + 1u) {
    let ih = i32(oh * u.stride + kh) - i32(u.pad);
    if (ih < 0 || ih >= i32(u.H)) { continue; }
    for (var kw = 0u; kw < u.K; kw = kw + 1u) {
      let iw = i32(ow * u.stride + kw) - i32(u.pad);
      if (iw < 0 || iw >= i32(u.W)) { continue; }
      let idx = ih * i32(u.W) + iw;
      let v = X[base + u32(idx)];
      if (bi < 0 || v > best) { best = v; bi = idx; }
    }
  }
  Y[i] = best;
  AM[i] = bi;
}`,
  }));
}

/**
 * Max pool backward as a gather: one thread per input element sums dy over the windows that
 * picked it, in output order (deterministic, no atomics). n = planes·H·W.
 */
export function maxPoolBackwardKernel(): KernelSpec {
  return cached(`maxpool_bwd`, () => ({
    params: POOL_PARAMS,
    bindings: [ro("DY"), ro("AM", "i32"), rw("DX")],
    body: `${ELEM_MAIN}
  let hw = u.H * u.W;
  let plane = i / hw;
  let idx = i % hw;
  let ih = idx / u.W;
  let iw = idx % u.W;
  // windows oh with oh*s - pad <= ih <= oh*s - pad + K - 1
  let hi = i32(ih + u.pad);
  let wi = i32(iw + u.pad);
  let s = i32(u.stride);
  let k = i32(u.K);
  let ohLo = max(0, (hi - k + s) / s);
  let ohHi = min(i32(u.OH) - 1, hi / s);
  let owLo = max(0, (wi - k + s) / s);
  let owHi = min(i32(u.OW) - 1, wi / s);
  var acc = 0.0;
  let obase = plane * u.OH * u.OW;
  for (var oh = ohLo; oh <= ohHi; oh = oh + 1) {
    for (var ow = owLo; ow <= owHi; ow = ow + 1) {
      let o = obase + u32(oh) * u.OW + u32(ow);
      if (AM[o] == i32(idx)) { acc = acc + DY[o]; }
    }
  }
  DX[i] = acc;
}`,
  }));
}

/** y = (x − mean[c]) · gamma[c]/sqrt(var[c] + eps) + beta[c] over [N, C, HW]. */
export function batchNormApplyKernel(): KernelSpec {
  return cached(`bn_apply`, () => ({
    params: [["n", "u32"], ["C", "u32"], ["HW", "u32"], ["eps", "f32"]],
    bindings: [ro("X"), ro("Mean"), ro("Var"), ro("G"), ro("B"), rw("Y")],
    body: `${ELEM_MAIN}
  let c = (i / u.HW) % u.C;
  let sc = G[c] / sqrt(Var[c] + u.eps);
  Y[i] = (X[i] - Mean[c]) * sc + B[c];
}`,
  }));
}

/** y[offY + i] = to(x[i]) between f32 and f16 storage (round to nearest on the way down). */
export function castKernel(from: "f32" | "f16", to: "f32" | "f16"): KernelSpec {
  return cached(`cast:${from}:${to}`, () => ({
    params: [["n", "u32"], ["offY", "u32"]],
    bindings: [ro("X", from), rw("Y", to)],
    enables: ["f16"],
    body: `${ELEM_MAIN}
  Y[u.offY + i] = ${to}(X[i]);
}`,
  }));
}
