import { tokenizeCaption } from "../../../pipeline/eval/caption_tokenize.ts";
import { ciderD, ciderDTokens } from "../../../pipeline/eval/cider.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";

Deno.test("CIDEr-D on a hand-computed 2-image fixture", () => {
  // Image A refs "a dog runs", "a dog plays"; candidate "a dog runs".
  // Image B refs "a cat sleeps", "the cat sleeps"; candidate "a cat".
  // 2 images → IDF = log 2 − log df: "a" (in both images, df 2) weighs 0, every other n-gram
  // (df 1) weighs L = log 2. Write p = exp(−1/72) for a length gap of 1 bigram (σ = 6).
  // A vs ref 1 (identical): cosine 1 for n = 1, 2, 3; n = 4 has no n-grams → 0.
  // A vs ref 2: n=1 shares "dog": L²/(L√2·L√2) = 1/2; n=2 shares "a dog": 1/2; n=3,4: 0.
  //   Sums over refs per n: [1.5, 1.5, 1, 0] → mean 1 → /2 refs ×10 = 5.
  // B vs ref 1 (gap 1 bigram): n=1 "cat": L²/(L·L√2) = 1/√2; n=2 "a cat": 1/√2 → ×p.
  // B vs ref 2: n=1 "cat": L²/(L·L√3) = 1/√3; n=2: nothing shared → ×p.
  //   Mean over n = p(√2 + 1/√3)/4 → /2 refs ×10 = 1.25·p·(√2 + 1/√3) ≈ 2.455118.
  // Corpus score = (5 + 2.455118)/2 ≈ 3.727559.
  const p = Math.exp(-1 / 72);
  const expectedB = 1.25 * p * (Math.SQRT2 + 1 / Math.sqrt(3));
  const r = ciderD([
    { candidate: "a dog runs", references: ["a dog runs", "a dog plays"] },
    { candidate: "a cat", references: ["a cat sleeps", "the cat sleeps"] },
  ]);
  assertClose(r.perImage[0], 5, 1e-12, "image A");
  assertClose(r.perImage[1], expectedB, 1e-12, "image B");
  assertClose(r.score, (5 + expectedB) / 2, 1e-12, "corpus");
  assertClose(r.score, 3.727559, 1e-6);
});

Deno.test("CIDEr-D: identical captions score high, unrelated ones 0, clipping holds", () => {
  const refs = [
    ["a man rides a horse on the beach", "a person riding a horse near the sea"],
    ["two dogs play with a red ball", "dogs playing with a ball in the grass"],
    ["a plate of food with rice and beans", "a meal of rice and beans on a plate"],
  ];
  const same = ciderD(refs.map((r) => ({ candidate: r[0], references: r })));
  assert(same.perImage.every((s) => s > 3), `identical: ${same.perImage}`);
  const unrelated = ciderD(
    refs.map((r) => ({ candidate: "zebra xylophone quartz", references: r })),
  );
  assertEquals(unrelated.score, 0);
  // Repeating a matching word does not raise the score (candidate counts clipped by the refs).
  const once = ciderD([
    { candidate: "a dog", references: ["a dog runs"] },
    ...refs.slice(1).map((r) => ({ candidate: r[1], references: r })),
  ]);
  const many = ciderD([
    { candidate: "dog dog dog", references: ["a dog runs"] },
    ...refs.slice(1).map((r) => ({ candidate: r[1], references: r })),
  ]);
  assert(many.perImage[0] <= once.perImage[0], `${many.perImage[0]} > ${once.perImage[0]}`);
});

Deno.test("CIDEr-D rejects mismatched inputs", () => {
  assertThrows(() => ciderDTokens([["a"]], []), "1 candidates but 0 reference sets");
  assertThrows(() => ciderDTokens([["a"]], [[]]), "image 0 has no reference captions");
});

Deno.test("caption tokenization: lowercase, punctuation dropped, PTB clitics", () => {
  assertEquals(tokenizeCaption("A man's DOG, running!"), ["a", "man", "'s", "dog", "running"]);
  assertEquals(tokenizeCaption("They don't  know."), ["they", "do", "n't", "know"]);
  assertEquals(tokenizeCaption('A "t-shirt" costs 3.5 - no (really)?'), [
    "a",
    "t-shirt",
    "costs",
    "3.5",
    "no",
    "really",
  ]);
  assertEquals(tokenizeCaption("The dogs' toys\u2019 ..."), ["the", "dogs", "toys"]);
  assertEquals(tokenizeCaption("  "), []);
});
