/**
 * Pooled features of a frozen backbone over image files: each image decoded, resized (short side
 * `resize`, antialiased), centre-cropped to `size` and normalised (the eval transform), batched
 * through the backbone in eval mode, global-average-pooled and optionally L2-normalised. Shared by
 * `extract` and the transfer evaluation during `pretrain`.
 */
import { noGrad, tidy } from "../../engine/scope.ts";
import { tensor } from "../../engine/tensor.ts";
import * as ops from "../../engine/ops/index.ts";
import { AugmentKernel } from "../../kernels/augment.ts";
import { decodeResized } from "../augment/pack.ts";
import { applyEval, transformSchema } from "../augment/transforms.ts";
import type { ResNetBackbone } from "../model/backbones.ts";

/** Options of embedImages. */
export interface EmbedOptions {
  net: ResNetBackbone;
  files: readonly string[];
  size: number; // centre crop
  resize: number; // short side before the crop
  batchSize: number;
  /** L2-normalise each feature vector (the VOC07 SVM protocol); false: raw pooled features. */
  normalize: boolean;
  /** Called after each batch with its image count (progress). */
  onBatch?: (n: number) => void;
}

/** Features [files.length, net.featureSize] (see module doc); the net is left in eval mode. */
export async function embedImages(o: EmbedOptions): Promise<Float32Array> {
  const { net, files } = o;
  const N = files.length, S = o.size, dim = net.featureSize, be = net.backend;
  net.eval();
  const transform = transformSchema.parse({ size: S, evalResize: o.resize });
  const kernel = await AugmentKernel.load();
  const feats = new Float32Array(N * dim);
  const workers = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  const decoded = decodeResized(files, o.resize, workers);
  for (let lo = 0; lo < N; lo += o.batchSize) {
    const B = Math.min(o.batchSize, N - lo);
    const batch = new Float32Array(B * 3 * S * S);
    for (let b = 0; b < B; b++) {
      const r = (await decoded.next()).value!;
      if ("error" in r) throw new Error(`${r.file}: ${r.error.message}`);
      applyEval(kernel, r.image, transform, batch.subarray(b * 3 * S * S, (b + 1) * 3 * S * S));
    }
    const pooled = noGrad(() =>
      tidy(() => {
        const x = tensor(be, batch, [B, 3, S, S]);
        const v = ops.globalAvgPool(net.forward(x)); // [B, C]
        if (!o.normalize) return v;
        const norm = ops.sqrt(ops.addScalar(ops.sumAxis(ops.square(v), 1, true), 1e-12)); // [B, 1]
        return ops.div(v, norm); // [B, C]
      })
    );
    feats.set(await pooled.f32(), lo * dim);
    pooled.dispose();
    o.onBatch?.(B);
  }
  await decoded.return(undefined);
  return feats;
}
