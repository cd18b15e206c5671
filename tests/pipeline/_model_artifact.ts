/**
 * A fake cache for tests of commands that read a pretrain artifact (caption, zero-shot evaluate):
 * artifacts/tok/vocab.json (given word pieces) and artifacts/model/{model.json,
 * model.safetensors}, laid out as a pretrain artifact next to its tokenize artifact; and a drawn
 * test scene.
 */
import { join } from "node:path";
import { createBackend } from "../../engine/device.ts";
import { setInitSeed } from "../../engine/init.ts";
import { saveSafetensors } from "../../engine/safetensors.ts";
import type { RgbImage } from "../../pipeline/data/types.ts";
import { createImage, fillCircle } from "../../pipeline/image/draw.ts";
import { PretrainingModel, type TaskName } from "../../pipeline/model/tasks.ts";
import { Vocab } from "../../pipeline/tokenize/vocab.ts";
import type { Artifact } from "../../pipeline/stage.ts";

/** The word pieces of the default fake vocabulary (after the four specials). */
export const WORDS = ["▁a", "▁red", "▁blue", "▁circle", "▁square", "▁left", "▁of", "▁two"];

/**
 * A vocabulary of the specials and `words` (in order), for decoding only: without character
 * pieces the BPE encoder cannot produce these words (train one with trainVocab to encode).
 */
export function wordVocab(words: readonly string[]): Vocab {
  return Vocab.fromTrained(
    words.map((piece, i) => ({ piece, freq: 1000 - i })),
    { nfkd: true, stripAccents: true, lowercase: true },
  );
}

/**
 * Writes `model` (its config in model.json) and `vocab` into a new temp cache; returns its root,
 * the model folder and an Artifact record of it (for runStage inputs).
 */
export async function writeModelArtifact(o: {
  model: PretrainingModel;
  vocab: Vocab;
  imageSize: number;
  captionLength?: number;
}): Promise<{ root: string; modelDir: string; artifact: Artifact }> {
  const root = await Deno.makeTempDir({ prefix: "virtex-model-test-" });
  const tokDir = join(root, "artifacts", "tok"), modelDir = join(root, "artifacts", "model");
  await Deno.mkdir(tokDir, { recursive: true });
  await Deno.mkdir(modelDir, { recursive: true });
  const vocab = o.vocab;
  if (vocab.size !== o.model.config.vocabSize) {
    throw new Error(`fake artifact: ${vocab.size} pieces, model has ${o.model.config.vocabSize}`);
  }
  await Deno.writeTextFile(join(tokDir, "vocab.json"), JSON.stringify(vocab.toJson()));
  await saveSafetensors(join(modelDir, "model.safetensors"), o.model.stateDict());
  const { task, visual, textual, vocabSize, maxLength } = o.model.config;
  await Deno.writeTextFile(
    join(modelDir, "model.json"),
    JSON.stringify({
      task,
      visual,
      textual,
      vocabSize,
      maxLength: maxLength ?? 30,
      imageSize: o.imageSize,
      tokens: "tok",
      numClasses: null,
      captionLength: o.captionLength ?? maxLength ?? 30,
    }),
  );
  // A key of its own (cache keys of stages reading it include it).
  const key = Array.from(crypto.getRandomValues(new Uint8Array(32)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const artifact = {
    key,
    dir: modelDir,
    manifest: {
      key,
      stage: "pretrain",
      stageVersion: "1",
      config: {},
      inputs: {},
      inputFiles: {},
      created: new Date(0).toISOString(),
      files: [],
      summary: {},
    },
  };
  return { root, modelDir, artifact };
}

/** A fake cache with a random-weight model of `task` (resnet18_w8, L1_H32 decoder, 64 px). */
export async function fakeModelArtifact(
  o: { task: TaskName; seed: number; captionLength?: number },
): Promise<{ root: string; modelDir: string }> {
  setInitSeed(o.seed);
  const be = await createBackend("wasm");
  const model = await PretrainingModel.create(be, {
    task: o.task,
    visual: "resnet18_w8",
    textual: "transdec_postnorm::L1_H32_A2_F64",
    vocabSize: wordVocab(WORDS).size,
    maxLength: 30,
  });
  try {
    return await writeModelArtifact({
      model,
      vocab: wordVocab(WORDS),
      imageSize: 64,
      captionLength: o.captionLength,
    });
  } finally {
    model.dispose();
  }
}

/** An 80×64 grey image with a red circle whose position depends on `seed`. */
export function scene(seed: number): RgbImage {
  const img = createImage(80, 64, [200, 200, 200]);
  fillCircle(img, 20 + seed * 10, 30, 12, [200, 30, 30]);
  return img;
}
