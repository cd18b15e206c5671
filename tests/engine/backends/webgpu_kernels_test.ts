/**
 * The GPU kernel set ("current", tiled template) against the reference backend on lavapipe at
 * small sizes, with shapes chosen to reach every variant: each tile shape, aligned (vec4) and
 * unaligned operands of every transpose pair, split-K matmul (epilogue with alpha/beta/offset)
 * and filter gradient, f16 operands, every stride phase of the data gradient (including phases
 * without taps or pixels), 1×1 convolutions as matmuls (vec4 and not), batch norm over image
 * chunks with large and small feature maps, fused ReLU; plus the kernel-choice functions, the
 * legacy set, per-dispatch profiling, chunked submission, the flat optimizer and (on adapters
 * with wgpu-cooperative-matrix) the tensor-core products. Skipped without an adapter.
 */
import nodeAssert from "node:assert";
import type { Backend, Buf, Conv2dParams } from "../../../engine/backend.ts";
import {
  createWebGpuBackend,
  probeWebGpu,
  type WebGpuBackend,
  type WebGpuOptions,
} from "../../../engine/backends/webgpu.ts";
import { COOP_FEATURE, pickCoop, probeCoop } from "../../../engine/backends/webgpu/coop.ts";
import { convPhases } from "../../../engine/backends/webgpu/wgsl_conv.ts";
import { bnChunks } from "../../../engine/backends/webgpu/wgsl_norm.ts";
import {
  chooseSplitK,
  chooseTileShape,
  TILE_SHAPES,
} from "../../../engine/backends/webgpu/wgsl_tile_gemm.ts";
import { RefBackend } from "../../../engine/backends/ref.ts";
import { LookAhead, SGD } from "../../../engine/optim/index.ts";
import { parameter, tensor } from "../../../engine/tensor.ts";
import { assertClose, gpuChecker, randn } from "./webgpu_util.ts";
import { squareMatmulParams } from "../../../bench/common.ts";

Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const probe = await probeWebGpu();
const ignore = !probe.available;
if (ignore) console.log(`webgpu kernel tests skipped: ${probe.reason ?? "no adapter"}`);
const opts = { sanitizeOps: false, sanitizeResources: false, ignore };

/** Runs `fn` with a backend created with `o` (GPU tiling unless given), destroyed afterwards. */
async function withGpu(
  o: WebGpuOptions,
  fn: (check: ReturnType<typeof gpuChecker>["check"], be: WebGpuBackend) => Promise<void>,
): Promise<void> {
  const be = await createWebGpuBackend({ gemmProfile: "gpu", ...o });
  try {
    await fn(gpuChecker(() => Promise.resolve(be)).check, be);
  } finally {
    be.destroy();
  }
}

interface MmCase {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  off: [number, number, number];
}

/** Checks C = op(A)·op(B) (beta 0) and C2 = 0.5·op(A)·op(B) + 0.75·C2 against the reference. */
async function checkMatmul(check: ReturnType<typeof gpuChecker>["check"], c: MmCase, seed: number) {
  const { M, N, K, batch, transA, transB, off } = c;
  const [oA, oB, oC] = off;
  const pad = (n: number) => n + ((4 - (n % 4)) % 4); // keeps aligned strides aligned
  const strideA = pad(M * K), strideB = pad(K * N), strideC = pad(M * N);
  const A = randn(oA + strideA * batch, seed), B = randn(oB + strideB * batch, seed + 1);
  const C0 = randn(oC + strideC * batch, seed + 2);
  const mm = (be: Backend, a: Buf, b: Buf, cc: Buf, alpha: number, beta: number) =>
    be.matmul(a, b, cc, {
      batch,
      M,
      N,
      K,
      transA,
      transB,
      strideA,
      strideB,
      strideC,
      offsetA: oA,
      offsetB: oB,
      offsetC: oC,
      alpha,
      beta,
    });
  await check(`matmul ${JSON.stringify(c)}`, { A, B }, {
    C: { n: C0.length, init: C0 },
    C2: { n: C0.length, init: C0 },
  }, (be, b) => {
    mm(be, b.A, b.B, b.C, 1, 0);
    mm(be, b.A, b.B, b.C2, 0.5, 0.75);
  });
}

Deno.test({
  name: "webgpu kernels: kernel choice (tile shapes, split-K, stride phases, BN chunks)",
  fn() {
    nodeAssert.deepStrictEqual(chooseTileShape(4096, 4096, 1), TILE_SHAPES[0]);
    const skinny = chooseTileShape(64, 3136, 32); // resnet conv: O = 64, 56×56, batch 32
    nodeAssert.ok(skinny.BM <= 64, JSON.stringify(skinny));
    const tiny = chooseTileShape(20, 20, 1);
    nodeAssert.strictEqual(tiny.BM, 32);
    nodeAssert.deepStrictEqual(chooseSplitK(1000, 4096, 8), { splits: 1, kChunk: 4096 });
    const s = chooseSplitK(9, 100352, 8);
    nodeAssert.ok(s.splits > 1 && s.splits <= 32 && s.kChunk % 8 === 0, JSON.stringify(s));
    nodeAssert.ok(s.splits * s.kChunk >= 100352 && (s.splits - 1) * s.kChunk < 100352);
    for (const [H, k, st, pad] of [[9, 3, 2, 1], [15, 7, 2, 3], [7, 1, 2, 0], [5, 2, 3, 0]]) {
      const OH = Math.floor((H + 2 * pad - k) / st) + 1;
      const p = { N: 1, C: 1, H, W: H, O: 1, KH: k, KW: k, stride: st, pad, OH, OW: OH };
      const ph = convPhases(p);
      nodeAssert.strictEqual(ph.length, st * st);
      nodeAssert.strictEqual(ph.reduce((a, q) => a + q.nh * q.nw, 0), H * H, "pixels");
      // each tap (kh, kw) belongs to exactly one phase
      const taps = ph.filter((q) => q.rw === 0).reduce((a, q) => a + q.ntH, 0);
      nodeAssert.strictEqual(taps, k, "taps");
    }
    nodeAssert.deepStrictEqual(bnChunks(32, 64), { perChunk: 2, chunks: 16 });
    nodeAssert.deepStrictEqual(bnChunks(5, 3), { perChunk: 1, chunks: 5 });
    nodeAssert.deepStrictEqual(bnChunks(32, 2048), { perChunk: 32, chunks: 1 });
  },
});

Deno.test({
  name: "webgpu kernels: every tile shape, aligned (vec4) and unaligned operands",
  ...opts,
  async fn() {
    let seed = 1;
    for (const tile of TILE_SHAPES) {
      await withGpu({ gemmTile: tile, splitK: 0 }, async (check) => {
        // aligned: K, N, M, offsets and strides multiples of 4; two batches, two k-tiles+
        await checkMatmul(check, {
          M: 36,
          N: 40,
          K: 44,
          batch: 2,
          transA: false,
          transB: false,
          off: [4, 8, 0],
        }, seed += 3);
        // unaligned everywhere, both transposed, edge tiles on every side
        await checkMatmul(check, {
          M: 37,
          N: 41,
          K: 19,
          batch: 1,
          transA: true,
          transB: true,
          off: [3, 5, 2],
        }, seed += 3);
      });
    }
  },
});

Deno.test({
  name: "webgpu kernels: every transpose pair, vec4 and scalar, batch broadcast, K = 0",
  ...opts,
  async fn() {
    await withGpu({ splitK: 0 }, async (check) => {
      let seed = 50;
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const [M, N, K, off] of [[12, 20, 16, [0, 4, 8]], [9, 7, 13, [1, 2, 3]]] as const) {
            await checkMatmul(check, {
              M,
              N,
              K,
              batch: 2,
              transA,
              transB,
              off: [...off] as [number, number, number],
            }, seed += 3);
          }
        }
      }
      await checkMatmul(check, {
        M: 8,
        N: 8,
        K: 0,
        batch: 1,
        transA: false,
        transB: false,
        off: [0, 0, 0],
      }, 99);
    });
  },
});

Deno.test({
  name: "webgpu kernels: split-K matmul (forced and by shape) with the alpha/beta epilogue",
  ...opts,
  async fn() {
    await withGpu({ splitK: 3 }, async (check, be) => {
      const before = be.counters().dispatches;
      await checkMatmul(check, {
        M: 20,
        N: 12,
        K: 70,
        batch: 1,
        transA: false,
        transB: true,
        off: [1, 0, 3],
      }, 7);
      // two products (C and C2), each a split GEMM plus an epilogue
      nodeAssert.strictEqual(be.counters().dispatches - before, 4);
    });
    await withGpu({}, async (check, be) => {
      const before = be.counters().dispatches;
      await checkMatmul(check, {
        M: 8,
        N: 8,
        K: 1100,
        batch: 1,
        transA: false,
        transB: false,
        off: [0, 0, 0],
      }, 11);
      nodeAssert.strictEqual(be.counters().dispatches - before, 4, "split by shape");
    });
  },
});

Deno.test({
  name: "webgpu kernels: f16 operands and f16 output through the tiled kernels",
  ignore: ignore || !probe.hasF16,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (const splitK of [0, 2]) {
      const be = await createWebGpuBackend({ gemmProfile: "gpu", splitK });
      try {
        const M = 24, N = 20, K = 36;
        const A = randn(M * K, 3), B = randn(K * N, 4);
        const a = be.alloc(M * K), b = be.alloc(K * N);
        be.write(a, A);
        be.write(b, B);
        const a16 = be.allocF16(M * K), b16 = be.allocF16(K * N), c16 = be.allocF16(M * N);
        be.castToF16(a, a16, M * K);
        be.castToF16(b, b16, K * N);
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
        be.matmul(a16, b16, c16, p);
        const got = await be.read(c16);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
            nodeAssert.ok(
              Math.abs(got[i * N + j] - s) < 0.03,
              `f16 [${i},${j}] ${got[i * N + j]} vs ${s}`,
            );
          }
        }
        for (const x of [a, b, a16, b16, c16]) be.free(x);
      } finally {
        be.destroy();
      }
    }
  },
});

function geom(c: Omit<Conv2dParams, "OH" | "OW">): Conv2dParams {
  const OH = Math.floor((c.H + 2 * c.pad - c.KH) / c.stride) + 1;
  const OW = Math.floor((c.W + 2 * c.pad - c.KW) / c.stride) + 1;
  return { ...c, OH, OW };
}

/** Forward (with and without bias), data gradient and filter gradient (overwrite, accumulate). */
async function checkConv(
  check: ReturnType<typeof gpuChecker>["check"],
  p: Conv2dParams,
  seed: number,
) {
  const x = randn(p.N * p.C * p.H * p.W, seed), w = randn(p.O * p.C * p.KH * p.KW, seed + 1);
  const bias = randn(p.O, seed + 2), dy = randn(p.N * p.O * p.OH * p.OW, seed + 3);
  const dw0 = randn(w.length, seed + 4);
  const tag = JSON.stringify(p);
  await check(`conv ${tag}`, { x, w, bias, dy }, {
    y: { n: dy.length },
    yb: { n: dy.length },
    dx: { n: x.length },
    dw: { n: w.length },
    dwAcc: { n: w.length, init: dw0 },
  }, (be, b) => {
    be.conv2d({ x: b.x, w: b.w, bias: null, y: b.y, geom: p });
    be.conv2d({ x: b.x, w: b.w, bias: b.bias, y: b.yb, geom: p });
    be.conv2dBackwardData({ dy: b.dy, w: b.w, dx: b.dx, geom: p });
    be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dw, geom: p, accumulate: false });
    be.conv2dBackwardFilter({ x: b.x, dy: b.dy, dw: b.dwAcc, geom: p, accumulate: true });
  });
}

const CONV_CASES = [
  // 3×3 stride 2 pad 1: four phases, all with taps; odd size
  { N: 2, C: 3, H: 9, W: 8, O: 5, KH: 3, KW: 3, stride: 2, pad: 1 },
  // 7×7 stride 2 pad 3 (the stem)
  { N: 1, C: 2, H: 11, W: 11, O: 4, KH: 7, KW: 7, stride: 2, pad: 3 },
  // 1×1 stride 2 (downsample): three phases without taps (zeros)
  { N: 2, C: 3, H: 7, W: 6, O: 4, KH: 1, KW: 1, stride: 2, pad: 0 },
  // 2×2 stride 3: phases without taps and rows without pixels
  { N: 1, C: 2, H: 5, W: 7, O: 3, KH: 2, KW: 2, stride: 3, pad: 0 },
  // 3×3 stride 1 (single phase), OH·OW % 4 = 0 (vec4 stores and dY loads)
  { N: 2, C: 4, H: 6, W: 6, O: 5, KH: 3, KW: 3, stride: 1, pad: 1 },
  // 1×1 stride 1: matmuls (vec4: HW = 16), filter gradient with vec4 x
  { N: 3, C: 5, H: 4, W: 4, O: 6, KH: 1, KW: 1, stride: 1, pad: 0 },
  // 1×1 stride 1, HW = 15 (scalar)
  { N: 2, C: 3, H: 3, W: 5, O: 2, KH: 1, KW: 1, stride: 1, pad: 0 },
].map(geom);

Deno.test({
  name: "webgpu kernels: convolutions (phases, 1×1 as matmul, split filter gradient)",
  ...opts,
  async fn() {
    let seed = 200;
    await withGpu({ splitK: 0 }, async (check) => {
      for (const p of CONV_CASES) await checkConv(check, p, seed += 5);
    });
    // forced split-K on the filter gradient (and the 1×1 matmuls) of two cases
    await withGpu({ splitK: 3 }, async (check) => {
      for (const p of [CONV_CASES[0], CONV_CASES[5]]) await checkConv(check, p, seed += 5);
    });
    // the direct (software-adapter) template with the same per-shape sources
    await withGpu({ gemmProfile: "cpu" }, async (check) => {
      for (const p of [CONV_CASES[0], CONV_CASES[3]]) await checkConv(check, p, seed += 5);
    });
  },
});

/** Batch norm stats, apply (± ReLU) and backward (± ReLU mask) against the reference. */
async function checkBatchNorm(
  check: ReturnType<typeof gpuChecker>["check"],
  N: number,
  C: number,
  HW: number,
  seed: number,
) {
  const n = N * C * HW;
  const x = randn(n, seed, -2, 3), g = randn(C, seed + 1), bt = randn(C, seed + 2);
  const dy = randn(n, seed + 3), dg0 = randn(C, seed + 4), db0 = randn(C, seed + 5);
  await check(`batchNorm N${N} C${C} HW${HW}`, { x, g, bt, dy }, {
    mean: { n: C },
    v: { n: C },
    y: { n },
    yr: { n },
    dx: { n },
    dxr: { n },
    dg: { n: C, init: dg0 },
    db: { n: C, init: db0 },
    dgr: { n: C, init: dg0 },
    dbr: { n: C, init: db0 },
  }, (be, b) => {
    be.batchNormStats({ x: b.x, mean: b.mean, variance: b.v, N, C, HW });
    const ap = { x: b.x, mean: b.mean, variance: b.v, gamma: b.g, beta: b.bt, N, C, HW, eps: 1e-5 };
    be.batchNormApply({ ...ap, y: b.y });
    be.batchNormApply({ ...ap, y: b.yr, relu: true });
    const bp = { x: b.x, mean: b.mean, variance: b.v, gamma: b.g, dy: b.dy, N, C, HW, eps: 1e-5 };
    be.batchNormBackward({ ...bp, dx: b.dx, dgamma: b.dg, dbeta: b.db });
    be.batchNormBackward({ ...bp, dx: b.dxr, dgamma: b.dgr, dbeta: b.dbr, reluOut: b.yr });
  }, 2e-4);
}

Deno.test({
  name: "webgpu kernels: batch norm over image chunks (HW ≥ 256, tiny HW, ReLU fusion), both sets",
  ...opts,
  async fn() {
    for (const kernels of ["current", "legacy"] as const) {
      await withGpu({ kernels }, async (check) => {
        await checkBatchNorm(check, 3, 2, 300, 1); // jstep = 256 path, 3 chunks
        await checkBatchNorm(check, 5, 3, 7, 2); // 36 images' worth of lanes per workgroup
        await checkBatchNorm(check, 2, 1, 1, 3); // HW = 1
      });
    }
  },
});

Deno.test({
  name: "webgpu kernels: the legacy set still computes matmul and convolutions",
  ...opts,
  async fn() {
    await withGpu({ kernels: "legacy" }, async (check) => {
      await checkMatmul(check, {
        M: 33,
        N: 65,
        K: 17,
        batch: 2,
        transA: true,
        transB: false,
        off: [3, 5, 2],
      }, 300);
      await checkConv(check, CONV_CASES[0], 310);
    });
  },
});

Deno.test({
  name: "webgpu kernels: profile times every dispatch with its label; chunked submission",
  ignore: ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const be = await createWebGpuBackend({ gemmProfile: "gpu" });
    try {
      const n = 64;
      const a = be.alloc(n * n), b = be.alloc(n * n), c = be.alloc(n * n);
      be.write(a, randn(n * n, 1));
      be.write(b, randn(n * n, 2));
      const p = squareMatmulParams(n);
      if (be.ctx.canProfile) {
        be.ctx.startProfile();
        be.ctx.opLabel = "matmul";
        be.matmul(a, b, c, p);
        be.ctx.opLabel = "relu";
        be.unary("relu", c, a, n * n);
        const t = await be.ctx.stopProfile();
        nodeAssert.deepStrictEqual(t.map((x) => x.label), ["matmul", "relu"]);
        nodeAssert.ok(t[0].kernel.startsWith("tgemm:"), t[0].kernel);
        nodeAssert.ok(t.every((x) => x.ns > 0 && x.ns < 10e9), JSON.stringify(t));
      } else console.log("no timestamp-query on this adapter: profile part not exercised");
      await be.flush();
      be.ctx.submitEvery = 2;
      const s0 = be.counters().submits;
      for (let i = 0; i < 5; i++) be.unary("relu", a, b, n * n);
      nodeAssert.strictEqual(be.counters().submits - s0, 2, "a submit every 2 dispatches");
      await be.flush();
      for (const x of [a, b, c]) be.free(x);
    } finally {
      be.destroy();
    }
  },
});

Deno.test({
  name: "webgpu kernels: flat clip + SGD + LookAhead equals the per-tensor optimizer (ref)",
  ...opts,
  async fn() {
    const shapes = [[5, 7], [13], [64], [3, 3]];
    const run = async (be: Backend) => {
      const ps = shapes.map((s, i) =>
        parameter(tensor(be, randn(s.reduce((a, b) => a * b), 10 + i), s), `p${i}`)
      );
      const sgd = new SGD([
        { params: [ps[0], ps[2]], lr: 0.1, momentum: 0.9, weightDecay: 1e-2 },
        { params: [ps[1], ps[3]], lr: 0.05, momentum: 0.8, weightDecay: 0 },
      ]);
      const opt = new LookAhead(sgd, 0.5, 2);
      const norms: number[] = [], dispatches: number[] = [];
      for (let step = 0; step < 5; step++) {
        ps.forEach((p, i) => {
          // step 3: p3 gets no gradient (the flat path must fall back and skip it)
          if (step === 3 && i === 3) return;
          p.grad = tensor(be, randn(p.numel, 100 * step + i, -2, 2), p.shape).persist();
        });
        const d0 = be instanceof RefBackend ? 0 : (be as WebGpuBackend).counters().dispatches;
        const sumsq = opt.clipAndStep([1.5, 100, 0, 1.5, 0][step]); // 0: no clipping
        if (!(be instanceof RefBackend)) {
          dispatches.push((be as WebGpuBackend).counters().dispatches - d0);
        }
        norms.push((await sumsq.f32())[0]);
        sumsq.dispose();
        opt.zeroGrad();
      }
      const values = await Promise.all(ps.map((p) => p.f32()));
      const flat = sgd.flat.length;
      opt.dispose();
      for (const p of ps) p.dispose();
      return { norms, values, flat, dispatches };
    };
    const want = await run(new RefBackend());
    await withGpu({}, async (_check, be) => {
      const base = be.stats().liveBuffers;
      const got = await run(be);
      nodeAssert.strictEqual(got.flat, 2, "one arena per group");
      // fill sumsq, 2 × sum of squares, 2 × fused clip + SGD (+ 2 LookAhead syncs on even steps)
      nodeAssert.deepStrictEqual(got.dispatches.filter((_, s) => s !== 3), [5, 7, 5, 5]);
      assertClose("‖g‖²", Float32Array.from(got.norms), Float32Array.from(want.norms));
      got.values.forEach((v, i) => assertClose(`p${i}`, v, want.values[i]));
      nodeAssert.strictEqual(be.stats().liveBuffers, base, "arenas released");
    });
  },
});

const coopAdapter = !ignore &&
  ((await navigator.gpu.requestAdapter())?.features.has(COOP_FEATURE) ?? false);

Deno.test({
  name: "webgpu kernels: tensor-core AMP products (adapters with wgpu-cooperative-matrix)",
  ignore: !coopAdapter,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const be = await createWebGpuBackend();
    try {
      console.log(`coop self-test: ${JSON.stringify(be.coop)}`);
      for (const v of be.coop?.variants ?? []) {
        for (const tr of v.trans) {
          const side = v.RT * v.T, M = 2 * side, N = 3 * side, K = 5 * v.T;
          const transA = tr[0] === "t", transB = tr[1] === "t";
          const A = randn(M * K, 1), B = randn(K * N, 2);
          const a = be.alloc(M * K), b = be.alloc(K * N), c = be.alloc(M * N);
          be.write(a, A);
          be.write(b, B);
          const a16 = be.allocF16(M * K), b16 = be.allocF16(K * N);
          be.castToF16(a, a16, M * K);
          be.castToF16(b, b16, K * N);
          const p = { batch: 1, M, N, K, transA, transB, strideA: 0, strideB: 0, strideC: 0 };
          be.ctx.startProfile();
          be.matmul(a16, b16, c, p);
          const kernels = (await be.ctx.stopProfile()).map((t) => t.kernel);
          nodeAssert.ok(kernels[0].startsWith("coop_mm:"), kernels.join(","));
          const got = await be.read(c);
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let s = 0;
              for (let k = 0; k < K; k++) {
                s += (transA ? A[k * M + i] : A[i * K + k]) *
                  (transB ? B[j * K + k] : B[k * N + j]);
              }
              nodeAssert.ok(Math.abs(got[i * N + j] - s) < 0.05, `${tr} [${i},${j}]`);
            }
          }
          for (const x of [a, b, c, a16, b16]) be.free(x);
        }
      }
    } finally {
      be.destroy();
    }
  },
});

Deno.test({
  name: "webgpu kernels: the tensor-core self-test rejects what does not compile; variant choice",
  ignore: ignore || coopAdapter,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const adapter = (await navigator.gpu.requestAdapter())!;
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has("shader-f16") ? ["shader-f16"] : [],
    });
    try {
      const s = await probeCoop(device, 32);
      nodeAssert.strictEqual(s.variants.length, 0);
      nodeAssert.strictEqual(s.notes.length, 16, s.notes.join("\n"));
      nodeAssert.ok(s.notes.every((n) => n.includes("does not compile")), s.notes[0]);
    } finally {
      device.destroy();
    }
    const support = {
      workgroup: 32,
      notes: [],
      variants: [{ T: 16 as const, RT: 2 as const, trans: ["nn", "nt"] }, {
        T: 16 as const,
        RT: 1 as const,
        trans: ["nn", "nt", "tn"],
      }],
    };
    const q = (M: number, N: number, K: number, transA = false, transB = false) =>
      pickCoop(support, { M, N, K, transA, transB });
    nodeAssert.strictEqual(q(64, 64, 32)?.RT, 2);
    nodeAssert.strictEqual(q(48, 64, 32)?.RT, 1); // 48 is not a multiple of 32
    nodeAssert.strictEqual(q(64, 64, 24), null); // K not a multiple of 16
    nodeAssert.strictEqual(q(64, 64, 32, true, false)?.RT, 1); // "tn" only verified at RT 1
    nodeAssert.strictEqual(q(64, 64, 32, true, true), null);
  },
});

Deno.test({
  name: "webgpu kernels: subgroup batch norm is used only when its self-test passes",
  ...opts,
  async fn() {
    const be = await createWebGpuBackend({ gemmProfile: "gpu" });
    try {
      const hasSubgroups = be.device.features.has("subgroups");
      const ok = await be.useSubgroups();
      nodeAssert.strictEqual(be.subgroups, ok);
      if (!hasSubgroups) {
        nodeAssert.strictEqual(ok, false);
        nodeAssert.match(be.subgroupNote ?? "", /subgroup kernels failed/);
      }
      // either way batch norm still agrees with the reference afterwards
      await checkBatchNorm(gpuChecker(() => Promise.resolve(be)).check, 3, 2, 300, 9);
    } finally {
      be.destroy();
    }
  },
});
