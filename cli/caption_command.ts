/** `virtex caption`: caption images with a pretrained model; attention maps; CIDEr-D on a split. */
import { dirname, resolve } from "node:path";
import { DEVICE_NAMES, isDeviceName } from "../engine/device.ts";
import { writeFileAtomic } from "../engine/safetensors.ts";
import { renderAttentionGrid } from "../pipeline/caption/attention.ts";
import { captionImages, openCaptioner, tokenText } from "../pipeline/caption/captioner.ts";
import { DECODE_METHODS, type DecodeMethod } from "../pipeline/caption/decoding.ts";
import { captionAndScore, readReferences } from "../pipeline/caption/split_eval.ts";
import { decodeImage } from "../pipeline/data/image.ts";
import type { RgbImage } from "../pipeline/data/types.ts";
import { encodePng } from "../pipeline/image/png.ts";
import { createProgress } from "../pipeline/progress.ts";
import { out, parseFlags, UsageError } from "./common.ts";
import { resolveModelPath } from "./export_command.ts";

/** The `caption --help` text. */
export const CAPTION_HELP = `usage: ./virtex caption --model REF [options] IMAGE...
       ./virtex caption --model REF --references FILE [--images DIR] [--split FILE] [options]

Captions images with the forward decoder of a pretrain artifact (task bicaptioning, captioning or
cappa).
The first form prints "<image>: <caption>" per image; --attention writes the decoder's
cross-attention for every generated token (heads averaged, upsampled bicubically, overlaid on the
model's centre crop) as one PNG grid, one block of rows per image. The second form captions every
image of a split and reports CIDEr-D (sigma 6, clipped, x10) against the references: a COCO
captions JSON (.json) or a Flickr8k-style CSV (image,caption).

options:
  --model REF           pretrain artifact (key, key prefix, ref) or its folder
  --decode METHOD       greedy | beam | nucleus | parallel (default beam: beam 5, <= 30 steps,
                        no immediate repeat of the previous token; nucleus: top-p 0.9, seeded;
                        parallel: cappa models only, every position at once from [MASK] inputs)
  --beam-size N         beam width (default 5)
  --top-p P             nucleus mass (default 0.9)
  --seed N              nucleus sampling seed (default 0)
  --max-steps N         most tokens per caption (default 30)
  --attention FILE.png  write the attention grid (first form)
  --references FILE     reference captions (second form)
  --images DIR          image folder of the references (default: the reader's layout guess)
  --split FILE          image ids / file names to caption (default: every referenced image)
  --out FILE.json       captions as JSON ([{image_id, caption}], COCO results style)
  --limit N             caption only the first N images of the split
  --batch-size N        images per backbone batch (default 16)
  --resize N            eval transform short side (default: the pretrain config's)
  --device NAME         ${DEVICE_NAMES.join(" | ")} (default auto)
  --json                print a one-line JSON summary`;

function intFlag(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new UsageError(`caption: --${name} must be a positive integer`);
  }
  return n;
}

/** Runs the command; returns the exit code. */
export async function captionCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    model: { type: "string" },
    decode: { type: "string" },
    "beam-size": { type: "string" },
    "top-p": { type: "string" },
    seed: { type: "string" },
    "max-steps": { type: "string" },
    attention: { type: "string" },
    references: { type: "string" },
    images: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    limit: { type: "string" },
    "batch-size": { type: "string" },
    resize: { type: "string" },
    device: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "caption");
  if (values.help) {
    out(CAPTION_HELP);
    return 0;
  }
  if (!values.model) throw new UsageError("caption: --model is required");
  const method = (values.decode ?? "beam") as DecodeMethod;
  if (!DECODE_METHODS.includes(method)) {
    throw new UsageError(`caption: --decode must be one of ${DECODE_METHODS.join(", ")}`);
  }
  if (!values.references && positionals.length === 0) {
    throw new UsageError("caption: give IMAGE... or --references FILE");
  }
  if (values.references && positionals.length > 0) {
    throw new UsageError("caption: give either IMAGE... or --references, not both");
  }
  const topP = values["top-p"] === undefined ? 0.9 : Number(values["top-p"]);
  if (!(topP > 0 && topP <= 1)) throw new UsageError("caption: --top-p must be in (0, 1]");
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new UsageError("caption: --seed must be an integer");
  const device = values.device ?? "auto";
  if (!isDeviceName(device)) {
    throw new UsageError(`caption: --device must be one of ${DEVICE_NAMES.join(", ")}`);
  }
  const decodeOpts = {
    beamSize: intFlag(values["beam-size"], "beam-size", 5),
    maxSteps: intFlag(values["max-steps"], "max-steps", 30),
    topP,
    seed,
  };
  const batchSize = intFlag(values["batch-size"], "batch-size", 16);
  const modelDir = resolveModelPath(values.model);
  const c = await openCaptioner(modelDir, {
    device,
    resize: values.resize ? intFlag(values.resize, "resize", 256) : undefined,
  });

  if (values.references) {
    const refs = await readReferences(values.references, {
      imagesDir: values.images,
      split: values.split,
    });
    if (values.limit) refs.images = refs.images.slice(0, intFlag(values.limit, "limit", 1));
    const bar = createProgress(`caption (${method})`, refs.images.length, "img");
    const t0 = performance.now();
    const r = await captionAndScore(c, refs, method, { ...decodeOpts, batchSize, progress: bar });
    bar.done();
    const seconds = (performance.now() - t0) / 1000;
    if (values.out) {
      await Deno.mkdir(dirname(resolve(values.out)), { recursive: true });
      await writeFileAtomic(
        values.out,
        new TextEncoder().encode(
          JSON.stringify(
            r.captions.map(({ image_id, caption }) => ({ image_id, caption })),
            null,
            1,
          ) +
            "\n",
        ),
      );
    }
    const summary = {
      command: "caption",
      decode: method,
      images: r.captions.length,
      ciderD: r.cider,
      seconds,
      out: values.out ?? null,
    };
    if (values.json) out(JSON.stringify(summary));
    else {
      for (const cap of r.captions.slice(0, 5)) out(`${cap.image_id}: ${cap.caption}`);
      out(`CIDEr-D (${method}) over ${r.captions.length} images: ${r.cider.toFixed(4)}`);
      if (values.out) out(`wrote ${values.out}`);
    }
    return 0;
  }

  const files = positionals;
  const results: { file: string; caption: string; logprob: number }[] = [];
  const gridImages: RgbImage[] = [];
  for (let lo = 0; lo < files.length; lo += batchSize) {
    const chunk = files.slice(lo, lo + batchSize);
    const imgs = await Promise.all(chunk.map((f) => decodeImage(f)));
    const res = await captionImages(c, imgs, method, {
      ...decodeOpts,
      seed: seed + lo,
      attention: Boolean(values.attention),
    });
    res.forEach((r, i) => {
      results.push({ file: chunk[i], caption: r.text, logprob: r.logprob });
      if (!values.json) out(`${chunk[i]}: ${r.text}`);
      if (values.attention && r.attention && r.grid) {
        const labels = r.tokens.slice(0, r.attention.length).map((t) => tokenText(c.vocab, t));
        if (labels.length < r.attention.length) labels.push("[eos]");
        gridImages.push(renderAttentionGrid({
          image: imgs[i],
          resize: c.transform.evalResize,
          size: c.transform.size,
          caption: `${chunk[i].split("/").pop()}: ${r.text}`,
          labels,
          attention: r.attention,
          grid: r.grid,
        }));
      }
    });
  }
  if (values.attention) {
    const png = encodePng({ ...stackImages(gridImages), channels: 3 });
    await writeFileAtomic(values.attention, png);
    if (!values.json) out(`wrote ${values.attention}`);
  }
  if (values.out) {
    await writeFileAtomic(
      values.out,
      new TextEncoder().encode(JSON.stringify(results, null, 1) + "\n"),
    );
  }
  if (values.json) {
    out(
      JSON.stringify({
        command: "caption",
        decode: method,
        captions: results,
        attention: values.attention ?? null,
      }),
    );
  }
  return 0;
}

/** Stacks images vertically (left-aligned, white background). */
function stackImages(imgs: RgbImage[]): RgbImage {
  const width = Math.max(...imgs.map((i) => i.width));
  const height = imgs.reduce((a, i) => a + i.height, 0);
  const data = new Uint8Array(width * height * 3).fill(255);
  let y = 0;
  for (const im of imgs) {
    for (let r = 0; r < im.height; r++) {
      data.set(im.data.subarray(r * im.width * 3, (r + 1) * im.width * 3), ((y + r) * width) * 3);
    }
    y += im.height;
  }
  return { width, height, data };
}
