/**
 * Matrix products and convolutions of the webgpu backend: kernel choice and dispatch for the two
 * kernel sets.
 * - "current": on GPUs the tiled template (wgsl_tile_gemm.ts: 128×128 down to 32×32 tiles chosen
 *   per shape, split-K for single products that cannot fill the GPU), per-shape convolution
 *   sources (wgsl_conv.ts: baked constants, stride-phase data gradient, fewer filter-gradient
 *   partials) and 1×1 stride-1 convolutions as batched matmuls; on software adapters the same
 *   sources through the barrier-free direct template.
 * - "legacy": the kernels before issue 14 (64×64 tiles of 4×4, run-time conv geometry), kept so
 *   that bench/gpu can profile "before" and "after" in the same run.
 */
import type {
  Buf,
  Conv2dArgs,
  Conv2dBackwardDataArgs,
  Conv2dBackwardFilterArgs,
  Conv2dParams,
  MatmulParams,
  ReduceSumArgs,
} from "../../backend.ts";
import type { AnyBuf } from "./buffers.ts";
import { coopMatmulKernel, type CoopSupport, pickCoop } from "./coop.ts";
import type { Grid } from "./context.ts";
import type { KernelSpec } from "./kernel.ts";
import { grid1d } from "./shape.ts";
import { convBwdDataSource, convBwdFilterSource, convFwdSource, convPhases } from "./wgsl_conv.ts";
import { chooseTiling, gemmKernel, type GemmTiling, tileDims } from "./wgsl_gemm.ts";
import {
  convBackwardDataSource,
  convBackwardFilterSource,
  convForwardSource,
  type MatmulElem,
  matmulSource,
} from "./wgsl_linalg.ts";
import { matmulAlignment, splitKEpilogueKernel, tileMatmulSource } from "./wgsl_matmul.ts";
import {
  chooseSplitK,
  chooseTileShape,
  tileGemmKernel,
  type TileGemmSource,
  type TileShape,
} from "./wgsl_tile_gemm.ts";

/** Which kernels the backend runs (see the module comment). */
export type KernelSet = "current" | "legacy";

/** What the dispatcher needs from the backend. */
export interface LinalgHost {
  run(spec: KernelSpec, bufs: readonly (AnyBuf | GPUBuffer)[], params: number[], grid: Grid): void;
  elemType(b: AnyBuf): MatmulElem;
  alloc(numel: number): Buf;
  free(b: Buf): void;
  reduceSum(a: ReduceSumArgs): void;
  /** A 16-byte storage buffer bound where a kernel's optional operand is absent. */
  readonly dummy: GPUBuffer;
}

/** Tiling options of the dispatcher. */
export interface LinalgOptions {
  kernels: KernelSet;
  /** Barrier-free direct kernels (software adapters). */
  cpuTiling: boolean;
  /** Legacy set: force the register block. */
  gemmBlock?: { TM: number; TN: number; WX?: number; WY?: number };
  /** Current set on GPUs: force one tile shape (tests cover every shape with it). */
  tile?: TileShape;
  /** Current set: force split-K off (0) or to this many chunks where the shape allows. */
  splitK?: number;
  /** Verified tensor-core variants for f16 × f16 → f32 products (coop.ts), or null. */
  coop?: CoopSupport | null;
}

const MAX_Z = 65535;
/** Cap on split-K partial buffers (bytes). */
const PARTIAL_BYTES = 64 << 20;

/** Dispatches matmul and the three convolutions with the configured kernel set. */
export class GpuLinalg {
  constructor(private host: LinalgHost, readonly opts: LinalgOptions) {}

  /** Dispatches a GEMM with BM×BN tiles over z = 0..zCount in chunks within the z limit. */
  private launch(
    spec: KernelSpec,
    tile: { BM: number; BN: number },
    bufs: (AnyBuf | GPUBuffer)[],
    dims: { M: number; N: number; K: number; kChunk: number; zCount: number },
    extra: number[],
  ): void {
    const { M, N, K, kChunk, zCount } = dims;
    const gx = Math.ceil(N / tile.BN), gy = Math.ceil(M / tile.BM);
    for (let z0 = 0; z0 < zCount; z0 += MAX_Z) {
      const gz = Math.min(MAX_Z, zCount - z0);
      this.host.run(spec, bufs, [M, N, K, kChunk, z0, ...extra], [gx, gy, gz]);
    }
  }

  private legacyTiling(M: number, N: number): GemmTiling {
    return this.opts.gemmBlock
      ? { ...this.opts.gemmBlock, split: false }
      : chooseTiling(M, N, this.opts.cpuTiling);
  }

  /** A (possibly split) GEMM of the current set with the direct or the tiled template. */
  private current(
    src: (split: boolean) => TileGemmSource,
    bufs: (AnyBuf | GPUBuffer)[],
    dims: { M: number; N: number; K: number; zCount: number },
    extra: number[],
  ): void {
    const { M, N, K, zCount } = dims;
    if (this.opts.cpuTiling) {
      const t = chooseTiling(M, N, true);
      this.launch(gemmKernel(src(false), t), tileDims(t), bufs, { ...dims, kChunk: K }, extra);
      return;
    }
    const shape = this.opts.tile ?? chooseTileShape(M, N, zCount);
    this.launch(
      tileGemmKernel(src(false), shape, false),
      shape,
      bufs,
      { ...dims, kChunk: K },
      extra,
    );
  }

  /** Split-K plan for one product (current set, GPU tiling), or null when it does not pay. */
  private splitPlan(M: number, N: number, K: number, shape: TileShape) {
    if (this.opts.cpuTiling || this.opts.splitK === 0) return null;
    const tiles = Math.ceil(M / shape.BM) * Math.ceil(N / shape.BN);
    let { splits, kChunk } = this.opts.splitK
      ? { splits: this.opts.splitK, kChunk: Math.ceil(K / this.opts.splitK / shape.BK) * shape.BK }
      : chooseSplitK(tiles, K, shape.BK);
    const cap = Math.max(1, Math.floor(PARTIAL_BYTES / (M * N * 4)));
    if (splits > cap) {
      splits = cap;
      kChunk = Math.ceil(K / splits / shape.BK) * shape.BK;
    }
    if (kChunk <= 0) return null;
    splits = Math.ceil(K / kChunk);
    return splits > 1 ? { splits, kChunk } : null;
  }

  /** Matmul; operands may be f16 (HalfBuf) when the device has shader-f16. */
  matmul(a: AnyBuf, b: AnyBuf, c: AnyBuf, p: MatmulParams): void {
    const { M, N, K } = p;
    if (p.batch === 0 || M === 0 || N === 0) return;
    const alpha = p.alpha ?? 1, beta = p.beta ?? 0;
    const ta = this.host.elemType(a), tb = this.host.elemType(b), tc = this.host.elemType(c);
    const extra = [
      p.strideA,
      p.strideB,
      p.strideC,
      p.offsetA ?? 0,
      p.offsetB ?? 0,
      p.offsetC ?? 0,
      alpha,
      beta,
    ];
    // K = 0 runs the same kernels: no K steps, so C = beta·C.
    if (this.opts.kernels === "legacy") {
      const t = this.legacyTiling(M, N);
      const spec = gemmKernel(matmulSource(p.transA, p.transB, ta, tb, tc), t);
      this.launch(spec, tileDims(t), [a, b, c], { M, N, K, kChunk: K, zCount: p.batch }, extra);
      return;
    }
    if (ta === "f16" && tb === "f16" && tc === "f32" && this.coopMatmul(a, b, c, p)) return;
    const layout = {
      ...p,
      offsetA: p.offsetA ?? 0,
      offsetB: p.offsetB ?? 0,
      offsetC: p.offsetC ?? 0,
    };
    const align = matmulAlignment(layout);
    const base = { transA: p.transA, transB: p.transB, ta, tb, tc, align };
    const shape = this.opts.tile ?? chooseTileShape(M, N, p.batch);
    const plan = p.batch === 1 ? this.splitPlan(M, N, K, shape) : null;
    if (!plan) {
      this.current((split) => tileMatmulSource({ ...base, split }), [a, b, c], {
        M,
        N,
        K,
        zCount: p.batch,
      }, extra);
      return;
    }
    const part = this.host.alloc(plan.splits * M * N);
    const src = tileMatmulSource({ ...base, align: { ...align, c4: N % 4 === 0 }, split: true });
    this.launch(tileGemmKernel(src, shape, true), shape, [a, b, part], {
      M,
      N,
      K,
      kChunk: plan.kChunk,
      zCount: plan.splits,
    }, extra);
    const n = M * N;
    this.host.run(
      splitKEpilogueKernel(tc),
      [part, c],
      [n, plan.splits, p.offsetC ?? 0, alpha, beta],
      grid1d(Math.ceil(n / 256)),
    );
    this.host.free(part);
  }

  /** The tensor-core path for an AMP product when a verified variant fits; false otherwise. */
  private coopMatmul(a: AnyBuf, b: AnyBuf, c: AnyBuf, p: MatmulParams): boolean {
    const v = pickCoop(this.opts.coop ?? null, p);
    const offs = [p.offsetA ?? 0, p.offsetB ?? 0, p.offsetC ?? 0, p.strideA, p.strideB, p.strideC];
    if (!v || (p.alpha ?? 1) !== 1 || (p.beta ?? 0) !== 0 || offs.some((x) => x % 8 !== 0)) {
      return false;
    }
    const spec = coopMatmulKernel(v.T, v.RT, p.transA, p.transB, this.opts.coop!.workgroup);
    const side = v.RT * v.T;
    this.launch(spec, { BM: side, BN: side }, [a, b, c], {
      M: p.M,
      N: p.N,
      K: p.K,
      kChunk: p.K,
      zCount: p.batch,
    }, offs.slice(3).concat(offs.slice(0, 3)));
    return true;
  }

  private convParams(p: Conv2dParams, flag: number): number[] {
    return [p.C, p.H, p.W, p.O, p.KH, p.KW, p.stride, p.pad, p.OH, p.OW, flag];
  }

  conv2d({ x, w, bias, y, geom: p }: Conv2dArgs): void {
    const M = p.O, N = p.OH * p.OW, K = p.C * p.KH * p.KW;
    if (this.opts.kernels === "legacy") {
      const t = this.legacyTiling(M, N);
      const spec = gemmKernel(convForwardSource(), t);
      this.launch(spec, tileDims(t), [x, w, bias ?? this.host.dummy, y], {
        M,
        N,
        K,
        kChunk: K,
        zCount: p.N,
      }, this.convParams(p, bias ? 1 : 0));
      return;
    }
    if (isPointwise(p) && !bias) {
      // y[n] [O, HW] = w [O, C] · x[n] [C, HW]
      this.matmul(w, x, y, {
        batch: p.N,
        M,
        N,
        K,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: p.C * N,
        strideC: p.O * N,
      });
      return;
    }
    this.current(() => convFwdSource(p), [x, w, bias ?? this.host.dummy, y], {
      M,
      N,
      K,
      zCount: p.N,
    }, [bias ? 1 : 0]);
  }

  conv2dBackwardData({ dy, w, dx, geom: p }: Conv2dBackwardDataArgs): void {
    if (this.opts.kernels === "legacy") {
      const M = p.C, N = p.H * p.W, K = p.O * p.KH * p.KW;
      const t = this.legacyTiling(M, N);
      const spec = gemmKernel(convBackwardDataSource(), t);
      this.launch(spec, tileDims(t), [dy, w, dx], {
        M,
        N,
        K,
        kChunk: K,
        zCount: p.N,
      }, this.convParams(p, 0));
      return;
    }
    if (isPointwise(p)) {
      // dx[n] [C, HW] = wᵀ [C, O] · dy[n] [O, HW]
      const hw = p.H * p.W;
      this.matmul(w, dy, dx, {
        batch: p.N,
        M: p.C,
        N: hw,
        K: p.O,
        transA: true,
        transB: false,
        strideA: 0,
        strideB: p.O * hw,
        strideC: p.C * hw,
      });
      return;
    }
    for (const ph of convPhases(p)) {
      const N = ph.nh * ph.nw;
      if (N === 0) continue;
      // A phase without taps has K = 0: its pixels are written as zeros.
      this.current(() => convBwdDataSource(p, ph), [dy, w, dx], {
        M: p.C,
        N,
        K: p.O * ph.ntH * ph.ntW,
        zCount: p.N,
      }, []);
    }
  }

  conv2dBackwardFilter({ x, dy, dw, geom: p, accumulate }: Conv2dBackwardFilterArgs): void {
    const M = p.O, N = p.C * p.KH * p.KW, K = p.N * p.OH * p.OW;
    if (this.opts.kernels === "legacy") {
      this.legacyBackwardFilter(x, dy, dw, p, accumulate);
      return;
    }
    const shape = this.opts.tile ?? chooseTileShape(M, N, 1);
    const plan = this.splitPlan(M, N, K, shape);
    if (!plan) {
      this.current((split) => convBwdFilterSource(p, split), [dy, x, dw], {
        M,
        N,
        K,
        zCount: 1,
      }, [accumulate ? 1 : 0]);
      return;
    }
    const part = this.host.alloc(plan.splits * M * N);
    this.launch(tileGemmKernel(convBwdFilterSource(p, true), shape, true), shape, [dy, x, part], {
      M,
      N,
      K,
      kChunk: plan.kChunk,
      zCount: plan.splits,
    }, [0]);
    this.host.reduceSum({
      x: part,
      y: dw,
      outer: 1,
      reduce: plan.splits,
      inner: M * N,
      accumulate,
    });
    this.host.free(part);
  }

  private legacyBackwardFilter(
    x: Buf,
    dy: Buf,
    dw: Buf,
    p: Conv2dParams,
    accumulate: boolean,
  ): void {
    const M = p.O, N = p.C * p.KH * p.KW, K = p.N * p.OH * p.OW;
    const t = this.legacyTiling(M, N);
    const { BM, BN } = tileDims(t);
    const tiles = Math.ceil(M / BM) * Math.ceil(N / BN);
    // Few output tiles and a long K: split K over z into partials, then sum them.
    let splits = 1;
    if (tiles < 128 && K >= 4096) {
      const memCap = Math.max(1, Math.floor(PARTIAL_BYTES / (M * N * 4)));
      splits = Math.min(64, Math.ceil(K / 2048), memCap);
    }
    const params = (flag: number) => this.convParams(p, flag);
    if (splits <= 1) {
      const spec = gemmKernel(convBackwardFilterSource(false), t);
      this.launch(
        spec,
        { BM, BN },
        [dy, x, dw],
        { M, N, K, kChunk: K, zCount: 1 },
        params(
          accumulate ? 1 : 0,
        ),
      );
      return;
    }
    const kChunk = Math.ceil(K / splits / 16) * 16;
    splits = Math.ceil(K / kChunk);
    const spec = gemmKernel(convBackwardFilterSource(true), { ...t, split: true });
    const part = this.host.alloc(splits * M * N);
    this.launch(spec, { BM, BN }, [dy, x, part], { M, N, K, kChunk, zCount: splits }, params(0));
    this.host.reduceSum({ x: part, y: dw, outer: 1, reduce: splits, inner: M * N, accumulate });
    this.host.free(part);
  }
}

/** 1×1, stride 1, no padding: the convolution is a matrix product per image. */
export function isPointwise(p: Conv2dParams): boolean {
  return p.KH === 1 && p.KW === 1 && p.stride === 1 && p.pad === 0;
}
