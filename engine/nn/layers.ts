/** Basic layers with PyTorch parameter names and default initialisation. */
import type { Backend } from "../backend.ts";
import { initConstant, initNormal, initTorchDefault } from "../init.ts";
import * as ops from "../ops/index.ts";
import { type CounterRng, defaultRng } from "../rng.ts";
import type { Tensor } from "../tensor.ts";
import { type HostTensor, Module } from "./module.ts";

/** y = x W^T + b; weight [out, in], bias [out]. */
export class Linear extends Module {
  constructor(
    backend: Backend,
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super(backend);
    initTorchDefault(this.param("weight", [outFeatures, inFeatures]), inFeatures);
    if (bias) initTorchDefault(this.param("bias", [outFeatures]), inFeatures);
  }
  /** [out, in]; may be tied to another module's tensor via tieParameter("weight", t). */
  get weight(): Tensor {
    return this.getParameter("weight")!;
  }
  get bias(): Tensor | null {
    return this.getParameter("bias") ?? null;
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean; // default true (torch); ResNets pass false
}

/** 2-D convolution; weight [out, in, k, k], bias [out]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  constructor(
    backend: Backend,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    super(backend);
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.param("weight", [outChannels, inChannels, kernelSize, kernelSize]);
    initTorchDefault(this.weight, fanIn);
    this.bias = (opts.bias ?? true) ? this.param("bias", [outChannels]) : null;
    if (this.bias) initTorchDefault(this.bias, fanIn);
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, this.stride, this.padding);
  }
}

/** Batch norm over channels of [N, C, H, W]; buffers running_mean, running_var, num_batches_tracked. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  private batches = 0;
  constructor(
    backend: Backend,
    readonly numFeatures: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super(backend);
    this.weight = this.param("weight", [numFeatures]);
    this.bias = this.param("bias", [numFeatures]);
    this.runningMean = this.buffer("running_mean", [numFeatures]);
    this.runningVar = this.buffer("running_var", [numFeatures]);
    this.numBatchesTracked = this.buffer("num_batches_tracked", [], "i32");
    initConstant(this.weight, 1);
    initConstant(this.bias, 0);
    initConstant(this.runningMean, 0);
    initConstant(this.runningVar, 1);
    initConstant(this.numBatchesTracked, 0);
  }
  /** Batch norm of x [N, C, H, W]; `relu` fuses a following ReLU. */
  forward(x: Tensor, opts: { relu?: boolean } = {}): Tensor {
    if (this.training) {
      this.batches++;
      this.backend.fill(this.numBatchesTracked.buf, this.batches);
    }
    return ops.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
      relu: opts.relu,
    });
  }
  protected override afterLoad(dict: Map<string, HostTensor>, prefix: string): void {
    const nbt = dict.get(prefix + "num_batches_tracked");
    if (nbt) this.batches = Number(nbt.data[0]);
  }
}

/** Layer norm over the last axis; weight and bias [D]. */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(backend: Backend, readonly dim: number, readonly eps = 1e-5) {
    super(backend);
    this.weight = this.param("weight", [dim]);
    this.bias = this.param("bias", [dim]);
    initConstant(this.weight, 1);
    initConstant(this.bias, 0);
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Lookup table [num, dim], N(0, 1) init like torch. */
export class Embedding extends Module {
  constructor(backend: Backend, readonly num: number, readonly dim: number) {
    super(backend);
    initNormal(this.param("weight", [num, dim]), 1);
  }
  /** [num, dim]; may be tied via tieParameter("weight", t). */
  get weight(): Tensor {
    return this.getParameter("weight")!;
  }
  /** ids: i32 tensor [...] -> [..., dim]. */
  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}

/** Inverted dropout from a counter-based stream; identity in eval mode. */
export class Dropout extends Module {
  constructor(backend: Backend, readonly p: number, public rng: CounterRng = defaultRng) {
    super(backend);
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, this.training, this.rng);
  }
}

/** ReLU as a module (for Sequential). */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}
