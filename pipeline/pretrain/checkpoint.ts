/**
 * Training checkpoints: model weights, optimizer state (momentum, LookAhead slow weights and
 * counter), dropout RNG, task state and the step, so a killed run resumes bit-identically.
 * Layout: <dir>/step-<N>/{model,optimizer}.safetensors + state.json, and <dir>/LATEST naming the
 * newest complete one (written last, atomically).
 */
import { join } from "node:path";
import type { LookAhead, LossScalerState, SGD } from "../../engine/optim/index.ts";
import { decodeOptimizerState, encodeOptimizerState } from "../../engine/optim/index.ts";
import { loadModule, saveModule, writeFileAtomic } from "../../engine/safetensors.ts";
import type { CounterRng } from "../../engine/rng.ts";
import type { Module } from "../../engine/nn/index.ts";

/** What a checkpoint holds of a model: its state dict and host-side counters (extraState). */
export interface CheckpointModel extends Module {
  extraState(): Record<string, number>;
  loadExtraState(s: Record<string, number>): void;
}

export interface CheckpointState {
  step: number; // optimizer steps completed
  rng: { seed: number; offset: number };
  /** The model's host-side counters (e.g. the masked-LM mask counter). */
  model: Record<string, number>;
  /** Metrics lines written up to this step (to truncate metrics.jsonl on resume). */
  metricsLines: number;
  /** Dynamic loss scaler (AMP runs only). */
  amp?: LossScalerState;
}

const enc = new TextEncoder();

/** Directory name of the checkpoint after `step` steps. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

/** Saves a checkpoint and then points LATEST at it. */
export async function saveCheckpoint(
  dir: string,
  model: CheckpointModel,
  opt: SGD | LookAhead,
  rng: CounterRng,
  state: Omit<CheckpointState, "rng" | "model">,
): Promise<string> {
  const name = checkpointName(state.step);
  const path = join(dir, name);
  await Deno.mkdir(path, { recursive: true });
  await saveModule(join(path, "model.safetensors"), model, { step: String(state.step) });
  await writeFileAtomic(join(path, "optimizer.safetensors"), await encodeOptimizerState(opt));
  const full: CheckpointState = { ...state, rng: rng.state(), model: model.extraState() };
  await writeFileAtomic(join(path, "state.json"), enc.encode(JSON.stringify(full, null, 1)));
  await writeFileAtomic(join(dir, "LATEST"), enc.encode(name + "\n"));
  return path;
}

/** The newest complete checkpoint in `dir`, or null. */
export async function latestCheckpoint(dir: string): Promise<string | null> {
  try {
    const name = (await Deno.readTextFile(join(dir, "LATEST"))).trim();
    return name ? join(dir, name) : null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Every checkpoint directory in `dir` (step-N), newest first. */
export function checkpointsNewestFirst(dir: string): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory && /^step-\d+$/.test(e.name)) names.push(e.name);
    }
  } catch { /* no checkpoints yet */ }
  return names.sort().reverse().map((n) => join(dir, n));
}

/** Deletes every checkpoint directory in `dir` whose name is not in `keep` (e.g. step-00000100). */
export async function pruneCheckpoints(dir: string, keep: readonly string[]): Promise<void> {
  for (const path of checkpointsNewestFirst(dir)) {
    if (!keep.some((k) => path === join(dir, k))) await Deno.remove(path, { recursive: true });
  }
}

/**
 * Restores the newest checkpoint that loads: LATEST first, then older ones; a checkpoint that
 * fails to load (truncated or corrupt files) is reported through `warn` and skipped. Returns the
 * path and state, or null when there is none. Throws when checkpoints exist but none loads (the
 * model may hold part of a bad one; rebuild with --force).
 */
export async function restoreNewest(
  dir: string,
  model: CheckpointModel,
  opt: SGD | LookAhead,
  rng: CounterRng,
  warn: (m: string) => void,
): Promise<{ path: string; state: CheckpointState } | null> {
  const latest = await latestCheckpoint(dir);
  const candidates = [...new Set([...(latest ? [latest] : []), ...checkpointsNewestFirst(dir)])];
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return { path, state: await loadCheckpoint(path, model, opt, rng) };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
      warn(`checkpoint ${path} cannot be loaded (${(e as Error).message}); trying an older one`);
    }
  }
  if (failures.length) {
    throw new Error(
      `no checkpoint in ${dir} can be loaded (${failures.join("; ")}); rerun with --force to ` +
        "start over",
    );
  }
  return null;
}

/** Restores model, optimizer and RNG from a checkpoint directory; returns its state. */
export async function loadCheckpoint(
  path: string,
  model: CheckpointModel,
  opt: SGD | LookAhead,
  rng: CounterRng,
): Promise<CheckpointState> {
  const state = JSON.parse(await Deno.readTextFile(join(path, "state.json"))) as CheckpointState;
  await loadModule(join(path, "model.safetensors"), model);
  const optPath = join(path, "optimizer.safetensors");
  decodeOptimizerState(opt, await Deno.readFile(optPath), optPath);
  rng.load(state.rng);
  model.loadExtraState(state.model);
  return state;
}
