import {
  evaluateVoc07,
  formatVoc07Table,
  type Voc07Input,
  voc07Json,
  writeVoc07Report,
} from "../../../pipeline/eval/voc07.ts";
import { assert, assertClose, assertEquals, assertRejects } from "./_assert.ts";

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/sklearn_fixtures.json", import.meta.url)),
);
const vc = fixtures.vocClass;

/** The fixture class, repeated `copies` times as separate classes. */
function fixtureInput(copies: number): Voc07Input {
  const split = (s: { x: number[]; y: number[] }) => {
    const rows = s.y.length;
    const labels = new Int8Array(rows * copies);
    for (let r = 0; r < rows; r++) for (let c = 0; c < copies; c++) labels[r * copies + c] = s.y[r];
    return { features: Float32Array.from(s.x), labels, rows, dim: vc.dim };
  };
  return {
    classes: Array.from({ length: copies }, (_, c) => `class${c}`),
    train: split(vc.train),
    test: split(vc.test),
  };
}

Deno.test("voc07 protocol matches sklearn LinearSVC + cross_val_score on the fixture class", async () => {
  const r = await evaluateVoc07(fixtureInput(1), { workers: 1 });
  const c = r.classes[0];
  for (let i = 0; i < vc.costs.length; i++) {
    assertClose(c.cvAp[i], vc.cvAp[i], 2e-3, `cv AP at C=${vc.costs[i]}`);
  }
  assertEquals(c.bestCost, vc.bestCost, "chosen C");
  assertClose(c.ap, vc.testAp, 2e-3, "test AP");
  // Difficult test labels are excluded.
  const difficult = vc.test.y.filter((v: number) => v === 0).length;
  assert(difficult > 0, "fixture has difficult test labels");
  assertEquals(c.testEvaluated, vc.test.y.length - difficult);
  assertClose(r.mAP, c.ap, 0);
});

Deno.test("voc07 on workers gives the same results as in-thread", async () => {
  const one = await evaluateVoc07(fixtureInput(3), { workers: 1 });
  const two = await evaluateVoc07(fixtureInput(3), { workers: 2 });
  assertEquals(two.workers, 2);
  for (let c = 0; c < 3; c++) {
    assertEquals(two.classes[c].name, `class${c}`);
    assertEquals(two.classes[c].ap, one.classes[c].ap);
    assertEquals(two.classes[c].cvAp, one.classes[c].cvAp);
  }
  const table = formatVoc07Table(two);
  assert(table.split("\n").length === 5, table);
  assert(table.includes("mAP"), table);
  const json = voc07Json(two) as { mAP: number; classes: unknown[] };
  assertClose(json.mAP, two.mAP * 100, 1e-9);
  assertEquals(json.classes.length, 3);
  const dir = await Deno.makeTempDir({ prefix: "virtex-voc07-" });
  try {
    await writeVoc07Report(two, dir);
    assertEquals(await Deno.readTextFile(`${dir}/voc07.txt`), table + "\n");
    const back = JSON.parse(await Deno.readTextFile(`${dir}/voc07.json`));
    assertClose(back.mAP, two.mAP * 100, 1e-9);
    assertEquals([...Deno.readDirSync(dir)].length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("voc07 handles a class without training positives (first C, no crash)", async () => {
  const input = fixtureInput(1);
  input.train.labels = input.train.labels.map((v) => (v === 1 ? -1 : v));
  const r = await evaluateVoc07(input, { workers: 1 });
  assertEquals(r.classes[0].cvAp, [0, 0, 0, 0]);
  assertEquals(r.classes[0].bestCost, 0.01);
  assert(r.classes[0].ap >= 0 && r.classes[0].ap <= 1);
});

Deno.test("voc07 rejects bad labels and shapes, naming the field", async () => {
  const bad = fixtureInput(1);
  bad.train.labels[5] = 2;
  await assertRejects(() => evaluateVoc07(bad, { workers: 1 }), "train.labels[row 5, class 0]");
  const short = fixtureInput(1);
  short.test.features = short.test.features.subarray(1);
  await assertRejects(() => evaluateVoc07(short, { workers: 1 }), "test.features");
});
