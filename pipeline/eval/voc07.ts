/**
 * The PASCAL VOC07 classification protocol on frozen features: one linear SVM per class
 * (LIBLINEAR-style solver in wasm), C ∈ {0.01, 0.1, 1, 10} chosen per class by 3-fold
 * cross-validated AP, difficult labels negative in training and excluded at test, classes solved
 * in parallel on Deno Workers. Reports per-class AP and mAP as a text table and as JSON.
 */
import { SvmKernel } from "../../kernels/svm.ts";
import { defaultSvmConfig, type FeatureMatrix, runOnWorkers, type SvmConfig } from "./svm.ts";
import { type ClassResult, type ClassTask, solveClass } from "./voc07_class.ts";

/** One split: features [rows, dim] and labels [rows, classes] with 1 / −1 / 0 (difficult). */
export interface LabelledFeatures {
  features: Float32Array; // [rows, dim]
  labels: Int8Array; // [rows, classes]
  rows: number;
  dim: number;
}

export interface Voc07Input {
  classes: string[];
  train: LabelledFeatures;
  test: LabelledFeatures;
}

export interface Voc07Options {
  svm?: Partial<SvmConfig>;
  /** Parallel workers; 1 solves in this thread. Default: navigator.hardwareConcurrency. */
  workers?: number;
  onClass?: (result: ClassResult, name: string) => void;
}

export interface Voc07ClassReport extends ClassResult {
  name: string;
}

export interface Voc07Result {
  classes: Voc07ClassReport[];
  mAP: number; // mean of non-interpolated per-class AP, in [0, 1]
  mAP11: number; // mean of VOC 11-point AP
  svm: SvmConfig;
  workers: number;
  seconds: number;
}

function checkSplit(name: string, s: LabelledFeatures, classes: number): void {
  if (s.features.length !== s.rows * s.dim) {
    throw new Error(`voc07: ${name}.features has ${s.features.length} values, expected rows×dim`);
  }
  if (s.labels.length !== s.rows * classes) {
    throw new Error(`voc07: ${name}.labels has ${s.labels.length} values, expected rows×classes`);
  }
  for (let i = 0; i < s.labels.length; i++) {
    const v = s.labels[i];
    if (v !== 1 && v !== -1 && v !== 0) {
      throw new Error(
        `voc07: ${name}.labels[row ${Math.floor(i / classes)}, class ${i % classes}] = ${v}, ` +
          "expected 1, -1 or 0",
      );
    }
  }
  for (let i = 0; i < s.features.length; i++) {
    if (!Number.isFinite(s.features[i])) {
      throw new Error(`voc07: ${name}.features[row ${Math.floor(i / s.dim)}] is not finite`);
    }
  }
}

function labelColumn(s: LabelledFeatures, classes: number, c: number): Int8Array {
  const out = new Int8Array(s.rows);
  for (let r = 0; r < s.rows; r++) out[r] = s.labels[r * classes + c];
  return out;
}

/**
 * Classes with at least one positive in both splits (labels [rows, classes.length]); the others
 * cannot be scored and are returned by name in `skipped`.
 */
export function scorableClasses(
  classes: readonly string[],
  train: Pick<LabelledFeatures, "labels" | "rows">,
  test: Pick<LabelledFeatures, "labels" | "rows">,
): { keep: number[]; skipped: string[] } {
  const K = classes.length;
  const hasPos = (s: Pick<LabelledFeatures, "labels" | "rows">, k: number) => {
    for (let r = 0; r < s.rows; r++) if (s.labels[r * K + k] === 1) return true;
    return false;
  };
  const keep: number[] = [], skipped: string[] = [];
  classes.forEach((c, k) => {
    if (hasPos(train, k) && hasPos(test, k)) keep.push(k);
    else skipped.push(c);
  });
  return { keep, skipped };
}

/** The split with only the label columns `keep` (of `classes` columns). */
export function selectColumns(
  s: LabelledFeatures,
  classes: number,
  keep: readonly number[],
): LabelledFeatures {
  const labels = new Int8Array(s.rows * keep.length);
  for (let r = 0; r < s.rows; r++) {
    keep.forEach((k, j) => (labels[r * keep.length + j] = s.labels[r * classes + k]));
  }
  return { ...s, labels };
}

/** Runs the protocol; per-class results come back in class order. */
export async function evaluateVoc07(
  input: Voc07Input,
  opts: Voc07Options = {},
): Promise<Voc07Result> {
  const t0 = performance.now();
  const k = input.classes.length;
  if (k === 0) throw new Error("voc07: no classes");
  checkSplit("train", input.train, k);
  checkSplit("test", input.test, k);
  if (input.train.dim !== input.test.dim) {
    throw new Error(`voc07: train dim ${input.train.dim} != test dim ${input.test.dim}`);
  }
  const cfg: SvmConfig = { ...defaultSvmConfig, ...opts.svm };
  const tasks: ClassTask[] = input.classes.map((_, c) => ({
    classIndex: c,
    train: labelColumn(input.train, k, c),
    test: labelColumn(input.test, k, c),
  }));
  const workers = Math.max(1, Math.min(opts.workers ?? navigator.hardwareConcurrency ?? 1, k));
  const report = (r: ClassResult) => opts.onClass?.(r, input.classes[r.classIndex]);
  let results: ClassResult[];
  if (workers === 1) {
    const kernel = await SvmKernel.load();
    const train = kernel.upload(input.train.features, input.train.rows, input.train.dim);
    const test = kernel.upload(input.test.features, input.test.rows, input.test.dim);
    results = [];
    for (const t of tasks) {
      const r = solveClass(kernel, train, test, t, cfg);
      report(r);
      results.push(r);
    }
    kernel.release(train);
    kernel.release(test);
  } else {
    const asMatrix = (s: LabelledFeatures): FeatureMatrix => ({
      data: s.features,
      rows: s.rows,
      dim: s.dim,
    });
    results = await runOnWorkers<ClassTask, ClassResult>(
      asMatrix(input.train),
      asMatrix(input.test),
      cfg,
      tasks,
      workers,
      report,
    );
  }
  const classes = results.map((r) => ({ name: input.classes[r.classIndex], ...r }));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    classes,
    mAP: mean(classes.map((c) => c.ap)),
    mAP11: mean(classes.map((c) => c.ap11)),
    svm: cfg,
    workers,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Per-class AP table (percent) with the chosen C, ending in the mAP line. */
export function formatVoc07Table(r: Voc07Result): string {
  const width = Math.max(8, ...r.classes.map((c) => c.name.length));
  const lines = [
    `${"class".padEnd(width)}  ${"AP".padStart(6)}  ${"AP11".padStart(6)}  ${"C".padStart(5)}  ` +
    `${"cv AP".padStart(6)}  ${"pos".padStart(5)}`,
  ];
  for (const c of r.classes) {
    const cv = c.cvAp[r.svm.costs.indexOf(c.bestCost)] ?? 0;
    lines.push(
      `${c.name.padEnd(width)}  ${(c.ap * 100).toFixed(2).padStart(6)}  ` +
        `${(c.ap11 * 100).toFixed(2).padStart(6)}  ${String(c.bestCost).padStart(5)}  ` +
        `${(cv * 100).toFixed(2).padStart(6)}  ${String(c.testPositives).padStart(5)}`,
    );
  }
  lines.push(
    `${"mAP".padEnd(width)}  ${(r.mAP * 100).toFixed(2).padStart(6)}  ` +
      `${(r.mAP11 * 100).toFixed(2).padStart(6)}`,
  );
  return lines.join("\n");
}

/** JSON-ready summary: mAP in percent plus every class's figures. */
export function voc07Json(r: Voc07Result): Record<string, unknown> {
  return {
    metric: "voc07_svm",
    mAP: r.mAP * 100,
    mAP11: r.mAP11 * 100,
    classes: r.classes.map((c) => ({
      name: c.name,
      ap: c.ap * 100,
      ap11: c.ap11 * 100,
      bestCost: c.bestCost,
      cvAp: c.cvAp.map((v) => v * 100),
      testPositives: c.testPositives,
      testEvaluated: c.testEvaluated,
      iterations: c.iterations,
      cvIterations: c.cvIterations,
    })),
    svm: r.svm,
    workers: r.workers,
    seconds: r.seconds,
  };
}

/** Writes `voc07.txt` (table) and `voc07.json` into `dir`, each via a temp name and rename. */
export async function writeVoc07Report(r: Voc07Result, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ["voc07.txt", formatVoc07Table(r) + "\n"],
    ["voc07.json", JSON.stringify(voc07Json(r), null, 2) + "\n"],
  ];
  for (const [name, text] of files) {
    const tmp = `${dir}/.${name}.tmp.${Deno.pid}`;
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, `${dir}/${name}`);
  }
}
