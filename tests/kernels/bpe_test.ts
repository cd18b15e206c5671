/** Tests of the BPE kernel (kernels/bpe.ts + kernels/bpe/src): training rules and encoding. */
import { haveSpm, spmTrainPieces } from "../spm_reference.ts";
import { strict as assert } from "node:assert";
import { BpeKernel, type BpeTrainOptions } from "../../kernels/bpe.ts";

const opts = (vocabSize: number, o: Partial<BpeTrainOptions> = {}): BpeTrainOptions => ({
  vocabSize,
  numSpecial: 4,
  maxPieceLength: 16,
  characterCoverage: 1,
  digitsApart: true,
  spmCandidateWindow: true,
  ...o,
});

/** A small deterministic caption corpus (a xorshift generator over a tiny grammar). */
function corpus(n: number, seed = 7): string[] {
  let s = seed;
  const rnd = (k: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % k;
  };
  const subj = ["a dog", "two dogs", "a man", "the girl", "a red car", "3 kids", "a brown dog"];
  const verb = ["runs", "jumps", "sits", "is running", "plays", "waits"];
  const where = [
    "left of the tree",
    "right of a house",
    "on the grass",
    "in 2010",
    "near 4-way stop",
  ];
  const end = [" .", " !", "?", " .", ""];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      `${subj[rnd(subj.length)]} ${verb[rnd(verb.length)]} ${where[rnd(where.length)]}${
        end[rnd(end.length)]
      }`,
    );
  }
  out.push("dog? dog? dog! dog?"); // punctuation glued to a word
  return out;
}

const LETTER = /\p{L}/u, DIGIT = /[0-9]/, PUNCT = /[^\p{L}0-9\u2581]/u;

Deno.test("bpe: vocabulary size, characters, word-start marker and script rules", async () => {
  const k = await BpeKernel.load();
  const lines = corpus(400);
  const pieces = k.train(lines, opts(150)).map((p) => p.piece);
  assert.equal(pieces.length, 150 - 4);
  assert.equal(new Set(pieces).size, pieces.length);
  for (const ch of new Set(lines.join("").replaceAll(" ", ""))) {
    assert.ok(pieces.includes(ch), `character ${ch} is a piece`);
  }
  assert.ok(pieces.includes("\u2581"));
  for (const p of pieces) {
    assert.ok(!p.slice(1).includes("\u2581"), `${p}: ▁ only at the start`);
    const body = p.replace(/^\u2581/, "");
    const kinds = [LETTER, DIGIT, PUNCT].filter((re) => re.test(body)).length;
    assert.ok(kinds <= 1, `${p} mixes letters, digits and punctuation`);
  }
  assert.ok(!pieces.some((p) => /dog[?!]/.test(p)), "no dog? / dog! pieces");
  assert.ok(pieces.includes("\u2581dog"));
});

Deno.test("bpe: training is deterministic and merges are chosen best-first", async () => {
  const k = await BpeKernel.load();
  const lines = corpus(300);
  const a = k.train(lines, opts(120));
  const b = k.train(lines, opts(120));
  assert.deepEqual(a, b);
  const merges = a.filter((p) => [...p.piece].length > 1);
  for (let i = 1; i < merges.length; i++) {
    assert.ok(merges[i].freq <= merges[i - 1].freq, "frequencies never increase");
  }
  assert.throws(() => k.train(lines, opts(10)), /smaller than/);
});

Deno.test("bpe: encoder merges by piece rank, caches words, maps unknown characters", async () => {
  const k = await BpeKernel.load();
  // Ids: specials 0-3, then pieces from 4.
  const pieces = ["\u2581a", "ab", "\u2581ab", "c", "a", "b", "\u2581"];
  k.loadVocab(pieces, 4, 0);
  const id = (p: string) => pieces.indexOf(p) + 4;
  const r = k.encode(["ab abc", "", "ab zz a"]);
  assert.deepEqual(Array.from(r.offsets), [0, 3, 3, 7]);
  // "▁ab": ▁a (rank 0) first, then ▁a+b = ▁ab (rank 2); "ab" never forms since ▁a took the a.
  assert.deepEqual(Array.from(r.ids.subarray(0, 3)), [id("\u2581ab"), id("\u2581ab"), id("c")]);
  // "▁zz": ▁ then one <unk> for the run of unknown characters; then "▁a".
  assert.deepEqual(Array.from(r.ids.subarray(3)), [id("\u2581ab"), id("\u2581"), 0, id("\u2581a")]);
});

Deno.test("bpe: matches spm_train pieces exactly with SentencePiece's digit rule", {
  ignore: !haveSpm("bpe_test"),
}, async () => {
  const lines = corpus(600, 11).map((l) => l.toLowerCase());
  const ref = (await spmTrainPieces(lines, 160)).slice(4);
  const k = await BpeKernel.load();
  const ours = k.train(lines, opts(160, { digitsApart: false })).map((p) => p.piece);
  assert.deepEqual(ours, ref);
});
