/**
 * One comparison table out of any set of evaluate artifacts: each artifact is traced back through
 * its features (extract) to the backbone it measured (random init of an architecture, or a
 * pretrain artifact), so rows group by (downstream set, method). A method measured with several
 * seeds (random-init seeds, or pretraining runs that differ only in train.seed) shows as mean ±
 * sample sd with each seed's figure; a single run shows its bootstrap 95 % interval. Written as
 * markdown and as an SVG bar chart with the intervals (± sd for seed groups).
 */
import { basename, dirname } from "node:path";
import type { Cache } from "../cache/store.ts";
import { canonicalJson, sha256Hex } from "../cache/hash.ts";
import { barChartSvg } from "../plot/mod.ts";
import type { Artifact } from "../stage.ts";

/** What one evaluate artifact measured. */
export interface Measurement {
  key: string; // the evaluate artifact
  downstream: string; // e.g. "coco-tiny voc20 64px"
  method: string; // e.g. "random init", "bicaptioning"
  /** Identity of the method apart from its seed (rows with equal groupId are seeds of one). */
  groupId: string;
  seed: number | null;
  metric: "mAP" | "top-1";
  value: number; // percent
  ci: [number, number] | null; // bootstrap 95 % interval, percent
}

/** One row of the comparison: a method on a downstream set over one or more seeds. */
export interface ComparisonRow {
  downstream: string;
  method: string;
  metric: "mAP" | "top-1";
  members: Measurement[];
  mean: number;
  sd: number | null; // sample sd over seeds (null for one run)
  ci: [number, number] | null; // the single run's interval (null for seed groups)
  /** Against random init on the same downstream set (null for random init, or when absent). */
  vsRandom: {
    /** This row's mean minus random init's mean. */
    meanDiff: number;
    /** This row's lowest value minus random init's highest seed: > 0 means every run beat every seed. */
    worstOverBest: number;
  } | null;
}

function need(cache: Cache, key: string | undefined, what: string): Artifact {
  const a = key ? cache.get(key) : null;
  if (!a) {
    throw new Error(`report: ${what} ${key ? key.slice(0, 12) : "(none)"} is not in the cache`);
  }
  return a;
}

/** A short name for the data an extract artifact read (`labels`: its caption-labels input). */
function downstreamName(cfg: Record<string, unknown>, labels: Artifact | null): string {
  const path = String(cfg.path ?? "");
  if (!path && labels) {
    const l = labels.manifest.config as { captions?: string; split?: string };
    const from = basename(dirname(String(l.captions ?? "")));
    const split = l.split ? `-${basename(l.split).replace(/\.[^.]*$/, "")}` : "";
    return `${from}${split} words ${cfg.size}px`;
  }
  let name = basename(path);
  // Generic leaf folders (VOC2007, annotations) say less than their parent.
  if (/^(voc\d*|annotations|images?)$/i.test(name)) name = basename(dirname(path));
  if (/^(voc\d*)$/i.test(name)) name = basename(dirname(dirname(path)));
  if (cfg.dataset === "coco") name += ` ${cfg.cocoClasses ?? "coco80"}`;
  return `${name} ${cfg.size}px`;
}

/**
 * A pretrain artifact as a method: its task (plus `suffix`), a group id shared by runs that differ
 * only in train.seed (and read with the same `reader` config), and that seed.
 */
function pretrainedMethod(
  model: Artifact,
  reader: Record<string, unknown>,
  suffix = "",
): { method: string; groupId: string; seed: number } {
  const pcfg = structuredClone(model.manifest.config) as {
    model?: { task?: string };
    train?: { seed?: number };
  };
  const seed = pcfg.train?.seed ?? 0;
  if (pcfg.train) delete pcfg.train.seed;
  // The method is the pretraining (minus its seed) and how the downstream set was read, not
  // which set: the same backbone keeps one name across sets.
  const {
    dataset: _d,
    path: _p,
    split: _s,
    splits: _ss,
    classes: _c,
    cocoClasses: _cc,
    ...how
  } = reader;
  const sameInputs = canonicalJson({ cfg: pcfg, inputs: model.manifest.inputs, reader: how });
  return {
    method: String(pcfg.model?.task ?? model.manifest.stage) + suffix,
    groupId: `model:${sha256Hex(sameInputs).slice(0, 12)}`,
    seed,
  };
}

/** Traces one evaluate artifact to what it measured. */
export function describeEvaluation(cache: Cache, evaluation: Artifact): Measurement {
  if (evaluation.manifest.stage !== "evaluate") {
    throw new Error(
      `report: ${evaluation.key.slice(0, 12)} is a ${evaluation.manifest.stage} artifact, ` +
        "not an evaluate artifact",
    );
  }
  const s = evaluation.manifest.summary as Record<string, unknown>;
  const metric = s.protocol === "linear" || s.metric === "top1" ? "top-1" : "mAP";
  const value = Number(metric === "mAP" ? s.mAP : s.top1);
  const ci = (metric === "mAP" ? s.mAPCI : s.top1CI) as [number, number] | null | undefined;
  const inputs = evaluation.manifest.inputs;
  if (s.protocol === "zeroshot") {
    // No features: the model itself read the dataset (zeroshot.* of the evaluate config).
    const zcfg = (evaluation.manifest.config as { zeroshot: Record<string, unknown> }).zeroshot;
    const model = need(cache, inputs.model, "model artifact");
    const size = Number(zcfg.size) || Number(
      (model.manifest.config as { transform?: { size?: number } }).transform?.size ?? 224,
    );
    return {
      key: evaluation.key,
      downstream: downstreamName(
        { ...zcfg, size },
        inputs.dataset ? cache.get(inputs.dataset) : null,
      ),
      metric,
      value,
      ci: ci ?? null,
      ...pretrainedMethod(model, zcfg, " zero-shot"),
    };
  }
  const features = need(cache, inputs.features, "features artifact");
  const ecfg = features.manifest.config as Record<string, unknown>;
  const base = {
    key: evaluation.key,
    downstream: downstreamName(
      ecfg,
      features.manifest.inputs.dataset ? cache.get(features.manifest.inputs.dataset) : null,
    ),
    metric,
    value,
    ci: ci ?? null,
  } as const;
  if (ecfg.weights === "random") {
    const arch = String(ecfg.arch || "resnet50");
    return {
      ...base,
      method: "random init",
      groupId: `random:${arch}`,
      seed: Number(ecfg.seed ?? 0),
    };
  }
  const model = need(cache, features.manifest.inputs.model, "model artifact");
  return { ...base, ...pretrainedMethod(model, ecfg) };
}

function meanSd(xs: number[]): { mean: number; sd: number | null } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, sd: null };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, sd: Math.sqrt(v) };
}

/**
 * Groups measurements into rows (first appearance order). `labels` renames methods by group id or
 * by a member's evaluate key; methods of the same name in different groups get a #n suffix.
 */
export function compareMeasurements(
  ms: Measurement[],
  labels: Record<string, string> = {},
): ComparisonRow[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of ms) {
    const id = `${m.downstream}\u0000${m.groupId}`;
    const list = groups.get(id) ?? [];
    if (!list.some((x) => x.key === m.key)) list.push(m);
    groups.set(id, list);
  }
  // Distinct group ids per method name, to number clashes.
  const idsByName = new Map<string, string[]>();
  for (const list of groups.values()) {
    const { method, groupId } = list[0];
    const ids = idsByName.get(method) ?? [];
    if (!ids.includes(groupId)) ids.push(groupId);
    idsByName.set(method, ids);
  }
  const rows: ComparisonRow[] = [...groups.values()].map((members) => {
    const m0 = members[0];
    const ids = idsByName.get(m0.method)!;
    const named = labels[m0.groupId] ?? members.map((m) => labels[m.key]).find((l) => l);
    const method = named ??
      (ids.length > 1 ? `${m0.method} #${ids.indexOf(m0.groupId) + 1}` : m0.method);
    members.sort((a, b) => (a.seed ?? 0) - (b.seed ?? 0));
    const { mean, sd } = meanSd(members.map((m) => m.value));
    return {
      downstream: m0.downstream,
      method,
      metric: m0.metric,
      members,
      mean,
      sd,
      ci: members.length === 1 ? m0.ci : null,
      vsRandom: null,
    };
  });
  for (const r of rows) {
    const random = rows.find((x) =>
      x.downstream === r.downstream && x.metric === r.metric && x.method === "random init"
    );
    if (!random || random === r) continue;
    r.vsRandom = {
      meanDiff: r.mean - random.mean,
      worstOverBest: Math.min(...r.members.map((m) => m.value)) -
        Math.max(...random.members.map((m) => m.value)),
    };
  }
  return rows;
}

/** Reads and groups evaluate artifacts (see compareMeasurements). */
export function buildComparison(
  cache: Cache,
  evaluations: Artifact[],
  labels: Record<string, string> = {},
): ComparisonRow[] {
  if (evaluations.length === 0) throw new Error("report: no evaluate artifacts to compare");
  return compareMeasurements(evaluations.map((e) => describeEvaluation(cache, e)), labels);
}

/** "27.12 [25.01, 29.30]" for one run, "25.22 ± 1.10 (24.1, 25.3, 26.3)" for seeds. */
export function formatRowValue(r: ComparisonRow): string {
  if (r.sd === null) {
    return r.ci
      ? `${r.mean.toFixed(2)} [${r.ci[0].toFixed(2)}, ${r.ci[1].toFixed(2)}]`
      : r.mean.toFixed(2);
  }
  return `${r.mean.toFixed(2)} ± ${r.sd.toFixed(2)} (${
    r.members.map((m) => m.value.toFixed(2)).join(", ")
  })`;
}

/** The comparison as a markdown table, one block per downstream set. */
export function comparisonMarkdown(rows: ComparisonRow[]): string {
  const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`;
  const lines = [
    "| downstream | method | seeds | metric | value | vs random init | lowest − best random |",
    "| --- | --- | ---: | --- | --- | ---: | ---: |",
  ];
  for (const r of rows) {
    const vs = r.vsRandom;
    lines.push(
      `| ${r.downstream} | ${r.method} | ${r.members.length} | ${r.metric} | ${
        formatRowValue(r)
      } | ${vs ? signed(vs.meanDiff) : "—"} | ${vs ? signed(vs.worstOverBest) : "—"} |`,
    );
  }
  lines.push(
    "",
    "One run: value [bootstrap 95 % interval over test images]. Several seeds: mean ± sample sd " +
      "(each seed's value). vs random init: difference of means on the same set; lowest − best " +
      "random: this method's lowest run minus random init's highest seed (> 0: every run beat " +
      "every random-init seed).",
  );
  return lines.join("\n");
}

/** The comparison as a grouped bar chart: downstream sets as groups, methods as series. */
export function comparisonSvg(rows: ComparisonRow[], title = "Transfer comparison"): string {
  const categories = [...new Set(rows.map((r) => r.downstream))];
  const methods = [...new Set(rows.map((r) => r.method))];
  const metric = rows.every((r) => r.metric === "top-1") ? "top-1 (%)" : "mAP (%)";
  return barChartSvg({
    title,
    yLabel: metric,
    categories,
    width: Math.max(640, 120 + categories.length * methods.length * 48),
    series: methods.map((m) => {
      const of = (c: string) => rows.find((r) => r.method === m && r.downstream === c);
      return {
        name: m,
        values: categories.map((c) => of(c)?.mean ?? NaN),
        errors: categories.map((c) => {
          const r = of(c);
          if (!r) return null;
          return r.sd !== null ? [r.mean - r.sd, r.mean + r.sd] : r.ci;
        }),
      };
    }),
  });
}
