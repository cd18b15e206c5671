/**
 * Mixed precision: autocast (f16 matrix products on webgpu with shader-f16, a no-op elsewhere) and
 * the dynamic loss scaler. The webgpu tests skip with a message when there is no f16 adapter.
 */
import assert from "node:assert";
import { ampSupported, autocast, isAutocast } from "../../engine/amp.ts";
import type { Backend } from "../../engine/backend.ts";
import { RefBackend } from "../../engine/backends/ref.ts";
import { createWebGpuBackend, probeWebGpu } from "../../engine/backends/webgpu.ts";
import * as ops from "../../engine/ops/index.ts";
import { LossScaler, paramGroups, SGD } from "../../engine/optim/index.ts";
import { tidy } from "../../engine/scope.ts";
import { parameter, type Tensor, tensor } from "../../engine/tensor.ts";
import { resolveAmp } from "../../pipeline/pretrain/config.ts";
import { f16SkipReason, scaledError } from "./suite_util.ts";
import { SeededRng } from "../../engine/rng.ts";

Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
const probe = await probeWebGpu();
const noF16 = f16SkipReason(probe);
if (noF16) console.log(`amp webgpu tests skipped: ${noF16}`);
const gpuOpts = { sanitizeOps: false, sanitizeResources: false, ignore: noF16 !== "" };

let gpuP: Promise<Backend> | null = null;
const gpu = () => gpuP ??= createWebGpuBackend();

function randn(n: number, seed: number, s = 1): Float32Array {
  const r = new SeededRng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * s);
}

/** Outputs and input gradients of a set of matrix products (sum of outputs × fixed weights). */
async function products(be: Backend, amp: boolean): Promise<Float32Array[]> {
  const leaf = (n: number[], seed: number) =>
    parameter(tensor(be, randn(n.reduce((a, b) => a * b), seed), n));
  const a = leaf([2, 3, 9, 20], 1), b = leaf([2, 3, 20, 11], 2); // batched matmul
  const a2 = leaf([20, 9], 3), b2 = leaf([11, 20], 4); // both transposed
  const x = leaf([4, 5, 20], 5), w = leaf([12, 20], 6), bias = leaf([12], 7); // linear
  const wr = leaf([30, 20], 8), br = leaf([30], 9); // linearRows 10..22
  const params = [a, b, a2, b2, x, w, bias, wr, br];
  const outs = tidy(() =>
    autocast(amp, () => {
      const ys = [
        ops.matmul(a, b),
        ops.matmul(a2, b2, true, true, 0.5),
        ops.linear(x, w, bias),
        ops.linearRows(x, wr, br, 10, 12),
      ];
      let loss: Tensor | null = null;
      ys.forEach((y, i) => {
        const wy = tensor(be, randn(y.numel, 100 + i), y.shape);
        const s = ops.sum(ops.mul(y, wy));
        loss = loss ? ops.add(loss, s) : s;
      });
      loss!.backward();
      return ys;
    })
  );
  const res: Float32Array[] = [];
  for (const y of outs) res.push(await y.f32()), y.dispose();
  for (const p of params) res.push(await p.grad!.f32()), p.grad!.dispose(), p.dispose();
  return res;
}

Deno.test("autocast scope nests and restores; no-op on the ref backend (identical results)", async () => {
  assert.strictEqual(isAutocast(), false);
  autocast(true, () => {
    assert.strictEqual(isAutocast(), true);
    autocast(false, () => assert.strictEqual(isAutocast(), false));
    assert.strictEqual(isAutocast(), true);
  });
  assert.throws(() => autocast(true, () => Promise.resolve(1)), /autocastAsync/);
  assert.strictEqual(isAutocast(), false);
  const be = new RefBackend();
  assert.strictEqual(ampSupported(be), false);
  const off = await products(be, false), on = await products(be, true);
  assert.deepStrictEqual(on, off);
  assert.strictEqual(be.stats().liveBuffers, 0);
});

Deno.test("autocast is a no-op on the wasm backend (identical results)", async () => {
  let be: Backend;
  try {
    const { createWasmBackend } = await import("../../engine/backends/wasm.ts");
    be = await createWasmBackend();
  } catch (e) {
    console.log(`wasm autocast test skipped: wasm backend unavailable (${e})`);
    return;
  }
  try {
    assert.strictEqual(ampSupported(be), false);
    const off = await products(be, false), on = await products(be, true);
    assert.deepStrictEqual(on, off);
  } finally {
    be.destroy();
  }
});

Deno.test({
  name: "autocast is a no-op on webgpu without shader-f16 (identical results)",
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: !probe.available || probe.hasF16 === true,
  async fn() {
    const be = await gpu();
    assert.strictEqual(ampSupported(be), false);
    assert.deepStrictEqual(await products(be, true), await products(be, false));
  },
});

Deno.test({
  name: "webgpu f16: matmul / linear / linearRows forward + backward within f16 tolerance",
  ...gpuOpts,
  async fn() {
    const be = await gpu();
    assert(ampSupported(be), "supportsF16 and the f16 helpers");
    const before = be.stats().liveBuffers;
    const ref = await products(be, false), half = await products(be, true);
    const names = ["mm", "mmTT", "linear", "linearRows", "da", "db", "da2", "db2", "dx", "dw"];
    names.push("dbias", "dwr", "dbr");
    let worst = 0;
    ref.forEach((r, i) => {
      const e = scaledError(half[i], r);
      worst = Math.max(worst, e);
      assert(e <= 1e-2, `${names[i]}: f16 vs f32 scaled error ${e}`);
    });
    // f16 rounding must show: the products really ran in f16
    assert(worst > 1e-5, `autocast changed nothing (worst scaled error ${worst})`);
    console.log(`  worst scaled error f16 vs f32: ${worst.toExponential(2)}`);
    await be.flush();
    assert.strictEqual(be.stats().liveBuffers, before, "f16 temporaries freed");
  },
});

Deno.test({
  name: "webgpu f16: a gradient that overflows f16 under a loss scale shows up as non-finite",
  ...gpuOpts,
  async fn() {
    const be = await gpu();
    const x = tensor(be, randn(8 * 16, 21), [8, 16]);
    const w = parameter(tensor(be, randn(4 * 16, 22, 0.1), [4, 16]), "w");
    const check = async (initScale: number) => {
      const scaler = new LossScaler({ initScale });
      tidy(() =>
        autocast(true, () => {
          const l = ops.crossEntropy(ops.linear(x, w, null), Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3));
          scaler.scaleLoss(l).backward();
        })
      );
      const r = await scaler.unscale([w]);
      w.grad!.dispose();
      w.grad = null;
      return r.finite;
    };
    // dlogits ~ 1e-2 per element: × 2^30 exceeds f16's 65504 in the weight-gradient product
    assert.strictEqual(await check(2 ** 30), false, "f16 overflow not detected");
    assert.strictEqual(await check(2 ** 10), true);
    x.dispose();
    w.dispose();
  },
});

/** A tiny MLP classifier trained by SGD; returns the loss of each step. */
async function trainTiny(be: Backend, amp: boolean, steps: number): Promise<number[]> {
  const D = 24, H = 40, C = 6, B = 32;
  const w1 = parameter(tensor(be, randn(H * D, 11, 0.2), [H, D]), "w1");
  const b1 = parameter(tensor(be, new Float32Array(H), [H]), "b1");
  const w2 = parameter(tensor(be, randn(C * H, 12, 0.2), [C, H]), "w2");
  const b2 = parameter(tensor(be, new Float32Array(C), [C]), "b2");
  const params = [w1, b1, w2, b2];
  const opt = new SGD(
    paramGroups(params.map((p) => [p.name!, p]), { lr: 0.5, momentum: 0.9 }),
  );
  const scaler = amp ? new LossScaler() : null;
  const xs = randn(B * D, 13);
  const ys = Int32Array.from({ length: B }, (_, i) => (i * 7) % C);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = tidy(() =>
      autocast(amp, () => {
        const x = tensor(be, xs, [B, D]);
        const h = ops.gelu(ops.linear(x, w1, b1));
        const l = ops.crossEntropy(ops.linear(h, w2, b2), ys);
        (scaler ? scaler.scaleLoss(l) : l).backward();
        return l;
      })
    );
    losses.push(await loss.item());
    loss.dispose();
    const finite = scaler ? (await scaler.unscale(params)).finite : true;
    scaler?.update(finite);
    assert(finite, `step ${s}: gradients overflowed`);
    opt.step();
    opt.zeroGrad();
  }
  opt.dispose();
  for (const p of params) p.dispose();
  return losses;
}

Deno.test({
  name: "webgpu f16: a tiny model's training loss with AMP tracks f32",
  ...gpuOpts,
  async fn() {
    const be = await gpu();
    const f32 = await trainTiny(be, false, 12), f16 = await trainTiny(be, true, 12);
    let worst = 0;
    f32.forEach((l, i) => worst = Math.max(worst, Math.abs(f16[i] - l) / Math.abs(l)));
    console.log(
      `  loss f32 ${f32[0].toFixed(4)} -> ${f32.at(-1)!.toFixed(4)}, AMP ${f16[0].toFixed(4)} -> ` +
        `${f16.at(-1)!.toFixed(4)}; worst relative gap ${worst.toExponential(2)}`,
    );
    assert(f32.at(-1)! < 0.7 * f32[0], "the f32 run learns");
    assert(worst <= 2e-2, `AMP loss drifts from f32: relative gap ${worst}`);
  },
});

/** One parameter with a gradient from host data. */
function withGrad(be: Backend, w: number[], g: number[]): Tensor {
  const p = parameter(tensor(be, w, [w.length]), "p");
  p.grad = tensor(be, g, [g.length]).persist();
  return p;
}

Deno.test("loss scaler: overflow skips the step and halves the scale; finite grads unscale", async () => {
  const be = new RefBackend();
  const scaler = new LossScaler({ growthInterval: 3 });
  assert.strictEqual(scaler.scale, 32768);
  // finite: gradients divided by the scale
  const p = withGrad(be, [1, 2], [32768, -65536]);
  const r = await scaler.unscale([p]);
  assert.deepStrictEqual(r, { finite: true, sumsq: 5 });
  assert.deepStrictEqual(Array.from(await p.grad!.f32()), [1, -2]);
  // injected Inf / NaN: reported, gradients and weights untouched, scale halved
  for (const bad of [Infinity, NaN]) {
    const q = withGrad(be, [1, 2], [3, bad]);
    const opt = new SGD([{ params: [q], lr: 0.1, momentum: 0, weightDecay: 0 }]);
    const finite: boolean = (await scaler.unscale([q])).finite;
    const before: number = scaler.scale;
    scaler.update(finite);
    if (finite) opt.step(); // the trainer's rule: no step on overflow
    assert.strictEqual(finite, false);
    assert.strictEqual(scaler.scale, before / 2);
    assert.strictEqual(scaler.goodSteps, 0);
    assert.deepStrictEqual(Array.from(await q.f32()), [1, 2], "weights unchanged (skipped)");
    assert.strictEqual((await q.grad!.f32())[0], 3, "gradients not unscaled");
    opt.zeroGrad();
    opt.dispose();
    q.dispose();
  }
  assert.strictEqual(scaler.scale, 8192);
  p.grad!.dispose();
  p.dispose();
  assert.strictEqual(be.stats().liveBuffers, 0);
});

Deno.test("loss scaler: grows after N good steps; state round-trips; bad state rejected", () => {
  const s = new LossScaler({ initScale: 4, growthInterval: 3 });
  s.update(true), s.update(true);
  assert.strictEqual(s.scale, 4);
  s.update(true);
  assert.deepStrictEqual(s.state(), { scale: 8, goodSteps: 0 });
  s.update(true), s.update(false), s.update(true);
  assert.deepStrictEqual(s.state(), { scale: 4, goodSteps: 1 });
  const t = new LossScaler();
  t.load(JSON.parse(JSON.stringify(s.state())));
  assert.deepStrictEqual(t.state(), s.state());
  assert.throws(
    () => t.load({ scale: -1, goodSteps: 0 }, "ckpt/state.json field amp"),
    /ckpt\/state.json field amp/,
  );
  assert.throws(() => t.load({ scale: 2, goodSteps: 0.5 }), /goodSteps/);
});

Deno.test("train.amp: auto is off without f16, on without f16 is an error naming the key", () => {
  const be = new RefBackend();
  assert.strictEqual(resolveAmp("auto", be), false);
  assert.strictEqual(resolveAmp("off", be), false);
  assert.throws(() => resolveAmp("on", be), /train\.amp is "on" but the ref backend has no f16/);
});

Deno.test({
  name: "train.amp: auto and on resolve to AMP on an f16 webgpu backend",
  ...gpuOpts,
  async fn() {
    const be = await gpu();
    assert.strictEqual(resolveAmp("auto", be), true);
    assert.strictEqual(resolveAmp("on", be), true);
    assert.strictEqual(resolveAmp("off", be), false);
  },
});
