/**
 * Captioning with a (random-weight) model laid out like a pretrain artifact in a cache: the step
 * function agrees with the model's own greedy decoder, attention rows are distributions over the
 * grid, and the caption command writes captions, the attention PNG and CIDEr-D.
 */
import { assert, assertEquals } from "../cache/_assert.ts";
import { join } from "node:path";
import { tensor } from "../../../engine/tensor.ts";
import {
  type Captioner,
  captionImages,
  openCaptioner,
} from "../../../pipeline/caption/captioner.ts";
import { applyEval } from "../../../pipeline/augment/transforms.ts";
import { encodePng } from "../../../pipeline/image/png.ts";
import { captionCommand } from "../../../cli/caption_command.ts";
import { fakeModelArtifact, scene } from "../_model_artifact.ts";

/** A fake cache with a random-weight bicaptioning model (see _fake_artifact.ts). */
function fakeArtifact(): Promise<{ root: string; modelDir: string }> {
  return fakeModelArtifact({ task: "bicaptioning", seed: 5 });
}

const fixture = fakeArtifact();
let captioner: Promise<Captioner> | null = null;
function sharedCaptioner(): Promise<Captioner> {
  return captioner ??= fixture.then(({ modelDir }) => openCaptioner(modelDir, { device: "wasm" }));
}

Deno.test("greedy over the step function equals the model's own greedy decoder", async () => {
  const c = await sharedCaptioner();
  assertEquals(c.transform.size, 64);
  const imgs = [scene(0), scene(3)];
  const ours = await captionImages(c, imgs, "greedy", { maxSteps: 29 });
  const S = 64, batch = new Float32Array(2 * 3 * S * S);
  imgs.forEach((im, b) => applyEval(c.kernel, im, c.transform, batch, b * 3 * S * S));
  const theirs = await c.model.greedyCaptions(tensor(c.backend, batch, [2, 3, S, S]));
  assertEquals(ours.map((r) => r.tokens), theirs);
  assertEquals(ours[0].text, c.vocab.decode(theirs[0]));
});

Deno.test("attention: one distribution over the h×w grid per generated token", async () => {
  const c = await sharedCaptioner();
  const [r] = await captionImages(c, [scene(1)], "beam", { attention: true, maxSteps: 6 });
  assert(r.tokens.length <= 6);
  assertEquals(r.grid, [2, 2]); // 64 px / 32
  assertEquals(r.attention!.length, Math.min(r.tokens.length + 1, 6));
  for (const row of r.attention!) {
    assertEquals(row.length, 4);
    assert(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  }
});

Deno.test("caption command: captions + attention PNG, and CIDEr-D over a COCO split", async () => {
  const { root, modelDir } = await fixture;
  const imgDir = join(root, "val2017");
  await Deno.mkdir(imgDir);
  const images = [], annotations = [];
  for (let i = 0; i < 3; i++) {
    const im = scene(i);
    await Deno.writeFile(join(imgDir, `${i + 1}.png`), encodePng(im));
    images.push({ id: i + 1, file_name: `${i + 1}.png` });
    annotations.push({ id: 10 + i, image_id: i + 1, caption: "a red circle" });
    annotations.push({ id: 20 + i, image_id: i + 1, caption: "a red circle left of two squares" });
  }
  const refs = join(root, "captions_val2017.json");
  await Deno.writeTextFile(refs, JSON.stringify({ images, annotations }));
  const png = join(root, "att.png");
  const code = await captionCommand([
    "--model",
    modelDir,
    "--device",
    "wasm",
    "--max-steps",
    "5",
    "--attention",
    png,
    join(imgDir, "1.png"),
    join(imgDir, "2.png"),
  ]);
  assertEquals(code, 0);
  const bytes = await Deno.readFile(png);
  assertEquals([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  const out = join(root, "caps.json");
  const split = join(root, "split.txt");
  await Deno.writeTextFile(split, "1.png\n3\n");
  assertEquals(
    await captionCommand([
      "--model",
      modelDir,
      "--device",
      "wasm",
      "--decode",
      "greedy",
      "--max-steps",
      "5",
      "--references",
      refs,
      "--images",
      imgDir,
      "--split",
      split,
      "--out",
      out,
    ]),
    0,
  );
  const caps = JSON.parse(await Deno.readTextFile(out));
  assertEquals(caps.map((c: { image_id: number }) => c.image_id), [1, 3]);
  assert(typeof caps[0].caption === "string");
  await Deno.remove(root, { recursive: true });
});
