import { assert, assertEquals, assertRejects } from "../cache/_assert.ts";
import { join } from "node:path";
import { captionsToVoc, captionWordLabels } from "../../../pipeline/data/captions_to_voc.ts";
import { readFlickrCaptions } from "../../../pipeline/data/flickr.ts";
import { readVoc } from "../../../pipeline/data/voc.ts";
import { main } from "../../../cli/main.ts";
import { Cache } from "../../../pipeline/cache/store.ts";
import { runStage } from "../../../pipeline/runner.ts";
import { captionLabelsStage } from "../../../pipeline/stages/caption_labels.ts";
import { extractStage } from "../../../pipeline/stages/extract.ts";
import { tempDir, writeImages } from "./_fixtures.ts";

const CLASSES = { dog: ["dog", "puppy"], water: ["water", "lake"], climb: ["rock climbing"] };

/** A Flickr-style CSV: 6 images, 3 captions each, known word counts. */
async function flickrFixture(): Promise<string> {
  const root = tempDir();
  const names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"];
  await writeImages(join(root, "images"), names);
  const caps: Record<string, string[]> = {
    "a.jpg": ["A dog runs.", "A puppy plays by the lake.", "Dogs."], // dog 2, water 1, climb 0
    "b.jpg": ["Water, water.", "A LAKE at dusk", "A man is rock climbing"], // water 2, climb 1
    "c.jpg": ["A man", "A woman", "A hotdog stand"], // nothing: "hotdog" is not "dog"
    "d.jpg": ["Rock climbing up high", "rock  climbing", "A Dog"], // climb 2, dog 1
    "e.jpg": ["x", "y", "z"],
    "f.jpg": ["dog", "dog", "dog"],
  };
  const rows = Object.entries(caps).flatMap(([im, cs]) => cs.map((c) => `${im},"${c}"`));
  Deno.writeTextFileSync(join(root, "captions.txt"), ["image,caption", ...rows].join("\n") + "\n");
  return root;
}

Deno.test("captionWordLabels: >= 2 captions positive, 1 difficult, whole words and phrases", async () => {
  const root = await flickrFixture();
  const set = await readFlickrCaptions(join(root, "captions.txt"));
  const l = captionWordLabels(set, CLASSES);
  // rows a..f, columns dog, water, climb
  assertEquals(Array.from(l), [1, 0, -1, -1, 1, 0, -1, -1, -1, 0, -1, 1, -1, -1, -1, 1, -1, -1]);
});

Deno.test("captions-to-voc writes a VOC layout that readVoc reads back, split by seed", async () => {
  const root = await flickrFixture();
  const out = join(tempDir(), "words");
  const set = await readFlickrCaptions(join(root, "captions.txt"));
  const r = await captionsToVoc({ set, outDir: out, classes: CLASSES, testFraction: 0.5, seed: 3 });
  assertEquals(r.images, { trainval: 3, test: 3 });
  const train = await readVoc(out, "trainval");
  const test = await readVoc(out, "test");
  assertEquals(train.classes, ["climb", "dog", "water"]);
  const ids = [...train.images, ...test.images].map((i) => i.id).sort();
  assertEquals(ids, ["a", "b", "c", "d", "e", "f"]);
  const dogPos = r.positives.trainval.dog + r.positives.test.dog;
  assertEquals(dogPos, 2);
  assertEquals(r.difficult.trainval.dog + r.difficult.test.dog, 1);
  // The same seed gives the same division.
  const testIds = () => Deno.readTextFileSync(join(out, "ImageSets", "Main", "test.txt"));
  const before = testIds();
  const again = await captionsToVoc({ set, outDir: out, classes: CLASSES, seed: 3, force: true });
  assertEquals(again.positives, r.positives);
  assertEquals(testIds(), before);
  await assertRejects(() => captionsToVoc({ set, outDir: out, classes: CLASSES }), Error, "exists");
});

Deno.test("captions-to-voc command: --split keeps the listed images", async () => {
  const root = await flickrFixture();
  Deno.writeTextFileSync(join(root, "split.txt"), "a.jpg\nb.jpg\nd.jpg\nf.jpg\n");
  const out = join(tempDir(), "words");
  const code = await main([
    "captions-to-voc",
    "--captions",
    join(root, "captions.txt"),
    "--split",
    join(root, "split.txt"),
    "--out",
    out,
  ]);
  assertEquals(code, 0);
  const all = [...(await readVoc(out, "trainval")).images, ...(await readVoc(out, "test")).images];
  assertEquals(all.length, 4);
  assert(Deno.statSync(join(out, "ImageSets", "Main", "dog_test.txt")).isFile);
});

Deno.test("caption-labels stage: its artifact is a VOC set extract reads as `dataset`", async () => {
  const root = await flickrFixture();
  const cache = new Cache(join(root, "cache"));
  const quiet = () => {};
  const labels = await runStage(captionLabelsStage, {
    captions: join(root, "captions.txt"),
    classes: CLASSES,
  }, { cache, log: quiet });
  assertEquals(labels.artifact.manifest.summary.images, { trainval: 3, test: 3 });
  assert(Deno.statSync(join(labels.artifact.dir, "ImageSets", "Main", "dog_test.txt")).isFile);
  const feats = await runStage(extractStage, {
    weights: "random",
    arch: "resnet18_w8_os16",
    size: 16,
    resize: 16,
    device: "wasm",
  }, { cache, log: quiet, inputs: { dataset: labels.artifact } });
  assertEquals(feats.artifact.manifest.summary.splits, { trainval: 3, test: 3 });
});
