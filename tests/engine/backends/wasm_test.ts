/**
 * wasm backend vs the pure-TS reference backend, kernel by kernel, on small random shapes
 * (including sizes that are not multiples of the micro-tile, transposes, batches, alpha/beta),
 * 1 thread vs 3 threads, allocator behaviour, and the shared engine suites (op gradients,
 * leak check, PyTorch parity) run on this backend.
 */
import nodeAssert from "node:assert";
import {
  type Backend,
  type Buf,
  type Conv2dParams,
  UNARY_OPS,
  type UnaryOp,
} from "../../../engine/backend.ts";
import { RefBackend } from "../../../engine/backends/ref.ts";
import { createWasmBackend } from "../../../engine/backends/wasm.ts";
import { runLeakSuite } from "../leak_suite.ts";
import { runOpSuite } from "../op_suite.ts";
import { assertClose } from "../suite_util.ts";
import { runTorchParitySuite } from "../torch_parity_suite.ts";
import { SeededRng } from "../../../engine/rng.ts";
import { type Data, type Out, runOnBackends } from "./backend_runs.ts";

const wasmBuilt = await Deno.stat(new URL("../../../kernels/build/engine.wasm", import.meta.url))
  .then(() => true, () => false);
if (!wasmBuilt) console.log("wasm tests skipped: kernels/build/engine.wasm missing (make kernels)");
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: !wasmBuilt };

function randn(n: number, seed: number): Float32Array {
  const r = new SeededRng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}
function randInt(n: number, seed: number, hi: number): Int32Array {
  const r = new SeededRng(seed);
  return Int32Array.from({ length: n }, () => r.int(hi));
}

/** Runs `call` with the same inputs on each backend (outputs start at 0); outputs per backend. */
function run(
  backends: Backend[],
  inputs: Record<string, Data>,
  outputs: Record<string, Out>,
  call: (be: Backend, b: Record<string, Buf>) => void,
): Promise<Record<string, Data>[]> {
  return runOnBackends(backends, inputs, outputs, call, () => 0);
}

let wasm2: Promise<Backend> | null = null;
let wasm1: Promise<Backend> | null = null;
let wasm3: Promise<Backend> | null = null;
const ref = new RefBackend();
const getWasm = () => wasm2 ??= createWasmBackend({ threads: 2, initialMemoryBytes: 32 << 20 });

/** Compares wasm (2 threads) against ref within `tol` scaled error. */
async function check(
  what: string,
  inputs: Record<string, Data>,
  outputs: Record<string, Out>,
  call: (be: Backend, b: Record<string, Buf>) => void,
  tol = 1e-4,
): Promise<void> {
  if (Deno.env.get("WASM_TEST_DEBUG")) console.log("check", what);
  const [got, want] = await run([await getWasm(), ref], inputs, outputs, call);
  for (const k of Object.keys(outputs)) {
    if (got[k] instanceof Int32Array) {
      nodeAssert.deepStrictEqual(Array.from(got[k]), Array.from(want[k]), `${what}: ${k}`);
    } else assertClose(`${what}: ${k}`, got[k], want[k], tol);
  }
}

Deno.test(
  { name: "wasm: matmul vs ref (shapes, transposes, batches, alpha/beta)", ...opts },
  async () => {
    const cases: [number, number, number, number, boolean, boolean, number, number][] = [
      [1, 1, 1, 1, false, false, 1, 0],
      [1, 7, 9, 5, false, false, 1, 0],
      [1, 33, 65, 129, true, false, 0.5, 0],
      [1, 70, 40, 300, false, true, 1, 0.5],
      [3, 13, 17, 19, true, true, -1, 1],
      [2, 100, 130, 70, false, false, 1, 0.25],
      [4, 30, 30, 64, false, true, 0.125, 0],
      [1, 6, 300, 9, false, false, 1, 0],
      [1, 200, 8, 600, true, false, 1, 0],
      // Three k blocks (the micro-kernel adds into C), transposed B, k not a multiple of 4.
      [1, 50, 70, 1030, false, true, 1, 1],
      // >= 2^24 multiply-adds: B packed once and shared, threads claim blocks of C's rows.
      [1, 130, 260, 520, false, false, 1, 0.5],
      [1, 200, 100, 1100, true, true, 0.5, 1],
    ];
    let seed = 1;
    for (const [batch, M, N, K, transA, transB, alpha, beta] of cases) {
      const offA = 3, offB = 5, offC = 2;
      const a = randn(offA + batch * M * K, seed++);
      const b = randn(offB + batch * K * N, seed++);
      const c0 = randn(offC + batch * M * N, seed++);
      await check(`matmul ${[batch, M, N, K, transA, transB, alpha, beta]}`, { a, b }, {
        c: { n: c0.length, init: c0 },
      }, (be, x) =>
        be.matmul(x.a, x.b, x.c, {
          batch,
          M,
          N,
          K,
          transA,
          transB,
          strideA: M * K,
          strideB: K * N,
          strideC: M * N,
          offsetA: offA,
          offsetB: offB,
          offsetC: offC,
          alpha,
          beta,
        }));
    }
    // Broadcast A (strideA = 0) over a batch of B.
    const a = randn(12 * 20, 91), b = randn(3 * 20 * 11, 92);
    await check(
      "matmul broadcast A",
      { a, b },
      { c: { n: 3 * 12 * 11 } },
      (be, x) =>
        be.matmul(x.a, x.b, x.c, {
          batch: 3,
          M: 12,
          N: 11,
          K: 20,
          transA: false,
          transB: false,
          strideA: 0,
          strideB: 220,
          strideC: 132,
        }),
    );
  },
);

function convParams(
  N: number,
  C: number,
  H: number,
  W: number,
  O: number,
  K: number,
  stride: number,
  pad: number,
): Conv2dParams {
  const OH = Math.floor((H + 2 * pad - K) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - K) / stride) + 1;
  return { N, C, H, W, O, KH: K, KW: K, stride, pad, OH, OW };
}

Deno.test({ name: "wasm: conv2d forward/backward vs ref", ...opts }, async () => {
  // Output planes of at most 32 positions take the batch-column path, larger ones the per-image
  // paths; both are covered.
  const shapes = [
    convParams(2, 3, 5, 5, 5, 3, 1, 1), // column path (25 positions)
    convParams(2, 3, 9, 7, 5, 3, 1, 1),
    convParams(1, 4, 11, 11, 6, 3, 2, 1),
    convParams(6, 16, 4, 4, 24, 3, 1, 1), // column path, several images (deep-layer shape)
    convParams(5, 12, 3, 3, 10, 1, 1, 0), // column path, pointwise
    convParams(4, 8, 7, 7, 8, 3, 2, 1), // column path, strided (data gradient by col2im)
    convParams(3, 8, 20, 20, 16, 3, 1, 1), // 3 images on 2 threads: per-image threaded path
    convParams(4, 16, 10, 10, 8, 1, 1, 0), // pointwise
    convParams(3, 16, 10, 10, 24, 1, 1, 0), // pointwise, per-image path
    convParams(2, 3, 17, 17, 8, 7, 2, 3),
    convParams(2, 6, 8, 8, 4, 1, 2, 0), // strided 1x1 (downsample)
    convParams(1, 32, 14, 14, 32, 3, 1, 1),
    convParams(3, 64, 12, 20, 8, 3, 1, 1), // C*9 = 576: two k blocks, the second from tap (32, 0, 0)
  ];
  let seed = 100;
  for (const p of shapes) {
    const xs = p.N * p.C * p.H * p.W, ws = p.O * p.C * p.KH * p.KW, ys = p.N * p.O * p.OH * p.OW;
    const x = randn(xs, seed++), w = randn(ws, seed++), bias = randn(p.O, seed++);
    const dy = randn(ys, seed++), dw0 = randn(ws, seed++);
    const tag = JSON.stringify(p);
    await check(`conv2d ${tag}`, { x, w, bias }, { y: { n: ys } }, (be, b) => {
      be.conv2d({ x: b.x, w: b.w, bias: b.bias, y: b.y, geom: p });
    });
    await check(`conv2d no bias ${tag}`, { x, w }, { y: { n: ys } }, (be, b) => {
      be.conv2d({ x: b.x, w: b.w, bias: null, y: b.y, geom: p });
    });
    await check(`conv2dBackwardData ${tag}`, { dy, w }, { dx: { n: xs, init: randn(xs, 7) } }, (
      be,
      b,
    ) => be.conv2dBackwardData({ dy: b.dy, w: b.w, dx: b.dx, geom: p }));
    for (const acc of [false, true]) {
      await check(
        `conv2dBackwardFilter acc=${acc} ${tag}`,
        { x, dy },
        {
          dw: { n: ws, init: dw0 },
        },
        (be, b) =>
          be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dw, geom: p, accumulate: acc }),
      );
    }
  }
});

Deno.test(
  { name: "wasm: elementwise, reductions, optimizer kernels vs ref", ...opts },
  async () => {
    const n = 70_001; // large enough to run threaded, odd to exercise tails
    const x = randn(n, 1), y0 = randn(n, 2), pos = randn(n, 3).map((v) => Math.abs(v) + 0.1);
    const ops = UNARY_OPS;
    for (const op of ops) {
      const src = op === "log" || op === "sqrt" || op === "rsqrt" ? pos : x;
      await check(`unary ${op}`, { x: src }, { y: { n } }, (be, b) => be.unary(op, b.x, b.y, n));
    }
    for (const op of ["relu", "gelu", "tanh", "sigmoid"] as UnaryOp[]) {
      await check(
        `unaryBackward ${op}`,
        { x, dy: y0 },
        { dx: { n } },
        (be, b) => be.unaryBackward({ op, x: b.x, dy: b.dy, dx: b.dx, n }),
      );
    }
    await check(
      "axpby",
      { x },
      { y: { n, init: y0 } },
      (be, b) => be.axpby({ x: b.x, y: b.y, alpha: 0.5, beta: -2, n }),
    );
    await check(
      "axpby beta 0",
      { x },
      { y: { n, init: y0 } },
      (be, b) => be.axpby({ x: b.x, y: b.y, alpha: 3, beta: 0, n }),
    );
    // binary with broadcasting views: [4, 5, 6] op [1, 5, 1] and op [4, 1, 6] (permuted).
    const a = randn(200, 5), bb = randn(200, 6);
    for (const op of ["add", "sub", "mul", "div", "max", "min"] as const) {
      await check(
        `binary ${op} broadcast`,
        { a, b: bb },
        { o: { n: 120 } },
        (be, b) =>
          be.binary({
            op,
            a: b.a,
            va: { offset: 3, strides: [30, 6, 1] },
            b: b.b,
            vb: {
              offset: 7,
              strides: [0, 1, 0],
            },
            out: b.o,
            shape: [4, 5, 6],
          }),
      );
      await check(
        `binary ${op} scalar/transposed`,
        { a, b: bb },
        { o: { n: 120 } },
        (be, b) =>
          be.binary({
            op,
            a: b.a,
            va: { offset: 0, strides: [1, 0, 4] },
            b: b.b,
            vb: {
              offset: 11,
              strides: [0, 0, 0],
            },
            out: b.o,
            shape: [4, 5, 6],
          }),
      );
    }
    const big = randn(3 * 128 * 257, 8), big2 = randn(128 * 257, 9);
    await check(
      "binary contiguous threaded",
      { a: big, b: big2 },
      { o: { n: big.length } },
      (be, b) =>
        be.binary({
          op: "mul",
          a: b.a,
          va: { offset: 0, strides: [128 * 257, 257, 1] },
          b: b.b,
          vb: {
            offset: 0,
            strides: [0, 257, 1],
          },
          out: b.o,
          shape: [3, 128, 257],
        }),
    );
    await check(
      "copyStrided permute",
      { x: big },
      { y: { n: big.length + 4 } },
      (be, b) =>
        be.copyStrided({
          x: b.x,
          vx: { offset: 0, strides: [1, 3 * 257, 3] },
          y: b.y,
          yOffset: 4,
          shape: [3, 128, 257],
        }),
    );
    await check(
      "copyStrided slice",
      { x: big },
      { y: { n: 40 * 50 } },
      (be, b) =>
        be.copyStrided({
          x: b.x,
          vx: { offset: 257 * 5 + 2, strides: [257, 1] },
          y: b.y,
          yOffset: 0,
          shape: [40, 50],
        }),
    );
    for (const [o, r, i] of [[1, 1000, 1], [7, 13, 1], [5, 9, 33], [1, 64, 300], [300, 17, 3]]) {
      const src = randn(o * r * i, o + r + i);
      for (const acc of [false, true]) {
        await check(
          `reduceSum ${[o, r, i]} acc=${acc}`,
          { x: src },
          {
            y: { n: o * i, init: randn(o * i, 4) },
          },
          (be, b) =>
            be.reduceSum({ x: b.x, y: b.y, outer: o, reduce: r, inner: i, accumulate: acc }),
        );
      }
    }
    await check("sumSquares + clipByNorm", { x }, {
      s: { n: 1, init: new Float32Array([2]) },
      x2: { n },
    }, (
      be,
      b,
    ) => {
      be.sumSquares(b.x, n, b.s, true);
      be.copyStrided({ x: b.x, vx: { offset: 0, strides: [1] }, y: b.x2, yOffset: 0, shape: [n] });
      be.clipByNorm(b.x2, n, b.s, 10);
    });
    const g = randn(n, 10), m0 = randn(n, 11);
    await check(
      "sgdStep",
      { g },
      { w: { n, init: x }, m: { n, init: m0 } },
      (be, b) =>
        be.sgdStep({ w: b.w, g: b.g, m: b.m, n, lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }),
    );
    await check(
      "lookaheadSync",
      {},
      { f: { n, init: x }, s: { n, init: y0 } },
      (be, b) => be.lookaheadSync(b.f, b.s, n, 0.5),
    );
    await check(
      "dropoutMask",
      {},
      { m: { n } },
      (be, b) => be.dropoutMask({ mask: b.m, n, p: 0.1, seed: 1234, offset: 99 }),
      0,
    );
    await check(
      "dropoutMask big offset",
      {},
      { m: { n: 1000 } },
      (be, b) =>
        be.dropoutMask({ mask: b.m, n: 1000, p: 0.5, seed: 0xdeadbeef, offset: 4294967000 }),
      0,
    );
  },
);

Deno.test({ name: "wasm: normalization, pooling, embedding, losses vs ref", ...opts }, async () => {
  for (const [rows, cols] of [[3, 5], [200, 257], [30, 10000]]) {
    const x = randn(rows * cols, rows + cols), dy = randn(rows * cols, 3);
    await check(
      `softmax ${rows}x${cols}`,
      { x },
      { y: { n: rows * cols } },
      (be, b) => be.softmax(b.x, b.y, rows, cols),
    );
    await check(`softmaxBackward ${rows}x${cols}`, { x, dy }, {
      y: { n: rows * cols },
      dx: { n: rows * cols },
    }, (
      be,
      b,
    ) => {
      be.softmax(b.x, b.y, rows, cols);
      be.softmaxBackward({ y: b.y, dy: b.dy, dx: b.dx, rows, cols });
    });
    const gam = randn(cols, 4), bet = randn(cols, 5);
    await check(`layerNorm ${rows}x${cols}`, { x, gam, bet, dy }, {
      y: { n: rows * cols },
      mean: { n: rows },
      rstd: { n: rows },
      dx: { n: rows * cols },
      dg: { n: cols, init: randn(cols, 6) },
      db: { n: cols, init: randn(cols, 7) },
    }, (be, b) => {
      be.layerNorm({
        x: b.x,
        gamma: b.gam,
        beta: b.bet,
        y: b.y,
        mean: b.mean,
        rstd: b.rstd,
        rows,
        cols,
        eps: 1e-5,
      });
      be.layerNormBackward({
        x: b.x,
        gamma: b.gam,
        mean: b.mean,
        rstd: b.rstd,
        dy: b.dy,
        dx: b.dx,
        dgamma: b.dg,
        dbeta: b.db,
        rows,
        cols,
      });
    });
    const targets = randInt(rows, 9, cols);
    targets[0] = -100;
    await check(
      `crossEntropy ${rows}x${cols}`,
      { x, t: targets },
      {
        loss: { n: rows },
        d: { n: rows * cols },
      },
      (be, b) =>
        be.crossEntropy({
          logits: b.x,
          targets: b.t,
          loss: b.loss,
          dlogits: b.d,
          rows,
          cols,
          ignoreIndex: -100,
          scale: 1 / rows,
        }),
    );
  }
  for (const [N, C, HW] of [[2, 3, 5], [4, 64, 196], [1, 7, 1]]) {
    const x = randn(N * C * HW, N + C), dy = randn(N * C * HW, 2);
    const gam = randn(C, 3), bet = randn(C, 4);
    await check(`batchNorm ${[N, C, HW]}`, { x, gam, bet, dy }, {
      mean: { n: C },
      v: { n: C },
      y: { n: N * C * HW },
      dx: { n: N * C * HW },
      dg: { n: C, init: randn(C, 5) },
      db: { n: C, init: randn(C, 6) },
    }, (be, b) => {
      be.batchNormStats({ x: b.x, mean: b.mean, variance: b.v, N, C, HW });
      be.batchNormApply({
        x: b.x,
        mean: b.mean,
        variance: b.v,
        gamma: b.gam,
        beta: b.bet,
        y: b.y,
        N,
        C,
        HW,
        eps: 1e-5,
      });
      be.batchNormBackward({
        x: b.x,
        mean: b.mean,
        variance: b.v,
        gamma: b.gam,
        dy: b.dy,
        dx: b.dx,
        dgamma: b.dg,
        dbeta: b.db,
        N,
        C,
        HW,
        eps: 1e-5,
      });
    });
  }
  for (const [N, C, H, W] of [[2, 3, 8, 9], [4, 16, 28, 28]]) {
    const OH = Math.floor((H + 2 - 3) / 2) + 1, OW = Math.floor((W + 2 - 3) / 2) + 1;
    const p = { N, C, H, W, K: 3, stride: 2, pad: 1, OH, OW };
    const x = randn(N * C * H * W, H), dy = randn(N * C * OH * OW, W);
    await check(`maxPool ${[N, C, H, W]}`, { x, dy }, {
      y: { n: N * C * OH * OW },
      am: { n: N * C * OH * OW, dtype: "i32" },
      dx: { n: N * C * H * W },
    }, (be, b) => {
      be.maxPool2d(b.x, b.y, b.am, p);
      be.maxPool2dBackward(b.dy, b.am, b.dx, p);
    });
  }
  for (const [n, dim, vocab] of [[5, 3, 4], [480, 512, 1000]]) {
    const ids = randInt(n, n, vocab), table = randn(vocab * dim, 2), dy = randn(n * dim, 3);
    await check(`embedding ${[n, dim]}`, { ids, table, dy }, {
      out: { n: n * dim },
      dt: { n: vocab * dim, init: randn(vocab * dim, 4) },
    }, (be, b) => {
      be.embedding({ ids: b.ids, table: b.table, out: b.out, n, dim });
      be.embeddingBackward({ ids: b.ids, dy: b.dy, dtable: b.dt, n, dim });
    });
  }
});

Deno.test({ name: "wasm: 1 thread and 3 threads agree", ...opts }, async () => {
  wasm1 ??= createWasmBackend({ threads: 1, initialMemoryBytes: 32 << 20 });
  wasm3 ??= createWasmBackend({ threads: 3, initialMemoryBytes: 32 << 20 });
  const bes = [await wasm1, await wasm3];
  const M = 150, N = 170, K = 90;
  const a = randn(M * K, 1), b = randn(K * N, 2);
  const [r1, r3] = await run(
    bes,
    { a, b },
    { c: { n: M * N } },
    (be, x) =>
      be.matmul(x.a, x.b, x.c, {
        batch: 1,
        M,
        N,
        K,
        transA: false,
        transB: true,
        strideA: 0,
        strideB: 0,
        strideC: 0,
      }),
  );
  nodeAssert.deepStrictEqual(Array.from(r3.c), Array.from(r1.c), "gemm bits differ");
  for (const p of [convParams(3, 8, 16, 16, 12, 3, 1, 1), convParams(7, 8, 12, 12, 12, 3, 2, 1)]) {
    const x = randn(p.N * p.C * p.H * p.W, 3), w = randn(p.O * p.C * 9, 4);
    const dy = randn(p.N * p.O * p.OH * p.OW, 5);
    const [c1, c3] = await run(bes, { x, w, dy }, {
      y: { n: dy.length },
      dx: { n: x.length },
      dw: { n: w.length },
    }, (be, b) => {
      be.conv2d({ x: b.x, w: b.w, bias: null, y: b.y, geom: p });
      be.conv2dBackwardData({ dy: b.dy, w: b.w, dx: b.dx, geom: p });
      be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dw, geom: p, accumulate: false });
    });
    for (const k of ["y", "dx", "dw"]) assertClose(`conv ${k} 1 vs 3 threads`, c3[k], c1[k], 1e-5);
  }
  const n = 100_003, x = randn(n, 9);
  const [u1, u3] = await run(bes, { x }, { y: { n }, s: { n: 1 } }, (be, b) => {
    be.unary("gelu", b.x, b.y, n);
    be.sumSquares(b.x, n, b.s, false);
  });
  nodeAssert.deepStrictEqual(Array.from(u3.y), Array.from(u1.y));
  assertClose("sumSquares 1 vs 3 threads", u3.s, u1.s, 1e-6);
});

Deno.test(
  { name: "wasm: allocator reuses blocks, grows memory, rejects misuse", ...opts },
  async () => {
    const be = await createWasmBackend({ threads: 2, initialMemoryBytes: 8 << 20 });
    try {
      const sizes = [1, 17, 1000, 4097, 65_536, 300_000];
      const cycle = () => {
        const bufs = sizes.map((n) => be.alloc(n));
        for (const b of bufs) be.fill(b, 1);
        for (const b of bufs) be.free(b);
      };
      cycle();
      const s0 = be.stats();
      for (let i = 0; i < 200; i++) cycle();
      const s1 = be.stats();
      nodeAssert.deepStrictEqual(s1, s0, "stats changed over alloc/free cycles");
      nodeAssert.strictEqual(s1.liveBuffers, 0);
      // Larger than the initial memory: forces a grow; data written before the grow survives.
      const keep = be.alloc(1000);
      be.write(keep, randn(1000, 1));
      const huge = be.alloc(6 << 20); // 24 MiB
      be.fill(huge, 2.5);
      const h = await be.read(huge);
      nodeAssert.strictEqual(h[h.length - 1], 2.5);
      assertClose("data kept across memory.grow", await be.read(keep), randn(1000, 1), 0);
      nodeAssert.strictEqual(be.stats().liveBuffers, 2);
      be.free(huge);
      be.free(keep);
      nodeAssert.throws(() => be.free(keep), /freed or foreign/);
      const small = be.alloc(4);
      nodeAssert.throws(() => be.write(small, new Float32Array(5)), /outside buffer/);
      nodeAssert.throws(
        () =>
          be.matmul(small, small, small, {
            batch: 1,
            M: 2,
            N: 2,
            K: 3,
            transA: false,
            transB: false,
            strideA: 0,
            strideB: 0,
            strideC: 0,
          }),
        /matmul A/,
      );
      be.free(small);
      nodeAssert.strictEqual(be.stats().liveBytes, 0);
    } finally {
      be.destroy();
    }
  },
);

Deno.test({ name: "wasm: teardown of shared test backends", ...opts }, async () => {
  for (const p of [wasm1, wasm2, wasm3]) if (p) (await p).destroy();
});

if (wasmBuilt) {
  const factory = () => createWasmBackend({ threads: 2 });
  runOpSuite("wasm", factory);
  runLeakSuite("wasm", factory);
  runTorchParitySuite("wasm", factory);
}
