import { assertEquals, assertStringIncludes } from "./cache/_assert.ts";
import { createProgress, formatDuration } from "../../pipeline/progress.ts";

Deno.test("progress bar: percentage, rate, ETA and info; final line", () => {
  let t = 0;
  const chunks: string[] = [];
  const p = createProgress("train", 100, "img", {
    mode: "bar",
    write: (s) => chunks.push(s),
    now: () => t,
  });
  t = 1000;
  p.tick(10, { loss: 2.5 });
  const last = chunks[chunks.length - 1];
  assertStringIncludes(last, "train [##");
  assertStringIncludes(last, " 10% 10/100");
  assertStringIncludes(last, "10.0 img/s");
  assertStringIncludes(last, "ETA 0:09");
  assertStringIncludes(last, "loss=2.500");
  t = 2000;
  p.tick(90);
  p.done();
  assertStringIncludes(chunks[chunks.length - 1], "100% 100/100 50.0 img/s in 0:02");
});

Deno.test("progress lines: one plain line per period, none in between", () => {
  let t = 0;
  const lines: string[] = [];
  const p = createProgress("extract", 0, "img", {
    mode: "lines",
    lineEvery: 5,
    write: (s) => lines.push(s),
    now: () => t,
  });
  for (let i = 1; i <= 12; i++) {
    t = i * 1000;
    p.tick(2);
  }
  assertEquals(lines.length, 2); // at 5 s and 10 s
  assertStringIncludes(lines[0], "extract 10 img 2.0 img/s");
  p.done();
  assertEquals(lines.length, 3);
  assertEquals(lines.every((l) => !l.includes("\r")), true);
});

Deno.test("formatDuration", () => {
  assertEquals(formatDuration(5), "0:05");
  assertEquals(formatDuration(125), "2:05");
  assertEquals(formatDuration(3725), "1:02:05");
  assertEquals(formatDuration(NaN), "--:--");
});

Deno.test("progress of a resumed job starts at its resume point; rate counts new work only", () => {
  let t = 0;
  const chunks: string[] = [];
  const p = createProgress("pretrain", 1000, "img", {
    mode: "bar",
    write: (s) => chunks.push(s),
    now: () => t,
    initial: 600,
  });
  t = 2000;
  p.tick(100);
  const last = chunks[chunks.length - 1];
  assertStringIncludes(last, " 70% 700/1000");
  assertStringIncludes(last, "50.0 img/s"); // 100 images in 2 s, not 700
  assertStringIncludes(last, "ETA 0:06");
});
