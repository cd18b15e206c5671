/**
 * The six pretraining tasks on one visual backbone: `bicaptioning` (forward + backward
 * captioning losses summed, the paper's default), `captioning` (forward only), `cappa`
 * (parallel-prediction captioning: a share of each batch decoded from all-[MASK] inputs, the rest
 * autoregressively; see caption_losses.ts), `token_classification` (bag of caption tokens, K-hot
 * 1/K target, KL loss), `multilabel_classification` (image categories, BCE) and `masked_lm` (15%
 * of tokens; 80% [MASK], 10% random, 10% kept; bidirectional decoder).
 */
import type { Backend } from "../../engine/backend.ts";
import { counterUniform, hash32 } from "../../engine/backend.ts";
import { Module } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { type CounterRng, defaultRng } from "../../engine/rng.ts";
import { noGrad, tidy } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import { createBackbone, type ResNetBackbone } from "./backbones.ts";
import { cappaLoss, captionLoss, EOS, MASK, PAD, SOS } from "./caption_losses.ts";
import { parseHeadName } from "./names.ts";
import { copyWeights, LinearTextualHead, TransformerTextualHead } from "./textual_heads.ts";

export const TASKS = [
  "bicaptioning",
  "captioning",
  "cappa",
  "token_classification",
  "multilabel_classification",
  "masked_lm",
] as const;
export type TaskName = typeof TASKS[number];

export { EOS, MASK, PAD, SOS };

/** Tasks whose model has a forward caption decoder (captioning, zero-shot scoring). */
export const CAPTION_TASKS: readonly TaskName[] = ["bicaptioning", "captioning", "cappa"];

/** cappa's default share of each batch decoded in parallel (the CapPa paper's 0.75). */
export const DEFAULT_PARALLEL_FRACTION = 0.75;

/** One training batch. Captions are [SOS] … [EOS] padded with PAD to T. */
export interface Batch {
  images: Tensor; // [B, 3, S, S]
  tokens: Int32Array; // [B, T]
  lengths: number[]; // [B] tokens before padding
  T: number;
  /** [B, numClasses] 0/1 targets for multilabel_classification. */
  labels?: Float32Array;
}

export interface ModelConfig {
  task: TaskName;
  visual: string; // backbone name, e.g. "resnet50"
  textual: string; // head name, e.g. "transdec_postnorm::L1_H2048_A32_F8192"
  vocabSize: number;
  maxLength?: number; // positional table size (30)
  dropout?: number; // 0.1
  /** Init std of the decoder's linear and attention projections (0.02, the reference's). */
  initStd?: number;
  numClasses?: number; // multilabel_classification
  maskSeed?: number; // masked_lm token choice stream
  /** cappa: share of each batch decoded in parallel from all-[MASK] inputs (0.75). */
  parallelFraction?: number;
}

/** The model being pretrained: backbone + task head(s). */
export class PretrainingModel extends Module {
  readonly visual: ResNetBackbone;
  textual: TransformerTextualHead | null = null;
  backwardTextual: TransformerTextualHead | null = null;
  linear: LinearTextualHead | null = null;
  private maskCounter = 0;

  private constructor(backend: Backend, readonly config: ModelConfig, rng: CounterRng) {
    super(backend);
    const c = config;
    this.visual = this.registerModule("visual", createBackbone(backend, c.visual));
    const C = this.visual.featureSize;
    const head = parseHeadName(c.textual);
    const needsDecoder = CAPTION_TASKS.includes(c.task) || c.task === "masked_lm";
    if (needsDecoder) {
      if (head.kind !== "transdec_postnorm" && head.kind !== "transdec_prenorm") {
        throw new Error(`task ${c.task} needs a transformer textual head, got "${c.textual}"`);
      }
      const o = {
        dropout: c.dropout ?? 0.1,
        maxLength: c.maxLength ?? 30,
        initStd: c.initStd ?? 0.02,
        rng,
      };
      this.textual = this.registerModule(
        "textual",
        new TransformerTextualHead(backend, head, C, c.vocabSize, o),
      );
      if (c.task === "bicaptioning") {
        this.backwardTextual = this.registerModule(
          "backward_textual",
          new TransformerTextualHead(backend, head, C, c.vocabSize, {
            ...o,
            // One visual projection, embedding and output layer for both directions; each
            // direction has its own decoder layers (as the reference's bicaptioning model).
            sharedEmbedding: this.textual.embedding,
            sharedVisualProjection: this.textual.visualProjection,
            sharedOutputBias: this.textual.outputBias,
          }),
        );
      }
    } else {
      const out = c.task === "multilabel_classification" ? c.numClasses : c.vocabSize;
      if (!out) throw new Error("multilabel_classification needs numClasses");
      this.linear = this.registerModule("textual", new LinearTextualHead(backend, C, out));
    }
  }

  /** Builds the model; the backward decoder starts as a copy of the forward one. */
  static async create(
    backend: Backend,
    config: ModelConfig,
    rng: CounterRng = defaultRng,
  ): Promise<PretrainingModel> {
    const m = new PretrainingModel(backend, config, rng);
    if (m.textual && m.backwardTextual) await copyWeights(m.textual, m.backwardTextual);
    return m;
  }

  /** Scalar training loss of one batch, plus named parts (forward/backward) for logging. */
  loss(batch: Batch): { loss: Tensor; parts: Record<string, Tensor> } {
    const grid = this.visual.forward(batch.images); // [B, C, h, w]
    switch (this.config.task) {
      case "captioning":
      case "bicaptioning": {
        const fwd = captionLoss(this.textual!, grid, batch.tokens, batch.lengths, batch.T);
        if (!this.backwardTextual) return { loss: fwd, parts: { forward: fwd } };
        const rev = reverseCaptions(batch.tokens, batch.lengths, batch.T);
        const bwd = captionLoss(this.backwardTextual, grid, rev, batch.lengths, batch.T);
        return { loss: ops.add(fwd, bwd), parts: { forward: fwd, backward: bwd } };
      }
      case "cappa": {
        const r = cappaLoss(
          this.textual!,
          grid,
          batch.tokens,
          batch.lengths,
          batch.T,
          this.config.parallelFraction ?? DEFAULT_PARALLEL_FRACTION,
        );
        const parts: Record<string, Tensor> = {};
        if (r.parallel) parts.parallel = r.parallel;
        if (r.autoregressive) parts.autoregressive = r.autoregressive;
        return { loss: r.loss, parts };
      }
      case "token_classification": {
        const target = bagOfTokens(batch.tokens, batch.T, this.config.vocabSize);
        const logits = this.linear!.forward(grid); // [B, V]
        const t = tensor(this.backend, target, logits.shape);
        const l = ops.klDivergence(logits, t, "batchmean");
        return { loss: l, parts: { kl: l } };
      }
      case "multilabel_classification": {
        if (!batch.labels) throw new Error("multilabel_classification batch without labels");
        const logits = this.linear!.forward(grid); // [B, K]
        const l = ops.bceWithLogits(logits, tensor(this.backend, batch.labels, logits.shape));
        return { loss: l, parts: { bce: l } };
      }
      case "masked_lm": {
        const seed = this.config.maskSeed ?? 0;
        const { input, target } = maskTokens(
          batch.tokens,
          batch.lengths,
          batch.T,
          this.config.vocabSize,
          seed,
          this.maskCounter,
        );
        this.maskCounter += batch.tokens.length;
        const B = batch.lengths.length;
        const memory = this.textual!.projectVisual(grid);
        const ids = tensor(this.backend, input, [B, batch.T], "i32");
        const logits = this.textual!.decode(memory, ids, { causal: false, lengths: batch.lengths });
        const l = ops.crossEntropy(logits, target, { ignoreIndex: PAD });
        return { loss: l, parts: { mlm: l } };
      }
    }
  }

  /** Host-side state that exact resume needs besides tensors. */
  extraState(): { maskCounter: number } {
    return { maskCounter: this.maskCounter };
  }
  loadExtraState(s: { maskCounter: number }): void {
    this.maskCounter = s.maskCounter;
  }

  /**
   * Greedy captions from the forward decoder: token ids per image (without [SOS]/[EOS]).
   * Runs in eval mode without gradients.
   */
  async greedyCaptions(images: Tensor, maxSteps = 29): Promise<number[][]> {
    if (!this.textual) throw new Error(`task ${this.config.task} has no caption decoder`);
    const head = this.textual;
    const wasTraining = this.training;
    this.eval();
    try {
      const B = images.shape[0];
      const seqs: number[][] = Array.from({ length: B }, () => [SOS]);
      const done = new Array(B).fill(false);
      const memory = noGrad(() => tidy(() => head.projectVisual(this.visual.forward(images))));
      for (let step = 0; step < maxSteps && done.some((d) => !d); step++) {
        const t = seqs[0].length;
        const lastT = noGrad(() =>
          tidy(() => {
            const ids = tensor(this.backend, Int32Array.from(seqs.flat()), [B, t], "i32");
            const logits = head.decode(memory, ids); // [B, t, V]
            return ops.slice(logits, 1, t - 1, t); // [B, 1, V]
          })
        );
        const V = lastT.shape[2];
        const last = await lastT.f32();
        lastT.dispose();
        for (let b = 0; b < B; b++) {
          // [PAD], [SOS] and [MASK] are never generated.
          let best = EOS;
          for (let v = MASK + 1; v < V; v++) if (last[b * V + v] > last[b * V + best]) best = v;
          seqs[b].push(done[b] ? PAD : best);
          if (best === EOS) done[b] = true;
        }
      }
      memory.dispose();
      return seqs.map((s) => {
        const out = s.slice(1);
        const end = out.findIndex((x) => x === EOS || x === PAD);
        return end < 0 ? out : out.slice(0, end);
      });
    } finally {
      this.train(wasTraining);
    }
  }
}

/** Each caption's first `length` tokens reversed ([EOS] … [SOS]), padding kept at the end. */
export function reverseCaptions(tokens: Int32Array, lengths: number[], T: number): Int32Array {
  const out = new Int32Array(tokens.length);
  lengths.forEach((L, b) => {
    for (let i = 0; i < L; i++) out[b * T + i] = tokens[b * T + L - 1 - i];
  });
  return out;
}

/** K-hot / K target over the vocabulary from each caption's distinct non-special tokens. */
export function bagOfTokens(tokens: Int32Array, T: number, V: number): Float32Array {
  const B = tokens.length / T;
  const out = new Float32Array(B * V);
  for (let b = 0; b < B; b++) {
    const seen = new Set<number>();
    for (let t = 0; t < T; t++) {
      const id = tokens[b * T + t];
      if (id > MASK) seen.add(id);
    }
    for (const id of seen) out[b * V + id] = 1 / seen.size;
  }
  return out;
}

/**
 * BERT-style masking of non-special tokens, deterministic in (seed, counter): each token is
 * chosen with p 0.15 (at least one per caption); a chosen token becomes [MASK] (80%), a random
 * token (10%) or stays (10%).
 * target holds the original id at chosen positions and PAD (ignored) elsewhere.
 */
export function maskTokens(
  tokens: Int32Array,
  lengths: number[],
  T: number,
  V: number,
  seed: number,
  counter: number,
): { input: Int32Array; target: Int32Array } {
  const input = Int32Array.from(tokens), target = new Int32Array(tokens.length);
  const s1 = hash32(seed ^ 0x5bd1e995), s2 = hash32(seed ^ 0x1b873593);
  const choose = (i: number, c: number) => {
    target[i] = tokens[i];
    const r = counterUniform(s1, c);
    if (r < 0.8) input[i] = MASK;
    else if (r < 0.9) input[i] = MASK + 1 + Math.floor(counterUniform(s2, c) * (V - MASK - 1));
  };
  lengths.forEach((L, b) => {
    // Every caption gets at least one prediction: its lowest draw when none fell under 0.15.
    let any = false, lowest = -1, lowestU = 2;
    for (let t = 0; t < L; t++) {
      const i = b * T + t;
      if (tokens[i] <= MASK) continue;
      const c = (counter + i) >>> 0, u = counterUniform(seed, c);
      if (u < lowestU) [lowest, lowestU] = [i, u];
      if (u < 0.15) {
        choose(i, c);
        any = true;
      }
    }
    if (!any && lowest >= 0) choose(lowest, (counter + lowest) >>> 0);
  });
  return { input, target };
}
