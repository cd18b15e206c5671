/**
 * Loader for kernels/build/svm.wasm: LIBLINEAR-style dual coordinate descent for the
 * L2-regularized L2-loss linear SVM (see kernels/svm/src/lib.rs). One instance per thread.
 */

interface SvmExports {
  memory: WebAssembly.Memory;
  svm_alloc(bytes: number): number;
  svm_free(ptr: number, bytes: number): void;
  svm_train(
    x: number,
    stride: number,
    rows: number,
    m: number,
    y: number,
    cp: number,
    cn: number,
    eps: number,
    maxIter: number,
    seed: number,
    w: number,
  ): number;
  svm_decision(x: number, stride: number, rows: number, m: number, w: number, out: number): void;
}

/** A feature matrix copied into the module's memory, each row with the bias feature appended. */
export interface SvmMatrix {
  readonly rows: number; // N
  readonly dim: number; // D, without the bias feature
  readonly stride: number; // floats per stored row: D + 1 rounded up to a multiple of 4
  readonly ptr: number;
}

/** Solver settings for one binary problem (positives get C·posWeight, negatives C·negWeight). */
export interface SvmTrainOptions {
  cPos: number;
  cNeg: number;
  eps: number;
  maxIter: number;
  seed: number;
}

/** A trained linear model: decision(x) = w[0..D)·x + bias. */
export interface SvmModel {
  w: Float32Array; // [D]
  bias: number;
  iterations: number;
}

/** URL of the compiled module. */
export const svmWasmUrl = new URL("./build/svm.wasm", import.meta.url);

let compiled: Promise<WebAssembly.Module> | undefined;

async function compile(): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(svmWasmUrl);
  } catch (e) {
    throw new Error(
      `kernels/svm.ts: cannot read ${svmWasmUrl.pathname} (${(e as Error).message}); ` +
        "build it with `make kernels` or `bash kernels/build.sh svm`",
    );
  }
  return await WebAssembly.compile(bytes);
}

/** One instance of the SVM module with its own memory. */
export class SvmKernel {
  private constructor(private readonly ex: SvmExports) {}

  /** Instantiates a fresh module instance (the compiled module is shared per thread). */
  static async load(): Promise<SvmKernel> {
    compiled ??= compile();
    const instance = await WebAssembly.instantiate(await compiled, {});
    return new SvmKernel(instance.exports as unknown as SvmExports);
  }

  private alloc(bytes: number): number {
    const p = this.ex.svm_alloc(bytes);
    if (p === 0) throw new Error(`svm kernel: out of memory allocating ${bytes} bytes`);
    return p;
  }

  private f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.ex.memory.buffer, ptr, n);
  }

  /** Copies features [N, D] (row-major) in, appending the bias feature 1 to each row. */
  upload(features: Float32Array, rows: number, dim: number): SvmMatrix {
    if (features.length !== rows * dim) {
      throw new Error(`svm kernel: features length ${features.length} != ${rows}×${dim}`);
    }
    const stride = Math.ceil((dim + 1) / 4) * 4;
    const ptr = this.alloc(rows * stride * 4);
    const dst = this.f32(ptr, rows * stride); // [N, stride]
    dst.fill(0);
    for (let r = 0; r < rows; r++) {
      dst.set(features.subarray(r * dim, (r + 1) * dim), r * stride);
      dst[r * stride + dim] = 1; // bias feature, as liblinear -B 1
    }
    return { rows, dim, stride, ptr };
  }

  /** Releases a matrix from upload(). */
  release(m: SvmMatrix): void {
    this.ex.svm_free(m.ptr, m.rows * m.stride * 4);
  }

  /**
   * Trains on the matrix rows listed in `rows` with labels `labels` (indexed by row id, length
   * N; > 0 positive, otherwise negative).
   */
  train(m: SvmMatrix, rows: Uint32Array, labels: Int8Array, opt: SvmTrainOptions): SvmModel {
    if (labels.length !== m.rows) {
      throw new Error(`svm kernel: labels length ${labels.length} != rows ${m.rows}`);
    }
    for (const r of rows) {
      if (r >= m.rows) throw new Error(`svm kernel: row id ${r} out of range (${m.rows} rows)`);
    }
    const rowsBytes = Math.max(4, rows.length * 4);
    const pRows = this.alloc(rowsBytes);
    const pY = this.alloc(m.rows);
    const pW = this.alloc(m.stride * 4);
    try {
      new Uint32Array(this.ex.memory.buffer, pRows, rows.length).set(rows);
      new Int8Array(this.ex.memory.buffer, pY, m.rows).set(labels);
      const iterations = this.ex.svm_train(
        m.ptr,
        m.stride,
        pRows,
        rows.length,
        pY,
        opt.cPos,
        opt.cNeg,
        opt.eps,
        opt.maxIter,
        opt.seed >>> 0,
        pW,
      );
      const wAll = this.f32(pW, m.stride);
      return { w: wAll.slice(0, m.dim), bias: wAll[m.dim], iterations };
    } finally {
      this.ex.svm_free(pRows, rowsBytes);
      this.ex.svm_free(pY, m.rows);
      this.ex.svm_free(pW, m.stride * 4);
    }
  }

  /** Decision values w·x + b for the listed rows. */
  decision(m: SvmMatrix, rows: Uint32Array, model: SvmModel): Float32Array {
    for (const r of rows) {
      if (r >= m.rows) throw new Error(`svm kernel: row id ${r} out of range (${m.rows} rows)`);
    }
    const rowsBytes = Math.max(4, rows.length * 4);
    const outBytes = Math.max(4, rows.length * 4);
    const pRows = this.alloc(rowsBytes);
    const pW = this.alloc(m.stride * 4);
    const pOut = this.alloc(outBytes);
    try {
      new Uint32Array(this.ex.memory.buffer, pRows, rows.length).set(rows);
      const w = this.f32(pW, m.stride);
      w.fill(0);
      w.set(model.w);
      w[m.dim] = model.bias;
      this.ex.svm_decision(m.ptr, m.stride, pRows, rows.length, pW, pOut);
      return this.f32(pOut, rows.length).slice();
    } finally {
      this.ex.svm_free(pRows, rowsBytes);
      this.ex.svm_free(pW, m.stride * 4);
      this.ex.svm_free(pOut, outBytes);
    }
  }
}
