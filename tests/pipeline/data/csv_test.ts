import { assertEquals } from "../cache/_assert.ts";
import { parseCsv } from "../../../pipeline/data/csv.ts";

Deno.test("parseCsv: RFC 4180 quoting, embedded commas/quotes/newlines, CRLF, blank lines", () => {
  const text =
    'image,caption\r\na.jpg,"A dog, running"\r\n\r\nb.jpg,"He said ""hi""\non two lines"\nc.jpg,plain\n';
  const recs = [...parseCsv(text)];
  assertEquals(recs.map((r) => r.fields), [
    ["image", "caption"],
    ["a.jpg", "A dog, running"],
    ["b.jpg", 'He said "hi"\non two lines'],
    ["c.jpg", "plain"],
  ]);
  assertEquals(recs.map((r) => r.line), [1, 2, 4, 6]);
  assertEquals(recs.every((r) => r.error === undefined), true);
});

Deno.test("parseCsv: stray quote and text after a closing quote are errors on their line", () => {
  const recs = [...parseCsv('h,c\na.jpg,bad "quote" here\nb.jpg,"closed"junk\nc.jpg,fine\n')];
  assertEquals(recs.map((r) => [r.line, r.error !== undefined]), [
    [1, false],
    [2, true],
    [3, true],
    [4, false],
  ]);
  assertEquals(recs[3].fields, ["c.jpg", "fine"]);
});

Deno.test("parseCsv: an unterminated quote names the line where the field started", () => {
  const recs = [...parseCsv('h,c\na.jpg,ok\nb.jpg,"never closed\nmore text\n')];
  const last = recs[recs.length - 1];
  assertEquals(last.line, 3);
  assertEquals(last.error, "unterminated quoted field starting on line 3");
});

Deno.test("parseCsv: no trailing newline, empty fields, trailing comma", () => {
  assertEquals([...parseCsv("a,,b\nx,y,")].map((r) => r.fields), [["a", "", "b"], ["x", "y", ""]]);
});
