import assert from "node:assert";
import { RefBackend } from "../../engine/backends/ref.ts";
import {
  BasicBlock,
  BatchNorm2d,
  Conv2d,
  Linear,
  Module,
  MultiheadAttention,
  ReLU,
  Sequential,
  TransformerDecoderLayer,
} from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { assertAlmostEquals } from "./suite_util.ts";

Deno.test("dotted parameter and buffer names follow torch (Sequential, nested blocks)", () => {
  const be = new RefBackend();
  const seq = new Sequential(be, [
    new Conv2d(be, 3, 4, 3, { padding: 1, bias: false }),
    new BatchNorm2d(be, 4),
    new ReLU(be),
  ]);
  class Net extends Module {
    stem = this.registerModule("stem", seq);
    layer1 = this.registerModule(
      "layer1",
      new Sequential(be, [new BasicBlock(be, 4, 8, 2), new BasicBlock(be, 8, 8)]),
    );
    constructor() {
      super(be);
    }
  }
  const net = new Net();
  const names = net.namedParameters().map(([n]) => n);
  assert.ok(names.includes("stem.0.weight"));
  assert.ok(names.includes("layer1.0.conv1.weight"));
  assert.ok(names.includes("layer1.0.downsample.0.weight"));
  assert.ok(names.includes("layer1.0.downsample.1.bias"));
  assert.ok(!names.includes("layer1.1.downsample.0.weight"));
  const sd = [...net.stateDict().keys()];
  assert.ok(sd.includes("stem.1.running_var"));
  assert.ok(sd.includes("layer1.1.bn2.num_batches_tracked"));
  assert.strictEqual(net.parameters()[0].name, "stem.0.weight");
  const mods = net.namedModules();
  assert.deepStrictEqual(mods.slice(0, 3).map(([n]) => n), ["", "stem", "stem.0"]);
  assert.ok(mods.some(([n, m]) => n === "layer1.0.downsample.1" && m instanceof BatchNorm2d));
  net.eval();
  assert.strictEqual(net.layer1.layers[1].bn2.training, false);
  net.train();
  assert.strictEqual(seq.layers[1].training, true);
});

Deno.test("loadStateDict checks keys and shapes; round-trips values", async () => {
  const be = new RefBackend();
  const a = new Linear(be, 3, 2), b = new Linear(be, 3, 2);
  const host = await a.stateDictHost();
  b.loadStateDict(host);
  assert.deepStrictEqual(Array.from(await b.weight.data()), Array.from(await a.weight.data()));
  const missing = new Map(host);
  missing.delete("bias");
  assert.throws(() => b.loadStateDict(missing), /missing \[bias\]/);
  assert.deepStrictEqual(b.loadStateDict(missing, false).missing, ["bias"]);
  const bad = new Map(host);
  bad.set("weight", { shape: [2, 2], data: new Float32Array(4) });
  assert.throws(() => b.loadStateDict(bad), /weight has shape \[2,2\], expected \[2,3\]/);
});

Deno.test("shared (tied) parameters are listed once but saved under every name", () => {
  const be = new RefBackend();
  class Tied extends Module {
    a = this.registerModule("a", new Linear(be, 2, 2, false));
    b = new Linear(be, 2, 2, false);
    constructor() {
      super(be);
      this.b.tieParameter("weight", this.a.weight);
      this.registerModule("b", this.b);
    }
  }
  const m = new Tied();
  assert.deepStrictEqual(m.namedParameters().map(([n]) => n), ["a.weight"]);
  assert.ok(m.stateDict().has("b.weight"));
  assert.strictEqual(m.b.weight, m.a.weight);
  const x = tensor(be, [1, 2], [1, 2]);
  tidy(() => ops.sum(ops.add(m.a.forward(x), m.b.forward(x))).backward());
  assert.deepStrictEqual(m.parameters().length, 1);
  const before = be.stats().liveBuffers;
  m.dispose();
  assert.strictEqual(be.stats().liveBuffers, before - 2); // weight and its grad, once
});

Deno.test("BatchNorm2d updates running stats (momentum 0.1, unbiased var) and counts batches", async () => {
  const be = new RefBackend();
  const bn = new BatchNorm2d(be, 1);
  const x = tensor(be, [1, 2, 3, 6], [4, 1, 1, 1]);
  tidy(() => bn.forward(x));
  // mean 3, biased var 3.5, unbiased 14/3
  assertAlmostEquals((await bn.runningMean.data())[0], 0.3, 1e-6);
  assertAlmostEquals((await bn.runningVar.data())[0], 0.9 + 0.1 * 14 / 3, 1e-6);
  assert.strictEqual((await bn.numBatchesTracked.data())[0], 1);
  bn.eval();
  const y = tidy(() => bn.forward(x));
  const want = (1 - 0.3) / Math.sqrt(0.9 + 0.1 * 14 / 3 + 1e-5);
  assertAlmostEquals((await y.data())[0], want, 1e-5);
  assert.strictEqual((await bn.numBatchesTracked.data())[0], 1);
});

Deno.test("MultiheadAttention returns head-averaged weights whose rows sum to 1", async () => {
  const be = new RefBackend();
  const mha = new MultiheadAttention(be, 8, 2);
  const q = tensor(be, Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.sin(i)), [2, 3, 8]);
  const kv = tensor(be, Float32Array.from({ length: 2 * 5 * 8 }, (_, i) => Math.cos(i)), [2, 5, 8]);
  const pad = tensor(be, [0, 0, 0, 0, 1, 0, 0, 0, 1, 1], [2, 5]);
  const { out, weights } = mha.forward(q, kv, kv, { keyPaddingMask: pad, needWeights: true });
  assert.deepStrictEqual(out.shape, [2, 3, 8]);
  assert.deepStrictEqual(weights!.shape, [2, 3, 5]);
  const w = await weights!.data();
  for (let r = 0; r < 6; r++) {
    let s = 0;
    for (let j = 0; j < 5; j++) s += w[r * 5 + j];
    assertAlmostEquals(s, 1, 1e-5);
  }
  assert.strictEqual(w[4], 0); // padded key of batch 0
  assert.strictEqual(w[3 * 5 + 3], 0); // padded keys of batch 1
});

Deno.test("decoder dropout draws from the layer's stream and is off in eval mode", async () => {
  const be = new RefBackend();
  const layer = new TransformerDecoderLayer(be, 8, 2, 16, { dropout: 0.5 });
  const x = tensor(be, Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [1, 3, 8]);
  const mem = tensor(be, Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)), [1, 2, 8]);
  const a = await tidy(() => layer.forward(x, mem)).data();
  const b = await tidy(() => layer.forward(x, mem)).data();
  assert.notDeepStrictEqual(Array.from(a), Array.from(b));
  layer.eval();
  const c = await tidy(() => layer.forward(x, mem)).data();
  const d = await tidy(() => layer.forward(x, mem)).data();
  assert.deepStrictEqual(Array.from(c), Array.from(d));
  void ops;
});

Deno.test("MultiheadAttention with distinct key and value equals the composition of ops", async () => {
  const be = new RefBackend();
  const mha = new MultiheadAttention(be, 8, 2);
  const mk = (n: number, s: number[], f: (i: number) => number) =>
    tensor(be, Float32Array.from({ length: n }, (_, i) => f(i)), s).persist();
  const q = mk(2 * 3 * 8, [2, 3, 8], (i) => Math.sin(i));
  const k = mk(2 * 4 * 8, [2, 4, 8], (i) => Math.cos(0.7 * i));
  const v = mk(2 * 4 * 8, [2, 4, 8], (i) => Math.sin(1.3 * i + 1));
  const W = mha.inProjWeight, b = mha.inProjBias;
  const heads = (x: Tensor) => ops.permute(ops.reshape(x, [2, x.shape[1], 2, 4]), [0, 2, 1, 3]);
  const manual = () => {
    const proj = (x: Tensor, i: number) =>
      ops.linear(x, ops.slice(W, 0, 8 * i, 8 * i + 8), ops.slice(b, 0, 8 * i, 8 * i + 8));
    const { out } = ops.attention(heads(proj(q, 0)), heads(proj(k, 1)), heads(proj(v, 2)));
    return mha.outProj.forward(ops.reshape(ops.permute(out, [0, 2, 1, 3]), [2, 3, 8]));
  };
  const run = async (f: () => Tensor) => {
    const y = tidy(() => {
      const y = f();
      ops.sum(ops.square(y)).backward();
      return y;
    });
    const r = { y: await y.data(), gW: await W.grad!.data(), gb: await b.grad!.data() };
    mha.zeroGrad();
    return r;
  };
  const a = await run(() => mha.forward(q, k, v).out);
  const m = await run(manual);
  for (const key of ["y", "gW", "gb"] as const) {
    for (let i = 0; i < a[key].length; i++) assertAlmostEquals(a[key][i], m[key][i], 1e-5);
  }
});
