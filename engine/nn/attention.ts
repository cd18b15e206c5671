/** Multi-head attention with torch.nn.MultiheadAttention's parameter layout (batch-first). */
import type { Backend } from "../backend.ts";
import { initConstant, initXavierUniform } from "../init.ts";
import * as ops from "../ops/index.ts";
import { type CounterRng, defaultRng } from "../rng.ts";
import type { Tensor } from "../tensor.ts";
import { Linear } from "./layers.ts";
import { Module } from "./module.ts";

export interface MhaCallOptions {
  causal?: boolean;
  /** [B, S] f32, 1 where the key is padding. */
  keyPaddingMask?: Tensor | null;
  /** Also return head-averaged attention weights [B, T, S]. */
  needWeights?: boolean;
}

/**
 * in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E];
 * inputs batch-first: query [B, T, E], key/value [B, S, E].
 */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;
  readonly headDim: number;
  constructor(
    backend: Backend,
    readonly embedDim: number,
    readonly numHeads: number,
    readonly dropoutP = 0,
    public rng: CounterRng = defaultRng,
  ) {
    super(backend);
    if (embedDim % numHeads !== 0) {
      throw new Error(`MultiheadAttention: ${embedDim} not divisible by ${numHeads} heads`);
    }
    this.headDim = embedDim / numHeads;
    this.inProjWeight = this.param("in_proj_weight", [3 * embedDim, embedDim]);
    this.inProjBias = this.param("in_proj_bias", [3 * embedDim]);
    this.outProj = this.registerModule("out_proj", new Linear(backend, embedDim, embedDim));
    initXavierUniform(this.inProjWeight);
    initConstant(this.inProjBias, 0);
    initConstant(this.outProj.bias!, 0);
  }

  /** [B, L, E] -> [B, A, L, Dh] */
  private heads(x: Tensor): Tensor {
    const [B, L] = x.shape;
    return ops.permute(ops.reshape(x, [B, L, this.numHeads, this.headDim]), [0, 2, 1, 3]);
  }

  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    opts: MhaCallOptions = {},
  ): { out: Tensor; weights: Tensor | null } {
    const E = this.embedDim;
    const [B, T] = query.shape;
    let q: Tensor, k: Tensor, v: Tensor;
    if (query === key && key === value) {
      const qkv = ops.linear(query, this.inProjWeight, this.inProjBias); // [B, T, 3E]
      q = ops.slice(qkv, 2, 0, E);
      k = ops.slice(qkv, 2, E, 2 * E);
      v = ops.slice(qkv, 2, 2 * E, 3 * E);
    } else {
      const W = this.inProjWeight, bias = this.inProjBias;
      q = ops.linearRows(query, W, bias, 0, E);
      if (key === value) {
        const kv = ops.linearRows(key, W, bias, E, 2 * E); // [B, S, 2E]
        k = ops.slice(kv, 2, 0, E);
        v = ops.slice(kv, 2, E, 2 * E);
      } else {
        k = ops.linearRows(key, W, bias, E, E);
        v = ops.linearRows(value, W, bias, 2 * E, E);
      }
    }
    const { out, weights } = ops.attention(this.heads(q), this.heads(k), this.heads(v), {
      causal: opts.causal,
      keyPaddingMask: opts.keyPaddingMask,
      dropoutP: this.dropoutP,
      training: this.training,
      rng: this.rng,
    }); // out [B, A, T, Dh], weights [B, A, T, S]
    const merged = ops.reshape(ops.permute(out, [0, 2, 1, 3]), [B, T, E]);
    const y = this.outProj.forward(merged);
    const avg = opts.needWeights ? ops.meanAxis(weights, 1) : null;
    return { out: y, weights: avg };
  }
}
