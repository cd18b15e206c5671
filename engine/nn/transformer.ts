/** Transformer decoder layer (torch.nn.TransformerDecoderLayer layout, batch-first, GELU). */
import type { Backend } from "../backend.ts";
import * as ops from "../ops/index.ts";
import { type CounterRng, defaultRng } from "../rng.ts";
import type { Tensor } from "../tensor.ts";
import { MultiheadAttention } from "./attention.ts";
import { Dropout, LayerNorm, Linear } from "./layers.ts";
import { Module } from "./module.ts";

export interface DecoderLayerOptions {
  dropout?: number; // default 0.1
  /** Pre-norm (norm_first=True) instead of post-norm. */
  normFirst?: boolean;
  eps?: number;
  rng?: CounterRng;
}

export interface DecoderCallOptions {
  /** Causal self-attention (the captioning decoders always use it). */
  causal?: boolean;
  /** [B, T] f32, 1 at padded caption positions. */
  tgtKeyPaddingMask?: Tensor | null;
  /** [B, S] f32, 1 at padded memory positions. */
  memoryKeyPaddingMask?: Tensor | null;
  /** Return head-averaged cross-attention weights [B, T, S]. */
  needCrossWeights?: boolean;
}

/**
 * Self-attention, cross-attention over `memory`, GELU feed-forward. Parameter names follow
 * torch: self_attn.*, multihead_attn.*, linear1, linear2, norm1..3.
 */
export class TransformerDecoderLayer extends Module {
  readonly selfAttn: MultiheadAttention;
  readonly crossAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  readonly dropout: Dropout;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly dropout3: Dropout;
  readonly normFirst: boolean;
  /** Cross-attention weights of the last forward with needCrossWeights. */
  lastCrossWeights: Tensor | null = null;

  constructor(
    backend: Backend,
    readonly dModel: number,
    readonly numHeads: number,
    readonly dimFeedforward: number,
    opts: DecoderLayerOptions = {},
  ) {
    super(backend);
    const p = opts.dropout ?? 0.1, eps = opts.eps ?? 1e-5, rng = opts.rng ?? defaultRng;
    this.normFirst = opts.normFirst ?? false;
    this.selfAttn = this.registerModule(
      "self_attn",
      new MultiheadAttention(backend, dModel, numHeads, p, rng),
    );
    this.crossAttn = this.registerModule(
      "multihead_attn",
      new MultiheadAttention(backend, dModel, numHeads, p, rng),
    );
    this.linear1 = this.registerModule("linear1", new Linear(backend, dModel, dimFeedforward));
    this.dropout = this.registerModule("dropout", new Dropout(backend, p, rng));
    this.linear2 = this.registerModule("linear2", new Linear(backend, dimFeedforward, dModel));
    this.norm1 = this.registerModule("norm1", new LayerNorm(backend, dModel, eps));
    this.norm2 = this.registerModule("norm2", new LayerNorm(backend, dModel, eps));
    this.norm3 = this.registerModule("norm3", new LayerNorm(backend, dModel, eps));
    this.dropout1 = this.registerModule("dropout1", new Dropout(backend, p, rng));
    this.dropout2 = this.registerModule("dropout2", new Dropout(backend, p, rng));
    this.dropout3 = this.registerModule("dropout3", new Dropout(backend, p, rng));
  }

  private selfBlock(x: Tensor, o: DecoderCallOptions): Tensor {
    const { out } = this.selfAttn.forward(x, x, x, {
      causal: o.causal ?? true,
      keyPaddingMask: o.tgtKeyPaddingMask,
    });
    return this.dropout1.forward(out);
  }

  private crossBlock(x: Tensor, memory: Tensor, o: DecoderCallOptions): Tensor {
    const { out, weights } = this.crossAttn.forward(x, memory, memory, {
      keyPaddingMask: o.memoryKeyPaddingMask,
      needWeights: o.needCrossWeights,
    });
    this.lastCrossWeights = weights;
    return this.dropout2.forward(out);
  }

  private ffBlock(x: Tensor): Tensor {
    const h = this.dropout.forward(ops.gelu(this.linear1.forward(x)));
    return this.dropout3.forward(this.linear2.forward(h));
  }

  /** tgt [B, T, E], memory [B, S, E] -> [B, T, E]. */
  forward(tgt: Tensor, memory: Tensor, opts: DecoderCallOptions = {}): Tensor {
    let x = tgt;
    if (this.normFirst) {
      x = ops.add(x, this.selfBlock(this.norm1.forward(x), opts));
      x = ops.add(x, this.crossBlock(this.norm2.forward(x), memory, opts));
      x = ops.add(x, this.ffBlock(this.norm3.forward(x)));
    } else {
      x = this.norm1.forward(ops.add(x, this.selfBlock(x, opts)));
      x = this.norm2.forward(ops.add(x, this.crossBlock(x, memory, opts)));
      x = this.norm3.forward(ops.add(x, this.ffBlock(x)));
    }
    return x;
  }
}
