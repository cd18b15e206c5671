import assert from "node:assert";
import { assertAlmostEquals } from "./suite_util.ts";
import { RefBackend } from "../../engine/backends/ref.ts";
import { Linear, Module } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import {
  clipGradNorm,
  decodeOptimizerState,
  encodeOptimizerState,
  isNoDecayName,
  LookAhead,
  lrFactor,
  paramGroups,
  SGD,
} from "../../engine/optim/index.ts";
import { tidy } from "../../engine/scope.ts";
import { parameter, type Tensor, tensor } from "../../engine/tensor.ts";

function close(got: ArrayLike<number>, want: number[], tol = 1e-6) {
  assert.deepStrictEqual(got.length, want.length);
  for (let i = 0; i < want.length; i++) assertAlmostEquals(got[i], want[i], tol);
}

function setGrad(p: Tensor, g: number[]) {
  p.grad?.dispose();
  p.grad = tensor(p.backend, g, p.shape).persist();
}

Deno.test("SGD with momentum and weight decay matches a hand computation", async () => {
  const be = new RefBackend();
  const w = parameter(tensor(be, [1, -2]), "w");
  const opt = new SGD([{ params: [w], lr: 0.1, momentum: 0.9, weightDecay: 0.01 }]);
  // Hand computation of PyTorch SGD (no dampening, m0 = 0).
  let x = [1, -2], m = [0, 0];
  const grads = [[0.5, 0.25], [-1, 2], [0.3, 0.3]];
  for (const g of grads) {
    setGrad(w, g);
    opt.step();
    const d = g.map((gi, i) => gi + 0.01 * x[i]);
    m = m.map((mi, i) => 0.9 * mi + d[i]);
    x = x.map((xi, i) => xi - 0.1 * m[i]);
  }
  close(await w.data(), x);
  assert.deepStrictEqual(opt.stepCount, 3);
});

Deno.test("paramGroups puts biases and LayerNorm weights in a no-decay group", () => {
  const be = new RefBackend();
  class Net extends Module {
    fc = this.registerModule("fc", new Linear(be, 2, 2));
    constructor() {
      super(be);
    }
  }
  const net = new Net();
  const ln = parameter(tensor(be, [1, 1]), "x");
  const named: [string, Tensor][] = [...net.namedParameters(), ["textual.norm1.weight", ln]];
  const groups = paramGroups(named, { lr: 0.2, momentum: 0.9, weightDecay: 1e-4 }, [
    { match: (n) => isNoDecayName(n), weightDecay: 0, name: "no_decay" },
  ]);
  assert.deepStrictEqual(groups.length, 2);
  assert.deepStrictEqual(groups[0].name, "no_decay");
  assert.deepStrictEqual(groups[0].weightDecay, 0);
  assert.deepStrictEqual(groups[0].params.length, 2); // fc.bias, norm1.weight
  assert.deepStrictEqual(groups[1].params.map((p) => p.name), ["fc.weight"]);
  assert(isNoDecayName("layer1.0.bn1.weight", true));
  assert(!isNoDecayName("layer1.0.bn1.weight"));
  assert(!isNoDecayName("visual.conv1.weight", true));
  assert.throws(() => new SGD([...groups, groups[0]]));
});

Deno.test("LookAhead syncs every k steps: slow += alpha (fast - slow); fast = slow", async () => {
  const be = new RefBackend();
  const w = parameter(tensor(be, [1]), "w");
  const opt = new LookAhead(new SGD([{ params: [w], lr: 1, momentum: 0, weightDecay: 0 }]), 0.5, 2);
  setGrad(w, [1]);
  opt.step(); // fast 0
  close(await w.data(), [0]);
  opt.step(); // fast -1, sync: slow = 1 + 0.5 (-1 - 1) = 0, fast = 0
  close(await w.data(), [0]);
  opt.step(); // fast -1
  opt.step(); // fast -2, slow = 0 + 0.5 (-2 - 0) = -1
  close(await w.data(), [-1]);
  assert.deepStrictEqual(opt.counter, 4);
});

Deno.test("LookAhead + SGD state round-trips through safetensors for an exact resume", async () => {
  const be = new RefBackend();
  const make = () => {
    const w = parameter(tensor(be, [0.5, -1, 2, 0.25], [2, 2]), "layer.weight");
    const b = parameter(tensor(be, [0.1, 0.2]), "layer.bias");
    const opt = new LookAhead(
      new SGD([
        { params: [w], lr: 0.1, momentum: 0.9, weightDecay: 1e-2 },
        { params: [b], lr: 0.05, momentum: 0.9, weightDecay: 0 },
      ]),
      0.5,
      3,
    );
    return { w, b, opt };
  };
  const step = (s: ReturnType<typeof make>, k: number) =>
    tidy(() => {
      const x = tensor(be, [Math.sin(k), Math.cos(k)], [1, 2]);
      const loss = ops.sum(ops.square(ops.linear(x, s.w, s.b)));
      loss.backward();
      s.opt.setLrFactor(1 / (1 + k));
      s.opt.step();
      s.opt.zeroGrad();
    });
  const a = make();
  for (let k = 0; k < 4; k++) step(a, k);
  const bytes = await encodeOptimizerState(a.opt);
  const wA = await a.w.data(), bA = await a.b.data();
  const b = make();
  be.write(b.w.buf, wA);
  be.write(b.b.buf, bA);
  decodeOptimizerState(b.opt, bytes);
  assert.deepStrictEqual(b.opt.counter, 4);
  for (let k = 4; k < 9; k++) {
    step(a, k);
    step(b, k);
  }
  assert.deepStrictEqual(Array.from(await b.w.data()), Array.from(await a.w.data()));
  assert.deepStrictEqual(Array.from(await b.b.data()), Array.from(await a.b.data()));
  // A different LookAhead configuration refuses the state.
  const c = new LookAhead(new SGD(b.opt.inner.groups.map((g) => ({ ...g }))), 0.5, 5);
  assert.throws(() => decodeOptimizerState(c, bytes), /LookAhead/);
});

Deno.test("clipGradNorm scales gradients to the global max norm on the device", async () => {
  const be = new RefBackend();
  const a = parameter(tensor(be, [0, 0]), "a"), b = parameter(tensor(be, [0]), "b");
  setGrad(a, [3, 0]);
  setGrad(b, [4]);
  const sq = clipGradNorm([a, b], 1);
  assertAlmostEquals(await sq.item(), 25, 1e-6);
  const c = 1 / (5 + 1e-6);
  close(await a.grad!.data(), [3 * c, 0]);
  close(await b.grad!.data(), [4 * c]);
  const sq2 = clipGradNorm([a, b], 10); // below the max: unchanged
  assertAlmostEquals(await sq2.item(), 1, 1e-5);
  close(await b.grad!.data(), [4 * c]);
});

Deno.test("SGD.clipAndStep(0) steps unclipped and returns the squared norm", async () => {
  const be = new RefBackend();
  const make = () => {
    const w = parameter(tensor(be, [1, 2]), "w");
    setGrad(w, [30, 40]);
    return { w, sgd: new SGD([{ params: [w], lr: 0.1, momentum: 0, weightDecay: 0 }]) };
  };
  const a = make();
  const sq = a.sgd.clipAndStep(0);
  assertAlmostEquals(await sq.item(), 2500, 1e-3);
  close(await a.w.data(), [1 - 3, 2 - 4]); // the full gradient, not one scaled to norm 0
  const b = make();
  await (b.sgd.clipAndStep(5)).item();
  close(await b.w.data(), [1 - 0.1 * 3, 2 - 0.1 * 4]); // clipped to norm 5
});

Deno.test("lr schedules: linear warmup then cosine / linear / multistep", () => {
  const cfg = { warmupSteps: 10, totalSteps: 110 };
  assert.deepStrictEqual(lrFactor(0, { kind: "cosine", ...cfg }), 0);
  assertAlmostEquals(lrFactor(5, { kind: "cosine", ...cfg }), 0.5);
  assertAlmostEquals(lrFactor(10, { kind: "cosine", ...cfg }), 1);
  assertAlmostEquals(lrFactor(60, { kind: "cosine", ...cfg }), 0.5);
  assertAlmostEquals(lrFactor(35, { kind: "cosine", ...cfg }), 0.5 * (1 + Math.cos(Math.PI / 4)));
  assertAlmostEquals(lrFactor(110, { kind: "cosine", ...cfg }), 0);
  assertAlmostEquals(lrFactor(60, { kind: "linear", ...cfg }), 0.5);
  assertAlmostEquals(lrFactor(200, { kind: "linear", ...cfg }), 0);
  const ms = { kind: "multistep" as const, ...cfg, milestones: [50, 80], gamma: 0.1 };
  assertAlmostEquals(lrFactor(49, ms), 1);
  assertAlmostEquals(lrFactor(50, ms), 0.1);
  assertAlmostEquals(lrFactor(80, ms), 0.01, 1e-12);
});
