/**
 * CapPa (model.task=cappa): both losses and every gradient against the PyTorch reference written
 * by tools/cappa_fixture.py, the fixture's regeneration, and the task inside PretrainingModel.
 */
import assert from "node:assert";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import type { HostTensor } from "../../../engine/nn/module.ts";
import { loadSafetensors } from "../../../engine/safetensors.ts";
import { tidy } from "../../../engine/scope.ts";
import { tensor } from "../../../engine/tensor.ts";
import { cappaLoss, parallelRows } from "../../../pipeline/model/caption_losses.ts";
import { parseHeadName } from "../../../pipeline/model/names.ts";
import { PretrainingModel } from "../../../pipeline/model/tasks.ts";
import { TransformerTextualHead } from "../../../pipeline/model/textual_heads.ts";
import { assertClose } from "../../engine/suite_util.ts";

const FIXTURE = new URL("../../fixtures/model/cappa.safetensors", import.meta.url).pathname;

function group(all: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of all) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

for (const device of ["ref", "wasm"] as const) {
  Deno.test(`cappa loss, its parts and gradients match PyTorch (${device})`, async () => {
    const { tensors: fx, metadata } = await loadSafetensors(FIXTURE);
    const meta = Object.fromEntries(
      Object.entries(metadata).map(([k, v]) => [k, JSON.parse(v)]),
    );
    const be = await createBackend(device);
    const [B, C, h, w] = fx.get("input.grid")!.shape;
    const T = fx.get("input.tokens")!.shape[1];
    assert.strictEqual(parallelRows(B, meta.fraction), meta.parallel_rows);
    const head = new TransformerTextualHead(be, parseHeadName(meta.head), C, meta.vocab, {
      dropout: 0,
      maxLength: meta.max_length,
    });
    head.loadStateDict(group(fx, "param."));
    const grid = tensor(be, fx.get("input.grid")!.data, [B, C, h, w]).persist();
    grid.requiresGrad = true;
    const tokens = Int32Array.from(fx.get("input.tokens")!.data);
    const lengths = Array.from(fx.get("input.lengths")!.data);
    const r = tidy(() => {
      const r = cappaLoss(head, grid, tokens, lengths, T, meta.fraction);
      r.loss.backward();
      return r;
    });
    const tol = 2e-5;
    assertClose("loss", [await r.loss.item()], fx.get("loss")!.data, tol);
    assertClose("parallel", [await r.parallel!.item()], fx.get("parallel")!.data, tol);
    assertClose(
      "autoregressive",
      [await r.autoregressive!.item()],
      fx.get("autoregressive")!.data,
      tol,
    );
    assertClose("grad grid", await grid.grad!.data(), fx.get("grad_input.grid")!.data, 1e-4);
    const want = group(fx, "grad.");
    const params = head.namedParameters();
    assert.strictEqual(params.length, want.size);
    for (const [name, p] of params) {
      assert(want.has(name), `fixture has no gradient for ${name}`);
      assertClose(`grad ${name}`, await p.grad!.data(), want.get(name)!.data, 1e-4);
    }
    head.dispose();
  });
}

Deno.test("cappa: all-parallel and all-autoregressive batches give one part each", async () => {
  const { tensors: fx } = await loadSafetensors(FIXTURE);
  const be = await createBackend("ref");
  const [B, C, h, w] = fx.get("input.grid")!.shape;
  const T = fx.get("input.tokens")!.shape[1];
  const head = new TransformerTextualHead(
    be,
    parseHeadName("transdec_postnorm::L1_H16_A2_F32"),
    C,
    12,
    {
      dropout: 0,
      maxLength: 8,
    },
  );
  head.loadStateDict(group(fx, "param."));
  const grid = tensor(be, fx.get("input.grid")!.data, [B, C, h, w]);
  const tokens = Int32Array.from(fx.get("input.tokens")!.data);
  const lengths = Array.from(fx.get("input.lengths")!.data);
  const all = cappaLoss(head, grid, tokens, lengths, T, 1);
  assert(all.parallel && !all.autoregressive);
  assert.strictEqual(await all.loss.item(), await all.parallel.item());
  const none = cappaLoss(head, grid, tokens, lengths, T, 0);
  assert(!none.parallel && none.autoregressive);
  // The parallel part does not depend on the captions' inputs: changing a token's value changes
  // only its own target's loss, and the autoregressive part sees it as input too.
  assert.notStrictEqual(await all.loss.item(), await none.loss.item());
  head.dispose();
});

Deno.test("task cappa trains both parts inside PretrainingModel", async () => {
  setInitSeed(3);
  const be = await createBackend("ref");
  const model = await PretrainingModel.create(be, {
    task: "cappa",
    visual: "resnet18_w8",
    textual: "transdec_postnorm::L1_H32_A2_F64",
    vocabSize: 16,
    parallelFraction: 0.5,
  });
  assert(model.textual && !model.backwardTextual);
  const B = 4, S = 16, T = 6;
  const tokens = new Int32Array(B * T), lengths = [6, 4, 5, 3];
  lengths.forEach((L, b) => {
    tokens[b * T] = 1;
    for (let t = 1; t < L - 1; t++) tokens[b * T + t] = 4 + ((b + t) % 12);
    tokens[b * T + L - 1] = 2;
  });
  const images = tensor(be, new Float32Array(B * 3 * S * S).map((_, i) => Math.cos(i)), [
    B,
    3,
    S,
    S,
  ]);
  const { loss, parts } = tidy(() => {
    const r = model.loss({ images, tokens, lengths, T });
    r.loss.backward();
    return r;
  });
  assert.deepStrictEqual(Object.keys(parts).sort(), ["autoregressive", "parallel"]);
  const l = await loss.item();
  assert(Math.abs(l - Math.log(16)) < 1, `loss ${l} vs log 16`);
  for (const [name, p] of model.namedParameters()) {
    if (name.startsWith("textual")) assert(p.grad, `no gradient for ${name}`);
  }
  model.dispose();
});

const python = "/usr/bin/python3";
const hasTorch = await new Deno.Command(python, { args: ["-c", "import torch"] })
  .output().then((o) => o.code === 0, () => false);
if (!hasTorch) {
  console.log("skipping cappa fixture regeneration: /usr/bin/python3 with torch absent");
}

Deno.test({
  name: "tools/cappa_fixture.py regenerates the committed fixture",
  ignore: !hasTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const script = new URL("../../../tools/cappa_fixture.py", import.meta.url).pathname;
      const out = await new Deno.Command(python, { args: [script, "--out", dir] }).output();
      assert.strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
      const fresh = (await loadSafetensors(`${dir}/cappa.safetensors`)).tensors;
      const kept = (await loadSafetensors(FIXTURE)).tensors;
      assert.deepStrictEqual([...fresh.keys()].sort(), [...kept.keys()].sort());
      for (const [name, t] of kept) assertClose(name, fresh.get(name)!.data, t.data, 1e-6);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
