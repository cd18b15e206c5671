import { SeededRng } from "../../engine/rng.ts";
/**
 * Linear probe on frozen features: a softmax linear classifier trained with SGD (momentum, no
 * weight decay) and a per-step cosine learning-rate decay, scored by top-1 accuracy. Defaults
 * follow VirTex's ImageNet linear evaluation (LR 0.3, momentum 0.9, batch 256, weights
 * N(0, 0.01²), bias 0); epochs default lower since features here are cached, not augmented.
 */

export interface LinearProbeConfig {
  epochs: number;
  batchSize: number;
  lr: number; // peak LR; decays to 0 with a cosine over all steps
  momentum: number; // PyTorch-style: v ← μv + g; θ ← θ − lr·v
  initStd: number;
  seed: number;
}

export const defaultLinearProbeConfig: LinearProbeConfig = {
  epochs: 30,
  batchSize: 256,
  lr: 0.3,
  momentum: 0.9,
  initStd: 0.01,
  seed: 0,
};

/** Features [rows, dim] with integer class labels in [0, classes). */
export interface ClassifiedFeatures {
  features: Float32Array; // [rows, dim]
  labels: Int32Array; // [rows]
  rows: number;
  dim: number;
}

export interface LinearProbeModel {
  weight: Float32Array; // [classes, dim]
  bias: Float32Array; // [classes]
  classes: number;
  dim: number;
}

export interface LinearProbeResult {
  model: LinearProbeModel;
  epochLoss: number[]; // mean training cross-entropy per epoch
}

/** LR at step t of T: lr · ½(1 + cos(π t / T)). */
export function cosineLr(lr: number, step: number, totalSteps: number): number {
  return 0.5 * lr * (1 + Math.cos(Math.PI * step / Math.max(1, totalSteps)));
}

function check(name: string, d: ClassifiedFeatures, classes: number): void {
  if (d.features.length !== d.rows * d.dim || d.labels.length !== d.rows) {
    throw new Error(`linear probe: ${name} has inconsistent shapes (rows ${d.rows}, dim ${d.dim})`);
  }
  for (let i = 0; i < d.rows; i++) {
    const l = d.labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classes) {
      throw new Error(`linear probe: ${name}.labels[${i}] = ${l}, expected 0..${classes - 1}`);
    }
  }
}

/** logits[k] = W[k]·x + b[k] for one row. */
function logitsOf(m: LinearProbeModel, x: Float32Array, off: number, out: Float64Array): void {
  const { weight, bias, classes, dim } = m;
  for (let k = 0; k < classes; k++) {
    let s = bias[k];
    const wo = k * dim;
    for (let j = 0; j < dim; j++) s += weight[wo + j] * x[off + j];
    out[k] = s;
  }
}

/** Trains the probe; `onEpoch` sees each epoch's mean loss; `init` overrides the random init. */
export function trainLinearProbe(
  train: ClassifiedFeatures,
  classes: number,
  config: Partial<LinearProbeConfig> = {},
  onEpoch?: (epoch: number, loss: number) => void,
  init?: { weight: Float32Array; bias: Float32Array },
): LinearProbeResult {
  const cfg = { ...defaultLinearProbeConfig, ...config };
  if (classes < 2) throw new Error("linear probe: need at least 2 classes");
  if (train.rows === 0) throw new Error("linear probe: no training rows");
  check("train", train, classes);
  const { dim, rows } = train;
  const rng = new SeededRng(cfg.seed);
  const rand = () => rng.next();
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-300)) * Math.cos(2 * Math.PI * rand());
  const model: LinearProbeModel = {
    weight: Float32Array.from({ length: classes * dim }, () => cfg.initStd * gauss()),
    bias: new Float32Array(classes),
    classes,
    dim,
  };
  if (init) {
    // Explicit initial parameters (e.g. to replay a reference run).
    if (init.weight.length !== classes * dim || init.bias.length !== classes) {
      throw new Error("linear probe: init weight/bias shapes do not match [classes, dim]");
    }
    model.weight.set(init.weight);
    model.bias.set(init.bias);
  }
  const vW = new Float32Array(classes * dim); // momentum buffers
  const vB = new Float32Array(classes);
  const gW = new Float32Array(classes * dim); // [classes, dim]
  const gB = new Float32Array(classes);
  const logits = new Float64Array(classes);
  const stepsPerEpoch = Math.ceil(rows / cfg.batchSize);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const order = Uint32Array.from({ length: rows }, (_, i) => i);
  const epochLoss: number[] = [];
  let step = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (let i = rows - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let start = 0; start < rows; start += cfg.batchSize) {
      const end = Math.min(rows, start + cfg.batchSize);
      const b = end - start;
      gW.fill(0);
      gB.fill(0);
      for (let s = start; s < end; s++) {
        const r = order[s];
        const off = r * dim;
        logitsOf(model, train.features, off, logits);
        let max = -Infinity;
        for (let k = 0; k < classes; k++) max = Math.max(max, logits[k]);
        let z = 0;
        for (let k = 0; k < classes; k++) z += Math.exp(logits[k] - max);
        const y = train.labels[r];
        lossSum += Math.log(z) + max - logits[y];
        // d loss / d logit_k = softmax_k − [k = y], averaged over the batch.
        for (let k = 0; k < classes; k++) {
          const g = (Math.exp(logits[k] - max) / z - (k === y ? 1 : 0)) / b;
          gB[k] += g;
          const wo = k * dim;
          for (let j = 0; j < dim; j++) gW[wo + j] += g * train.features[off + j];
        }
      }
      const lr = cosineLr(cfg.lr, step, totalSteps);
      for (let i = 0; i < gW.length; i++) {
        vW[i] = cfg.momentum * vW[i] + gW[i];
        model.weight[i] -= lr * vW[i];
      }
      for (let k = 0; k < classes; k++) {
        vB[k] = cfg.momentum * vB[k] + gB[k];
        model.bias[k] -= lr * vB[k];
      }
      step++;
    }
    epochLoss.push(lossSum / rows);
    onEpoch?.(epoch, lossSum / rows);
  }
  return { model, epochLoss };
}

/** Arg-max class of every row. */
export function predictClasses(
  m: LinearProbeModel,
  features: Float32Array,
  rows: number,
): Int32Array {
  if (features.length !== rows * m.dim) {
    throw new Error(`linear probe: features length ${features.length} != ${rows}×${m.dim}`);
  }
  const out = new Int32Array(rows);
  const logits = new Float64Array(m.classes);
  for (let r = 0; r < rows; r++) {
    logitsOf(m, features, r * m.dim, logits);
    let best = 0;
    for (let k = 1; k < m.classes; k++) if (logits[k] > logits[best]) best = k;
    out[r] = best;
  }
  return out;
}

/** Top-1 accuracy in [0, 1]. */
export function top1Accuracy(m: LinearProbeModel, test: ClassifiedFeatures): number {
  check("test", test, m.classes);
  if (test.rows === 0) return 0;
  const pred = predictClasses(m, test.features, test.rows);
  let hit = 0;
  for (let i = 0; i < test.rows; i++) if (pred[i] === test.labels[i]) hit++;
  return hit / test.rows;
}
