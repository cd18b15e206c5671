/**
 * The benchmark shapes of bench/gpu, shared with torch_cuda.py through shapes.json: profile
 * "full" (the device machine's GPU) and "local" (tiny sizes for the software adapter).
 */

/** One pretraining-step case (bench/pretrain's BenchCase without key / accumulate). */
export interface PretrainCase {
  visual: string;
  textual: string;
  size: number;
  batch: number;
  vocab: number;
  maxLength: number;
}

/** One profile of shapes.json. */
export interface Profile {
  matmul: number[]; // square sizes N (N×N · N×N)
  conv: { N: number; C: number; H: number; W: number; O: number }; // 3×3, stride 1, pad 1
  decoder: { B: number; T: number; S: number; H: number; heads: number; F: number };
  /** Pretraining steps timed in img/s; the first is the paper's (batch falls back to 8). */
  pretrain: PretrainCase[];
  /** Per-kernel profile: which pretrain case, warm-up steps, unprofiled steps timed after. */
  profile: { case: number; warmup: number; timed: number };
  microSeconds: number; // time box per micro benchmark (two rounds of half each)
  pretrainWarmup: number; // untimed steps
  pretrainMinSteps: number; // timed steps at least
  pretrainSeconds: number; // timed seconds at least (within the part's budget)
}

/** Reads profile `name` of bench/gpu/shapes.json; throws naming the file and profile. */
export async function readProfile(name: string): Promise<Profile> {
  const path = new URL("./shapes.json", import.meta.url).pathname;
  const all = JSON.parse(await Deno.readTextFile(path)) as Record<string, Profile>;
  const p = all[name];
  if (!p) {
    throw new Error(`${path}: no profile "${name}" (have ${Object.keys(all).join(", ")})`);
  }
  return p;
}
