/**
 * Visual backbones by name: torchvision ResNet topology (parameter names conv1, bn1,
 * layer1.0.conv1, …) with the last BN gamma of every residual block zero-initialised. The
 * backbone returns the final grid ([B, 2048, 7, 7] for resnet50 at 224 px) and its pooled vector.
 * A `_wN` suffix (e.g. `resnet18_w32`) scales the base width from 64 to N channels (stages N, 2N,
 * 4N, 8N): the same topology at about (N/64)² of the compute, for small CPU runs. An `_os16`
 * suffix drops the stem's max pool (output stride 16 instead of 32: a 4×4 grid at 64 px), which
 * keeps small objects in small images resolvable, at about 4× the compute after the stem.
 */
import type { Backend } from "../../engine/backend.ts";
import { initKaimingNormalFanOut } from "../../engine/init.ts";
import { BasicBlock, BatchNorm2d, Bottleneck, Conv2d, Module } from "../../engine/nn/index.ts";
import * as ops from "../../engine/ops/index.ts";
import type { Tensor } from "../../engine/tensor.ts";

interface BackboneSpec {
  block: "basic" | "bottleneck";
  layers: [number, number, number, number];
  widthPerGroup?: number;
}

/** The backbones `visual.name` accepts. */
export const BACKBONES: Record<string, BackboneSpec> = {
  resnet18: { block: "basic", layers: [2, 2, 2, 2] },
  resnet34: { block: "basic", layers: [3, 4, 6, 3] },
  resnet50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  resnet101: { block: "bottleneck", layers: [3, 4, 23, 3] },
  wide_resnet50_2: { block: "bottleneck", layers: [3, 4, 6, 3], widthPerGroup: 128 },
};

type Block = BasicBlock | Bottleneck;

/** One residual stage (torchvision's `layerN`): blocks named "0", "1", …. */
class ResStage extends Module {
  readonly blocks: Block[] = [];
  constructor(backend: Backend, blocks: Block[]) {
    super(backend);
    blocks.forEach((b, i) => this.blocks.push(this.registerModule(String(i), b)));
  }
  forward(x: Tensor): Tensor {
    for (const b of this.blocks) x = b.forward(x);
    return x;
  }
}

/** ResNet without its classifier: stem (7×7/2 conv, BN, ReLU, 3×3/2 max pool) + 4 stages. */
export class ResNetBackbone extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: ResStage[] = [];
  /** Channels of the final grid (512 for resnet18/34, 2048 for the bottleneck nets). */
  readonly featureSize: number;
  /** Whether the stem ends in the 3×3/2 max pool (false for `_os16` names). */
  readonly stemPool: boolean;

  constructor(backend: Backend, readonly arch: string) {
    super(backend);
    const { spec, width, stemPool } = parseBackboneName(arch);
    this.stemPool = stemPool;
    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d(backend, 3, width, 7, { stride: 2, padding: 3, bias: false }),
    );
    initKaimingNormalFanOut(this.conv1.weight);
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(backend, width));
    const expansion = spec.block === "basic" ? 1 : 4;
    let inplanes = width;
    const planes = [width, 2 * width, 4 * width, 8 * width];
    for (let s = 0; s < 4; s++) {
      const blocks: Block[] = [];
      for (let i = 0; i < spec.layers[s]; i++) {
        const stride = i === 0 && s > 0 ? 2 : 1;
        blocks.push(
          spec.block === "basic"
            ? new BasicBlock(backend, inplanes, planes[s], stride, true)
            : new Bottleneck(backend, inplanes, planes[s], stride, {
              widthPerGroup: spec.widthPerGroup,
              zeroInitLast: true,
            }),
        );
        inplanes = planes[s] * expansion;
      }
      this.stages.push(this.registerModule(`layer${s + 1}`, new ResStage(backend, blocks)));
    }
    this.featureSize = inplanes;
  }

  /** images [B, 3, S, S] -> grid [B, C, S/32, S/32] (S/16 without the stem pool). */
  forward(images: Tensor): Tensor {
    let x = this.bn1.forward(this.conv1.forward(images), { relu: true });
    if (this.stemPool) x = ops.maxPool2d(x, 3, 2, 1);
    for (const stage of this.stages) x = stage.forward(x);
    return x;
  }

  /** grid [B, C, h, w] -> [B, C]. */
  static pool(grid: Tensor): Tensor {
    return ops.globalAvgPool(grid);
  }
}

/**
 * Splits a backbone name into its torchvision spec, base width and stem pool: `resnet50` →
 * width 64 with the pool, `resnet18_w32_os16` → width 32 without it. Throws on an unknown name.
 */
export function parseBackboneName(
  name: string,
): { spec: BackboneSpec; width: number; stemPool: boolean } {
  const m = /^(.*?)(?:_w(\d+))?(_os16)?$/.exec(name)!;
  const spec = BACKBONES[m[1]];
  const width = m[2] === undefined ? 64 : Number(m[2]);
  const stemPool = m[3] === undefined;
  if (!spec || !(width >= 1 && width <= 1024)) {
    throw new Error(
      `unknown visual backbone "${name}" (known: ${
        Object.keys(BACKBONES).join(", ")
      }, each optionally followed by a base width such as _w32 and/or _os16)`,
    );
  }
  return { spec, width, stemPool };
}

/** Builds a backbone by name (`resnet50`, `resnet18_w32`, …). */
export function createBackbone(backend: Backend, name: string): ResNetBackbone {
  return new ResNetBackbone(backend, name);
}
