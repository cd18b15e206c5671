import assert from "node:assert";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { tidy } from "../../../engine/scope.ts";
import { tensor } from "../../../engine/tensor.ts";
import { parseHeadName } from "../../../pipeline/model/names.ts";
import {
  bagOfTokens,
  type Batch,
  maskTokens,
  PretrainingModel,
  reverseCaptions,
  type TaskName,
  TASKS,
} from "../../../pipeline/model/tasks.ts";

Deno.test("head names parse with paper defaults for A and F", () => {
  assert.deepStrictEqual(parseHeadName("transdec_postnorm::L1_H2048_A32_F8192"), {
    kind: "transdec_postnorm",
    layers: 1,
    hidden: 2048,
    heads: 32,
    feedforward: 8192,
  });
  const s = parseHeadName("transdec_prenorm::L2_H512");
  assert.deepStrictEqual([s.heads, s.feedforward], [8, 2048]);
  assert.throws(() => parseHeadName("transdec_postnorm::H512"), /L1_H2048_A32_F8192/);
  assert.throws(() => parseHeadName("lstm::L1_H512"), /unknown kind/);
});

Deno.test("caption reversal keeps padding at the end", () => {
  const T = 5;
  const tokens = Int32Array.from([1, 7, 8, 2, 0, 1, 9, 2, 0, 0]);
  assert.deepStrictEqual([...reverseCaptions(tokens, [4, 3], T)], [2, 8, 7, 1, 0, 2, 9, 1, 0, 0]);
});

Deno.test("bag of tokens is K-hot over distinct non-special tokens, 1/K each", () => {
  const t = bagOfTokens(Int32Array.from([1, 5, 6, 5, 2]), 5, 8);
  assert.deepStrictEqual([...t], [0, 0, 0, 0, 0, 0.5, 0.5, 0]);
});

Deno.test("masked LM masks ~15% of non-special tokens, deterministically", () => {
  const B = 64, T = 20, V = 100;
  const tokens = new Int32Array(B * T);
  for (let i = 0; i < tokens.length; i++) tokens[i] = i % T === 0 ? 1 : 4 + (i % 90);
  const lengths = new Array(B).fill(T);
  const a = maskTokens(tokens, lengths, T, V, 7, 0);
  const b = maskTokens(tokens, lengths, T, V, 7, 0);
  assert.deepStrictEqual(a, b);
  let chosen = 0, masked = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (a.target[i] !== 0) {
      chosen++;
      assert.deepStrictEqual(a.target[i], tokens[i]);
      if (a.input[i] === 3) masked++;
    } else assert.deepStrictEqual(a.input[i], tokens[i]);
    if (i % T === 0) assert.deepStrictEqual(a.target[i], 0); // [SOS] never chosen
  }
  const share = chosen / (B * (T - 1));
  assert(share > 0.1 && share < 0.2, `chosen share ${share}`);
  assert(masked / chosen > 0.65 && masked / chosen < 0.95, `mask share ${masked / chosen}`);
});

function batchFor(be: Awaited<ReturnType<typeof createBackend>>, B: number, S: number): Batch {
  const T = 6;
  const img = new Float32Array(B * 3 * S * S).map((_, i) => Math.sin(i * 0.37));
  const tokens = new Int32Array(B * T);
  const lengths: number[] = [];
  for (let b = 0; b < B; b++) {
    const L = 4 + (b % 3);
    lengths.push(L);
    tokens[b * T] = 1;
    for (let t = 1; t < L - 1; t++) tokens[b * T + t] = 4 + ((b * 3 + t) % 12);
    tokens[b * T + L - 1] = 2;
  }
  const labels = new Float32Array(B * 5).map((_, i) => (i % 3 === 0 ? 1 : 0));
  return { images: tensor(be, img, [B, 3, S, S]), tokens, lengths, T, labels };
}

for (const task of TASKS) {
  Deno.test(`task ${task}: loss is finite and every parameter gets a gradient`, async () => {
    setInitSeed(1);
    const be = await createBackend("ref");
    const model = await PretrainingModel.create(be, {
      task: task as TaskName,
      visual: "resnet18",
      textual: task === "token_classification" || task === "multilabel_classification"
        ? "linear"
        : "transdec_postnorm::L1_H32_A2_F64",
      vocabSize: 16,
      numClasses: 5,
    });
    const batch = batchFor(be, 2, 16);
    const value = await tidy(() => {
      const { loss } = model.loss(batch);
      loss.backward();
      return loss;
    }).item();
    assert(Number.isFinite(value) && value > 0, `loss ${value}`);
    // Zero-initialised last BN gammas block gradients into the first conv of each block at
    // step 1 only for the residual branch's earlier layers; the heads must all get gradients.
    for (const [name, p] of model.namedParameters()) {
      if (!name.startsWith("textual") && !name.startsWith("backward_textual")) continue;
      assert(p.grad, `no gradient for ${name}`);
    }
    if (task === "bicaptioning") {
      // The backward decoder starts as a copy of the forward one and shares the embedding,
      // visual projection and output bias (as the reference); its decoder layers are its own.
      const fwd = model.textual!, bwd = model.backwardTextual!;
      assert(bwd.embedding === fwd.embedding);
      assert(bwd.visualProjection === fwd.visualProjection);
      assert(bwd.outputBias === fwd.outputBias);
      assert(bwd.layers[0] !== fwd.layers[0]);
      assert.deepStrictEqual(
        await bwd.layers[0].linear1.weight.f32(),
        await fwd.layers[0].linear1.weight.f32(),
      );
      const names = model.namedParameters().map(([n]) => n);
      assert(!names.some((n) => n.startsWith("backward_textual.visual_projection")));
    }
    if (task === "captioning") {
      // A random model's loss is near log(V).
      assert(Math.abs(value - Math.log(16)) < 1.0, `loss ${value} vs log 16`);
    }
    model.dispose();
  });
}

Deno.test("greedy captions return token ids without specials", async () => {
  setInitSeed(2);
  const be = await createBackend("ref");
  const model = await PretrainingModel.create(be, {
    task: "captioning",
    visual: "resnet18",
    textual: "transdec_prenorm::L1_H32_A2_F64",
    vocabSize: 12,
  });
  const batch = batchFor(be, 2, 16);
  const caps = await model.greedyCaptions(batch.images, 5);
  assert.deepStrictEqual(caps.length, 2);
  for (const c of caps) {
    assert(c.length <= 5);
    for (const id of c) assert(id > 2 && id < 12, `id ${id}`);
  }
});
