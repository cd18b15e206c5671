/**
 * Textual heads: the Transformer caption decoder (token + positional embedding, LayerNorm,
 * dropout; decoder layers of masked self-attention, cross-attention over the linearly projected
 * visual grid, GELU feed-forward; output layer tied to the token embedding with its own bias) and
 * the linear head used by the classification tasks.
 */
import type { Backend } from "../../engine/backend.ts";
import { initConstant, initNormal } from "../../engine/init.ts";
import {
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  Module,
  TransformerDecoderLayer,
} from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import { type CounterRng, defaultRng } from "../../engine/rng.ts";
import { type Tensor, tensor, zeros } from "../../engine/tensor.ts";
import type { HeadSpec } from "./names.ts";

/** BERT-style init: N(0, std) weights (the reference's std is 0.02), zero biases. */
function bertInit(m: Linear, std: number): void {
  initNormal(m.weight, std);
  if (m.bias) initConstant(m.bias, 0);
}

/** Word + learned positional embedding, LayerNorm (eps 1e-8), dropout; padding row zeroed. */
export class WordAndPositionalEmbedding extends Module {
  readonly words: Embedding;
  readonly positions: Embedding;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(
    backend: Backend,
    vocabSize: number,
    hidden: number,
    readonly maxLength: number,
    p: number,
    rng: CounterRng,
    paddingIdx = 0,
  ) {
    super(backend);
    this.words = this.registerModule("words", new Embedding(backend, vocabSize, hidden));
    this.positions = this.registerModule("positions", new Embedding(backend, maxLength, hidden));
    this.layerNorm = this.registerModule("layer_norm", new LayerNorm(backend, hidden, 1e-8));
    this.dropout = this.registerModule("dropout", new Dropout(backend, p, rng));
    initNormal(this.words.weight, 0.02);
    initNormal(this.positions.weight, 0.02);
    backend.fill(this.words.weight.buf, 0, paddingIdx * hidden, hidden);
  }

  /** tokens i32 [B, T] -> [B, T, H]. */
  forward(tokens: Tensor): Tensor {
    const T = tokens.shape[1];
    if (T > this.maxLength) {
      throw new Error(`caption length ${T} exceeds the positional table (${this.maxLength})`);
    }
    const posIds = tensor(this.backend, Int32Array.from({ length: T }, (_, i) => i), [T], "i32");
    const x = ops.add(this.words.forward(tokens), this.positions.forward(posIds)); // [B, T, H]
    return this.dropout.forward(this.layerNorm.forward(x));
  }
}

export interface DecodeOptions {
  /** Causal self-attention (captioning); false for masked language modelling. */
  causal?: boolean;
  /** Valid length of each caption (positions >= length are padding). */
  lengths?: number[];
  /** Keep the last layer's head-averaged cross-attention weights [B, T, S]. */
  needCrossWeights?: boolean;
}

/** Transformer decoder over the visual grid, predicting a token distribution per position. */
export class TransformerTextualHead extends Module {
  readonly visualProjection: Linear;
  embedding: WordAndPositionalEmbedding;
  readonly layers: TransformerDecoderLayer[] = [];
  /** Output bias; the output weight is `embedding.words.weight` (tied). */
  readonly outputBias: Tensor;
  private readonly layerHolder: Module;

  constructor(
    backend: Backend,
    readonly spec: HeadSpec,
    readonly visualFeatureSize: number,
    readonly vocabSize: number,
    opts: {
      dropout?: number;
      maxLength?: number;
      rng?: CounterRng;
      /**
       * Std of the normal init of the linear and attention projections (default 0.02, as the
       * reference; embeddings always use 0.02).
       */
      initStd?: number;
      sharedEmbedding?: WordAndPositionalEmbedding;
      /** Another head's visual projection to use (bicaptioning shares it, as the reference). */
      sharedVisualProjection?: Linear;
      /** Another head's output bias to use (shared with the tied output layer). */
      sharedOutputBias?: Tensor;
    } = {},
  ) {
    super(backend);
    const p = opts.dropout ?? 0.1, rng = opts.rng ?? defaultRng, std = opts.initStd ?? 0.02;
    const H = spec.hidden;
    let projection = opts.sharedVisualProjection;
    if (!projection) {
      projection = new Linear(backend, visualFeatureSize, H);
      bertInit(projection, std);
    }
    this.visualProjection = this.registerModule("visual_projection", projection);
    this.embedding = this.registerModule(
      "embedding",
      opts.sharedEmbedding ??
        new WordAndPositionalEmbedding(backend, vocabSize, H, opts.maxLength ?? 30, p, rng),
    );
    this.layerHolder = this.registerModule("transformer", new Module(backend));
    const layersModule = this.layerHolder.registerModule("layers", new Module(backend));
    for (let i = 0; i < spec.layers; i++) {
      const layer = new TransformerDecoderLayer(backend, H, spec.heads, spec.feedforward, {
        dropout: p,
        normFirst: spec.kind === "transdec_prenorm",
        rng,
      });
      for (
        const lin of [layer.linear1, layer.linear2, layer.selfAttn.outProj, layer.crossAttn.outProj]
      ) {
        bertInit(lin, std);
      }
      initNormal(layer.selfAttn.inProjWeight, std);
      initNormal(layer.crossAttn.inProjWeight, std);
      this.layers.push(layersModule.registerModule(String(i), layer));
    }
    this.outputBias = this.registerParameter(
      "output_bias",
      opts.sharedOutputBias ?? zeros(backend, [vocabSize]),
    );
  }

  /** grid [B, C, h, w] -> projected memory [B, h*w, H]. */
  projectVisual(grid: Tensor): Tensor {
    const [B, C, h, w] = grid.shape;
    const flat = ops.permute(ops.reshape(grid, [B, C, h * w]), [0, 2, 1]); // [B, hw, C]
    return this.visualProjection.forward(flat); // [B, hw, H]
  }

  /** memory [B, S, H] (projected), tokens i32 [B, T] -> logits [B, T, V]. */
  decode(memory: Tensor, tokens: Tensor, o: DecodeOptions = {}): Tensor {
    const [B, T] = tokens.shape;
    let padMask: Tensor | null = null;
    if (o.lengths) {
      const m = new Float32Array(B * T);
      for (let b = 0; b < B; b++) for (let t = o.lengths[b]; t < T; t++) m[b * T + t] = 1;
      padMask = tensor(this.backend, m, [B, T]);
    }
    let x = this.embedding.forward(tokens); // [B, T, H]
    for (const layer of this.layers) {
      x = layer.forward(x, memory, {
        causal: o.causal ?? true,
        tgtKeyPaddingMask: padMask,
        needCrossWeights: o.needCrossWeights,
      });
    }
    return ops.linear(x, this.embedding.words.weight, this.outputBias); // [B, T, V]
  }

  /** Cross-attention weights of the last layer from the last decode with needCrossWeights. */
  lastCrossWeights(): Tensor | null {
    return this.layers[this.layers.length - 1]?.lastCrossWeights ?? null;
  }
}

/** Global average pool -> one linear layer (token and multi-label classification). */
export class LinearTextualHead extends Module {
  readonly output: Linear;
  constructor(backend: Backend, visualFeatureSize: number, outputSize: number) {
    super(backend);
    this.output = this.registerModule("output", new Linear(backend, visualFeatureSize, outputSize));
  }
  /** grid [B, C, h, w] -> logits [B, outputSize]. */
  forward(grid: Tensor): Tensor {
    return this.output.forward(ops.globalAvgPool(grid));
  }
}

/** Copies every parameter and buffer of `src` into `dst` (same structure), e.g. to start the backward decoder as a copy of the forward one. */
export async function copyWeights(src: Module, dst: Module): Promise<void> {
  dst.loadStateDict(await src.stateDictHost(), true);
}
