/**
 * Gradient suite: every op's forward against an f64 TypeScript reference (ref64.ts) and its
 * backward against central finite differences of that reference. Backend-independent:
 * `runOpSuite(label, factory)` registers one Deno test per op group for any backend.
 */
import type { Backend } from "../../engine/backend.ts";
import * as ops from "../../engine/ops/index.ts";
import { CounterRng } from "../../engine/rng.ts";
import { tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import * as R from "./ref64.ts";
import { assertClose, type BackendFactory } from "./suite_util.ts";
import { SeededRng } from "../../engine/rng.ts";

type F = Float64Array;

interface InputSpec {
  shape: number[];
  /** normal (default), positive (0.5..2), ids (i32 in [0, vocab)), probs (rows sum to 1), bits. */
  kind?: "normal" | "positive" | "ids" | "probs" | "bits" | "fixed";
  grad?: boolean;
  vocab?: number;
  values?: number[]; // for kind "fixed"
}

export interface OpCase {
  name: string;
  inputs: InputSpec[];
  run(xs: Tensor[]): Tensor;
  ref(xs: F[]): F;
  /** Tolerance on forward (default 1e-4) and gradient (default 5e-4) scaled errors. */
  tol?: number;
  gradTol?: number;
}

function makeInput(spec: InputSpec, rng: SeededRng): F {
  const n = R.numel(spec.shape);
  const x = new Float64Array(n);
  const kind = spec.kind ?? "normal";
  for (let i = 0; i < n; i++) {
    if (kind === "normal") x[i] = rng.normal();
    else if (kind === "positive") x[i] = 0.5 + 1.5 * rng.next();
    else if (kind === "ids") x[i] = rng.int(spec.vocab ?? 2);
    else if (kind === "bits") x[i] = rng.next() < 0.5 ? 1 : 0;
    else if (kind === "fixed") x[i] = spec.values![i];
  }
  if (kind === "probs") {
    const cols = spec.shape[spec.shape.length - 1];
    for (let r = 0; r < n / cols; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) {
        const v = rng.next() < 0.3 ? 0 : rng.next();
        x[r * cols + c] = v;
        s += v;
      }
      if (s === 0) x[r * cols] = s = 1;
      for (let c = 0; c < cols; c++) x[r * cols + c] /= s;
    }
  }
  return x;
}

/** Runs one case on a backend; throws on mismatch or leaked buffers. */
export async function checkCase(be: Backend, c: OpCase): Promise<void> {
  const rng = new SeededRng(c.name);
  const hostIn = c.inputs.map((s) => makeInput(s, rng));
  const before = be.stats().liveBuffers;
  const ts = c.inputs.map((s, i) => {
    const t = s.kind === "ids"
      ? tensor(be, Int32Array.from(hostIn[i]), s.shape, "i32")
      : tensor(be, Float32Array.from(hostIn[i]), s.shape);
    t.persist();
    t.requiresGrad = s.kind !== "ids" && s.grad !== false;
    return t;
  });
  const want = c.ref(hostIn);
  const proj = new Float64Array(want.length).map(() => rng.normal());
  const projT = tensor(be, Float32Array.from(proj), [want.length]).persist();
  const out = tidy(() => {
    const out = c.run(ts);
    const loss = ops.sum(ops.mul(ops.reshape(out, [out.numel]), projT));
    loss.backward();
    return out;
  });
  const got = await out.data();
  out.dispose();
  assertClose(`${c.name} forward`, got, want, c.tol ?? 1e-4);
  const L = (xs: F[]) => {
    const y = c.ref(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * proj[i];
    return s;
  };
  for (let i = 0; i < ts.length; i++) {
    if (!ts[i].requiresGrad) continue;
    const g = ts[i].grad;
    if (!g) throw new Error(`${c.name}: input ${i} got no gradient`);
    const got = await g.data();
    const num = new Float64Array(hostIn[i].length);
    const h = 1e-5;
    for (let j = 0; j < num.length; j++) {
      const xs = hostIn.map((x) => x.slice());
      xs[i][j] = hostIn[i][j] + h;
      const lp = L(xs);
      xs[i][j] = hostIn[i][j] - h;
      num[j] = (lp - L(xs)) / (2 * h);
    }
    assertClose(`${c.name} grad of input ${i}`, got, num, c.gradTol ?? 5e-4);
  }
  for (const t of ts) {
    t.grad?.dispose();
    t.dispose();
  }
  projT.dispose();
  const leaked = be.stats().liveBuffers - before;
  if (leaked !== 0) throw new Error(`${c.name}: ${leaked} buffers leaked`);
}

/** All op cases (small shapes). */
export function opCases(): OpCase[] {
  const cases: OpCase[] = [];
  const bin = (
    name: string,
    sa: number[],
    sb: number[],
    fn: (a: Tensor, b: Tensor) => Tensor,
    f: (x: number, y: number) => number,
    kindB: InputSpec["kind"] = "normal",
  ) =>
    cases.push({
      name,
      inputs: [{ shape: sa }, { shape: sb, kind: kindB }],
      run: ([a, b]) => fn(a, b),
      ref: ([a, b]) => R.binary(a, sa, b, sb, f).d,
    });
  bin("add", [2, 3, 4], [3, 1], ops.add, (x, y) => x + y);
  bin("add same", [2, 3], [2, 3], ops.add, (x, y) => x + y);
  bin("sub broadcast", [4], [2, 3, 4], ops.sub, (x, y) => x - y);
  bin("mul broadcast", [2, 1, 4], [3, 1], ops.mul, (x, y) => x * y);
  bin("div", [2, 3], [2, 3], ops.div, (x, y) => x / y, "positive");
  bin("div broadcast", [2, 3], [3], ops.div, (x, y) => x / y, "positive");

  const un = (
    name: string,
    fn: (a: Tensor) => Tensor,
    f: (x: number) => number,
    kind: InputSpec["kind"] = "normal",
  ) =>
    cases.push({
      name,
      inputs: [{ shape: [3, 5], kind }],
      run: ([a]) => fn(a),
      ref: ([a]) => R.map(a, f),
    });
  un("relu", ops.relu, (x) => Math.max(x, 0));
  un("gelu", ops.gelu, R.gelu);
  un("tanh", ops.tanh, Math.tanh);
  un("sigmoid", ops.sigmoid, R.sigmoid);
  un("exp", ops.exp, Math.exp);
  un("log", ops.log, Math.log, "positive");
  un("sqrt", ops.sqrt, Math.sqrt, "positive");
  un("rsqrt", ops.rsqrt, (x) => 1 / Math.sqrt(x), "positive");
  un("square", ops.square, (x) => x * x);
  un("neg", ops.neg, (x) => -x);
  un("scale", (a) => ops.scale(a, -2.5), (x) => -2.5 * x);
  un("addScalar", (a) => ops.addScalar(a, 0.75), (x) => x + 0.75);

  const mm = (
    name: string,
    sa: number[],
    sb: number[],
    tA: boolean,
    tB: boolean,
    p: { batch: number; M: number; N: number; K: number; bA?: boolean; bB?: boolean },
  ) =>
    cases.push({
      name,
      inputs: [{ shape: sa }, { shape: sb }],
      run: ([a, b]) => ops.matmul(a, b, tA, tB),
      ref: ([a, b]) => R.matmul(a, b, p.batch, p.M, p.N, p.K, tA, tB, p.bA, p.bB),
    });
  mm("matmul", [4, 3], [3, 5], false, false, { batch: 1, M: 4, N: 5, K: 3 });
  mm("matmul transA", [3, 4], [3, 5], true, false, { batch: 1, M: 4, N: 5, K: 3 });
  mm("matmul transB", [4, 3], [5, 3], false, true, { batch: 1, M: 4, N: 5, K: 3 });
  mm("matmul transA transB", [3, 4], [5, 3], true, true, { batch: 1, M: 4, N: 5, K: 3 });
  cases.push({
    name: "matmul alpha transB",
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }],
    run: ([a, b]) => ops.matmul(a, b, false, true, 0.35),
    ref: ([a, b]) => R.matmul(a, b, 2, 3, 5, 4, false, true).map((v) => 0.35 * v),
  });
  mm("bmm", [2, 3, 4], [2, 4, 5], false, false, { batch: 2, M: 3, N: 5, K: 4 });
  mm("bmm transB 4d", [2, 2, 3, 4], [2, 2, 5, 4], false, true, { batch: 4, M: 3, N: 5, K: 4 });
  mm("matmul folded batch", [2, 3, 4], [4, 5], false, false, { batch: 1, M: 6, N: 5, K: 4 });
  mm("matmul bcast B transA", [2, 4, 3], [4, 5], true, false, {
    batch: 2,
    M: 3,
    N: 5,
    K: 4,
    bB: true,
  });
  mm("matmul bcast A", [3, 4], [2, 4, 5], false, false, { batch: 2, M: 3, N: 5, K: 4, bA: true });

  cases.push({
    name: "linear",
    inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }],
    run: ([x, w, b]) => ops.linear(x, w, b),
    ref: ([x, w, b]) => {
      const y = R.matmul(x, w, 1, 6, 5, 4, false, true);
      return R.binary(y, [6, 5], b, [5], (p, q) => p + q).d;
    },
  });
  cases.push({
    name: "linearRows",
    inputs: [{ shape: [2, 3, 4] }, { shape: [6, 4] }, { shape: [6] }],
    run: ([x, w, b]) => ops.linearRows(x, w, b, 2, 3),
    ref: ([x, w, b]) => {
      const y = R.matmul(x, w.slice(8, 20), 1, 6, 3, 4, false, true);
      return R.binary(y, [6, 3], b.slice(2, 5), [3], (p, q) => p + q).d;
    },
  });
  cases.push({
    name: "linear no bias",
    inputs: [{ shape: [3, 4] }, { shape: [2, 4] }],
    run: ([x, w]) => ops.linear(x, w, null),
    ref: ([x, w]) => R.matmul(x, w, 1, 3, 2, 4, false, true),
  });

  const conv = (
    name: string,
    N: number,
    C: number,
    H: number,
    O: number,
    K: number,
    s: number,
    p: number,
    bias: boolean,
  ) =>
    cases.push({
      name,
      inputs: [{ shape: [N, C, H, H] }, { shape: [O, C, K, K] }, ...(bias ? [{ shape: [O] }] : [])],
      run: ([x, w, b]) => ops.conv2d(x, w, b ?? null, s, p),
      ref: ([x, w, b]) => R.conv2d(x, w, b ?? null, N, C, H, H, O, K, s, p),
    });
  conv("conv2d 1x1", 2, 3, 4, 2, 1, 1, 0, false);
  conv("conv2d 1x1 stride 2", 2, 3, 5, 2, 1, 2, 0, false);
  conv("conv2d 3x3 pad 1 bias", 2, 2, 5, 3, 3, 1, 1, true);
  conv("conv2d 3x3 stride 2", 1, 2, 6, 2, 3, 2, 1, false);
  conv("conv2d 7x7 stride 2 pad 3", 1, 2, 9, 2, 7, 2, 3, false);

  cases.push({
    name: "maxPool2d 3/2/1",
    inputs: [{ shape: [2, 2, 7, 7] }],
    run: ([x]) => ops.maxPool2d(x, 3, 2, 1),
    ref: ([x]) => R.maxPool(x, 4, 7, 7, 3, 2, 1),
  });
  cases.push({
    name: "globalAvgPool",
    inputs: [{ shape: [2, 3, 3, 2] }],
    run: ([x]) => ops.globalAvgPool(x),
    ref: ([x]) => {
      const y = new Float64Array(6);
      for (let i = 0; i < 6; i++) y[i] = R.sum(x.subarray(i * 6, i * 6 + 6)) / 6;
      return y;
    },
  });
  cases.push({
    name: "batchNorm2d train",
    inputs: [{ shape: [3, 2, 2, 3] }, { shape: [2] }, { shape: [2] }],
    run: ([x, g, b]) => {
      const rm = tensor(x.backend, new Float32Array(2)), rv = tensor(x.backend, [1, 1]);
      return ops.batchNorm2d(x, g, b, rm, rv, { training: true });
    },
    ref: ([x, g, b]) => R.batchNormTrain(x, g, b, 3, 2, 6, 1e-5),
    gradTol: 1e-3,
  });
  cases.push({
    name: "batchNorm2d eval",
    inputs: [
      { shape: [2, 2, 2, 2] },
      { shape: [2] },
      { shape: [2] },
      { shape: [2], grad: false },
      { shape: [2], kind: "positive", grad: false },
    ],
    run: ([x, g, b, rm, rv]) => ops.batchNorm2d(x, g, b, rm, rv, { training: false }),
    ref: ([x, g, b, rm, rv]) => R.batchNormEval(x, g, b, rm, rv, 2, 2, 4, 1e-5),
  });
  const reluOf = (y: F) => y.map((v) => Math.max(0, v));
  cases.push({
    name: "batchNorm2d train + fused relu",
    inputs: [{ shape: [3, 2, 2, 3] }, { shape: [2] }, { shape: [2] }],
    run: ([x, g, b]) => {
      const rm = tensor(x.backend, new Float32Array(2)), rv = tensor(x.backend, [1, 1]);
      return ops.batchNorm2d(x, g, b, rm, rv, { training: true, relu: true });
    },
    ref: ([x, g, b]) => reluOf(R.batchNormTrain(x, g, b, 3, 2, 6, 1e-5)),
    gradTol: 1e-3,
  });
  cases.push({
    name: "batchNorm2d eval + fused relu",
    inputs: [
      { shape: [2, 2, 2, 2] },
      { shape: [2] },
      { shape: [2] },
      { shape: [2], grad: false },
      { shape: [2], kind: "positive", grad: false },
    ],
    run: ([x, g, b, rm, rv]) => ops.batchNorm2d(x, g, b, rm, rv, { training: false, relu: true }),
    ref: ([x, g, b, rm, rv]) => reluOf(R.batchNormEval(x, g, b, rm, rv, 2, 2, 4, 1e-5)),
  });
  cases.push({
    name: "layerNorm",
    inputs: [{ shape: [2, 3, 6] }, { shape: [6] }, { shape: [6] }],
    run: ([x, g, b]) => ops.layerNorm(x, g, b, 1e-5),
    ref: ([x, g, b]) => R.layerNorm(x, g, b, 6, 6, 1e-5),
    gradTol: 1e-3,
  });
  cases.push({
    name: "softmax",
    inputs: [{ shape: [3, 5] }],
    run: ([x]) => ops.softmax(x),
    ref: ([x]) => R.softmax(x, 3, 5),
  });
  cases.push({
    name: "reshape",
    inputs: [{ shape: [2, 6] }],
    run: ([x]) => ops.reshape(x, [3, -1]),
    ref: ([x]) => x.slice(),
  });
  cases.push({
    name: "permute",
    inputs: [{ shape: [2, 3, 4] }],
    run: ([x]) => ops.permute(x, [2, 0, 1]),
    ref: ([x]) => R.permute(x, [2, 3, 4], [2, 0, 1]),
  });
  cases.push({
    name: "transpose",
    inputs: [{ shape: [2, 3, 4] }],
    run: ([x]) => ops.transpose(x, -1, -2),
    ref: ([x]) => R.permute(x, [2, 3, 4], [0, 2, 1]),
  });
  cases.push({
    name: "slice middle axis",
    inputs: [{ shape: [2, 5, 3] }],
    run: ([x]) => ops.slice(x, 1, 1, 4),
    ref: ([x]) => R.slice(x, [2, 5, 3], 1, 1, 4),
  });
  cases.push({
    name: "slice last axis",
    inputs: [{ shape: [3, 6] }],
    run: ([x]) => ops.slice(x, -1, 2, 6),
    ref: ([x]) => R.slice(x, [3, 6], 1, 2, 6),
  });
  cases.push({
    name: "concat",
    inputs: [{ shape: [2, 2, 3] }, { shape: [2, 1, 3] }, { shape: [2, 3, 3] }],
    run: (xs) => ops.concat(xs, 1),
    ref: (xs) => R.concat(xs, [[2, 2, 3], [2, 1, 3], [2, 3, 3]], 1),
  });
  cases.push({
    name: "concat axis 0",
    inputs: [{ shape: [1, 4] }, { shape: [2, 4] }],
    run: (xs) => ops.concat(xs, 0),
    ref: (xs) => R.concat(xs, [[1, 4], [2, 4]], 0),
  });
  cases.push({
    name: "embedding",
    inputs: [{ shape: [2, 3], kind: "ids", vocab: 5 }, { shape: [5, 4] }],
    run: ([ids, table]) => ops.embedding(ids, table),
    ref: ([ids, table]) => {
      const y = new Float64Array(6 * 4);
      ids.forEach((id, i) => y.set(table.subarray(id * 4, id * 4 + 4), i * 4));
      return y;
    },
  });
  cases.push({
    name: "dropout",
    inputs: [{ shape: [4, 8] }],
    run: ([x]) => ops.dropout(x, 0.3, true, new CounterRng(1234, 77)),
    ref: ([x]) => R.dropout(x, 0.3, 1234, 77),
  });
  const att = (name: string, T: number, S: number, causal: boolean, kpm: number[] | null) =>
    cases.push({
      name,
      inputs: [
        { shape: [2, 2, T, 4] },
        { shape: [2, 2, S, 4] },
        { shape: [2, 2, S, 4] },
        ...(kpm ? [{ shape: [2, S], kind: "fixed" as const, values: kpm, grad: false }] : []),
      ],
      run: ([q, k, v, m]) => ops.attention(q, k, v, { causal, keyPaddingMask: m ?? null }).out,
      ref: ([q, k, v, m]) => R.attention(q, k, v, 2, 2, T, S, 4, causal, m ?? null),
    });
  att("attention", 3, 5, false, null);
  att("attention key padding", 3, 5, false, [0, 0, 0, 1, 1, 0, 0, 0, 0, 1]);
  att("attention causal + key padding", 4, 4, true, [0, 0, 0, 1, 0, 0, 1, 1]);

  const targets = Int32Array.from([2, -100, 0, 5, 1]);
  cases.push({
    name: "crossEntropy ignore index",
    inputs: [{ shape: [5, 6] }],
    run: ([x]) => ops.crossEntropy(x, targets),
    ref: ([x]) => {
      const lp = R.logSoftmax(x, 5, 6);
      let s = 0, n = 0;
      targets.forEach((t, r) => {
        if (t !== -100) (s -= lp[r * 6 + t]), n++;
      });
      return Float64Array.of(s / n);
    },
  });
  cases.push({
    name: "crossEntropy sum",
    inputs: [{ shape: [2, 3, 4] }],
    run: ([x]) => ops.crossEntropy(x, Int32Array.from([0, 3, 2, 1, 1, 0]), { reduction: "sum" }),
    ref: ([x]) => {
      const lp = R.logSoftmax(x, 6, 4);
      return Float64Array.of(-[0, 3, 2, 1, 1, 0].reduce((s, t, r) => s + lp[r * 4 + t], 0));
    },
  });
  cases.push({
    name: "klDivergence batchmean",
    inputs: [{ shape: [3, 5] }, { shape: [3, 5], kind: "probs", grad: false }],
    run: ([x, t]) => ops.klDivergence(x, t, "batchmean"),
    ref: ([x, t]) => {
      const lp = R.logSoftmax(x, 3, 5);
      let s = 0;
      t.forEach((p, i) => (s += p > 0 ? p * (Math.log(p) - lp[i]) : 0));
      return Float64Array.of(s / 3);
    },
  });
  cases.push({
    name: "bceWithLogits",
    inputs: [{ shape: [3, 4] }, { shape: [3, 4], kind: "bits", grad: false }],
    run: ([x, t]) => ops.bceWithLogits(x, t),
    ref: ([x, t]) => {
      let s = 0;
      x.forEach((
        v,
        i,
      ) => (s -= t[i] * Math.log(R.sigmoid(v)) + (1 - t[i]) * Math.log(1 - R.sigmoid(v))));
      return Float64Array.of(s / x.length);
    },
  });
  cases.push({
    name: "sum",
    inputs: [{ shape: [2, 3] }],
    run: ([x]) => ops.sum(x),
    ref: ([x]) => Float64Array.of(R.sum(x)),
  });
  cases.push({
    name: "mean",
    inputs: [{ shape: [2, 3] }],
    run: ([x]) => ops.mean(x),
    ref: ([x]) => Float64Array.of(R.sum(x) / 6),
  });
  cases.push({
    name: "sumAxis",
    inputs: [{ shape: [2, 3, 4] }],
    run: ([x]) => ops.sumAxis(x, 1),
    ref: ([x]) => {
      const p = R.permute(x, [2, 3, 4], [0, 2, 1]);
      const y = new Float64Array(8);
      for (let i = 0; i < 8; i++) y[i] = R.sum(p.subarray(i * 3, i * 3 + 3));
      return y;
    },
  });
  cases.push({
    name: "meanAxis keepDim",
    inputs: [{ shape: [3, 4] }],
    run: ([x]) => ops.meanAxis(x, -1, true),
    ref: ([x]) =>
      Float64Array.from({ length: 3 }, (_, r) => R.sum(x.subarray(r * 4, r * 4 + 4)) / 4),
  });
  cases.push({
    name: "composite reuse (x used twice)",
    inputs: [{ shape: [2, 3] }],
    run: ([x]) => ops.mul(ops.add(x, x), ops.tanh(x)),
    ref: ([x]) => x.map((v) => 2 * v * Math.tanh(v)),
  });
  return cases;
}

/**
 * Registers the op gradient suite for a backend: one Deno test with a step per op.
 * `only` filters op names (substring match).
 */
export function runOpSuite(label: string, factory: BackendFactory, only?: string[]): void {
  Deno.test({
    name: `${label}: every op's forward vs f64 reference and backward vs finite differences`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      const be = await factory();
      try {
        for (const c of opCases()) {
          if (only && !only.some((o) => c.name.includes(o))) continue;
          await t.step(c.name, () => checkCase(be, c));
        }
      } finally {
        be.destroy();
      }
    },
  });
}
