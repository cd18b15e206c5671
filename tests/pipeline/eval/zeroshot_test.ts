/**
 * Zero-shot classification by caption likelihood: prompts, the likelihood computation (equal to
 * the training loss of the same caption, whatever the batching), class scores and metrics, and
 * the whole `evaluate protocol=zeroshot` on a case whose answer is known: a tiny captioning model
 * trained to say the colour of plain images ranks the true colour first (top-1 100 % on class
 * folders, mAP 100 on a VOC layout), and an untrained one does not.
 */
import assert from "node:assert";
import { join } from "node:path";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { tidy } from "../../../engine/scope.ts";
import { tensor } from "../../../engine/tensor.ts";
import { Cache } from "../../../pipeline/cache/store.ts";
import { classScores, multiLabelMetrics, topOneCorrect } from "../../../pipeline/eval/zeroshot.ts";
import {
  displayName,
  encodePrompts,
  promptTexts,
} from "../../../pipeline/eval/zeroshot_prompts.ts";
import {
  headsFor,
  promptLogLikelihoods,
  promptMatrix,
} from "../../../pipeline/eval/zeroshot_scores.ts";
import { encodePng } from "../../../pipeline/image/png.ts";
import { createImage } from "../../../pipeline/image/draw.ts";
import { EOS, PretrainingModel, SOS } from "../../../pipeline/model/tasks.ts";
import { buildOptimizer } from "../../../pipeline/pretrain/optimizer.ts";
import { optimSchema } from "../../../pipeline/pretrain/config.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { evaluateStage } from "../../../pipeline/stages/evaluate.ts";
import { Tokenizer, trainVocab } from "../../../pipeline/tokenize/tokenizer.ts";
import type { Vocab } from "../../../pipeline/tokenize/vocab.ts";
import { writeModelArtifact } from "../_model_artifact.ts";

Deno.test("zero-shot prompts: templates, display names, extra prompts, checks", async () => {
  const texts = promptTexts({
    classes: ["dog", "pottedplant", "red_circle"],
    templates: ["a photo of a {class}.", "a {class}"],
    extra: { dog: ["a puppy.", "a {class}"] },
    names: { dog: "hound" },
  });
  assert.deepStrictEqual(texts, [
    { text: "a photo of a hound.", classIndex: 0 },
    { text: "a hound", classIndex: 0 },
    { text: "a puppy.", classIndex: 0 },
    { text: "a {class}", classIndex: 0 }, // extra prompts are taken literally
    { text: "a photo of a potted plant.", classIndex: 1 },
    { text: "a potted plant", classIndex: 1 },
    { text: "a photo of a red circle.", classIndex: 2 },
    { text: "a red circle", classIndex: 2 },
  ]);
  assert.strictEqual(displayName("tvmonitor"), "tv monitor");
  const base = { classes: ["a", "b"], templates: ["{class}"], extra: {}, names: {} };
  assert.throws(() => promptTexts({ ...base, extra: { c: ["x"] } }), /"c" is not a class/);
  assert.throws(() => promptTexts({ ...base, templates: ["a photo"] }), /no \{class\}/);
  assert.throws(() => promptTexts({ ...base, templates: [] }), /class "a" has no prompt/);
  const tok = await Tokenizer.create(await colourVocab());
  const [p] = encodePrompts(tok, [{ text: "Red blue", classIndex: 1 }], 30, SOS, EOS);
  assert.deepStrictEqual(p.ids, [SOS, ...tok.encode("red"), ...tok.encode("blue"), EOS]);
  assert.strictEqual(p.ids.length, 4);
  assert.throws(
    () => encodePrompts(tok, [{ text: "red blue red", classIndex: 0 }], 4, SOS, EOS),
    /"red blue red" is 5 tokens/,
  );
});

Deno.test("class scores average a class's prompts; metrics", () => {
  const prompts = [
    { text: "", classIndex: 0, ids: [1, 4, 2] },
    { text: "", classIndex: 1, ids: [1, 5, 6, 2] },
    { text: "", classIndex: 1, ids: [1, 5, 2] },
  ];
  const ll = Float32Array.from([-2, -6, -4, -1, -3, -9]); // 2 images × 3 prompts
  assert.deepStrictEqual([...classScores(ll, prompts, 2, "sum")], [-2, -5, -1, -6]);
  assert.deepStrictEqual([...classScores(ll, prompts, 2, "mean")], [-1, -2, -0.5, -2.75]);
  // Multi-label: difficult (0) rows left out, classes without positives skipped.
  const scores = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.1, 0.6]);
  const labels = Int8Array.from([1, -1, -1, 1, 0, -1, -1, -1]);
  const m = multiLabelMetrics(scores, labels, ["x", "y"]);
  assert.deepStrictEqual(m.perClass.map((c) => [c.name, c.ap, c.positives]), [["x", 1, 1], [
    "y",
    1,
    1,
  ]]);
  const m2 = multiLabelMetrics(scores, Int8Array.from([1, -1, -1, -1, 0, -1, -1, -1]), ["x", "y"]);
  assert.deepStrictEqual(m2.skipped, ["y"]);
  assert.deepStrictEqual(
    topOneCorrect(Float32Array.from([1, 2, 5, 3]), Int8Array.from([-1, 1, -1, 1]), 2),
    [true, false],
  );
});

Deno.test("prompt likelihoods equal the training loss of the caption, however batched", async () => {
  setInitSeed(4);
  const be = await createBackend("wasm");
  const V = 12;
  const model = await PretrainingModel.create(be, {
    task: "bicaptioning",
    visual: "resnet18_w8",
    textual: "transdec_postnorm::L1_H16_A2_F32",
    vocabSize: V,
    dropout: 0,
    initStd: 0.5, // captions that depend on the image, so a mixed-up image would show
  });
  model.eval();
  const S = 32, B = 3, n = 3 * S * S;
  const pixels = new Float32Array(B * n).map((_, i) =>
    2 * Math.sin(i * (0.13 + 0.4 * Math.floor(i / n)))
  );
  const images = tensor(be, pixels, [B, 3, S, S]).persist();
  const prompts = [[SOS, 4, 5, EOS], [SOS, 6, EOS], [SOS, 7, 8, 9, 10, EOS]];
  const m = promptMatrix(prompts);
  const all = await promptLogLikelihoods(model, images, m, { directions: "both", pairBatch: 512 });
  const byOne = await promptLogLikelihoods(model, images, m, { directions: "both", pairBatch: 1 });
  const byFour = await promptLogLikelihoods(model, images, m, { directions: "both", pairBatch: 4 });
  for (let i = 0; i < all.length; i++) {
    assert(Math.abs(all[i] - byOne[i]) < 1e-4 && Math.abs(all[i] - byFour[i]) < 1e-4, `row ${i}`);
  }
  // Against the model's own loss: one image, one caption, both directions (mean CE per token).
  for (const [b, p] of [[0, 0], [2, 2], [1, 1]]) {
    const T = prompts[p].length;
    const one = tensor(be, pixels.slice(b * 3 * S * S, (b + 1) * 3 * S * S), [1, 3, S, S]);
    const parts = await tidy(() =>
      model.loss({ images: one, tokens: Int32Array.from(prompts[p]), lengths: [T], T }).parts
    );
    const fwd = await parts.forward.item(), bwd = await parts.backward.item();
    for (const t of Object.values(parts)) t.dispose();
    const want = -(fwd + bwd) * (T - 1) / 2;
    assert(Math.abs(all[b * 3 + p] - want) < 1e-4, `image ${b} prompt ${p}: ${all[b * 3 + p]}`);
    const fwdOnly = await promptLogLikelihoods(model, one, promptMatrix([prompts[p]]), {
      directions: "forward",
      pairBatch: 8,
    });
    assert(Math.abs(fwdOnly[0] + fwd * (T - 1)) < 1e-4);
  }
  assert.strictEqual(headsFor(model, "backward")[0].head, model.backwardTextual);
  images.dispose();
  model.dispose();
  const captioning = await PretrainingModel.create(be, {
    task: "captioning",
    visual: "resnet18_w8",
    textual: "transdec_postnorm::L1_H16_A2_F32",
    vocabSize: V,
  });
  assert.strictEqual(headsFor(captioning, "both").length, 1);
  assert.throws(() => headsFor(captioning, "backward"), /no backward decoder/);
  captioning.dispose();
});

// ---- the known-answer case ----

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 30, 30],
  green: [30, 200, 40],
  blue: [30, 40, 220],
  yellow: [230, 220, 40],
};
const SIZE = 16;

/** A BPE vocabulary trained on the colour names (one piece each). */
function colourVocab() {
  const names = Object.keys(COLOURS);
  return trainVocab(Array.from({ length: 40 }, (_, i) => names[i % names.length]), {
    vocabSize: 60,
  });
}

/** A plain image of a colour with a little per-pixel noise. */
function plain(colour: [number, number, number], seed: number) {
  const img = createImage(SIZE + 4, SIZE + 4, colour);
  for (let i = 0; i < img.data.length; i++) {
    const n = Math.round(12 * Math.sin(i * 12.9898 + seed * 78.233));
    img.data[i] = Math.max(0, Math.min(255, img.data[i] + n));
  }
  return img;
}

/** A captioning model trained on plain colour images captioned with their colour's name. */
async function trainColourModel(vocab: Vocab, steps: number): Promise<PretrainingModel> {
  setInitSeed(11);
  const be = await createBackend("wasm");
  const tok = await Tokenizer.create(vocab);
  const model = await PretrainingModel.create(be, {
    task: "captioning",
    visual: "resnet18_w8_os16",
    textual: "transdec_postnorm::L1_H16_A2_F32",
    vocabSize: vocab.size,
    dropout: 0,
    initStd: 0.2, // the image reaches the decoder's output within a few steps
  });
  const optimizer = buildOptimizer(
    model.namedParameters(),
    optimSchema.parse({ cnnLr: 0.1, headLr: 0.1, weightDecay: 0, lookaheadK: 0 }),
  );
  const colours = Object.values(COLOURS), K = colours.length, per = 4, B = K * per, T = 3;
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  for (let step = 0; step < steps; step++) {
    const pixels = new Float32Array(B * 3 * SIZE * SIZE), tokens = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const k = b % K, img = plain(colours[k], step * B + b);
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < SIZE; y++) {
          for (let x = 0; x < SIZE; x++) {
            const v = img.data[((y + 2) * img.width + x + 2) * 3 + ch] / 255;
            pixels[((b * 3 + ch) * SIZE + y) * SIZE + x] = (v - mean[ch]) / std[ch];
          }
        }
      }
      const ids = [SOS, ...tok.encode(Object.keys(COLOURS)[k]), EOS];
      if (ids.length !== T) throw new Error(`colour ${k}: ${ids.length} tokens`);
      tokens.set(ids, b * T);
    }
    const images = tensor(be, pixels, [B, 3, SIZE, SIZE]);
    tidy(() => model.loss({ images, tokens, lengths: new Array(B).fill(T), T }).loss.backward());
    optimizer.step();
    model.zeroGrad();
    images.dispose();
  }
  return model;
}

/** Class folders val/<colour>/<i>.png and a VOC layout with one colour per image. */
async function writeColourSets(root: string): Promise<{ folders: string; voc: string }> {
  const folders = join(root, "colours"), voc = join(root, "voc");
  await Deno.mkdir(join(voc, "ImageSets", "Main"), { recursive: true });
  await Deno.mkdir(join(voc, "JPEGImages"), { recursive: true });
  const names = Object.keys(COLOURS), lines = new Map(names.map((c) => [c, [] as string[]]));
  let id = 0;
  for (const [k, c] of names.entries()) {
    await Deno.mkdir(join(folders, "val", c), { recursive: true });
    for (let i = 0; i < 3; i++, id++) {
      const png = encodePng(plain(COLOURS[c], 1000 + id));
      await Deno.writeFile(join(folders, "val", c, `${i}.png`), png);
      await Deno.writeFile(join(voc, "JPEGImages", `${id}.png`), png);
      names.forEach((other, j) => lines.get(other)!.push(`${id} ${j === k ? " 1" : "-1"}`));
    }
  }
  for (const [c, l] of lines) {
    await Deno.writeTextFile(join(voc, "ImageSets", "Main", `${c}_test.txt`), l.join("\n") + "\n");
  }
  return { folders, voc };
}

Deno.test("evaluate protocol=zeroshot ranks the true colour first (trained) and not by luck", async () => {
  const vocab = await colourVocab();
  const trained = await trainColourModel(vocab, 40);
  const untrained = await trainColourModel(vocab, 0);
  const a = await writeModelArtifact({ model: trained, vocab, imageSize: SIZE });
  const u = await writeModelArtifact({ model: untrained, vocab, imageSize: SIZE });
  trained.dispose();
  untrained.dispose();
  const sets = await writeColourSets(a.root);
  const cache = new Cache(join(a.root, "cache"));
  const run = async (model: typeof a, zeroshot: Record<string, unknown>) =>
    (await runStage(
      evaluateStage,
      { protocol: "zeroshot", zeroshot: { templates: ["{class}"], device: "wasm", ...zeroshot } },
      { cache, inputs: { model: model.artifact }, log: () => {} },
    )).artifact;
  try {
    const topArt = await run(a, { dataset: "classfolders", path: sets.folders });
    const top = topArt.manifest.summary;
    assert.strictEqual(top.metric, "top1");
    assert.strictEqual(top.top1, 100, JSON.stringify(top));
    assert.strictEqual(top.images, 12);
    const scores = await Deno.readFile(join(topArt.dir, "scores.f32"));
    assert.strictEqual(scores.byteLength, 12 * 4 * 4); // [N, K] f32
    assert.match(await Deno.readTextFile(join(topArt.dir, "report.md")), /top-1: 100\.00%/);
    const map = (await run(a, { dataset: "voc", path: sets.voc, calibration: "blank" }))
      .manifest.summary;
    assert.strictEqual(map.metric, "mAP");
    assert.strictEqual(map.mAP, 100, JSON.stringify(map));
    // The untrained model's decoder ignores the colour: far from perfect.
    const chance = (await run(u, { dataset: "classfolders", path: sets.folders })).manifest.summary;
    assert((chance.top1 as number) < 60, JSON.stringify(chance));
  } finally {
    await Deno.remove(a.root, { recursive: true });
    await Deno.remove(u.root, { recursive: true });
  }
});
