import { LeftRightSwapper } from "../../../pipeline/augment/swap.ts";
import { assert, assertEquals } from "./_assert.ts";

const W = "\u2581";
const pieces = [
  "<unk>",
  "[SOS]",
  "[EOS]",
  "[MASK]",
  `${W}a`,
  `${W}left`,
  `${W}right`,
  `${W}b`,
  "right",
  "s",
  ".",
  `${W}of`,
  `${W}bright`,
  "-",
  "ist",
];
const id = (p: string) => {
  const i = pieces.indexOf(p);
  if (i < 0) throw new Error(`no piece ${p}`);
  return i;
};
const enc = (...ps: string[]) => Int32Array.from(ps.map(id));
const sw = new LeftRightSwapper(pieces);

Deno.test("swap: whole words left and right are exchanged", () => {
  assert(sw.available);
  const t = enc("[SOS]", `${W}a`, `${W}left`, `${W}of`, `${W}a`, `${W}right`, "[EOS]");
  assertEquals(
    sw.swap(t),
    enc("[SOS]", `${W}a`, `${W}right`, `${W}of`, `${W}a`, `${W}left`, "[EOS]"),
  );
  // Adjacent, at the end, before punctuation, before padding.
  assertEquals(sw.swap(enc(`${W}left`, `${W}right`)), enc(`${W}right`, `${W}left`));
  assertEquals(
    sw.swap(enc(`${W}a`, `${W}left`, ".", "[EOS]")),
    enc(`${W}a`, `${W}right`, ".", "[EOS]"),
  );
  assertEquals(sw.swap(enc(`${W}left`, "-", `${W}a`)), enc(`${W}right`, "-", `${W}a`));
  assertEquals(sw.swap(enc(`${W}left`, "<unk>", "<unk>")), enc(`${W}right`, "<unk>", "<unk>"));
});

Deno.test("swap: words that only contain left/right stay ('bright', 'lefts', 'leftist')", () => {
  const bright1 = enc(`${W}b`, "right", "[EOS]"); // "bright" split as ▁b + right
  assertEquals(sw.swap(bright1), bright1);
  const bright2 = enc(`${W}bright`, "[EOS]");
  assertEquals(sw.swap(bright2), bright2);
  const lefts = enc(`${W}a`, `${W}left`, "s", "[EOS]");
  assertEquals(sw.swap(lefts), lefts);
  const leftist = enc(`${W}left`, "ist");
  assertEquals(sw.swap(leftist), leftist);
});

Deno.test("swap: length bounds the scan; input is not modified", () => {
  const t = enc(`${W}left`, "[EOS]", `${W}left`, "s");
  const before = Array.from(t);
  assertEquals(sw.swap(t, 2), enc(`${W}right`, "[EOS]", `${W}left`, "s"));
  assertEquals(Array.from(t), before);
  // With length 3 the last "▁left" ends the scanned range: swapped.
  assertEquals(sw.swap(t, 3), enc(`${W}right`, "[EOS]", `${W}right`, "s"));
});

Deno.test("swap: a vocabulary without both words leaves captions unchanged", () => {
  const s = new LeftRightSwapper(["<unk>", `${W}left`, `${W}a`]);
  assert(!s.available);
  assertEquals(s.swap(Int32Array.from([1, 2])), [1, 2]);
});
