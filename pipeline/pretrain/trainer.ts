/**
 * The training loop of `pretrain` and `finetune`: micro-batches with gradient accumulation,
 * global-norm clipping, SGD (+ LookAhead) under a warmup-then-decay LR schedule, periodic
 * validation loss and periodic evaluation (a caller's hook, e.g. VOC07 SVM mAP of the backbone or
 * fine-tuning accuracy), checkpoints with exact resume, metrics as JSONL, a NaN/Inf guard that stops
 * the run and keeps the last good checkpoint. With AMP (train.amp) the forward/backward runs under
 * `autocast` and a dynamic loss scaler skips steps whose gradients overflow (its scale is part of
 * the checkpoint).
 */
import { join } from "node:path";
import { autocast } from "../../engine/amp.ts";
import type { Backend } from "../../engine/backend.ts";
import * as ops from "../../engine/ops/index.ts";
import {
  type LookAhead,
  LossScaler,
  type LossScalerOptions,
  lrFactor,
  type SGD,
} from "../../engine/optim/index.ts";
import type { CounterRng } from "../../engine/rng.ts";
import { noGrad, tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import type { Progress } from "../stage.ts";
import type { Batch } from "../model/tasks.ts";
import {
  type CheckpointModel,
  checkpointName,
  pruneCheckpoints,
  restoreNewest,
  saveCheckpoint,
} from "./checkpoint.ts";
import type { DataParallel } from "./data_parallel.ts";
import { decodeOptimizerState, encodeOptimizerState } from "../../engine/optim/index.ts";
import { type OptimConfig, resolveAmp, type TrainConfig } from "./config.ts";

/** One batch as it comes from the data loader (host memory). */
export interface HostBatch {
  images: Float32Array; // [B, 3, S, S]
  size: number; // B
  tokens?: Int32Array; // [B, T]
  lengths?: ArrayLike<number>; // [B]
  labels?: Float32Array; // [B, K]
}

/** Deterministic batches: the same (epoch, step) always gives the same batch. */
export interface BatchSource {
  readonly batchesPerEpoch: number;
  readonly imageSize: number;
  readonly maxLength: number;
  get(epoch: number, step: number): Promise<HostBatch>;
}

/** A model the trainer can train: a scalar loss per batch, plus what checkpoints hold. */
export interface TrainableModel extends CheckpointModel {
  loss(batch: Batch): { loss: Tensor; parts: Record<string, Tensor> };
}

/** Periodic evaluation: figures of the model (run in eval mode) for the metrics line. */
export interface Evaluation {
  /** Every this many steps, and after the last (0: never). */
  every: number;
  /** The figures after `step` steps, e.g. { mAP: 61.2 }; written as the metric's `eval`. */
  run(step: number): Promise<Record<string, number>>;
  /** The figure that ranks evaluations (higher is better), e.g. "mAP": TrainResult.best. */
  rankBy: string;
}

export interface TrainerOptions {
  backend: Backend;
  model: TrainableModel;
  optimizer: SGD | LookAhead;
  rng: CounterRng; // dropout stream (saved in checkpoints)
  train: TrainConfig;
  optim: OptimConfig;
  source: BatchSource;
  val?: BatchSource;
  workDir: string; // checkpoints + metrics (persistent across kills)
  progress: (label: string, total: number, unit?: string, initial?: number) => Progress;
  log: (msg: string) => void;
  /** Stop after this many steps of this call (tests of kill-and-resume); default: all. */
  stopAfter?: number;
  /** AMP loss-scaler settings (default: scale 2^15, doubled after 2000 finite steps). */
  lossScaler?: LossScalerOptions;
  /**
   * Data parallelism over MPI ranks (see data_parallel.ts): each rank runs its share of every
   * step (train.batchSize is global), gradients are averaged, rank 0 alone writes checkpoints and
   * metrics. Absent: one process.
   */
  dataParallel?: DataParallel;
  /**
   * Periodic evaluation; a step it evaluates is also checkpointed, so the best evaluated step can
   * be picked afterwards.
   */
  evaluate?: Evaluation;
  /** Progress bar label (default "pretrain"). */
  label?: string;
  /**
   * "all" (default) keeps every checkpoint; "last-and-best" deletes older ones but the best
   * evaluated step's after each save (fine-tuning: a checkpoint per epoch adds up).
   */
  keepCheckpoints?: "all" | "last-and-best";
}

export interface Metric {
  step: number;
  loss?: number;
  parts?: Record<string, number>;
  lr?: Record<string, number>;
  gradNorm?: number;
  imgPerSec?: number;
  valLoss?: number;
  /** The periodic evaluation's figures (TrainerOptions.evaluate), on the steps it ran. */
  eval?: Record<string, number>;
  /** AMP runs: the loss scale used this step, and whether the step was skipped (overflow). */
  lossScale?: number;
  skipped?: boolean;
  time: number;
}

export interface TrainResult {
  steps: number;
  resumedFrom: number;
  lastLoss: number;
  lastValLoss: number | null;
  metricsPath: string;
  checkpoint: string;
  /** The best evaluated step by `evaluate.rankBy` (over the whole run, resumes included). */
  best: { step: number; value: number } | null;
}

/** The best evaluation in metrics lines (JSON) by figure `key`, higher being better. */
export function bestEvaluation(
  lines: readonly string[],
  key: string,
): { step: number; value: number } | null {
  let best: { step: number; value: number } | null = null;
  for (const l of lines) {
    const m = JSON.parse(l) as Metric;
    const v = m.eval?.[key];
    if (typeof v === "number" && Number.isFinite(v) && (!best || v > best.value)) {
      best = { step: m.step, value: v };
    }
  }
  return best;
}

/** Raised when the loss stops being finite; names the last good checkpoint. */
export class NonFiniteLossError extends Error {}

/** AMP: gradients that overflow even at a loss scale below this stop the run. */
const MIN_LOSS_SCALE = 2 ** -14;

function toBatch(be: Backend, hb: HostBatch, S: number, T: number): Batch {
  return {
    images: tensor(be, hb.images, [hb.size, 3, S, S]),
    tokens: hb.tokens ?? new Int32Array(hb.size * T),
    lengths: hb.lengths ? Array.from(hb.lengths) : new Array(hb.size).fill(0),
    T,
    labels: hb.labels,
  };
}

/** Micro-batch m of a run: the flat batch index maps onto (epoch, step in epoch). */
function microPosition(src: BatchSource, m: number): [number, number] {
  return [Math.floor(m / src.batchesPerEpoch), m % src.batchesPerEpoch];
}

/** Mean validation loss over the first `batches` batches of the val source (eval mode). */
async function validationLoss(o: TrainerOptions, amp: boolean): Promise<number> {
  const src = o.val!;
  const n = Math.min(o.train.valBatches, src.batchesPerEpoch);
  let total = 0;
  o.model.eval();
  try {
    for (let i = 0; i < n; i++) {
      const hb = await src.get(0, i);
      const l = noGrad(() =>
        tidy(() =>
          autocast(amp, () => o.model.loss(toBatch(o.backend, hb, src.imageSize, src.maxLength)))
            .loss
        )
      );
      total += await l.item();
      l.dispose();
    }
  } finally {
    o.model.train();
  }
  return total / Math.max(1, n);
}

/** Runs the evaluation hook with the model in eval mode. */
async function evaluation(o: TrainerOptions, step: number): Promise<Record<string, number>> {
  o.model.eval();
  try {
    return await o.evaluate!.run(step);
  } finally {
    o.model.train();
  }
}

/** A recorded step whose scalars are still being read back (see train's recordStep). */
interface PendingStep {
  step: number;
  /** Mean loss over the micro-batches (over ranks with data parallelism). */
  loss: Promise<number>;
  parts: [string, Promise<number>][];
  /** ‖g‖² read, or null when the step was skipped (AMP overflow). */
  gradNorm: Promise<number> | null;
  finite: boolean;
  lossScale?: number;
  /** Each group's LR this step (read when recorded: the next step may have set another). */
  lr: Record<string, number>;
  /** performance.now() when its recording began. */
  startedAt: number;
}

/** Runs (or resumes) training to train.steps; returns where it ended. */
export async function train(o: TrainerOptions): Promise<TrainResult> {
  const c = o.train, src = o.source;
  if (c.batchSize % c.accumulate !== 0) {
    throw new Error(
      `train.batchSize ${c.batchSize} is not divisible by train.accumulate ${c.accumulate}`,
    );
  }
  const ckptDir = join(o.workDir, "checkpoints");
  const metricsPath = join(o.workDir, "metrics.jsonl");
  await Deno.mkdir(ckptDir, { recursive: true });

  const amp = resolveAmp(c.amp, o.backend);
  const scaler = amp ? new LossScaler(o.lossScaler) : null;
  if (amp) o.log(`AMP on: f16 matrix products on ${o.backend.name}, dynamic loss scaling`);

  const dp = o.dataParallel;
  const rank = dp?.rank ?? 0, world = dp?.size ?? 1, root = rank === 0;
  let start = 0, metricsLines = 0;
  let best: TrainResult["best"] = null;
  // Only rank 0 reads checkpoints; it hands its state to the others below.
  const restored = root ? await restoreNewest(ckptDir, o.model, o.optimizer, o.rng, o.log) : null;
  if (restored) {
    const { path: latest, state: st } = restored;
    start = st.step;
    metricsLines = st.metricsLines;
    if (scaler && st.amp) scaler.load(st.amp, `${join(latest, "state.json")} field amp`);
    // Drop metrics written after the checkpoint so the log matches an uninterrupted run.
    const lines = (await Deno.readTextFile(metricsPath).catch(() => "")).split("\n").filter(
      Boolean,
    );
    await Deno.writeTextFile(
      metricsPath,
      lines.slice(0, metricsLines).map((l) => l + "\n").join(""),
    );
    if (o.evaluate) best = bestEvaluation(lines.slice(0, metricsLines), o.evaluate.rankBy);
    o.log(`resuming from ${latest} (step ${start} of ${c.steps})`);
  } else {
    await Deno.writeTextFile(metricsPath, "");
  }
  if (dp) {
    const extra = o.model.extraState(), names = Object.keys(extra).sort();
    const n = dp.broadcastNumbers([
      start,
      metricsLines,
      o.rng.seed,
      o.rng.offset,
      ...names.map((k) => extra[k]),
    ]);
    [start, metricsLines] = n;
    o.rng.load({ seed: n[2], offset: n[3] });
    o.model.loadExtraState(Object.fromEntries(names.map((k, i) => [k, n[4 + i]])));
    const opt = dp.broadcastBytes(root ? await encodeOptimizerState(o.optimizer) : null);
    if (!root) decodeOptimizerState(o.optimizer, opt, "rank 0's optimizer state");
    await dp.broadcastModel();
    if (start > 0 && root) o.log(`${world} ranks resume together from step ${start}`);
  }

  const sched = {
    kind: o.optim.schedule,
    warmupSteps: o.optim.warmupSteps,
    totalSteps: c.steps,
    milestones: o.optim.milestones,
    gamma: o.optim.gamma,
  };
  const params = o.optimizer.groups.flatMap((g) => g.params);
  const end = o.stopAfter !== undefined ? Math.min(c.steps, start + o.stopAfter) : c.steps;
  const bar = o.progress(o.label ?? "pretrain", c.steps * c.batchSize, "img", start * c.batchSize);
  const metricsFile = await Deno.open(metricsPath, { append: true, create: true });
  const enc = new TextEncoder();
  const writeMetric = (m: Metric) => {
    metricsFile.writeSync(enc.encode(JSON.stringify(m) + "\n"));
    metricsLines++;
  };
  let lastLoss = NaN, lastVal: number | null = null, lastCkpt = restored?.path ?? "(none)";
  let lastEval: Record<string, string> = {}; // shown on the progress bar
  // A step's time runs from the start of its recording to the start of the next one's (or to its
  // own finish when none was recorded after it: a step synced on its own), so a step finished
  // right after its predecessor does not show a near-zero time.
  let lastRecordStart = -Infinity;
  const ev = o.evaluate;
  const evaluatesAt = (done: number) =>
    ev !== undefined && ev.every > 0 && (done % ev.every === 0 || done === c.steps);
  const syncAt = (done: number) =>
    done === end || done === c.steps ||
    (c.checkpointEvery > 0 && done % c.checkpointEvery === 0) ||
    (o.val !== undefined && c.valEvery > 0 && done % c.valEvery === 0) || evaluatesAt(done);

  /**
   * Records one optimizer step on the device. Its scalars (loss, parts, gradient norm) are read
   * back asynchronously: in a single process without AMP the caller awaits them one step later,
   * so the GPU works on step s + 1 while step s's loss is on its way (the NaN guard still stops
   * within one step, and checkpoint / validation steps are finished before anything else is
   * recorded). AMP needs the overflow flag and data parallelism the allreduced loss before
   * stepping, so their steps wait as before.
   */
  const recordStep = async (step: number): Promise<PendingStep> => {
    const startedAt = performance.now();
    lastRecordStart = startedAt;
    o.optimizer.setLrFactor(lrFactor(step, sched));
    const losses: Promise<number>[] = [], parts: [string, Promise<number>][] = [];
    for (let a = 0; a < c.accumulate; a++) {
      // Rank r's micro-batches are the r-th share of the step's global batch, in order.
      const [ep, s] = microPosition(src, (step * world + rank) * c.accumulate + a);
      const hb = await src.get(ep, s);
      const r = tidy(() =>
        autocast(amp, () => {
          const r = o.model.loss(toBatch(o.backend, hb, src.imageSize, src.maxLength));
          const l = scaler
            ? scaler.scaleLoss(r.loss, 1 / c.accumulate)
            : ops.scale(r.loss, 1 / c.accumulate);
          l.backward();
          return r;
        })
      );
      losses.push(r.loss.item()); // the read is submitted now and resolves later
      for (const [k, v] of Object.entries(r.parts)) {
        parts.push([k, v.item()]);
        if (v !== r.loss) v.dispose();
      }
      r.loss.dispose();
    }
    const mean = Promise.all(losses).then((v) => v.reduce((x, y) => x + y, 0) / c.accumulate);
    const lr: Record<string, number> = {};
    for (const g of o.optimizer.groups) lr[g.name ?? "default"] = g.lr;
    const p: PendingStep = {
      step,
      loss: mean,
      parts,
      gradNorm: null,
      finite: true,
      lr,
      startedAt,
    };
    if (dp) {
      // One allreduce: every rank's gradients become the mean over ranks (and the loss too, so
      // every rank takes the same decisions below).
      const l = await dp.allreduceGradients(await mean);
      p.loss = Promise.resolve(l);
    }
    if (scaler) {
      // AMP: unscale, or skip the step (and back off the scale) when the gradients overflowed.
      p.lossScale = scaler.scale;
      const loss = await p.loss;
      p.finite = Number.isFinite(loss) ? (await scaler.unscale(params)).finite : true;
      if (p.finite) p.gradNorm = stepOptimizer();
      o.optimizer.zeroGrad();
      await afterStep(step);
      if (Number.isFinite(loss)) {
        scaler.update(p.finite);
        if (!p.finite) {
          o.log(
            `step ${step + 1}: gradients overflowed at loss scale ${p.lossScale}; step skipped`,
          );
          if (scaler.scale < MIN_LOSS_SCALE) {
            throw new NonFiniteLossError(
              `non-finite gradients at step ${step} even at loss scale ${p.lossScale}; stopped. ` +
                `The last good checkpoint is ${lastCkpt}; set train.amp to "off", lower the ` +
                `learning rate or check the data, then resume.`,
            );
          }
        }
      }
    } else {
      p.gradNorm = stepOptimizer();
      o.optimizer.zeroGrad();
      await afterStep(step);
    }
    return p;
  };
  /** Clip + step; the squared gradient norm's read is started, not awaited. */
  const stepOptimizer = (): Promise<number> => {
    const sumsq = o.optimizer.clipAndStep(o.optim.clipGradNorm);
    const read = sumsq.item();
    sumsq.dispose();
    return read;
  };
  /** Data parallelism: rank 0's BN buffers everywhere, weight checksums now and then. */
  const afterStep = async (step: number) => {
    if (!dp) return;
    await dp.broadcastBuffers();
    if (c.distCheckEvery > 0 && ((step + 1) % c.distCheckEvery === 0 || step + 1 === end)) {
      await dp.verify(step + 1);
    }
  };

  /** Awaits a step's scalars: NaN guard, metrics, progress, validation and checkpoint. */
  const finishStep = async (p: PendingStep): Promise<void> => {
    const { step, finite } = p;
    lastLoss = await p.loss;
    const partSums: Record<string, number> = {};
    for (const [k, v] of p.parts) partSums[k] = (partSums[k] ?? 0) + (await v) / c.accumulate;
    const gradNorm = p.gradNorm ? Math.sqrt(await p.gradNorm) : NaN;
    if (!Number.isFinite(lastLoss) || (finite && !Number.isFinite(gradNorm))) {
      throw new NonFiniteLossError(
        `non-finite ${
          Number.isFinite(lastLoss) ? "gradient norm" : "loss"
        } (${lastLoss}) at step ` +
          `${step}; stopped. The last good checkpoint is ${lastCkpt}; lower the learning rate or ` +
          `check the data, then resume.`,
      );
    }
    const until = lastRecordStart > p.startedAt ? lastRecordStart : performance.now();
    const dt = (until - p.startedAt) / 1000;
    const done = step + 1;
    const m: Metric = {
      step: done,
      loss: lastLoss,
      parts: partSums,
      lr: p.lr,
      gradNorm,
      imgPerSec: c.batchSize / dt,
      ...(scaler ? { lossScale: p.lossScale, skipped: !finite } : {}),
      time: Date.now(),
    };
    if (!finite) delete m.gradNorm;
    if (root && o.val && c.valEvery > 0 && (done % c.valEvery === 0 || done === c.steps)) {
      lastVal = await validationLoss(o, amp);
      m.valLoss = lastVal;
    }
    // Rank 0 alone evaluates (as it alone validates and writes checkpoints).
    const evaluated = root && evaluatesAt(done);
    if (evaluated) {
      m.eval = await evaluation(o, done);
      const v = m.eval[ev!.rankBy];
      if (Number.isFinite(v) && (!best || v > best.value)) best = { step: done, value: v };
      lastEval = Object.fromEntries(Object.entries(m.eval).map(([k, v]) => [k, v.toFixed(2)]));
    }
    writeMetric(m);
    bar.tick(c.batchSize, {
      step: done,
      loss: lastLoss.toFixed(4),
      ...(lastVal !== null ? { val: lastVal.toFixed(4) } : {}),
      ...lastEval,
    });
    const due = (c.checkpointEvery > 0 && done % c.checkpointEvery === 0) || done === c.steps ||
      evaluated;
    if (root && due) {
      metricsFile.syncSync();
      lastCkpt = await saveCheckpoint(ckptDir, o.model, o.optimizer, o.rng, {
        step: done,
        metricsLines,
        ...(scaler ? { amp: scaler.state() } : {}),
      });
      if (o.keepCheckpoints === "last-and-best") {
        await pruneCheckpoints(ckptDir, [
          checkpointName(done),
          ...(best ? [checkpointName(best.step)] : []),
        ]);
      }
    }
  };

  try {
    let pending: PendingStep | null = null;
    for (let step = start; step < end; step++) {
      const p = await recordStep(step);
      if (pending) await finishStep(pending);
      pending = p;
      if (scaler || dp || syncAt(step + 1)) {
        await finishStep(p);
        pending = null;
      }
    }
    if (pending) await finishStep(pending);
  } finally {
    metricsFile.close();
    bar.done();
  }
  return {
    steps: end,
    resumedFrom: start,
    lastLoss,
    lastValLoss: lastVal,
    metricsPath,
    checkpoint: lastCkpt,
    best,
  };
}
