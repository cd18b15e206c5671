/**
 * Scores backbones trained by the PyTorch replica (tools/recipe_replica.py) with virtex's own
 * protocol: each replica output folder (model.json + visual.safetensors with torchvision names)
 * enters the cache as a pretrain-kind artifact (tools/replica_import.ts: the folder's
 * content hashed as an input, its config the replica's pretrain config plus `randomInit`: whether
 * it is an untrained export, a PyTorch random-init baseline, and `bnCalibrate`: the batches its
 * BatchNorm statistics saw), then virtex's extract and
 * evaluate stages run on it for the real-photo sets of tools/recipe_sweep.ts (Flickr8k-val
 * caption words and coco-tiny VOC-20) and `report` puts it beside virtex's backbones and random
 * init in one table with the bootstrap intervals.
 *
 *   node_modules/.bin/deno run -A tools/replica_score.ts --replica DIR [--replica DIR2 ...]
 *     [--virtex-model KEY ...] [--random-seeds 0,1,2] [--size 128] [--resize 128]
 *     [--include EVALUATE_KEY ...] [--label KEY=NAME ...] [--out DIR] [--title TEXT]
 *
 * --virtex-model scores virtex pretrain artifacts of the cache the same way; --random-seeds the
 * random-init baselines of the first model's architecture (none with ""); --include adds evaluate
 * artifacts already in the cache (with their features and model) to the report. Replica rows are
 * labelled "<task> (PyTorch replica)" unless --label names them. Prints every evaluate key; writes
 * report's comparison.md/.svg and runs.md (one row per run with its interval) to --out.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { reportCommand } from "../cli/report_command.ts";
import { writeFileAtomic } from "../engine/safetensors.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { buildComparison } from "../pipeline/report/compare.ts";
import { runStage } from "../pipeline/runner.ts";
import type { Artifact, Stage } from "../pipeline/stage.ts";
import { evaluateStage } from "../pipeline/stages/evaluate.ts";
import { extractStage } from "../pipeline/stages/extract.ts";
import { downstreamConfigs, flickrWordsRoot } from "./recipe_sweep.ts";
import { replicaImportStage } from "./replica_import.ts";

/** The import's config: the replica's pretrain config (summary.json) and whether it trained. */
function importConfig(dir: string): Record<string, unknown> {
  const summary = JSON.parse(Deno.readTextFileSync(join(dir, "summary.json")));
  return {
    ...summary.config,
    randomInit: summary.randomInit === true,
    bnCalibrate: summary.bnCalibrate ?? 0,
    stepsDone: summary.train.steps,
  };
}

const HELP = `usage: deno run -A tools/replica_score.ts --replica DIR [--replica DIR2 ...]
    [--virtex-model KEY ...] [--random-seeds 0,1,2] [--size 128] [--resize 128]
    [--include EVALUATE_KEY ...] [--label KEY=NAME ...] [--out DIR] [--title TEXT]

Scores PyTorch-replica backbones (tools/recipe_replica.py --out DIR) with virtex's extract +
evaluate on Flickr8k-val caption words and coco-tiny VOC-20, beside virtex pretrain artifacts and
random init, and writes report's comparison.md/.svg to --out (default replica-report) and
runs.md (every run apart, with its bootstrap 95 % interval).`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      replica: { type: "string", multiple: true, default: [] },
      "virtex-model": { type: "string", multiple: true, default: [] },
      "random-seeds": { type: "string", default: "0,1,2" },
      size: { type: "string", default: "128" },
      resize: { type: "string", default: "128" },
      include: { type: "string", multiple: true, default: [] },
      label: { type: "string", multiple: true, default: [] },
      out: { type: "string", default: "replica-report" },
      title: { type: "string", default: "virtex vs PyTorch replica vs random init" },
      help: { type: "boolean", default: false },
    },
  });
  if (
    values.help ||
    (!values.replica.length && !values["virtex-model"].length && !values.include.length)
  ) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const cache = new Cache();
  const quiet = () => {};
  const run = <C>(
    stage: Stage<C>,
    cfg: unknown,
    inputs: Record<string, Artifact> = {},
    inputFiles: Record<string, string> = {},
  ) => runStage(stage, cfg, { cache, inputs, inputFiles, log: quiet }).then((r) => r.artifact);
  const models: { model: Artifact; label?: string }[] = [];
  for (const dir of values.replica) {
    const cfg = importConfig(dir);
    const model = await run(replicaImportStage, cfg, {}, { replica: resolve(dir) });
    const task = (cfg.model as { task: string }).task;
    const done = cfg.stepsDone as number;
    const of = (cfg.train as { steps: number }).steps;
    console.error(`[score] replica ${dir} -> ${model.key.slice(0, 12)}`);
    models.push({
      model,
      label: !cfg.randomInit
        ? `${task} (PyTorch replica${done < of ? `, step ${done} of ${of}` : ""})`
        : cfg.bnCalibrate
        ? `random init + BN statistics of ${cfg.bnCalibrate} batches (PyTorch)`
        : "random init (PyTorch replica)",
    });
  }
  for (const ref of values["virtex-model"]) models.push({ model: cache.resolve(ref) });
  const seeds = models.length
    ? values["random-seeds"].split(",").filter((s) => s.trim()).map(Number)
    : [];
  const arch = seeds.length
    ? JSON.parse(Deno.readTextFileSync(join(models[0].model.dir, "model.json"))).visual
    : "";
  const sets = downstreamConfigs(
    await flickrWordsRoot(cache.root),
    Number(values.size),
    Number(values.resize),
  );
  const keys: string[] = [...values.include];
  const labels: string[] = []; // the replicas' own, then --label (the later wins)
  for (const [name, ecfg] of Object.entries(sets)) {
    for (const { model, label } of models) {
      const ev = await run(evaluateStage, {}, {
        features: await run(extractStage, ecfg, { model }),
      });
      console.error(`[score] ${name} ${model.key.slice(0, 12)}: evaluate ${ev.key}`);
      keys.push(ev.key);
      if (label) labels.push(`${ev.key}=${label}`);
    }
    for (const seed of seeds) {
      const feats = await run(extractStage, { ...ecfg, weights: "random", arch, seed });
      const ev = await run(evaluateStage, {}, { features: feats });
      console.error(`[score] ${name} random seed ${seed}: evaluate ${ev.key}`);
      keys.push(ev.key);
    }
  }
  labels.push(...values.label);
  const code = await reportCommand([
    ...keys,
    ...labels.flatMap((l) => ["--label", l]),
    "--out",
    values.out,
    "--title",
    values.title,
  ]);
  const md = runsMarkdown(cache, keys, labels) + "\n" + lossMarkdown(cache, keys);
  await writeFileAtomic(join(values.out, "runs.md"), new TextEncoder().encode(md));
  console.log(`\n${md}wrote ${join(values.out, "runs.md")}`);
  return code;
}

/**
 * Mean training loss over windows of steps (the first 10, the 10 before each quarter, the last
 * 50) of every trained model behind the evaluations: virtex's and the replica's side by side.
 */
function lossMarkdown(cache: Cache, keys: string[]): string {
  const models = new Map<string, Artifact>();
  for (const k of keys) {
    const features = cache.get(cache.resolve(k).manifest.inputs.features);
    const model = features?.manifest.inputs.model
      ? cache.get(features.manifest.inputs.model)
      : null;
    if (model && !(model.manifest.config as { randomInit?: boolean }).randomInit) {
      models.set(model.key, model);
    }
  }
  const rows: { name: string; loss: number[] }[] = [];
  for (const m of models.values()) {
    let text = "";
    try {
      text = Deno.readTextFileSync(join(m.dir, "metrics.jsonl"));
    } catch { /* no training log */ }
    const loss = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l).loss as number);
    if (!loss.length) continue;
    const cfg = m.manifest.config as { train: { seed: number } };
    const who = m.manifest.stageVersion.startsWith("pytorch") ? "PyTorch replica" : "virtex";
    rows.push({ name: `${who} seed ${cfg.train.seed} (${m.key.slice(0, 12)})`, loss });
  }
  if (!rows.length) return "";
  const n = Math.max(...rows.map((r) => r.loss.length));
  const windows: [number, number][] = [[0, Math.min(10, n)]];
  for (const q of [1, 2, 3]) {
    const end = Math.round(n * q / 4);
    windows.push([Math.max(0, end - 10), end]);
  }
  windows.push([Math.max(0, n - 50), n]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return [
    `| mean training loss, steps | ${windows.map(([a, b]) => `${a + 1}–${b}`).join(" | ")} |`,
    `| --- |${" ---: |".repeat(windows.length)}`,
    ...rows.map((r) =>
      `| ${r.name} | ${
        windows.map(([a, b]) => b <= r.loss.length ? mean(r.loss.slice(a, b)).toFixed(3) : "-")
          .join(" | ")
      } |`
    ),
  ].join("\n") + "\n";
}

/** One row per evaluate artifact (each seed apart) with its bootstrap interval and key. */
function runsMarkdown(cache: Cache, keys: string[], labels: string[]): string {
  const named: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf("=");
    named[cache.resolve(l.slice(0, eq)).key] = l.slice(eq + 1);
  }
  const rows = buildComparison(cache, keys.map((k) => cache.resolve(k)), named);
  const lines = [
    "| downstream | method | seed | mAP [95 % CI] | evaluate |",
    "| --- | --- | ---: | --- | --- |",
  ];
  for (const r of rows) {
    for (const m of r.members) {
      const ci = m.ci ? ` [${m.ci[0].toFixed(2)}, ${m.ci[1].toFixed(2)}]` : "";
      lines.push(
        `| ${r.downstream} | ${r.method} | ${m.seed ?? "-"} | ${m.value.toFixed(2)}${ci} | ${
          m.key.slice(0, 12)
        } |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  // Like the CLI: a private runtime dir for the WebGPU probe of device "auto".
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  const code = await main();
  Deno.exit(code); // backends' worker threads would keep the process alive
}
