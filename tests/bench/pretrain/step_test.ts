import assert from "node:assert";
import { createRefBackend } from "../../../engine/backends/ref.ts";
import {
  type BenchCase,
  buildStep,
  captionLength,
  syntheticBatch,
} from "../../../bench/pretrain/step.ts";

/** A tiny case with the bench's structure (bicaptioning, resnet18, post-norm decoder). */
const TINY: BenchCase = {
  key: "tiny",
  visual: "resnet18",
  textual: "transdec_postnorm::L1_H64_A2_F128",
  size: 32,
  batch: 2,
  vocab: 100,
  maxLength: 30,
  accumulate: 1,
};

Deno.test("bench/pretrain: synthetic captions are [SOS] w… [EOS] of 18–24 tokens padded to 30", () => {
  const { tokens, lengths, images } = syntheticBatch({ ...TINY, batch: 8 }, 1);
  assert.deepStrictEqual(images.length, 8 * 3 * 32 * 32);
  for (let b = 0; b < 8; b++) {
    const L = lengths[b], row = tokens.subarray(b * 30, b * 30 + 30);
    assert.deepStrictEqual(L, captionLength(b, 1));
    assert.ok(L >= 18 && L <= 24);
    assert.deepStrictEqual(row[0], 1);
    assert.deepStrictEqual(row[L - 1], 2);
    for (let t = 1; t < L - 1; t++) assert.ok(row[t] >= 4 && row[t] < 100);
    for (let t = L; t < 30; t++) assert.deepStrictEqual(row[t], 0);
  }
});

Deno.test("bench/pretrain: a step trains the bicaptioning model and its loss starts near 2 ln V", async () => {
  const be = await createRefBackend();
  const r = await buildStep(be, TINY);
  try {
    const first = await r.step(0);
    assert.ok(Math.abs(first - 2 * Math.log(100)) < 0.5, `first loss ${first}`);
    const second = await r.step(1);
    assert.ok(Number.isFinite(second));
  } finally {
    r.dispose();
    be.destroy();
  }
});

Deno.test("bench/pretrain: a step with 2 accumulated micro-batches gives a finite loss near 2 ln V", async () => {
  const be = await createRefBackend();
  const r = await buildStep(be, { ...TINY, accumulate: 2 });
  try {
    const first = await r.step(0);
    assert.ok(Math.abs(first - 2 * Math.log(100)) < 0.5, `first loss ${first}`);
  } finally {
    r.dispose();
    be.destroy();
  }
  await assert.rejects(buildStep(be, { ...TINY, batch: 3, accumulate: 2 }), /not divisible/);
});

const hasTorch = (() => {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch, torchvision"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasTorch) {
  console.log("skip: torch_ref.py parameter parity (/usr/bin/python3 with torch missing)");
}

Deno.test({
  name: "bench/pretrain: torch_ref.py builds a model with our parameter count",
  ignore: !hasTorch,
  async fn() {
    const be = await createRefBackend();
    const r = await buildStep(be, TINY);
    const ours = r.parameters;
    r.dispose();
    be.destroy();
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [
        new URL("../../../bench/pretrain/torch_ref.py", import.meta.url).pathname,
        "--visual",
        TINY.visual,
        "--textual",
        TINY.textual,
        "--size",
        "32",
        "--batch",
        "2",
        "--vocab",
        "100",
        "--params-only",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.deepStrictEqual(JSON.parse(new TextDecoder().decode(out.stdout)).parameters, ours);
  },
});
