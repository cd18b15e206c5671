/**
 * Zero-shot classification by caption likelihood (`evaluate --set protocol=zeroshot`, input
 * `model`): each class is scored on each test image by the mean log-likelihood of its prompts
 * (zeroshot_prompts.ts) under the pretrained caption decoders (zeroshot_scores.ts), with no
 * training on the downstream set. Multi-label sets (VOC, COCO) report per-class AP over the test
 * images (difficult labels left out) and mAP; class folders report top-1 (the highest-scoring
 * class). Options: per-token instead of summed log-likelihood (`tokenScore`), and `calibration:
 * "blank"`, which subtracts each prompt's log-likelihood given a blank image (all pixels at the
 * normalisation mean), removing the prompts' text-only prior.
 *
 * Files: zeroshot.json (metric, per-class AP, prompts), scores.f32 (class scores [N, K],
 * little-endian) with scores.json ({ids, classes}), report.md, and ap.svg for multi-label sets.
 */
import { join } from "node:path";
import { z } from "zod";
import { DEVICE_NAMES } from "../../engine/device.ts";
import { tensor } from "../../engine/tensor.ts";
import { openCaptioner } from "../caption/captioner.ts";
import { DEFAULT_SPLITS, readLabelledSplit } from "../extract/datasets.ts";
import { evalImageBatches } from "../extract/eval_images.ts";
import { EOS, SOS } from "../model/tasks.ts";
import { barChartSvg } from "../plot/mod.ts";
import type { Progress } from "../stage.ts";
import { Tokenizer } from "../tokenize/tokenizer.ts";
import { UNK_ID } from "../tokenize/vocab.ts";
import { averagePrecision, voc11PointAp } from "./ap.ts";
import { bootstrapAccuracyInterval, bootstrapMapInterval } from "./bootstrap.ts";
import { DEFAULT_TEMPLATES, encodePrompts, type Prompt, promptTexts } from "./zeroshot_prompts.ts";
import { DIRECTIONS, promptLogLikelihoods, promptMatrix } from "./zeroshot_scores.ts";

/** The `zeroshot` section of evaluate's config. */
export const zeroshotSchema = z.strictObject({
  dataset: z.enum(["voc", "coco", "classfolders"]).default("voc").describe(
    "layout of the test set: voc (VOC2007 root, mAP), coco (annotations folder, mAP), " +
      "classfolders (top-1)",
  ),
  path: z.string().default("").describe(
    "dataset root; or give --input dataset=<caption-labels artifact> (a VOC layout)",
  ),
  split: z.string().default("").describe(
    "split to classify (default: voc test, coco val2017, classfolders val)",
  ),
  classes: z.array(z.string()).default([]).describe("VOC classes to read (default: all found)"),
  cocoClasses: z.enum(["coco80", "voc20"]).default("coco80").describe(
    "coco: the 80 categories, or the 20 VOC classes via the COCO→VOC name map",
  ),
  templates: z.array(z.string()).default(DEFAULT_TEMPLATES).describe(
    "prompt templates, {class} replaced by the class name (an empty list: prompts only)",
  ),
  prompts: z.record(z.string(), z.array(z.string())).default({}).describe(
    'extra prompts per class label, e.g. {"dog": ["a puppy on the grass."]}',
  ),
  names: z.record(z.string(), z.string()).default({}).describe(
    "class name used in templates, by label (default: the label with _ as spaces; VOC's " +
      "diningtable, pottedplant, tvmonitor spelled out)",
  ),
  directions: z.enum(DIRECTIONS).default("both").describe(
    "decoders that score a prompt: both (forward + backward, averaged; forward alone for " +
      "captioning/cappa), forward, backward",
  ),
  tokenScore: z.enum(["sum", "mean"]).default("sum").describe(
    "a prompt's score: summed log-likelihood of its tokens, or the mean per token",
  ),
  calibration: z.enum(["none", "blank"]).default("none").describe(
    "blank: subtract each prompt's log-likelihood given a blank (mean-colour) image",
  ),
  size: z.number().int().min(0).default(0).describe(
    "centre crop size (0: the model's training size)",
  ),
  resize: z.number().int().min(0).default(0).describe(
    "short side before the crop (0: the model's eval resize)",
  ),
  batchSize: z.number().int().min(1).default(32).describe("images per backbone batch"),
  pairBatch: z.number().int().min(1).default(512).describe(
    "(image, prompt) pairs per decoder call",
  ),
  device: z.enum(DEVICE_NAMES).default("auto"),
});

/** The zeroshot section after defaults. */
export type ZeroshotConfig = z.infer<typeof zeroshotSchema>;

/** Everything runZeroshot needs from the stage. */
export interface ZeroshotRun {
  config: ZeroshotConfig;
  modelDir: string;
  datasetPath: string;
  outDir: string;
  bootstrap: { samples: number; seed: number };
  progress(label: string, total: number, unit?: string): Progress;
  log(message: string): void;
}

/**
 * Class scores [N, K] from prompt log-likelihoods [N, P] (after calibration): each prompt's
 * score (summed, or per predicted token), averaged over its class's prompts.
 */
export function classScores(
  promptLl: Float32Array,
  prompts: readonly Prompt[],
  K: number,
  tokenScore: "sum" | "mean",
): Float32Array {
  const P = prompts.length, N = promptLl.length / P;
  const perClass = new Array(K).fill(0);
  for (const p of prompts) perClass[p.classIndex]++;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    prompts.forEach((p, j) => {
      const s = promptLl[n * P + j] / (tokenScore === "mean" ? p.ids.length - 1 : 1);
      out[n * K + p.classIndex] += s / perClass[p.classIndex];
    });
  }
  return out;
}

/** Per-class AP over rows with a non-difficult label; classes without a positive are skipped. */
export function multiLabelMetrics(
  scores: Float32Array,
  labels: Int8Array,
  classes: string[],
): {
  perClass: { name: string; ap: number; ap11: number; positives: number; k: number }[];
  skipped: string[];
} {
  const K = classes.length, N = labels.length / K;
  const perClass = [], skipped: string[] = [];
  for (let k = 0; k < K; k++) {
    const truth: boolean[] = [], s: number[] = [];
    for (let n = 0; n < N; n++) {
      const l = labels[n * K + k];
      if (l === 0) continue;
      truth.push(l > 0);
      s.push(scores[n * K + k]);
    }
    const positives = truth.filter((t) => t).length;
    if (positives === 0) {
      skipped.push(classes[k]);
      continue;
    }
    perClass.push({
      name: classes[k],
      ap: averagePrecision(truth, s),
      ap11: voc11PointAp(truth, s),
      positives,
      k,
    });
  }
  return { perClass, skipped };
}

/** Whether the highest-scoring class of each row is its label (single-label data). */
export function topOneCorrect(scores: Float32Array, labels: Int8Array, K: number): boolean[] {
  const N = labels.length / K;
  return Array.from({ length: N }, (_, n) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (scores[n * K + k] > scores[n * K + best]) best = k;
    return labels[n * K + best] === 1;
  });
}

function ciText(ci: [number, number] | null): string {
  return ci ? ` (95 % CI ${ci[0].toFixed(2)}–${ci[1].toFixed(2)})` : "";
}

/** Runs the protocol (see module doc); returns the stage summary. */
export async function runZeroshot(o: ZeroshotRun): Promise<Record<string, unknown>> {
  const cfg = o.config;
  const split = cfg.split || DEFAULT_SPLITS[cfg.dataset][1];
  const set = await readLabelledSplit(
    cfg.dataset,
    o.datasetPath,
    split,
    cfg.classes.length ? cfg.classes : undefined,
    cfg.cocoClasses,
  );
  const K = set.classes.length, N = set.images.length;
  if (N === 0) throw new Error(`zeroshot: split ${split} has no images`);
  const c = await openCaptioner(o.modelDir, {
    device: cfg.device,
    resize: cfg.resize || undefined,
    size: cfg.size || undefined,
  });
  const tokenizer = await Tokenizer.create(c.vocab);
  const prompts = encodePrompts(
    tokenizer,
    promptTexts({
      classes: set.classes,
      templates: cfg.templates,
      extra: cfg.prompts,
      names: cfg.names,
    }),
    c.model.config.maxLength ?? 30,
    SOS,
    EOS,
  );
  const unknown = prompts.filter((p) => p.ids.includes(UNK_ID));
  if (unknown.length) {
    o.log(
      `warning: ${unknown.length} prompt(s) hold pieces the vocabulary lacks (<unk>, not scored), ` +
        `e.g. "${unknown[0].text}"`,
    );
  }
  const matrix = promptMatrix(prompts.map((p) => p.ids));
  const P = prompts.length, S = c.transform.size;
  o.log(
    `device ${c.backend.name}; ${c.model.config.task} model; ${N} images of ${split}, ` +
      `${K} classes, ${P} prompts (e.g. "${prompts[0].text}")`,
  );
  const score = { directions: cfg.directions, pairBatch: cfg.pairBatch };
  const promptLl = new Float32Array(N * P);
  const bar = o.progress("zero-shot", N, "img");
  for await (
    const b of evalImageBatches(set.images.map((im) => im.file), c.transform, cfg.batchSize)
  ) {
    const images = tensor(c.backend, b.pixels, [b.count, 3, S, S]);
    promptLl.set(await promptLogLikelihoods(c.model, images, matrix, score), b.start * P);
    images.dispose();
    bar.tick(b.count);
  }
  bar.done();
  if (cfg.calibration === "blank") {
    // Normalised zeros: every pixel at the transform's mean colour.
    const blank = tensor(c.backend, new Float32Array(3 * S * S), [1, 3, S, S]);
    const prior = await promptLogLikelihoods(c.model, blank, matrix, score);
    blank.dispose();
    for (let i = 0; i < promptLl.length; i++) promptLl[i] -= prior[i % P];
  }
  c.model.dispose();
  const scores = classScores(promptLl, prompts, K, cfg.tokenScore);
  await Deno.writeFile(join(o.outDir, "scores.f32"), new Uint8Array(scores.buffer));
  await Deno.writeTextFile(
    join(o.outDir, "scores.json"),
    JSON.stringify({ ids: set.images.map((im) => im.id), classes: set.classes }),
  );
  const promptInfo = prompts.map((p) => ({
    text: p.text,
    class: set.classes[p.classIndex],
    tokens: p.ids.length,
  }));
  const boot = { samples: o.bootstrap.samples, seed: o.bootstrap.seed, level: 0.95 };
  const base = {
    protocol: "zeroshot",
    split,
    images: N,
    classes: K,
    prompts: P,
    task: c.model.config.task,
    directions: cfg.directions,
  };

  if (cfg.dataset === "classfolders") {
    const correct = topOneCorrect(scores, set.labels, K);
    const top1 = 100 * correct.filter((x) => x).length / N;
    const i = o.bootstrap.samples > 0 ? bootstrapAccuracyInterval(correct, boot) : null;
    const ci: [number, number] | null = i ? [i.low * 100, i.high * 100] : null;
    await Deno.writeTextFile(
      join(o.outDir, "zeroshot.json"),
      JSON.stringify({ ...base, metric: "top1", top1, top1CI: ci, prompts: promptInfo }, null, 1),
    );
    await Deno.writeTextFile(
      join(o.outDir, "report.md"),
      `# Zero-shot classification\n\ntop-1: ${top1.toFixed(2)}%${ciText(ci)} on ${N} images ` +
        `of ${split}, ${K} classes, ${P} prompts\n`,
    );
    o.log(`top-1 ${top1.toFixed(2)}%${ciText(ci)}`);
    return { ...base, metric: "top1", top1, top1CI: ci };
  }

  const { perClass, skipped } = multiLabelMetrics(scores, set.labels, set.classes);
  if (perClass.length === 0) throw new Error(`zeroshot: no class has a positive in ${split}`);
  if (skipped.length) {
    o.log(`skipping ${skipped.length} class(es) without positives: ${skipped.join(", ")}`);
  }
  const mAP = 100 * perClass.reduce((a, r) => a + r.ap, 0) / perClass.length;
  const mAP11 = 100 * perClass.reduce((a, r) => a + r.ap11, 0) / perClass.length;
  let ci: [number, number] | null = null;
  if (o.bootstrap.samples > 0) {
    const i = bootstrapMapInterval(
      perClass.map((r) => ({
        labels: Int8Array.from({ length: N }, (_, n) => set.labels[n * K + r.k]),
        scores: Float32Array.from({ length: N }, (_, n) => scores[n * K + r.k]),
      })),
      boot,
    );
    ci = [i.low * 100, i.high * 100];
  }
  const width = Math.max(8, ...perClass.map((r) => r.name.length));
  const table = [
    `${"class".padEnd(width)}  ${"AP".padStart(6)}  ${"AP11".padStart(6)}  ${"pos".padStart(5)}`,
    ...perClass.map((r) =>
      `${r.name.padEnd(width)}  ${(r.ap * 100).toFixed(2).padStart(6)}  ` +
      `${(r.ap11 * 100).toFixed(2).padStart(6)}  ${String(r.positives).padStart(5)}`
    ),
    `${"mAP".padEnd(width)}  ${mAP.toFixed(2).padStart(6)}  ${mAP11.toFixed(2).padStart(6)}`,
  ].join("\n");
  await Deno.writeTextFile(
    join(o.outDir, "zeroshot.json"),
    JSON.stringify(
      {
        ...base,
        metric: "mAP",
        mAP,
        mAPCI: ci,
        mAP11,
        skippedClasses: skipped,
        perClass: perClass.map(({ name, ap, ap11, positives }) => ({
          name,
          ap: ap * 100,
          ap11: ap11 * 100,
          positives,
        })),
        prompts: promptInfo,
      },
      null,
      1,
    ),
  );
  await Deno.writeTextFile(
    join(o.outDir, "report.md"),
    `# Zero-shot classification (caption likelihood)\n\n\`\`\`\n${table}\n\`\`\`\n\n` +
      `mAP ${mAP.toFixed(2)}${ciText(ci)} over ${perClass.length} classes, ${N} images of ` +
      `${split}, ${P} prompts\n`,
  );
  await Deno.writeTextFile(
    join(o.outDir, "ap.svg"),
    barChartSvg({
      title: `Zero-shot AP per class (mAP ${mAP.toFixed(2)})`,
      yLabel: "AP (%)",
      categories: perClass.map((r) => r.name),
      series: [{ name: "AP", values: perClass.map((r) => r.ap * 100) }],
    }),
  );
  o.log(`mAP ${mAP.toFixed(2)}${ciText(ci)} over ${perClass.length} classes`);
  return {
    ...base,
    metric: "mAP",
    mAP,
    mAPCI: ci,
    mAP11,
    scoredClasses: perClass.length,
    skippedClasses: skipped.length,
  };
}
