/**
 * A fake cache for captioning tests: artifacts/tok/vocab.json (a few word pieces) and
 * artifacts/model/{model.json, model.safetensors} with random weights, laid out as a pretrain
 * artifact next to its tokenize artifact; and a drawn test scene.
 */
import { join } from "node:path";
import { createBackend } from "../../../engine/device.ts";
import { setInitSeed } from "../../../engine/init.ts";
import { saveSafetensors } from "../../../engine/safetensors.ts";
import type { RgbImage } from "../../../pipeline/data/types.ts";
import { createImage, fillCircle } from "../../../pipeline/image/draw.ts";
import { PretrainingModel, type TaskName } from "../../../pipeline/model/tasks.ts";
import { Vocab } from "../../../pipeline/tokenize/vocab.ts";

/** The word pieces of the fake vocabulary (after the four specials). */
export const WORDS = ["▁a", "▁red", "▁blue", "▁circle", "▁square", "▁left", "▁of", "▁two"];

/** Writes the fake cache into a new temp folder; returns it and the model artifact's folder. */
export async function fakeModelArtifact(
  o: { task: TaskName; seed: number; captionLength?: number },
): Promise<{ root: string; modelDir: string }> {
  const root = await Deno.makeTempDir({ prefix: "virtex-caption-test-" });
  const tokDir = join(root, "artifacts", "tok"), modelDir = join(root, "artifacts", "model");
  await Deno.mkdir(tokDir, { recursive: true });
  await Deno.mkdir(modelDir, { recursive: true });
  const vocab = Vocab.fromTrained(
    WORDS.map((piece, i) => ({ piece, freq: 100 - i })),
    { nfkd: true, stripAccents: true, lowercase: true },
  );
  await Deno.writeTextFile(join(tokDir, "vocab.json"), JSON.stringify(vocab.toJson()));
  const config = {
    task: o.task,
    visual: "resnet18_w8",
    textual: "transdec_postnorm::L1_H32_A2_F64",
    vocabSize: vocab.size,
    maxLength: 30,
  };
  setInitSeed(o.seed);
  const be = await createBackend("wasm");
  const model = await PretrainingModel.create(be, config);
  await saveSafetensors(join(modelDir, "model.safetensors"), model.stateDict());
  model.dispose();
  await Deno.writeTextFile(
    join(modelDir, "model.json"),
    JSON.stringify({
      ...config,
      imageSize: 64,
      tokens: "tok",
      numClasses: null,
      captionLength: o.captionLength ?? 30,
    }),
  );
  return { root, modelDir };
}

/** An 80×64 grey image with a red circle whose position depends on `seed`. */
export function scene(seed: number): RgbImage {
  const img = createImage(80, 64, [200, 200, 200]);
  fillCircle(img, 20 + seed * 10, 30, 12, [200, 30, 30]);
  return img;
}
