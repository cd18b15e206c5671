/**
 * The VOC07 SVM protocol for one class, as VirTex's clf_voc07.py does it with scikit-learn:
 * for each C, the mean AP of a stratified 3-fold cross-validation on the train split; the C with
 * the strictly highest mean (ties keep the smaller C) is refit on the whole train split and
 * scored on the test split. Difficult (0) labels count as negatives in training and are left out
 * of the test AP.
 */
import type { SvmKernel, SvmMatrix } from "../../kernels/svm.ts";
import { averagePrecision, voc11PointAp } from "./ap.ts";
import { foldRows, stratifiedKFold } from "./cv.ts";
import { solveSeed, type SvmConfig, trainSvm } from "./svm.ts";

/** One class: labels 1 (present), −1 (absent), 0 (difficult) for every train and test row. */
export interface ClassTask {
  classIndex: number;
  train: Int8Array; // [N_train]
  test: Int8Array; // [N_test]
}

/** Outcome for one class. */
export interface ClassResult {
  classIndex: number;
  cvAp: number[]; // mean cross-validated AP per candidate C
  bestCost: number;
  ap: number; // test AP, non-interpolated (sklearn average_precision_score)
  ap11: number; // test AP, VOC 11-point
  testPositives: number;
  testEvaluated: number; // test rows with a non-difficult label
  testScores: Float32Array; // [N_test] SVM decision values (NaN for difficult rows)
  iterations: number; // coordinate-descent iterations of the final fit
  cvIterations: number[]; // summed over folds, per C
}

/** Runs the protocol for one class on matrices already uploaded to `kernel`. */
export function solveClass(
  kernel: SvmKernel,
  train: SvmMatrix,
  test: SvmMatrix,
  task: ClassTask,
  cfg: SvmConfig,
): ClassResult {
  if (task.train.length !== train.rows || task.test.length !== test.rows) {
    throw new Error(
      `voc07: class ${task.classIndex}: label counts ${task.train.length}/${task.test.length} ` +
        `do not match feature rows ${train.rows}/${test.rows}`,
    );
  }
  // Training targets: present → +1, absent or difficult → −1.
  const y = new Int8Array(train.rows);
  for (let i = 0; i < y.length; i++) y[i] = task.train[i] > 0 ? 1 : -1;
  const fold = stratifiedKFold(y, cfg.folds);
  const splits = Array.from({ length: cfg.folds }, (_, f) => foldRows(fold, f));

  const cvAp: number[] = [];
  const cvIterations: number[] = [];
  let best = -1;
  let bestAp = 0;
  cfg.costs.forEach((cost, ci) => {
    let sum = 0;
    let iters = 0;
    splits.forEach((s, f) => {
      const model = trainSvm(
        kernel,
        train,
        s.train,
        y,
        cost,
        cfg,
        solveSeed(cfg.seed, task.classIndex, ci, f),
      );
      iters += model.iterations;
      const scores = kernel.decision(train, s.test, model);
      const truth = Array.from(s.test, (r) => y[r] > 0);
      sum += averagePrecision(truth, scores);
    });
    const mean = sum / splits.length;
    cvAp.push(mean);
    cvIterations.push(iters);
    if (mean > bestAp) {
      bestAp = mean;
      best = ci;
    }
  });
  // The reference would have no model when every mean AP is 0 (no positives); take the first C.
  if (best < 0) best = 0;
  const bestCost = cfg.costs[best];
  const all = Uint32Array.from({ length: train.rows }, (_, i) => i);
  const model = trainSvm(
    kernel,
    train,
    all,
    y,
    bestCost,
    cfg,
    solveSeed(cfg.seed, task.classIndex, best, cfg.folds),
  );

  const evalRows: number[] = [];
  for (let i = 0; i < test.rows; i++) if (task.test[i] !== 0) evalRows.push(i);
  const rows = Uint32Array.from(evalRows);
  const scores = kernel.decision(test, rows, model);
  const truth = evalRows.map((r) => task.test[r] > 0);
  const testScores = new Float32Array(test.rows).fill(NaN);
  evalRows.forEach((r, i) => (testScores[r] = scores[i]));
  return {
    classIndex: task.classIndex,
    cvAp,
    bestCost,
    ap: averagePrecision(truth, scores),
    ap11: voc11PointAp(truth, scores),
    testPositives: truth.filter((t) => t).length,
    testEvaluated: evalRows.length,
    testScores,
    iterations: model.iterations,
    cvIterations,
  };
}
