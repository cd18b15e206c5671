/**
 * GEMM dispatch of the wasm backend on raw addresses: batched products split over threads by the
 * `gemm` kernel, and large single products that pack B once into shared panels first.
 */
import type { MatmulParams } from "../backend.ts";
import type { ScratchArena } from "./wasm_alloc.ts";
import type { WasmPool } from "./wasm_pool.ts";

/** Single products from this many multiply-adds share one packed B across threads. */
const SHARED_B_MIN_MACS = 1 << 24;
/** ... as long as the packed B stays under this many floats (64 MiB). */
const SHARED_B_MAX_FLOATS = 1 << 24;

/** Byte addresses of a product's operands. */
export interface GemmOperands {
  a: number;
  b: number;
  c: number;
}

/** One unbatched product c = op(a) @ op(b) + beta * c with op(a) [M, K], op(b) [K, N]. */
export interface SingleGemm extends GemmOperands {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  beta: number;
}

/** Runs GEMMs on the pool, with per-thread packing space from the scratch arena. */
export class WasmGemm {
  /** Per-thread packing workspace of the `gemm` kernel, in bytes. */
  readonly wsBytes: number;

  constructor(private readonly pool: WasmPool, private readonly scratch: ScratchArena) {
    this.wsBytes = pool.query("gemm_ws_bytes", {});
  }

  /** C = alpha * op(A) @ op(B) + beta * C for every product of `p` (offsets already applied). */
  matmul({ a, b, c }: GemmOperands, p: MatmulParams): void {
    const { batch, M, N, K } = p;
    const nt = this.pool.threadsFor((batch * M * N * K) / 32);
    if (batch === 1 && nt > 1 && M * N * K >= SHARED_B_MIN_MACS) {
      const pbFloats = this.pool.query("gemm_shared_b_floats", { n: N, k: K });
      if (pbFloats <= SHARED_B_MAX_FLOATS) {
        this.sharedB({ a, b, c }, p, nt, pbFloats);
        return;
      }
    }
    this.scratch.ensure(this.wsBytes, 0);
    this.pool.call("gemm", {
      batch,
      m: M,
      n: N,
      k: K,
      a,
      b,
      c,
      trans_a: p.transA,
      trans_b: p.transB,
      stride_a: p.strideA,
      stride_b: p.strideB,
      stride_c: p.strideC,
      alpha: p.alpha ?? 1,
      beta: p.beta ?? 0,
      ws: this.scratch.address,
      ws_stride: this.wsBytes,
    }, nt);
  }

  /**
   * One product on `nt` threads through the `gemm` kernel. The caller has reserved the arena
   * (at least wsBytes per thread) and may keep operands in its shared part.
   */
  single(g: SingleGemm, nt: number): void {
    this.pool.call("gemm", {
      batch: 1,
      m: g.M,
      n: g.N,
      k: g.K,
      a: g.a,
      b: g.b,
      c: g.c,
      trans_a: g.transA,
      trans_b: g.transB,
      stride_a: 0,
      stride_b: 0,
      stride_c: 0,
      alpha: 1,
      beta: g.beta,
      ws: this.scratch.address,
      ws_stride: this.wsBytes,
    }, nt);
  }

  /**
   * One product on `nt` threads: B packed once into shared panels, then threads claim blocks of
   * C's rows (about six per thread, so a thread slowed by the host holds up little).
   */
  private sharedB({ a, b, c }: GemmOperands, p: MatmulParams, nt: number, pbFloats: number) {
    const { M, N, K } = p;
    const pb = this.scratch.ensure(this.wsBytes, 4 * pbFloats);
    this.pool.call("gemm_pack_b_shared", { n: N, k: K, b, trans_b: p.transB, pb }, nt);
    this.pool.call("gemm_rows_shared_b", {
      m: M,
      n: N,
      k: K,
      a,
      trans_a: p.transA,
      c,
      alpha: p.alpha ?? 1,
      beta: p.beta ?? 0,
      pb,
      ws: this.scratch.address,
      ws_stride: this.wsBytes,
    }, nt);
  }
}
