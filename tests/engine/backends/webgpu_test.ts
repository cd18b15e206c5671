/**
 * webgpu backend vs the reference backend, kernel by kernel, on small random shapes (runs on
 * llvmpipe in CI). Skipped with a message when navigator.gpu has no adapter.
 */
import nodeAssert from "node:assert";
import { type Backend, type Buf, counterUniform, UNARY_OPS } from "../../../engine/backend.ts";
import { RefBackend } from "../../../engine/backends/ref.ts";
import {
  createWebGpuBackend,
  probeWebGpu,
  type WebGpuBackend,
} from "../../../engine/backends/webgpu.ts";
import { runLeakCheck, runLeakSuite } from "../leak_suite.ts";
import { runOpSuite } from "../op_suite.ts";
import { runTorchParitySuite } from "../torch_parity_suite.ts";
import { assertClose, gpuChecker, randInt, randn } from "./webgpu_util.ts";

function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}
function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const probe = await probeWebGpu();
const ignore = !probe.available;
if (ignore) console.log(`webgpu tests skipped: ${probe.reason ?? "no adapter"}`);
else console.log(`webgpu adapter: ${probe.adapterName} (fallback: ${probe.isFallback})`);

const opts = { sanitizeOps: false, sanitizeResources: false, ignore };

let gpuP: Promise<WebGpuBackend> | null = null;
let gpuAltP: Promise<WebGpuBackend> | null = null;
let useAlt = false;
/** The backend under test; `useAlt` selects one with the other GEMM tiling family. */
function gpu(): Promise<WebGpuBackend> {
  if (useAlt) {
    return gpuAltP ??= probe.isFallback
      ? createWebGpuBackend({ gemmProfile: "gpu" })
      : createWebGpuBackend({ gemmProfile: "cpu" });
  }
  return gpuP ??= createWebGpuBackend();
}

/**
 * Runs `fn` once with the default backend and once with the other GEMM tiling family. Mesa's GL
 * llvmpipe takes minutes to build the shared-memory (GPU) GEMM shaders, so under
 * DENO_WEBGPU_BACKEND=gl only the default family runs.
 */
async function bothTilings(fn: () => Promise<void>): Promise<void> {
  await fn();
  if (probe.isFallback && Deno.env.get("DENO_WEBGPU_BACKEND") === "gl") return;
  useAlt = true;
  try {
    await fn();
  } finally {
    useAlt = false;
  }
}

const { check } = gpuChecker(gpu);

Deno.test({
  name: "webgpu: probe reports the adapter",
  ...opts,
  fn() {
    assert(probe.adapterName && probe.adapterName.length > 0);
    assertEquals(typeof probe.isFallback, "boolean");
  },
});

Deno.test({
  name: "webgpu: matmul (trans, batch, strides, offsets, alpha/beta, tile sizes)",
  ...opts,
  fn: () =>
    bothTilings(async () => {
      const cases = [
        { M: 5, N: 7, K: 3, batch: 1 },
        { M: 33, N: 65, K: 17, batch: 2 },
        { M: 70, N: 66, K: 40, batch: 2 },
        { M: 1, N: 9, K: 100, batch: 3 },
      ];
      let seed = 1;
      for (const c of cases) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const { M, N, K, batch } = c;
            const offA = 3, offB = 5, offC = 2;
            const broadcastA = M === 1;
            const strideA = broadcastA ? 0 : M * K, strideB = K * N + 1, strideC = M * N + 4;
            const A = randn(offA + M * K * (broadcastA ? 1 : batch), seed++);
            const B = randn(offB + strideB * batch, seed++);
            const C0 = randn(offC + strideC * batch, seed++);
            const mm = (be: Backend, a: Buf, b: Buf, c: Buf, alpha: number, beta: number) =>
              be.matmul(a, b, c, {
                batch,
                M,
                N,
                K,
                transA,
                transB,
                strideA,
                strideB,
                strideC,
                offsetA: offA,
                offsetB: offB,
                offsetC: offC,
                alpha,
                beta,
              });
            await check(
              `matmul ${JSON.stringify(c)} tA=${transA} tB=${transB}`,
              { A, B },
              { C: { n: C0.length, init: C0 }, C2: { n: C0.length, init: C0 } },
              (be, b) => {
                mm(be, b.A, b.B, b.C, 1, 0);
                mm(be, b.A, b.B, b.C2, 0.5, 0.75);
              },
            );
          }
        }
      }
    }),
});

const convCases = [
  { N: 2, C: 3, H: 9, W: 8, O: 5, KH: 1, KW: 1, stride: 1, pad: 0 },
  { N: 2, C: 4, H: 9, W: 9, O: 6, KH: 3, KW: 3, stride: 1, pad: 1 },
  { N: 1, C: 3, H: 10, W: 11, O: 4, KH: 3, KW: 3, stride: 2, pad: 1 },
  { N: 2, C: 3, H: 15, W: 15, O: 70, KH: 7, KW: 7, stride: 2, pad: 3 },
  { N: 1, C: 2, H: 7, W: 7, O: 3, KH: 1, KW: 1, stride: 2, pad: 0 },
];

function convGeom(c: typeof convCases[number]) {
  const OH = Math.floor((c.H + 2 * c.pad - c.KH) / c.stride) + 1;
  const OW = Math.floor((c.W + 2 * c.pad - c.KW) / c.stride) + 1;
  return { ...c, OH, OW };
}

Deno.test({
  name: "webgpu: conv2d forward / backward data / backward filter",
  ...opts,
  fn: () =>
    bothTilings(async () => {
      let seed = 100;
      for (const c0 of convCases) {
        const p = convGeom(c0);
        const x = randn(p.N * p.C * p.H * p.W, seed++);
        const w = randn(p.O * p.C * p.KH * p.KW, seed++);
        const bias = randn(p.O, seed++);
        const dy = randn(p.N * p.O * p.OH * p.OW, seed++);
        const dw0 = randn(w.length, seed++);
        const tag = JSON.stringify(c0);
        await check(`conv2d ${tag}`, { x, w, bias }, {
          y: { n: dy.length },
          y2: { n: dy.length },
        }, (be, b) => {
          be.conv2d({ x: b.x, w: b.w, bias: b.bias, y: b.y, geom: p });
          be.conv2d({ x: b.x, w: b.w, bias: null, y: b.y2, geom: p });
        });
        await check(`conv2dBackwardData ${tag}`, { dy, w }, { dx: { n: x.length } }, (be, b) => {
          be.conv2dBackwardData({ dy: b.dy, w: b.w, dx: b.dx, geom: p });
        });
        await check(`conv2dBackwardFilter ${tag}`, { x, dy }, {
          dw: { n: w.length },
          dwAcc: { n: w.length, init: dw0 },
        }, (be, b) => {
          be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dw, geom: p, accumulate: false });
          be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dwAcc, geom: p, accumulate: true });
        });
      }
    }),
});

Deno.test({
  name: "webgpu: conv2dBackwardFilter with split-K (long reduction, few tiles)",
  ...opts,
  fn: () =>
    bothTilings(async () => {
      const p = convGeom({ N: 4, C: 2, H: 32, W: 32, O: 3, KH: 3, KW: 3, stride: 1, pad: 1 });
      const x = randn(p.N * p.C * p.H * p.W, 7);
      const dy = randn(p.N * p.O * p.OH * p.OW, 8);
      const dw0 = randn(p.O * p.C * 9, 9);
      await check("conv2dBackwardFilter split", { x, dy }, {
        dw: { n: dw0.length },
        dwAcc: { n: dw0.length, init: dw0 },
      }, (be, b) => {
        be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dw, geom: p, accumulate: false });
        be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dwAcc, geom: p, accumulate: true });
      });
    }),
});

const UNARY = UNARY_OPS;

Deno.test({
  name: "webgpu: unary and unaryBackward for every op",
  ...opts,
  async fn() {
    const n = 777;
    for (const op of UNARY) {
      const positive = op === "log" || op === "sqrt" || op === "rsqrt";
      const x = positive ? randn(n, 11, 0.05, 4) : randn(n, 11, -6, 6);
      const dy = randn(n, 12);
      await check(`unary ${op}`, { x, dy }, { y: { n }, dx: { n } }, (be, b) => {
        be.unary(op, b.x, b.y, n);
        be.unaryBackward({ op, x: b.x, dy: b.dy, dx: b.dx, n });
      });
    }
  },
});

Deno.test({
  name: "webgpu: binary with broadcasting and strided views",
  ...opts,
  async fn() {
    const a = randn(64, 21, 0.5, 2);
    const b = randn(64, 22, 0.5, 2);
    const views = [
      // shape, viewA, viewB
      {
        shape: [2, 3, 4],
        va: { offset: 0, strides: [12, 4, 1] },
        vb: { offset: 1, strides: [0, 1, 0] },
      },
      { shape: [4, 3], va: { offset: 2, strides: [1, 4] }, vb: { offset: 0, strides: [3, 1] } },
      { shape: [5], va: { offset: 0, strides: [1] }, vb: { offset: 7, strides: [0] } },
      {
        shape: [2, 1, 2, 2, 2, 2],
        va: { offset: 0, strides: [32, 0, 2, 16, 1, 4] },
        vb: { offset: 3, strides: [1, 5, 0, 2, 8, 0] },
      },
    ];
    for (const op of ["add", "sub", "mul", "div", "max", "min"] as const) {
      for (const v of views) {
        const n = v.shape.reduce((s, x) => s * x, 1);
        await check(`binary ${op} ${JSON.stringify(v.shape)}`, { a, b }, { o: { n } }, (be, bf) => {
          be.binary({ op, a: bf.a, va: v.va, b: bf.b, vb: v.vb, out: bf.o, shape: v.shape });
        });
      }
    }
  },
});

Deno.test({
  name: "webgpu: in-place binary/axpby (output aliases an input)",
  ...opts,
  async fn() {
    const n = 300;
    const x = randn(n, 31);
    await check("inplace", { x }, { y: { n, init: randn(n, 32) } }, (be, b) => {
      const v = { offset: 0, strides: [1] };
      be.binary({ op: "add", a: b.y, va: v, b: b.x, vb: v, out: b.y, shape: [n] });
      be.binary({ op: "mul", a: b.y, va: v, b: b.y, vb: v, out: b.y, shape: [n] });
      be.axpby({ x: b.y, y: b.y, alpha: 0.5, beta: 0.25, n });
    });
  },
});

Deno.test({
  name: "webgpu: axpby, copyStrided (f32 and i32), fill, write at offset",
  ...opts,
  async fn() {
    const n = 513;
    const x = randn(n, 41);
    await check("axpby", { x }, { y0: { n }, y1: { n, init: randn(n, 42) } }, (be, b) => {
      be.axpby({ x: b.x, y: b.y0, alpha: 2, beta: 0, n });
      be.axpby({ x: b.x, y: b.y1, alpha: -0.5, beta: 1.5, n });
    });
    const xi = randInt(60, 43, 1000);
    await check(
      "copyStrided",
      { x, xi },
      {
        t: { n: 12 * 5 },
        s: { n: 20 },
        c: { n: 300 },
        ti: { n: 60, dtype: "i32" },
        f: { n: 50 },
        fi: { n: 9, dtype: "i32" },
        w: { n: 10 },
      },
      (be, b) => {
        be.copyStrided({
          x: b.x,
          vx: { offset: 1, strides: [1, 12] },
          y: b.t,
          yOffset: 0,
          shape: [12, 5],
        }); // transpose
        be.copyStrided({
          x: b.x,
          vx: { offset: 3, strides: [10, 2] },
          y: b.s,
          yOffset: 0,
          shape: [4, 5],
        }); // slice
        be.copyStrided({
          x: b.x,
          vx: { offset: 0, strides: [1] },
          y: b.c,
          yOffset: 0,
          shape: [150],
        }); // concat part 1
        be.copyStrided({
          x: b.x,
          vx: { offset: 200, strides: [1] },
          y: b.c,
          yOffset: 150,
          shape: [150],
        }); // part 2
        be.copyStrided({
          x: b.xi,
          vx: { offset: 0, strides: [1, 3, 12] },
          y: b.ti,
          yOffset: 0,
          shape: [3, 4, 5],
        });
        be.fill(b.f, 1.5);
        be.fill(b.f, -2, 10, 7);
        be.fill(b.fi, 42);
        be.fill(b.w, 0);
        be.write(b.w, new Float32Array([1, 2, 3]), 4);
      },
      1e-4,
      ["ti", "fi", "f", "w"],
    );
  },
});

Deno.test({
  name: "webgpu: reduceSum, sumSquares (one- and two-stage), clipByNorm",
  ...opts,
  async fn() {
    const x = randn(4 * 37 * 9, 51);
    await check("reduceSum", { x }, {
      rows: { n: 4 * 9 * 37 / 37 * 1 * 37 / 37 * 4 / 4, init: randn(36, 52) },
      inner: { n: 4 * 9 },
      innerAcc: { n: 4 * 9, init: randn(36, 53) },
      all: { n: 1 },
    }, (be, b) => {
      be.reduceSum({ x: b.x, y: b.rows, outer: 36, reduce: 37, inner: 1, accumulate: true });
      be.reduceSum({ x: b.x, y: b.inner, outer: 4, reduce: 37, inner: 9, accumulate: false });
      be.reduceSum({ x: b.x, y: b.innerAcc, outer: 4, reduce: 37, inner: 9, accumulate: true });
      be.reduceSum({ x: b.x, y: b.all, outer: 1, reduce: 4 * 37 * 9, inner: 1, accumulate: false });
    });
    const big = randn(70001, 54);
    await check("sumSquares", { x, big }, {
      s: { n: 1 },
      sAcc: { n: 1, init: new Float32Array([2.5]) },
      sBig: { n: 1 },
    }, (be, b) => {
      be.sumSquares(b.x, x.length, b.s, false);
      be.sumSquares(b.x, x.length, b.sAcc, true);
      be.sumSquares(b.big, big.length, b.sBig, false);
    });
    await check("clipByNorm", { x }, {
      y: { n: x.length, init: x },
      z: { n: 5, init: x.slice(0, 5) },
      s: { n: 1 },
    }, (be, b) => {
      be.sumSquares(b.y, x.length, b.s, false);
      be.clipByNorm(b.y, x.length, b.s, 3); // clips
      be.sumSquares(b.z, 5, b.s, false);
      be.clipByNorm(b.z, 5, b.s, 100); // no-op
    });
  },
});

Deno.test({
  name: "webgpu: softmax, softmaxBackward, crossEntropy with ignore index",
  ...opts,
  async fn() {
    for (const [rows, cols] of [[3, 5], [4, 300], [2, 1000]]) {
      const x = randn(rows * cols, rows + cols, -4, 4);
      const dy = randn(rows * cols, 61);
      await check(`softmax ${rows}x${cols}`, { x, dy }, {
        y: { n: rows * cols },
        dx: { n: rows * cols },
      }, (be, b) => {
        be.softmax(b.x, b.y, rows, cols);
        be.softmaxBackward({ y: b.y, dy: b.dy, dx: b.dx, rows, cols });
      });
      const t = randInt(rows, 62, cols);
      t[1] = -100;
      await check(
        `crossEntropy ${rows}x${cols}`,
        { x, t },
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
            scale: 0.25,
          }),
      );
    }
  },
});

Deno.test({
  name: "webgpu: layerNorm and layerNormBackward",
  ...opts,
  async fn() {
    for (const [rows, cols] of [[5, 7], [6, 512]]) {
      const x = randn(rows * cols, 71, -2, 3);
      const g = randn(cols, 72), bt = randn(cols, 73), dy = randn(rows * cols, 74);
      await check(`layerNorm ${rows}x${cols}`, { x, g, bt, dy }, {
        y: { n: rows * cols },
        mean: { n: rows },
        rstd: { n: rows },
        dx: { n: rows * cols },
        dg: { n: cols, init: randn(cols, 75) },
        db: { n: cols, init: randn(cols, 76) },
      }, (be, b) => {
        be.layerNorm({
          x: b.x,
          gamma: b.g,
          beta: b.bt,
          y: b.y,
          mean: b.mean,
          rstd: b.rstd,
          rows,
          cols,
          eps: 1e-5,
        });
        be.layerNormBackward({
          x: b.x,
          gamma: b.g,
          mean: b.mean,
          rstd: b.rstd,
          dy: b.dy,
          dx: b.dx,
          dgamma: b.dg,
          dbeta: b.db,
          rows,
          cols,
        });
      }, 2e-4);
    }
  },
});

Deno.test({
  name: "webgpu: batchNorm stats / apply / backward",
  ...opts,
  async fn() {
    const [N, C, HW] = [3, 5, 49];
    const x = randn(N * C * HW, 81, -1, 2), g = randn(C, 82), bt = randn(C, 83);
    const dy = randn(N * C * HW, 84);
    await check("batchNorm", { x, g, bt, dy }, {
      mean: { n: C },
      v: { n: C },
      y: { n: N * C * HW },
      dx: { n: N * C * HW },
      dg: { n: C, init: randn(C, 85) },
      db: { n: C, init: randn(C, 86) },
    }, (be, b) => {
      be.batchNormStats({ x: b.x, mean: b.mean, variance: b.v, N, C, HW });
      be.batchNormApply({
        x: b.x,
        mean: b.mean,
        variance: b.v,
        gamma: b.g,
        beta: b.bt,
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
        gamma: b.g,
        dy: b.dy,
        dx: b.dx,
        dgamma: b.dg,
        dbeta: b.db,
        N,
        C,
        HW,
        eps: 1e-5,
      });
    }, 2e-4);
  },
});

Deno.test({
  name: "webgpu: maxPool2d (3x3/2 pad 1) and backward, argmax exact",
  ...opts,
  async fn() {
    for (const [H, W] of [[9, 9], [8, 11]]) {
      const p = { N: 2, C: 3, H, W, K: 3, stride: 2, pad: 1, OH: 0, OW: 0 };
      p.OH = Math.floor((H + 2 - 3) / 2) + 1;
      p.OW = Math.floor((W + 2 - 3) / 2) + 1;
      const x = randn(p.N * p.C * H * W, 91);
      // ties: quantize some values so equal maxima occur
      for (let i = 0; i < x.length; i += 3) x[i] = 0.5;
      const dy = randn(p.N * p.C * p.OH * p.OW, 92);
      await check(
        `maxPool ${H}x${W}`,
        { x, dy },
        {
          y: { n: dy.length },
          am: { n: dy.length, dtype: "i32" },
          dx: { n: x.length },
        },
        (be, b) => {
          be.maxPool2d(b.x, b.y, b.am, p);
          be.maxPool2dBackward(b.dy, b.am, b.dx, p);
        },
        1e-4,
        ["y", "am", "dx"],
      );
    }
  },
});

Deno.test({
  name: "webgpu: embedding and deterministic embeddingBackward with repeated ids",
  ...opts,
  async fn() {
    const [vocab, dim, n] = [11, 24, 40];
    const ids = randInt(n, 101, vocab);
    const table = randn(vocab * dim, 102), dy = randn(n * dim, 103);
    await check(
      "embedding",
      { ids, table, dy },
      {
        out: { n: n * dim },
        dt: { n: vocab * dim, init: randn(vocab * dim, 104) },
      },
      (be, b) => {
        be.embedding({ ids: b.ids, table: b.table, out: b.out, n, dim });
        be.embeddingBackward({ ids: b.ids, dy: b.dy, dtable: b.dt, n, dim });
      },
      1e-4,
      ["out", "dt"],
    );
  },
});

Deno.test({
  name: "webgpu: dropout mask bit-identical to counterUniform",
  ...opts,
  async fn() {
    const n = 4099;
    for (const [p, seed, offset] of [[0.1, 7, 0], [0.5, 123456789, 4294967000], [0.9, 0, 31]]) {
      await check(
        `dropout p=${p}`,
        {},
        { m: { n } },
        (be, b) => {
          be.dropoutMask({ mask: b.m, n, p, seed, offset });
        },
        0,
        ["m"],
      );
      const g = await gpu();
      const m = g.alloc(n);
      g.dropoutMask({ mask: m, n, p, seed, offset });
      const got = await g.read(m);
      g.free(m);
      for (let i = 0; i < n; i++) {
        const want = counterUniform(seed, offset + i) >= p ? Math.fround(1 / (1 - p)) : 0;
        if (got[i] !== want) throw new Error(`dropout[${i}] = ${got[i]}, want ${want}`);
      }
    }
  },
});

Deno.test({
  name: "webgpu: sgdStep and lookaheadSync",
  ...opts,
  async fn() {
    const n = 1000;
    const g = randn(n, 111);
    await check("sgd+lookahead", { g }, {
      w: { n, init: randn(n, 112) },
      m: { n, init: randn(n, 113) },
      slow: { n, init: randn(n, 114) },
    }, (be, b) => {
      be.sgdStep({ w: b.w, g: b.g, m: b.m, n, lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
      be.sgdStep({ w: b.w, g: b.g, m: b.m, n, lr: 0.05, momentum: 0.9, weightDecay: 0 });
      be.lookaheadSync(b.w, b.slow, n, 0.5);
    });
  },
});

Deno.test({
  name: "webgpu: f16 storage for matmul operands (shader-f16 adapters)",
  ...opts,
  async fn() {
    const g = await gpu();
    if (!g.supportsF16) {
      console.log("f16 matmul test skipped: adapter has no shader-f16");
      return;
    }
    const [M, N, K] = [37, 45, 50]; // < 48: small tiles (the 8x8-block f16 shader compiles slowly on llvmpipe)
    const A = randn(M * K, 131), B = randn(K * N, 132);
    const a16 = g.allocF16(M * K), b16 = g.allocF16(K * N), c16 = g.allocF16(M * N);
    const b32 = g.alloc(K * N), c = g.alloc(M * N), cMixed = g.alloc(M * N);
    g.write(a16, A);
    g.write(b32, B);
    g.castToF16(b32, b16, K * N);
    const p = {
      batch: 1,
      M,
      N,
      K,
      transA: false,
      transB: false,
      strideA: 0,
      strideB: 0,
      strideC: 0,
    };
    g.matmul(a16, b16, c, p); // f16 x f16 -> f32
    g.matmul(a16, b32, cMixed, p); // f16 x f32 -> f32
    g.matmul(a16, b16, c16, p); // f16 x f16 -> f16
    const a16h = (await g.read(a16)) as Float32Array; // the f16-rounded values, as f32
    const b16h = (await g.read(b16)) as Float32Array;
    for (let i = 0; i < A.length; i++) {
      assert(Math.abs(a16h[i] - A[i]) <= Math.abs(A[i]) * 2 ** -11 + 1e-7, "f16 rounding");
    }
    // reference on the f16-rounded inputs
    const ref = new RefBackend();
    const ra = ref.alloc(M * K), rb = ref.alloc(K * N), rb32 = ref.alloc(K * N);
    const rc = ref.alloc(M * N), rcm = ref.alloc(M * N);
    ref.write(ra, a16h);
    ref.write(rb, b16h);
    ref.write(rb32, B);
    ref.matmul(ra, rb, rc, p);
    ref.matmul(ra, rb32, rcm, p);
    const want = (await ref.read(rc)) as Float32Array;
    assertClose("f16 matmul", await g.read(c), want);
    assertClose("mixed matmul", await g.read(cMixed), await ref.read(rcm));
    assertClose("f16 out", await g.read(c16), want, 2e-3);
    for (const x of [a16, b16, c16]) g.free(x);
    for (const x of [b32, c, cMixed]) g.free(x);
  },
});

Deno.test({
  name: "webgpu: matmul with K = 0 scales C by beta; zeroOnAlloc zeroes reused buffers",
  ...opts,
  async fn() {
    const C0 = randn(2 * 12 + 3, 141);
    const mm = { batch: 2, M: 3, N: 4, K: 0, transA: false, transB: false, strideA: 0 };
    await check("matmul K=0", { A: randn(4, 142) }, {
      C: { n: C0.length, init: C0 },
      Z: { n: C0.length, init: C0 },
    }, (be, b) => {
      be.matmul(b.A, b.A, b.C, { ...mm, strideB: 0, strideC: 12, offsetC: 3, beta: 0.5 });
      be.matmul(b.A, b.A, b.Z, { ...mm, strideB: 0, strideC: 12, offsetC: 1 });
    });
    const z = await createWebGpuBackend({ zeroOnAlloc: true });
    try {
      const a = z.alloc(100);
      z.fill(a, 5);
      z.free(a);
      const b = z.alloc(100); // reuses `a` from the pool
      assert((await z.read(b)).every((v) => v === 0), "reused buffer zeroed");
      z.free(b);
    } finally {
      z.destroy();
    }
  },
});

Deno.test({
  name: "webgpu: a buffer freed over the pool cap outlives the commands recorded with it",
  ...opts,
  async fn() {
    // Cap 0: every free goes over the cap. The buffer is still used by unsubmitted commands, so
    // destroying it at once would fail the submit ("buffer has been destroyed").
    const be = await createWebGpuBackend({ maxPooledBytes: 0 });
    try {
      const x = be.alloc(1000), y = be.alloc(1000);
      be.fill(x, -2);
      be.unary("relu", x, y, 1000);
      be.free(x);
      const z = be.alloc(1000);
      be.fill(z, 3);
      be.free(y); // y was written above, nothing submitted yet
      const out = await be.read(z);
      assert(out.every((v) => v === 3), "commands after the frees ran");
      assertEquals(be.stats().pooledBytes, 0);
      be.free(z);
    } finally {
      be.destroy();
    }
  },
});

Deno.test({
  name: "webgpu: a 50-kernel step is recorded into one submit",
  ...opts,
  async fn() {
    const g = await gpu();
    const n = 256;
    const a = g.alloc(n), b = g.alloc(n), c = g.alloc(n);
    g.write(a, randn(n, 121));
    g.write(b, randn(n, 122));
    await g.flush();
    const before = g.counters();
    const v = { offset: 0, strides: [1] };
    for (let i = 0; i < 10; i++) {
      g.binary({ op: "add", a, va: v, b, vb: v, out: c, shape: [n] });
      g.unary("tanh", c, b, n);
      g.softmax(b, c, 16, 16);
      g.matmul(c, a, b, {
        batch: 1,
        M: 16,
        N: 16,
        K: 16,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
        strideC: 0,
      });
      g.axpby({ x: b, y: a, alpha: 0.1, beta: 0.9, n });
    }
    const mid = g.counters();
    assertEquals(mid.submits, before.submits, "no submit while recording");
    assertEquals(mid.dispatches - before.dispatches, 50);
    const out = await g.read(a);
    assertEquals(g.counters().submits - before.submits, 1, "one submit for the step + read");
    assert(out.every(Number.isFinite));
    for (const x of [a, b, c]) g.free(x);
  },
});

Deno.test({
  name: "webgpu: whole training steps (engine TinyNet) submit only when the loss is read",
  ...opts,
  async fn() {
    // no chunked submits (hardware adapters default to a submit every 256 dispatches)
    const g = await createWebGpuBackend({ submitEvery: 0 });
    try {
      // 4 steps; the loss is read after the first and the last step only (2 readbacks)
      await runLeakCheck(g, 4, 100);
      const c = g.counters();
      assertEquals(c.submits, 2, "one submit per loss readback, none inside steps");
      assert(c.dispatches / 4 > 100, `dispatches per step: ${c.dispatches / 4}`);
    } finally {
      g.destroy();
    }
  },
});

Deno.test({
  name: "webgpu: no leaks — stats flat over many alloc/free cycles",
  ...opts,
  async fn() {
    const g = await gpu();
    await g.flush();
    const base = g.stats();
    let after1 = base;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 40; i++) {
        const sizes = [17, 1000, 4096, 30000, 257];
        const bufs = sizes.map((s) => g.alloc(s));
        g.unary("relu", bufs[0], bufs[4], 17);
        g.embeddingBackward({ ids: g.alloc(0, "i32"), dy: bufs[1], dtable: bufs[2], n: 0, dim: 4 }); // n = 0 no-op
        for (const b of bufs) g.free(b);
      }
      await g.flush();
      if (round === 0) after1 = g.stats();
    }
    const end = g.stats();
    // the n = 0 ids buffers above are intentionally leaked: 200 of them, 0 bytes each
    assertEquals(end.liveBuffers - base.liveBuffers, 200);
    assertEquals(end.liveBytes, base.liveBytes);
    assertEquals(end.pooledBytes, after1.pooledBytes, "pool does not grow after warm-up");
  },
});

Deno.test({
  name: "webgpu: destroy",
  ...opts,
  async fn() {
    const g = await gpu();
    await g.flush();
    g.destroy();
    gpuP = null;
    if (gpuAltP) (await gpuAltP).destroy();
    gpuAltP = null;
  },
});

// The engine's shared suites (op gradients, PyTorch parity, leak check) on this backend. The
// leak check runs 200 steps here (about 40 ms per step on llvmpipe) to stay in the test budget.
if (!ignore) {
  const factory = () => createWebGpuBackend();
  runOpSuite("webgpu", factory);
  runTorchParitySuite("webgpu", factory);
  runLeakSuite("webgpu", factory, 200);
  // The kernels a hardware GPU runs (tiled GEMMs; on software adapters the default is the direct
  // template), and the legacy set that bench/gpu profiles as "before".
  const gpuTiles = () => createWebGpuBackend({ gemmProfile: "gpu" });
  runOpSuite("webgpu (GPU tiling)", gpuTiles);
  runTorchParitySuite("webgpu (GPU tiling)", gpuTiles);
  runOpSuite("webgpu (legacy kernels)", () => createWebGpuBackend({ kernels: "legacy" }));
}
