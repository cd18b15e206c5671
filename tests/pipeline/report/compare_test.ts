import { join } from "node:path";
import { Cache } from "../../../pipeline/cache/store.ts";
import {
  buildComparison,
  comparisonMarkdown,
  comparisonSvg,
} from "../../../pipeline/report/compare.ts";
import { assert, assertEquals, assertThrows } from "../cache/_assert.ts";

/** A temp cache holding hand-written manifests (enough of them for the report to trace). */
function fakeCache() {
  const cache = new Cache(Deno.makeTempDirSync({ prefix: "virtex-report-" }));
  let n = 0;
  const put = (stage: string, config: unknown, inputs: Record<string, string>, summary = {}) => {
    const key = (++n).toString(16).padStart(64, "0");
    const dir = cache.artifactDir(key);
    Deno.mkdirSync(dir, { recursive: true });
    const manifest = {
      key,
      stage,
      stageVersion: "1",
      config,
      inputs,
      inputFiles: {},
      created: new Date(n * 1000).toISOString(),
      files: [],
      summary,
    };
    Deno.writeTextFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    return key;
  };
  return { cache, put };
}

Deno.test("report: random-init seeds become mean ± sd, single runs keep their interval", () => {
  const { cache, put } = fakeCache();
  const ds = { dataset: "voc", path: "/data/words/VOC2007", size: 64 };
  const evals: string[] = [];
  for (const [seed, mAP] of [[0, 20], [1, 22], [2, 24]]) {
    const f = put("extract", { ...ds, weights: "random", arch: "resnet18", seed }, {});
    evals.push(
      put("evaluate", {}, { features: f }, { protocol: "voc07", mAP, mAPCI: [mAP - 2, mAP + 2] }),
    );
  }
  const tok = put("tokenize", {}, {});
  for (const [task, mAP] of [["bicaptioning", 27.5], ["token_classification", 25]] as const) {
    const m = put("pretrain", { model: { task }, train: { seed: 0 } }, { tokens: tok });
    const f = put("extract", { ...ds, weights: "pretrained" }, { model: m });
    evals.push(put("evaluate", {}, { features: f }, { protocol: "voc07", mAP, mAPCI: [25, 30] }));
  }
  const rows = buildComparison(cache, evals.map((k) => cache.get(k)!));
  assertEquals(rows.map((r) => r.method), ["random init", "bicaptioning", "token_classification"]);
  assertEquals(rows[0].downstream, "words 64px");
  assertEquals(rows[0].mean, 22);
  assertEquals(rows[0].sd, 2);
  assertEquals(rows[0].members.map((m) => m.seed), [0, 1, 2]);
  assertEquals(rows[1].ci, [25, 30]);
  const md = comparisonMarkdown(rows);
  assert(
    md.includes(
      "| words 64px | random init | 3 | mAP | 22.00 ± 2.00 (20.00, 22.00, 24.00) | — | — |",
    ),
  );
  assert(
    md.includes("| words 64px | bicaptioning | 1 | mAP | 27.50 [25.00, 30.00] | +5.50 | +3.50 |"),
  );
  assertEquals(rows[2].vsRandom, { meanDiff: 3, worstOverBest: 1 });
  assertEquals(rows[0].vsRandom, null);
  const svg = comparisonSvg(rows);
  assertEquals((svg.match(/class="errbar"/g) ?? []).length, 3);
  assert(svg.includes('data-low="20" data-high="24"'));
});

Deno.test("report: pretraining seeds of one config group; another config is a separate row", () => {
  const { cache, put } = fakeCache();
  const ds = { dataset: "coco", path: "/d/coco-tiny/annotations", cocoClasses: "voc20", size: 64 };
  const evals: string[] = [];
  for (const [seed, steps, mAP] of [[0, 100, 10], [1, 100, 14], [0, 200, 30]]) {
    const m = put("pretrain", { model: { task: "bicaptioning" }, train: { seed, steps } }, {});
    const f = put("extract", { ...ds, weights: "pretrained" }, { model: m });
    evals.push(put("evaluate", {}, { features: f }, { protocol: "voc07", mAP }));
  }
  const rows = buildComparison(cache, evals.map((k) => cache.get(k)!));
  assertEquals(rows.map((r) => [r.downstream, r.method, r.members.length, r.mean]), [
    ["coco-tiny voc20 64px", "bicaptioning #1", 2, 12],
    ["coco-tiny voc20 64px", "bicaptioning #2", 1, 30],
  ]);
  const named = buildComparison(cache, evals.map((k) => cache.get(k)!), { [evals[2]]: "long" });
  assertEquals(named[1].method, "long");
  assertThrows(() => buildComparison(cache, [cache.get(evals[0].replace(/.$/, "1"))!]));
});

Deno.test("report: one backbone keeps one method name across downstream sets", () => {
  const { cache, put } = fakeCache();
  const sets = [
    { dataset: "voc", path: "/data/words/VOC2007", size: 128 },
    { dataset: "coco", path: "/d/coco-tiny/annotations", cocoClasses: "voc20", size: 128 },
  ];
  const evals: string[] = [];
  for (const [seed, mAP] of [[0, 28], [1, 27]]) {
    const m = put("pretrain", { model: { task: "bicaptioning" }, train: { seed } }, {});
    for (const ds of sets) {
      const f = put("extract", { ...ds, weights: "pretrained" }, { model: m });
      evals.push(put("evaluate", {}, { features: f }, { protocol: "voc07", mAP }));
    }
  }
  const rows = buildComparison(cache, evals.map((k) => cache.get(k)!));
  assertEquals(rows.map((r) => [r.downstream, r.method, r.members.length]), [
    ["words 128px", "bicaptioning", 2],
    ["coco-tiny voc20 128px", "bicaptioning", 2],
  ]);
});
