/**
 * Batch norm of the webgpu backend for both kernel sets: "current" (wgsl_norm.ts: chunked
 * reductions, fused ReLU, subgroupAdd where verified) and "legacy" (one workgroup per channel,
 * ReLU as separate kernels), plus the self-test that decides whether the subgroup variant is used.
 */
import type {
  BatchNormApplyArgs,
  BatchNormBackwardArgs,
  BatchNormStatsArgs,
  Buf,
  UnaryBackwardArgs,
  UnaryOp,
} from "../../backend.ts";
import type { AnyBuf } from "./buffers.ts";
import type { Grid } from "./context.ts";
import type { KernelSpec } from "./kernel.ts";
import { grid1d } from "./shape.ts";
import { batchNormApplyKernel } from "./wgsl_elementwise.ts";
import * as bn from "./wgsl_norm.ts";
import { batchNormBackwardKernel, batchNormStatsKernel } from "./wgsl_reduce.ts";

/** What batch norm needs from the backend. */
export interface NormHost {
  run(spec: KernelSpec, bufs: readonly (AnyBuf | GPUBuffer)[], params: number[], grid: Grid): void;
  alloc(numel: number): Buf;
  free(b: Buf): void;
  write(b: Buf, data: Float32Array): void;
  read(b: Buf): Promise<Float32Array | Int32Array>;
  flush(): Promise<void>;
  unary(op: UnaryOp, x: Buf, y: Buf, n: number): void;
  unaryBackward(a: UnaryBackwardArgs): void;
  readonly dummy: GPUBuffer;
}

/** Batch-norm dispatch for one kernel set. */
export class GpuNorm {
  /** Partial sums use subgroupAdd (set by `checkSubgroups`). */
  subgroups = false;

  constructor(private host: NormHost, private legacy: boolean) {}

  stats({ x, mean, variance, N, C, HW }: BatchNormStatsArgs): void {
    const h = this.host;
    if (C === 0) return;
    if (this.legacy || N * HW === 0) {
      h.run(batchNormStatsKernel(), [x, mean, variance], [N, C, HW], grid1d(C));
      return;
    }
    const { perChunk, chunks } = bn.bnChunks(N, C);
    const shape = [N, C, HW, perChunk, chunks];
    const part = h.alloc(2 * C * chunks);
    h.run(bn.bnPartialStatsKernel(this.subgroups), [x, part], shape, grid1d(C * chunks));
    h.run(bn.bnFinalizeStatsKernel(), [part, mean, variance], shape, grid1d(Math.ceil(C / 256)));
    h.free(part);
  }

  apply(a: BatchNormApplyArgs): void {
    const { x, mean, variance, gamma, beta, y, N, C, HW, eps, relu } = a;
    const h = this.host, n = N * C * HW;
    if (n === 0) return;
    const bufs = [x, mean, variance, gamma, beta, y];
    if (this.legacy) {
      h.run(batchNormApplyKernel(), bufs, [n, C, HW, eps], grid1d(Math.ceil(n / 256)));
      if (relu) h.unary("relu", y, y, n);
      return;
    }
    h.run(bn.bnApplyKernel(!!relu), bufs, [n, C, HW, eps], grid1d(Math.ceil(n / 1024)));
  }

  backward(a: BatchNormBackwardArgs): void {
    const { x, mean, variance, gamma, dy, dx, dgamma, dbeta, N, C, HW, eps, reluOut } = a;
    const h = this.host, n = N * C * HW;
    if (C === 0) return;
    if (this.legacy || n === 0) {
      let g = dy;
      if (reluOut) {
        g = h.alloc(n);
        h.unaryBackward({ op: "relu", x: reluOut, dy, dx: g, n });
      }
      h.run(
        batchNormBackwardKernel(),
        [x, mean, variance, gamma, g, dx, dgamma, dbeta],
        [N, C, HW, eps],
        grid1d(C),
      );
      if (g !== dy) h.free(g);
      return;
    }
    const relu = reluOut !== undefined;
    const r = reluOut ?? h.dummy;
    const { perChunk, chunks } = bn.bnChunks(N, C);
    const shape = [N, C, HW, perChunk, chunks];
    const part = h.alloc(2 * C * chunks), coef = h.alloc(2 * C);
    h.run(
      bn.bnBackwardPartialKernel(relu, this.subgroups),
      [x, mean, variance, dy, r, part],
      [...shape, eps],
      grid1d(C * chunks),
    );
    h.run(
      bn.bnBackwardFinalizeKernel(),
      [part, dgamma, dbeta, coef],
      shape,
      grid1d(Math.ceil(C / 256)),
    );
    h.run(
      bn.bnBackwardDxKernel(relu),
      [x, mean, variance, gamma, dy, r, coef, dx],
      [n, C, HW, eps],
      grid1d(Math.ceil(n / 1024)),
    );
    h.free(part);
    h.free(coef);
  }

  /**
   * Turns the subgroup variant on when it compiles and its partial sums agree with the
   * shared-memory variant's on a test input (large and tiny feature maps); returns why not.
   */
  async checkSubgroups(): Promise<string | null> {
    const h = this.host;
    const cases = [[3, 2, 300], [5, 3, 7]];
    const bufs: Buf[] = [];
    try {
      for (const [N, C, HW] of cases) {
        const n = N * C * HW;
        const x = h.alloc(n);
        bufs.push(x);
        h.write(x, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 3 + 1));
        const { perChunk, chunks } = bn.bnChunks(N, C);
        const shape = [N, C, HW, perChunk, chunks];
        const parts = [false, true].map((sg) => {
          const p = h.alloc(2 * C * chunks);
          bufs.push(p);
          h.run(bn.bnPartialStatsKernel(sg), [x, p], shape, grid1d(C * chunks));
          return p;
        });
        await h.flush();
        const [want, got] = await Promise.all(parts.map((p) => h.read(p)));
        for (let i = 0; i < want.length; i++) {
          if (!(Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])))) {
            return `subgroup partial sums differ (${got[i]} vs ${want[i]})`;
          }
        }
      }
      this.subgroups = true;
      return null;
    } catch (e) {
      return `subgroup kernels failed: ${(e as Error).message.split("\n").slice(0, 2).join(" ")}`;
    } finally {
      for (const b of bufs) h.free(b);
    }
  }
}
