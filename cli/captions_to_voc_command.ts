/** `virtex captions-to-voc`: a VOC2007-style multi-label set whose classes are caption words. */
import {
  captionsToVoc,
  DEFAULT_CAPTION_CLASSES,
  readClassFile,
} from "../pipeline/data/captions_to_voc.ts";
import { readCaptions } from "../pipeline/stages/ingest.ts";
import { out, parseFlags, UsageError } from "./common.ts";

/** The `captions-to-voc --help` text. */
export const CAPTIONS_TO_VOC_HELP =
  `usage: ./virtex captions-to-voc --captions FILE --out DIR [options]

Builds a PASCAL VOC2007-style classification folder (JPEGImages/, ImageSets/Main/<class>_<split>.txt)
whose classes are caption words, from images with several captions each (Flickr8k CSV or COCO
captions JSON). An image is positive for a class when at least 2 of its captions use the word or a
synonym, difficult (0, left out of the VOC07 protocol) when exactly 1 does, negative otherwise.
Images are divided into trainval and test by a seeded shuffle. Use a split you do not pretrain on.

options:
  --captions FILE       Flickr8k-style CSV (images/ beside it) or COCO captions JSON
  --images DIR          images folder (default: beside the captions file)
  --split FILE          only the images listed (one per line), e.g. splits/val.txt
  --out DIR             output folder (written atomically; must not exist unless --force)
  --classes FILE        JSON {"class": ["word", "synonym", "two words", ...], ...}
                        (default: ${Object.keys(DEFAULT_CAPTION_CLASSES).join(", ")})
  --test-fraction F     share of images in the test split (default 0.5)
  --min-mentions N      captions that must use a class word for a positive (default 2)
  --seed N              seed of the trainval/test shuffle (default 0)
  --copy                copy images instead of symlinking them
  --force               replace an existing output folder
  --json                print a one-line JSON summary

example (Flickr8k val, never used for pretraining):
  ./virtex captions-to-voc --captions ../shared/data/flickr8k/captions.txt \\
    --split ../shared/data/flickr8k/splits/val.txt --out data/flickr8k-val-words`;

function numberFlag(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`captions-to-voc: --${name} must be a number`);
  return n;
}

/** Runs the command; returns the exit code. */
export async function captionsToVocCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    captions: { type: "string" },
    images: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    classes: { type: "string" },
    "test-fraction": { type: "string" },
    "min-mentions": { type: "string" },
    seed: { type: "string" },
    copy: { type: "boolean" },
    force: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "captions-to-voc");
  if (values.help) {
    out(CAPTIONS_TO_VOC_HELP);
    return 0;
  }
  if (!values.captions || !values.out) {
    throw new UsageError("captions-to-voc: --captions and --out are required");
  }
  const minMentions = numberFlag(values["min-mentions"], "min-mentions", 2);
  if (!Number.isInteger(minMentions) || minMentions < 1) {
    throw new UsageError("captions-to-voc: --min-mentions must be an integer >= 1");
  }
  const set = await readCaptions(
    {
      captions: values.captions,
      format: "auto",
      images: "",
      split: "",
      checkImages: "exists",
      skipBad: false,
    },
    { captions: values.captions, images: values.images, split: values.split },
  );
  const r = await captionsToVoc({
    set,
    outDir: values.out,
    classes: values.classes ? readClassFile(values.classes) : undefined,
    testFraction: numberFlag(values["test-fraction"], "test-fraction", 0.5),
    minMentions,
    seed: numberFlag(values.seed, "seed", 0),
    copy: values.copy,
    force: values.force,
  });
  if (values.json) {
    out(JSON.stringify({ command: "captions-to-voc", ...r }));
  } else {
    for (const [split, n] of Object.entries(r.images)) {
      const pos = r.classes.map((c) => `${c} ${r.positives[split][c]}`).join(", ");
      out(`${split}: ${n} images; positives: ${pos}`);
    }
    out(`wrote ${r.outDir}`);
  }
  return 0;
}
