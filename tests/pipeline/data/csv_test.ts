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

Deno.test("parseCsv: an unterminated quote is an error on its line; the next line is read", () => {
  const recs = [...parseCsv('h,c\na.jpg,ok\nb.jpg,"never closed\nc.jpg,more text\n')];
  assertEquals(recs.map((r) => [r.line, r.error]), [
    [1, undefined],
    [2, undefined],
    [3, "unterminated quoted field starting on line 3"],
    [4, undefined],
  ]);
  assertEquals(recs[3].fields, ["c.jpg", "more text"]);
  // A quote opened on one line and "closed" by a later row's quote: the bad row alone is lost.
  const pair = [...parseCsv('h,c\na.jpg,"open\nb.jpg,"x" y\nc.jpg,z\n')];
  assertEquals(pair.map((r) => [r.line, r.error !== undefined]), [
    [1, false],
    [2, true],
    [3, true],
    [4, false],
  ]);
});

Deno.test("parseCsv: no trailing newline, empty fields, trailing comma", () => {
  assertEquals([...parseCsv("a,,b\nx,y,")].map((r) => r.fields), [["a", "", "b"], ["x", "y", ""]]);
});
