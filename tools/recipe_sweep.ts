/**
 * Short-run harness for real-photo pretraining recipes (issue: a CPU recipe whose backbone beats
 * random init on real photos). For each variant it runs tokenize -> augment -> pretrain on the
 * Flickr8k train split, then extract + evaluate (VOC07 SVMs) on two downstream sets that are never
 * pretrained on: the Flickr8k-val caption-word set (built with `captions-to-voc`) and coco-tiny's
 * VOC-20 classes, next to random-init baselines of the same backbone over several seeds. Everything
 * goes through the project's stages and cache, so repeated steps are free.
 *
 *   deno run -A tools/recipe_sweep.ts --variants tools/recipe_variants.json [--only a,b]
 *     [--seeds 0] [--random-seeds 0,1,2] [--results tools/recipe_sweep_results.jsonl]
 *
 * Each finished (variant, seed) appends one JSON line to the results file (mAP with its bootstrap
 * interval per set, pretraining seconds, whole-variant wall seconds), so a long sweep can be
 * stopped and resumed; `--table` prints the results file as a markdown table.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { Cache } from "../pipeline/cache/store.ts";
import { captionsToVoc } from "../pipeline/data/captions_to_voc.ts";
import { readCaptions } from "../pipeline/stages/ingest.ts";
import { runStage } from "../pipeline/runner.ts";
import type { Artifact } from "../pipeline/stage.ts";
import { augmentStage } from "../pipeline/stages/augment.ts";
import { evaluateStage } from "../pipeline/stages/evaluate.ts";
import { extractStage } from "../pipeline/stages/extract.ts";
import { pretrainStage } from "../pipeline/stages/pretrain.ts";
import { tokenizeStage } from "../pipeline/stages/tokenize.ts";

const USAGE = `usage: deno run -A tools/recipe_sweep.ts [options]

Pretrains each recipe variant on Flickr8k train, then compares its backbone with random init
(VOC07 SVMs, bootstrap 95 % intervals) on the Flickr8k-val caption-word set and coco-tiny VOC-20.
Cache: $VIRTEX_CACHE (default .virtex-cache/). Needs ../shared/data (flickr8k, coco-tiny).

options:
  --variants FILE       JSON list of variants (default tools/recipe_variants.json)
  --only A,B            run only these variant names
  --seeds 0,1,2         pretraining seeds per variant (default 0)
  --random-seeds 0,1,2  random-init seeds of the baseline (default 0,1,2)
  --results FILE        JSON lines, one per finished (variant, seed); finished ones are skipped
                        (default tools/recipe_sweep_results.jsonl)
  --table               print the results file as a markdown table and exit
  -h, --help            this text`;

const DATA = resolve(new URL("../../shared/data", import.meta.url).pathname);
const FLICKR = join(DATA, "flickr8k");
const COCO = join(DATA, "coco-tiny");

/** One recipe: partial stage configs merged over the base below. */
export interface Variant {
  name: string;
  tokenize?: Record<string, unknown>;
  augment?: Record<string, unknown>;
  pretrain?: Record<string, unknown>;
  /** Extract size/resize for both downstream sets (and the random baselines). */
  extract?: { size?: number; resize?: number };
}

/** Deep merge of plain objects (b wins). */
function merge(
  a: Record<string, unknown>,
  b: Record<string, unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && av && typeof av === "object"
      ? merge(av as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

const BASE_PRETRAIN = {
  model: {
    task: "bicaptioning",
    visual: "resnet18_w32_os16",
    textual: "transdec_postnorm::L1_H256",
    initStd: 0.05,
  },
  optim: { cnnLr: 0.1, headLr: 0.05, warmupSteps: 100 },
  train: { steps: 1000, batchSize: 32, checkpointEvery: 250 },
  transform: { size: 64, evalResize: 72 },
  trainSplit: join(FLICKR, "splits/train.txt"),
};

interface SetResult {
  mAP: number;
  ci?: [number, number];
  key?: string; // the evaluate artifact (for `./virtex report KEY...`)
}

/** The caption-word set on Flickr8k val, built once beside the cache. */
export async function flickrWordsRoot(cacheRoot: string): Promise<string> {
  const out = join(cacheRoot, "..", "sweep-data", "flickr8k-val-words");
  try {
    Deno.statSync(join(out, "ImageSets"));
    return out;
  } catch { /* build it */ }
  const set = await readCaptions(
    {
      captions: join(FLICKR, "captions.txt"),
      format: "auto",
      images: "",
      split: "",
      checkImages: "exists",
      skipBad: false,
    },
    { captions: join(FLICKR, "captions.txt"), split: join(FLICKR, "splits/val.txt") },
  );
  await captionsToVoc({ set, outDir: out });
  return out;
}

/** Extract configs of the two downstream sets: the caption words at `words`, coco-tiny VOC-20. */
export function downstreamConfigs(words: string, size: number, resize: number) {
  return {
    "flickr-words": { dataset: "voc", path: words, size, resize },
    "coco-voc20": {
      dataset: "coco",
      path: join(COCO, "annotations"),
      cocoClasses: "voc20",
      size,
      resize,
    },
  };
}

function summaryOf(ev: Artifact): SetResult {
  const s = ev.manifest.summary as { mAP: number; mAPCI?: [number, number] };
  return { mAP: s.mAP, ci: s.mAPCI, key: ev.key };
}

async function main() {
  const { values } = parseArgs({
    options: {
      variants: { type: "string", default: "tools/recipe_variants.json" },
      only: { type: "string" },
      seeds: { type: "string", default: "0" },
      "random-seeds": { type: "string", default: "0,1,2" },
      results: { type: "string", default: "tools/recipe_sweep_results.jsonl" },
      table: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.table) {
    console.log(formatTable(readResults(values.results!)));
    return;
  }
  const variants: Variant[] = JSON.parse(Deno.readTextFileSync(values.variants!));
  const only = values.only ? new Set(values.only.split(",")) : null;
  const seeds = values.seeds!.split(",").map(Number);
  const randomSeeds = values["random-seeds"]!.split(",").map(Number);
  const cache = new Cache();
  const words = await flickrWordsRoot(cache.root);
  const done = new Set(readResults(values.results!).map((r) => `${r.variant}/${r.seed}`));
  const quiet = () => {};
  for (const v of variants) {
    if (only && !only.has(v.name)) continue;
    for (const seed of seeds) {
      if (done.has(`${v.name}/${seed}`)) continue;
      const t0 = performance.now();
      const run = <C>(stage: Parameters<typeof runStage<C>>[0], cfg: unknown, inputs = {}) =>
        runStage(stage, cfg, { cache, inputs, log: quiet }).then((r) => r.artifact);
      console.error(`[sweep] ${v.name} seed ${seed}`);
      const captions = join(FLICKR, "captions.txt");
      const tokens = await run(
        tokenizeStage,
        merge(
          { captions, vocabSplit: join(FLICKR, "splits/train.txt"), vocabSize: 10000 },
          v.tokenize,
        ),
      );
      const shards = await run(augmentStage, merge({ captions, shortSide: 72 }, v.augment));
      const pcfg = merge(merge(BASE_PRETRAIN, v.pretrain), { train: { seed } });
      const tp = performance.now();
      const model = await run(pretrainStage, pcfg, { tokens, shards });
      const pretrainSeconds = (performance.now() - tp) / 1000;
      const size = v.extract?.size ?? 64, resize = v.extract?.resize ?? 72;
      const arch = (pcfg.model as { visual: string }).visual;
      const sets: Record<string, SetResult> = {};
      const random: Record<string, SetResult[]> = {};
      for (const [name, ecfg] of Object.entries(downstreamConfigs(words, size, resize))) {
        const feats = await run(extractStage, ecfg, { model });
        sets[name] = summaryOf(await run(evaluateStage, {}, { features: feats }));
        random[name] = [];
        for (const rs of randomSeeds) {
          const rf = await run(extractStage, { ...ecfg, weights: "random", arch, seed: rs });
          random[name].push(summaryOf(await run(evaluateStage, {}, { features: rf })));
        }
      }
      const row = {
        variant: v.name,
        seed,
        arch,
        pretrainKey: model.key,
        pretrainSeconds: Math.round(pretrainSeconds),
        wallSeconds: Math.round((performance.now() - t0) / 1000),
        finalLoss: model.manifest.summary.finalLoss,
        sets,
        random,
        spec: v,
      };
      Deno.writeTextFileSync(values.results!, JSON.stringify(row) + "\n", { append: true });
      console.error(`[sweep] ${formatRow(row)}`);
    }
  }
  console.log(formatTable(readResults(values.results!)));
}

// deno-lint-ignore no-explicit-any
type Row = any;

function readResults(path: string): Row[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l.trim()).map((l) =>
      JSON.parse(l)
    );
  } catch {
    return [];
  }
}

function fmt(r: SetResult): string {
  return r.ci
    ? `${r.mAP.toFixed(2)} [${r.ci[0].toFixed(1)}, ${r.ci[1].toFixed(1)}]`
    : r.mAP.toFixed(2);
}

function formatRow(row: Row): string {
  return Object.keys(row.sets).map((s) => {
    const best = Math.max(...row.random[s].map((r: SetResult) => r.mAP));
    return `${s} ${fmt(row.sets[s])} (best random ${best.toFixed(2)}, margin ${
      (row.sets[s].mAP - best).toFixed(2)
    })`;
  }).join("; ") + `; pretrain ${row.pretrainSeconds}s, wall ${row.wallSeconds}s`;
}

function formatTable(rows: Row[]): string {
  const sets = ["flickr-words", "coco-voc20"];
  const head = `| variant | seed | ${
    sets.map((s) => `${s} mAP | best of random | margin`).join(" | ")
  } | pretrain s | wall s |`;
  const sep = head.replace(/[^|]+/g, "---");
  const lines = rows.map((r) => {
    const cells = sets.map((s) => {
      const best = Math.max(...r.random[s].map((x: SetResult) => x.mAP));
      return `${fmt(r.sets[s])} | ${best.toFixed(2)} | ${(r.sets[s].mAP - best).toFixed(2)}`;
    });
    return `| ${r.variant} | ${r.seed} | ${
      cells.join(" | ")
    } | ${r.pretrainSeconds} | ${r.wallSeconds} |`;
  });
  return [head, sep, ...lines].join("\n");
}

if (import.meta.main) {
  // Like the CLI: a private runtime dir for the WebGPU probe of device "auto".
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  await main();
  Deno.exit(0); // backends' worker threads would keep the process alive
}
