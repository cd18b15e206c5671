/**
 * Linear SVM training for the VOC07 protocol: solver settings and a pool of Deno Workers, each
 * with its own instance of the single-threaded SVM wasm kernel, that solves classes in parallel.
 */
import { SvmKernel, type SvmMatrix, type SvmModel } from "../../kernels/svm.ts";

/** Settings of the per-class SVMs, defaulting to VirTex's clf_voc07 (sklearn LinearSVC). */
export interface SvmConfig {
  costs: number[]; // C candidates, chosen per class by cross-validation
  posWeight: number; // class weight of +1: C_pos = C · posWeight
  negWeight: number; // class weight of −1: C_neg = C · negWeight
  eps: number; // stopping tolerance on the projected-gradient spread
  maxIter: number; // outer iterations of coordinate descent
  folds: number; // cross-validation folds (stratified, unshuffled)
  seed: number; // base seed of the coordinate permutations
}

export const defaultSvmConfig: SvmConfig = {
  costs: [0.01, 0.1, 1, 10],
  posWeight: 2,
  negWeight: 1,
  eps: 1e-4,
  maxIter: 2000,
  folds: 3,
  seed: 0,
};

/** Deterministic per-solve seed from the base seed and the solve's coordinates. */
export function solveSeed(base: number, ...parts: number[]): number {
  let h = (base ^ 0x811c9dc5) >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p & 0xffff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (p >>> 16), 0x01000193) >>> 0;
  }
  return h;
}

/** Trains one binary SVM with cost C on `rows` of `m` (labels > 0 positive). */
export function trainSvm(
  kernel: SvmKernel,
  m: SvmMatrix,
  rows: Uint32Array,
  labels: Int8Array,
  cost: number,
  cfg: SvmConfig,
  seed: number,
): SvmModel {
  return kernel.train(m, rows, labels, {
    cPos: cost * cfg.posWeight,
    cNeg: cost * cfg.negWeight,
    eps: cfg.eps,
    maxIter: cfg.maxIter,
    seed,
  });
}

/** Features of one split, row-major. */
export interface FeatureMatrix {
  data: Float32Array; // [rows, dim]
  rows: number;
  dim: number;
}

/** Messages between the pool and svm_worker.ts. */
export type WorkerRequest<T> =
  | { type: "init"; train: FeatureMatrix; test: FeatureMatrix; cfg: SvmConfig }
  | { type: "task"; id: number; task: T };
export type WorkerReply<R> =
  | { type: "ready" }
  | { type: "result"; id: number; result: R }
  | { type: "error"; id: number; message: string };

/**
 * Runs tasks over `workers` Deno Workers (svm_worker.ts), each holding its own kernel instance
 * and its own copy of the train/test features; tasks are handed out as workers free up.
 */
export async function runOnWorkers<T, R>(
  train: FeatureMatrix,
  test: FeatureMatrix,
  cfg: SvmConfig,
  tasks: T[],
  workers: number,
  onResult?: (result: R, index: number) => void,
): Promise<R[]> {
  const n = Math.max(1, Math.min(workers, tasks.length));
  const results: R[] = new Array(tasks.length);
  const pool: Worker[] = [];
  try {
    let next = 0;
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      if (tasks.length === 0) resolve();
      const give = (w: Worker) => {
        if (next >= tasks.length) return;
        const id = next++;
        w.postMessage({ type: "task", id, task: tasks[id] } satisfies WorkerRequest<T>);
      };
      for (let k = 0; k < n; k++) {
        const w = new Worker(new URL("./svm_worker.ts", import.meta.url), { type: "module" });
        pool.push(w);
        w.onmessage = (ev: MessageEvent<WorkerReply<R>>) => {
          const msg = ev.data;
          if (msg.type === "ready") give(w);
          else if (msg.type === "error") reject(new Error(`svm worker: ${msg.message}`));
          else {
            results[msg.id] = msg.result;
            onResult?.(msg.result, msg.id);
            if (++finished === tasks.length) resolve();
            else give(w);
          }
        };
        w.onerror = (ev) => {
          ev.preventDefault();
          reject(new Error(`svm worker failed: ${ev.message}`));
        };
        w.postMessage({ type: "init", train, test, cfg } satisfies WorkerRequest<T>);
      }
    });
  } finally {
    for (const w of pool) w.terminate();
  }
  return results;
}
