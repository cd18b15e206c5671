import assert from "node:assert";
import { RefBackend } from "../../engine/backends/ref.ts";
import * as ops from "../../engine/ops/index.ts";
import { isGradEnabled, noGrad, tidy, tidyAsync } from "../../engine/scope.ts";
import { parameter, tensor } from "../../engine/tensor.ts";

Deno.test("backward accumulates into .grad across calls until zeroed", async () => {
  const be = new RefBackend();
  const w = parameter(tensor(be, [2, 3]), "w");
  for (let i = 0; i < 2; i++) tidy(() => ops.sum(ops.square(w)).backward());
  assert.deepStrictEqual(Array.from(await w.grad!.data()), [8, 12]);
  w.grad!.dispose();
  w.grad = null;
  tidy(() => ops.sum(ops.scale(w, 3)).backward());
  assert.deepStrictEqual(Array.from(await w.grad!.data()), [3, 3]);
});

Deno.test("a tensor used by two branches gets the sum of both gradients", async () => {
  const be = new RefBackend();
  const x = parameter(tensor(be, [1, -2, 3]), "x");
  tidy(() => {
    const y = ops.relu(x);
    ops.sum(ops.add(ops.mul(y, y), ops.scale(y, 2))).backward();
  });
  assert.deepStrictEqual(Array.from(await x.grad!.data()), [4, 0, 8]);
});

Deno.test("noGrad records nothing; backward on it fails clearly", () => {
  const be = new RefBackend();
  const x = parameter(tensor(be, [1, 2]), "x");
  const y = noGrad(() => {
    assert.strictEqual(isGradEnabled(), false);
    return ops.sum(ops.square(x));
  });
  assert.strictEqual(isGradEnabled(), true);
  assert.strictEqual(y.requiresGrad, false);
  assert.strictEqual(y.node, null);
  assert.throws(() => y.backward(), /does not require grad/);
  const v = tidy(() => ops.square(x));
  assert.throws(() => v.backward(), /not a scalar/);
});

Deno.test("tidy frees everything created inside except results and kept tensors", async () => {
  const be = new RefBackend();
  const x = parameter(tensor(be, [1, 2, 3]), "x");
  const base = be.stats().liveBuffers;
  const { a, arr } = tidy(() => {
    const t1 = ops.exp(x);
    const t2 = ops.scale(t1, 2);
    ops.sum(t2).backward(); // x.grad is created here and must survive
    return { a: t2, arr: [ops.neg(t2)] };
  });
  // survivors: a, arr[0], x.grad
  assert.strictEqual(be.stats().liveBuffers, base + 3);
  assert.ok(x.grad && !x.grad.disposed);
  assert.strictEqual((await arr[0].data()).length, 3);
  a.dispose();
  arr[0].dispose();
  x.grad!.dispose();
  assert.strictEqual(be.stats().liveBuffers, base);
  // nested scopes: a result moves to the enclosing scope
  const outer = tidy(() => {
    const inner = tidy(() => ops.scale(x, 2));
    ops.scale(x, 3); // freed with the outer scope
    return ops.add(inner, x);
  });
  assert.strictEqual(be.stats().liveBuffers, base + 1);
  outer.dispose();
  assert.strictEqual(be.stats().liveBuffers, base);
  const r = await tidyAsync(async () => {
    const t = ops.scale(x, 2);
    const v = await t.data();
    return v[2];
  });
  assert.strictEqual(r, 6);
  assert.strictEqual(be.stats().liveBuffers, base);
  assert.throws(() => x.grad!.buf, /use of disposed tensor/);
});

Deno.test("reshape aliases share storage and free it once", () => {
  const be = new RefBackend();
  const base = be.stats().liveBuffers;
  const x = tensor(be, [1, 2, 3, 4]);
  const v = ops.reshape(x, [2, 2]);
  x.dispose();
  assert.strictEqual(be.stats().liveBuffers, base + 1);
  v.dispose();
  v.dispose(); // idempotent
  assert.strictEqual(be.stats().liveBuffers, base);
});

Deno.test("shape errors name the tensors involved", () => {
  const be = new RefBackend();
  const a = tensor(be, new Float32Array(6), [2, 3]), b = tensor(be, new Float32Array(8), [2, 4]);
  assert.throws(() => ops.add(a, b), /cannot broadcast \[2,3\] with \[2,4\]/);
  assert.throws(() => ops.matmul(a, a), /inner dims differ/);
  assert.throws(() => ops.slice(a, 1, 2, 5), /out of range/);
  assert.throws(() => ops.crossEntropy(a, Int32Array.from([0, 7])), /target 7 at row 1/);
});
