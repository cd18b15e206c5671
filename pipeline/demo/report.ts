/**
 * The demo's report: the comparison table (random init as mean ± sd over its seeds, pretrained
 * backbones with their bootstrap intervals; pipeline/report/compare.ts), an SVG bar chart with the
 * intervals, and the loss curves.
 */
import { join } from "node:path";
import {
  compareMeasurements,
  type ComparisonRow,
  comparisonSvg,
  formatRowValue,
} from "../report/compare.ts";
import type { DemoResult } from "./plan.ts";

/** The demo's rows grouped by (downstream, method): seeds of random init become one row. */
export function demoComparison(r: DemoResult): ComparisonRow[] {
  return compareMeasurements(r.rows.map((x) => ({
    key: x.evaluateKey,
    downstream: x.downstream,
    method: x.method,
    groupId: x.method,
    seed: x.seed,
    metric: "mAP",
    value: x.mAP,
    ci: x.mAPCI,
  })));
}

/** Markdown report of a demo run. */
export function demoMarkdown(r: DemoResult, seconds: number, machine: string): string {
  const s = r.settings;
  const downstream = [...new Set(r.rows.map((x) => x.downstream))];
  const methods = [...new Set(r.rows.map((x) => x.method))];
  const comparison = demoComparison(r);
  const cell = (m: string, d: string) => {
    const row = comparison.find((x) => x.method === m && x.downstream === d);
    return row ? formatRowValue(row) : "–";
  };
  const cell11 = (m: string, d: string) => {
    const xs = r.rows.filter((x) => x.method === m && x.downstream === d).map((x) => x.mAP11);
    return xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) : "–";
  };
  const lines = [
    "# virtex demo: synthetic captioned scenes",
    "",
    `Pretraining on ${s.scenes.train} synthetic ${s.scenes.size}×${s.scenes.size} images with 5 captions each; ` +
    `${s.visual} + \`${s.textual}\`, ${s.steps} steps of batch ${s.batchSize} ` +
    `(CNN LR ${s.cnnLr}, head LR ${s.headLr}, warmup ${s.warmupSteps}, crop scale ${
      s.cropScale.join("–")
    }, decoder init std ${s.initStd}).`,
    `Downstream: VOC07 protocol (per-class linear SVMs on frozen, pooled, L2-normalised features), ` +
    `${s.scenes.vocTrain} trainval / ${s.scenes.vocTest} test images.`,
    "",
    "mAP: mean over classes of the non-interpolated AP; 11-pt: PASCAL VOC2007's 11-point " +
    "interpolated AP (chance level is about the share of positives for mAP, a little higher for 11-pt). " +
    `Random init: mean ± sd over ${
      r.rows.filter((x) => x.method === "random init" && x.downstream === downstream[0]).length
    } seeds (each seed's mAP in brackets); pretrained backbones: mAP [bootstrap 95 % interval over ` +
    "test images].",
    "",
    `| backbone | pretraining task | ${
      downstream.map((d) => `mAP ${d} | 11-pt ${d}`).join(" | ")
    } |`,
    `|---|---|${downstream.map(() => "---:|---:").join("|")}|`,
    ...methods.map((m) => {
      const task = r.rows.find((x) => x.method === m)!.task;
      const cells = downstream.map((d) => `${cell(m, d)} | ${cell11(m, d)}`);
      return `| ${m} | ${task} | ${cells.join(" | ")} |`;
    }),
    "",
    "Pretraining runs:",
    "",
    "| task | final train loss | wall time | artifact |",
    "|---|---:|---:|---|",
    ...r.pretrain.map((p) =>
      `| ${p.task} | ${p.finalLoss.toFixed(3)} | ${
        p.seconds === null ? "–" : `${p.seconds.toFixed(0)} s`
      }${p.hit ? " (cached)" : ""} | \`${p.key.slice(0, 12)}\` |`
    ),
    "",
    ...finetuneSection(r),
    "Greedy captions of validation images from the VirTex forward decoder:",
    "",
    ...r.samples.map((x) => `- ${x.id}: "${x.caption}"`),
    "",
    `${r.steps} pipeline steps, ${r.hits} served from the cache; ${
      seconds.toFixed(0)
    } s in all on ${machine}.`,
    "",
    "![mAP](map.svg)",
    "",
    ...Object.keys(r.lossPlots).map((t) => `![${t} loss](loss-${t}.svg)`),
    "",
  ];
  return lines.join("\n");
}

/** File name of a fine-tuning run's val-mAP plot in the report folder. */
function finetunePlotName(method: string): string {
  return `finetune-${method.replaceAll(/[^a-zA-Z0-9]+/g, "-")}.svg`;
}

/** The fine-tuning table of `demo --finetune` (no lines without it). */
function finetuneSection(r: DemoResult): string[] {
  if (!r.finetune.length) return [];
  const f = r.settings.finetune;
  const epoch = (step: number, per: number) => (step / per).toFixed(0);
  return [
    `Fine-tuning end to end (\`demo --finetune\`): every layer trains with a new linear head, ` +
    `batch norm in train mode, binary cross-entropy per class; ${r.settings.scenes.vocTrain} ` +
    `trainval images, mAP on the ${r.settings.scenes.vocTest} test images after each epoch; ` +
    `${f.epochs} epochs of batch ${f.batchSize}, SGD momentum 0.9, weight decay 1e-4, LR ${f.lr} ` +
    `×0.1 at epochs ${f.milestones.join(" and ")}, the pretraining augmentation.`,
    "",
    `| backbone | downstream | mAP after ${f.epochs} epochs | best mAP (epoch) | wall time |`,
    "|---|---|---:|---:|---:|",
    ...r.finetune.map((x) =>
      `| ${x.method} | ${x.downstream} | ${x.mAP.toFixed(2)} | ${
        x.best ? `${x.best.mAP.toFixed(2)} (${epoch(x.best.step, x.stepsPerEpoch)})` : "–"
      } | ${x.seconds === null ? "–" : `${x.seconds.toFixed(0)} s`} |`
    ),
    "",
    ...r.finetune.map((x) => `![${x.method} fine-tuning](${finetunePlotName(x.method)})`),
    "",
  ];
}

/** Writes report.md, map.svg and the loss plots into `dir`; returns the report's path. */
export async function writeDemoReport(
  r: DemoResult,
  dir: string,
  seconds: number,
  machine: string,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const svg = comparisonSvg(demoComparison(r), "VOC07 SVM mAP on frozen features");
  const write = async (name: string, text: string) => {
    const tmp = join(dir, `.${name}.tmp`);
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, join(dir, name));
  };
  await write("map.svg", svg);
  for (const [task, path] of Object.entries(r.lossPlots)) {
    await write(`loss-${task}.svg`, await Deno.readTextFile(path));
  }
  for (const x of r.finetune) {
    await write(finetunePlotName(x.method), await Deno.readTextFile(x.plot));
  }
  await write(
    "results.json",
    JSON.stringify(
      { rows: r.rows, finetune: r.finetune, pretrain: r.pretrain, settings: r.settings, seconds },
      null,
      1,
    ),
  );
  await write("report.md", demoMarkdown(r, seconds, machine));
  return join(dir, "report.md");
}
