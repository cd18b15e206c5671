/** Decoders on hand-made next-token distributions (vocabulary: 0–3 specials, 4–7 words). */
import { assert, assertEquals } from "../cache/_assert.ts";
import {
  beamSearch,
  beamSearchAll,
  greedyDecode,
  logSoftmaxGenerable,
  nucleus,
  nucleusSample,
  type StepFn,
} from "../../../pipeline/caption/decoding.ts";

const V = 8, EOS = 2;

/** Log-probability row from {token: probability}; unlisted tokens get ~0. */
function row(probs: Record<number, number>): Float32Array {
  const r = new Float32Array(V).fill(Math.log(1e-9));
  for (const [k, p] of Object.entries(probs)) r[Number(k)] = Math.log(p);
  return r;
}

/**
 * Step function from a table keyed by the prefix after [SOS] ("" for the first step); prefixes
 * not in the table (e.g. of beams that already ended) get a uniform row.
 */
function tableStep(table: Record<string, Record<number, number>>, calls: string[] = []): StepFn {
  return (prefixes) => {
    return Promise.resolve(prefixes.map((p) => {
      const key = p.slice(1).join(",");
      calls.push(key);
      return table[key] ? row(table[key]) : new Float32Array(V).fill(-Math.log(V));
    }));
  };
}

// Greedy takes 4 (0.6) then a 3-way split (≤ 0.34); beam finds 5 → 6 (0.4 × 0.9 = 0.36).
const TABLE = {
  "": { 4: 0.6, 5: 0.4 },
  "4": { 5: 0.34, 6: 0.33, 7: 0.33 },
  "5": { 6: 0.9, 7: 0.1 },
  "4,5": { [EOS]: 1 },
  "4,6": { [EOS]: 1 },
  "4,7": { [EOS]: 1 },
  "5,6": { [EOS]: 1 },
  "5,7": { [EOS]: 1 },
};

Deno.test("greedy follows the argmax and stops at [EOS]", async () => {
  const d = await greedyDecode(tableStep(TABLE));
  assertEquals(d.tokens, [4, 5]);
  assert(Math.abs(d.logprob - Math.log(0.6 * 0.34)) < 1e-5);
});

Deno.test("beam search finds the more likely caption greedy misses", async () => {
  const d = await beamSearch(tableStep(TABLE), { beamSize: 2 });
  assertEquals(d.tokens, [5, 6]);
  assert(Math.abs(d.logprob - Math.log(0.4 * 0.9)) < 1e-5);
  const all = await beamSearchAll(tableStep(TABLE), { beamSize: 2 });
  assertEquals(all.map((b) => b.tokens), [[5, 6], [4, 5]]);
});

Deno.test("beam search never repeats the previous token", async () => {
  const table = {
    "": { 4: 0.9, 5: 0.1 },
    "4": { 4: 0.9, 6: 0.05, 7: 0.05 }, // 4 → 4 is forbidden
    "5": { 5: 0.9, [EOS]: 0.1 },
    "4,6": { [EOS]: 1 },
    "4,7": { [EOS]: 1 },
    "5,2": { [EOS]: 1 },
  };
  const d = await beamSearch(tableStep(table), { beamSize: 2 });
  assertEquals(d.tokens, [4, 6]);
});

Deno.test("finished beams keep their score; search stops when all ended or at maxSteps", async () => {
  // [EOS] right away (0.5) beats any longer caption (≤ 0.5 × 0.5).
  const calls: string[] = [];
  const table = { "": { [EOS]: 0.5, 4: 0.5 }, "4": { 5: 0.5, 6: 0.5 }, "4,5": { 6: 1 } };
  const d = await beamSearch(tableStep(table, calls), { beamSize: 2, maxSteps: 3 });
  assertEquals(d.tokens, []);
  assert(Math.abs(d.logprob - Math.log(0.5)) < 1e-5);
  // Step 1 from [SOS]; step 2 for both beams; step 3 for the two best (ended beam + 4,5 or 4,6).
  assertEquals(calls.length, 1 + 2 + 2);
  // Length limit: a never-ending loop stops after maxSteps tokens.
  const loop: StepFn = (p) => Promise.resolve(p.map((x) => row({ [4 + (x.length % 2)]: 1 })));
  assertEquals((await beamSearch(loop, { beamSize: 3, maxSteps: 30 })).tokens.length, 30);
  assertEquals((await greedyDecode(loop, { maxSteps: 7 })).tokens.length, 7);
});

Deno.test("logSoftmaxGenerable forbids [PAD]/<unk>, [SOS], [MASK] and normalises", () => {
  const r = logSoftmaxGenerable(new Float32Array([9, 9, 1, 9, 2, 3, 0, 0]));
  for (const special of [0, 1, 3]) assertEquals(r[special], -Infinity);
  const total = [...r].reduce((a, v) => a + Math.exp(v), 0);
  assert(Math.abs(total - 1) < 1e-5);
  assertEquals([...r.keys()].sort((a, b) => r[b] - r[a])[0], 5);
});

Deno.test("nucleus keeps the smallest top set reaching p, renormalised", () => {
  const n = nucleus(row({ 4: 0.5, 5: 0.3, 6: 0.15, 7: 0.05 }), 0.9);
  assertEquals(n.tokens, [4, 5, 6]);
  assert(Math.abs(n.probs[0] - 0.5 / 0.95) < 1e-5);
  assertEquals(nucleus(row({ 4: 0.95, 5: 0.05 }), 0.9).tokens, [4]);
});

Deno.test("nucleus sampling is seeded and draws only from the nucleus", async () => {
  const table: Record<string, Record<number, number>> = {
    "": { 4: 0.5, 5: 0.3, 6: 0.15, 7: 0.05 },
  };
  for (const t of [4, 5, 6, 7]) table[String(t)] = { [EOS]: 1 };
  const step = tableStep(table);
  const a = await nucleusSample(step, { seed: 7 }), b = await nucleusSample(step, { seed: 7 });
  assertEquals(a, b);
  const counts = new Map<number, number>();
  const N = 2000;
  for (let s = 0; s < N; s++) {
    const t = (await nucleusSample(step, { seed: s, topP: 0.9 })).tokens[0];
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  assertEquals(counts.get(7) ?? 0, 0);
  assert(Math.abs(counts.get(4)! / N - 0.5 / 0.95) < 0.04, JSON.stringify([...counts]));
  assert(Math.abs(counts.get(6)! / N - 0.15 / 0.95) < 0.03, JSON.stringify([...counts]));
});
