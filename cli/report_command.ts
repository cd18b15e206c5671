/** `virtex report`: one comparison table (markdown + SVG) from evaluate artifacts or run refs. */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../engine/safetensors.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { buildComparison, comparisonMarkdown, comparisonSvg } from "../pipeline/report/compare.ts";
import type { Artifact } from "../pipeline/stage.ts";
import { out, parseFlags, printJsonSummary, UsageError } from "./common.ts";

/** The `report --help` text. */
export const REPORT_HELP = `usage: ./virtex report [--ref NAME]... [KEY...] [options]

Turns evaluate artifacts into one comparison table: each is traced to the backbone it measured
(random init of an architecture, or a pretrain artifact) and grouped by downstream set and method.
A method measured over several seeds (random-init seeds, or pretraining runs differing only in
train.seed) shows as mean ± sd with every seed's value; a single run shows its bootstrap 95 %
interval. Writes comparison.md and comparison.svg (bar chart with the intervals).

arguments:
  KEY                   an evaluate artifact (key, key prefix, or ref[:label])

options:
  --ref NAME            every evaluate artifact of a ref (a \`run\` pipeline records one), repeatable
  --label ID=NAME       name a method: ID is an evaluate key (prefix) of one of its runs
  --title TEXT          chart title (default "Transfer comparison")
  --out DIR             output folder (default report-out)
  --json                print a one-line JSON summary with every row`;

/** Runs the command; returns the exit code. */
export async function reportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ref: { type: "string", multiple: true },
    label: { type: "string", multiple: true },
    title: { type: "string" },
    out: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "report");
  if (values.help) {
    out(REPORT_HELP);
    return 0;
  }
  const cache = new Cache();
  const evaluations: Artifact[] = [];
  for (const name of values.ref ?? []) {
    const ref = cache.getRef(name);
    if (!ref) throw new UsageError(`report: no ref "${name}" (see \`cache refs\`)`);
    for (const key of Object.values(ref.keys)) {
      const a = cache.get(key);
      if (a?.manifest.stage === "evaluate") evaluations.push(a);
    }
  }
  for (const p of positionals) evaluations.push(cache.resolve(p));
  if (evaluations.length === 0) {
    throw new UsageError("report: give evaluate artifacts (KEY...) or --ref NAME");
  }
  const labels: Record<string, string> = {};
  for (const l of values.label ?? []) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new UsageError(`report: --label "${l}" is not ID=NAME`);
    labels[cache.resolve(l.slice(0, eq)).key] = l.slice(eq + 1);
  }
  const rows = buildComparison(cache, evaluations, labels);
  const md = comparisonMarkdown(rows);
  const dir = resolve(values.out ?? "report-out");
  await Deno.mkdir(dir, { recursive: true });
  const enc = new TextEncoder();
  await writeFileAtomic(join(dir, "comparison.md"), enc.encode(md + "\n"));
  await writeFileAtomic(
    join(dir, "comparison.svg"),
    enc.encode(comparisonSvg(rows, values.title ?? "Transfer comparison")),
  );
  if (values.json) {
    printJsonSummary({
      stage: "report",
      key: null,
      hit: false,
      summary: {
        out: dir,
        rows: rows.map((r) => ({
          downstream: r.downstream,
          method: r.method,
          metric: r.metric,
          mean: r.mean,
          sd: r.sd,
          ci: r.ci,
          vsRandom: r.vsRandom,
          values: r.members.map((m) => ({ seed: m.seed, value: m.value, ci: m.ci, key: m.key })),
        })),
      },
    });
  } else {
    out(md);
    out(`wrote ${join(dir, "comparison.md")} and comparison.svg`);
  }
  return 0;
}
