import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { barChartSvg, lineChartSvg, niceTicks } from "../../../pipeline/plot/mod.ts";

/** Attribute values of every element `tag` carrying data-series="name". */
function elements(svg: string, tag: string, name: string): Record<string, string>[] {
  const re = new RegExp(`<${tag} ([^>]*)/>`, "g");
  const out: Record<string, string>[] = [];
  for (const m of svg.matchAll(re)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1].matchAll(/([\w-]+)="([^"]*)"/g)) attrs[a[1]] = a[2];
    if (attrs["data-series"] === name) out.push(attrs);
  }
  return out;
}

function points(poly: Record<string, string>): [number, number][] {
  return poly.points.split(" ").map((p) => p.split(",").map(Number) as [number, number]);
}

Deno.test("niceTicks covers the range with round steps", () => {
  const t = niceTicks(0.13, 9.7, 5);
  assertEquals(t.step, 2);
  assertEquals(t.ticks, [0, 2, 4, 6, 8, 10]);
  const u = niceTicks(1.5, 1.5);
  assert(u.lo < 1.5 && u.hi > 1.5);
  const v = niceTicks(0.001, 0.0042, 4);
  assert(v.ticks[0] <= 0.001 && v.ticks[v.ticks.length - 1] >= 0.0042);
});

Deno.test("line chart draws each series as a polyline in data order", () => {
  const x = [0, 100, 200, 300, 400];
  const svg = lineChartSvg({
    title: "Loss",
    xLabel: "step",
    yLabel: "loss",
    series: [
      { name: "train loss", x, y: [9, 6, 4, 3, 2.5] },
      { name: "val <loss>", x: [0, 200, 400], y: [9.5, NaN, 3] },
    ],
  });
  assert(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert(svg.trimEnd().endsWith("</svg>"));
  for (const label of ["Loss", "step", "loss", "train loss", "val &lt;loss&gt;"]) {
    assert(svg.includes(`>${label}<`), label);
  }
  const train = elements(svg, "polyline", "train loss");
  assertEquals(train.length, 1);
  const pts = points(train[0]);
  assertEquals(pts.length, 5);
  for (let i = 1; i < pts.length; i++) {
    assert(pts[i][0] > pts[i - 1][0], "x increases left to right");
    assert(pts[i][1] > pts[i - 1][1], "smaller loss is drawn lower (larger SVG y)");
  }
  // Evenly spaced steps map to evenly spaced pixels.
  const dx = pts.slice(1).map((p, i) => p[0] - pts[i][0]);
  assert(dx.every((d) => Math.abs(d - dx[0]) < 0.02));
  // NaN breaks the validation line into two single points.
  assertEquals(elements(svg, "polyline", "val &lt;loss&gt;").length, 0);
  assertEquals(elements(svg, "circle", "val &lt;loss&gt;").length, 2);
  assert(!svg.includes("NaN"));
});

Deno.test("line chart supports log y and rejects mismatched series", () => {
  const svg = lineChartSvg({
    logY: true,
    series: [{ name: "lr", x: [1, 2, 3], y: [1, 0.1, 0.01] }],
  });
  const pts = points(elements(svg, "polyline", "lr")[0]);
  assert(
    Math.abs((pts[1][1] - pts[0][1]) - (pts[2][1] - pts[1][1])) < 0.02,
    "decades evenly spaced",
  );
  throws(
    () => lineChartSvg({ series: [{ name: "bad", x: [1, 2], y: [1] }] }),
    /series "bad" has 2 x and 1 y/,
  );
});

Deno.test("bar chart has one bar per series and category, heights proportional to values", () => {
  const svg = barChartSvg({
    title: "VOC07 mAP",
    yLabel: "mAP",
    categories: ["shapes", "shape×colour"],
    series: [
      { name: "random init", values: [40, 20] },
      { name: "bicaptioning", values: [80, 60] },
    ],
  });
  const rnd = elements(svg, "rect", "random init");
  const bic = elements(svg, "rect", "bicaptioning");
  assertEquals(rnd.map((r) => r["data-category"]), ["shapes", "shape×colour"]);
  assertEquals(bic.map((r) => Number(r["data-value"])), [80, 60]);
  const h = (r: Record<string, string>) => Number(r.height);
  assert(Math.abs(h(bic[0]) / h(rnd[0]) - 2) < 0.01);
  assert(Math.abs(h(bic[1]) / h(rnd[1]) - 3) < 0.01);
  // Bars share a baseline.
  const bottom = (r: Record<string, string>) => Number(r.y) + h(r);
  assert(Math.abs(bottom(rnd[0]) - bottom(bic[1])) < 0.02);
  for (const label of ["80.0", "20.0", "random init", "bicaptioning", "VOC07 mAP"]) {
    assert(svg.includes(`>${label}<`), label);
  }
  throws(
    () => barChartSvg({ categories: ["a"], series: [{ name: "s", values: [1, 2] }] }),
    /2 values for 1 categories/,
  );
});
