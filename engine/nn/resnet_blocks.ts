/** torchvision-compatible ResNet residual blocks (parameter names conv1, bn1, …, downsample.0/1). */
import type { Backend } from "../backend.ts";
import { initConstant, initKaimingNormalFanOut } from "../init.ts";
import * as ops from "../ops/index.ts";
import type { Tensor } from "../tensor.ts";
import { BatchNorm2d, Conv2d } from "./layers.ts";
import { Module } from "./module.ts";

/** 1x1 conv + BN on the shortcut when shape changes (names downsample.0, downsample.1). */
export class Downsample extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(backend: Backend, inC: number, outC: number, stride: number) {
    super(backend);
    this.conv = this.registerModule(
      "0",
      new Conv2d(backend, inC, outC, 1, { stride, bias: false }),
    );
    this.bn = this.registerModule("1", new BatchNorm2d(backend, outC));
    initKaimingNormalFanOut(this.conv.weight);
  }
  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

function conv(be: Backend, i: number, o: number, k: number, stride: number): Conv2d {
  const c = new Conv2d(be, i, o, k, { stride, padding: (k - 1) >> 1, bias: false });
  initKaimingNormalFanOut(c.weight);
  return c;
}

/** Two 3x3 convs (resnet18/34); expansion 1. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Downsample | null;
  constructor(
    backend: Backend,
    inplanes: number,
    planes: number,
    stride = 1,
    zeroInitLast = false,
  ) {
    super(backend);
    this.conv1 = this.registerModule("conv1", conv(backend, inplanes, planes, 3, stride));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(backend, planes));
    this.conv2 = this.registerModule("conv2", conv(backend, planes, planes, 3, 1));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(backend, planes));
    if (zeroInitLast) initConstant(this.bn2.weight, 0);
    this.downsample = stride !== 1 || inplanes !== planes
      ? this.registerModule("downsample", new Downsample(backend, inplanes, planes, stride))
      : null;
  }
  forward(x: Tensor): Tensor {
    let out = this.bn1.forward(this.conv1.forward(x), { relu: true });
    out = this.bn2.forward(this.conv2.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return ops.relu(ops.add(out, identity));
  }
}

/**
 * 1x1 -> 3x3 (stride here, ResNet v1.5) -> 1x1 with expansion 4 (resnet50/101). `width` is
 * planes * widthPerGroup / 64 (wide_resnet50_2 doubles it).
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Downsample | null;
  constructor(
    backend: Backend,
    inplanes: number,
    planes: number,
    stride = 1,
    opts: { widthPerGroup?: number; zeroInitLast?: boolean; downsample?: boolean } = {},
  ) {
    super(backend);
    const width = Math.floor(planes * (opts.widthPerGroup ?? 64) / 64);
    const outC = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule("conv1", conv(backend, inplanes, width, 1, 1));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(backend, width));
    this.conv2 = this.registerModule("conv2", conv(backend, width, width, 3, stride));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(backend, width));
    this.conv3 = this.registerModule("conv3", conv(backend, width, outC, 1, 1));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d(backend, outC));
    if (opts.zeroInitLast) initConstant(this.bn3.weight, 0);
    const needDs = opts.downsample ?? (stride !== 1 || inplanes !== outC);
    this.downsample = needDs
      ? this.registerModule("downsample", new Downsample(backend, inplanes, outC, stride))
      : null;
  }
  forward(x: Tensor): Tensor {
    let out = this.bn1.forward(this.conv1.forward(x), { relu: true });
    out = this.bn2.forward(this.conv2.forward(out), { relu: true });
    out = this.bn3.forward(this.conv3.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return ops.relu(ops.add(out, identity));
  }
}
