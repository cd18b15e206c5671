/**
 * Tensor: a shape, a dtype and a reference-counted device buffer on one backend, plus autograd
 * metadata (requiresGrad, grad, the tape node that produced it). Tensors are always contiguous
 * row-major; `reshape` shares storage, every other op writes a fresh buffer.
 */
import type { Backend, Buf, DType } from "./backend.ts";
import { type Disposable, isGradEnabled, track, untrack } from "./scope.ts";
import { runBackward } from "./autograd.ts";
import { numelOf } from "./shape.ts";

export { numelOf };

/** A device buffer shared by a tensor and its reshaped aliases. */
export class Storage {
  refs = 1;
  constructor(readonly backend: Backend, private _buf: Buf) {}
  get buf(): Buf {
    return this._buf;
  }
  /**
   * Adopts `buf` (same size and dtype, already holding this storage's data, e.g. a part of a
   * flat arena) and frees the old buffer; every tensor sharing this storage follows.
   */
  move(buf: Buf): void {
    if (buf.numel !== this._buf.numel || buf.dtype !== this._buf.dtype) {
      throw new Error(`Storage.move: buffer of ${buf.numel} ${buf.dtype} for ${this._buf.numel}`);
    }
    const old = this._buf;
    this._buf = buf;
    this.backend.free(old);
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buf);
  }
}

/** One recorded operation: its inputs and how to map the output gradient to input gradients. */
export interface Node {
  readonly op: string;
  readonly inputs: Tensor[];
  /** Returns one gradient per input (null where none); must not return saved forward tensors. */
  backward(gradOut: Tensor): (Tensor | null)[];
}

export class Tensor implements Disposable {
  readonly shape: number[];
  readonly dtype: DType;
  readonly numel: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  name: string | undefined;
  node: Node | null = null;
  /** Survives `tidy` scopes (parameters, buffers, gradients, optimizer state). */
  keep = false;
  private _disposed = false;

  constructor(readonly storage: Storage, shape: readonly number[], dtype?: DType) {
    this.shape = [...shape];
    this.numel = numelOf(shape);
    this.dtype = dtype ?? storage.buf.dtype;
    if (this.numel !== storage.buf.numel) {
      throw new Error(`tensor shape [${shape}] does not match buffer of ${storage.buf.numel}`);
    }
    track(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get buf(): Buf {
    if (this._disposed) throw new Error(`use of disposed tensor ${this.describe()}`);
    return this.storage.buf;
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get rank(): number {
    return this.shape.length;
  }

  /** Short description for error messages. */
  describe(): string {
    return `${this.name ?? "tensor"}[${this.shape.join(",")}]${this.dtype === "i32" ? ":i32" : ""}`;
  }

  /** Frees this tensor's reference to its buffer (idempotent). Does not free `.grad`. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.node = null;
    this.storage.release();
  }

  /** Marks the tensor as long-lived (not freed by `tidy`) and returns it. */
  persist(): this {
    this.keep = true;
    untrack(this);
    return this;
  }

  /** Reads the values back to the host (waits for pending device work). */
  async data(): Promise<Float32Array | Int32Array> {
    return await this.backend.read(this.buf);
  }
  /** Reads f32 values. */
  async f32(): Promise<Float32Array> {
    const d = await this.data();
    return d instanceof Float32Array ? d : Float32Array.from(d);
  }
  /** Reads the single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel !== 1) throw new Error(`item() on ${this.describe()}`);
    return (await this.data())[0];
  }

  /** A new uninitialised f32 tensor of `shape` on this tensor's backend (like PyTorch new_empty). */
  newEmpty(shape: readonly number[]): Tensor {
    return empty(this.backend, shape);
  }

  /** A new f32 tensor of `shape` filled with `value` on this tensor's backend (new_full). */
  newFull(shape: readonly number[], value: number): Tensor {
    return full(this.backend, shape, value);
  }

  /** Back-propagates from this scalar, accumulating into `.grad` of leaf tensors. */
  backward(gradOut?: Tensor): void {
    runBackward(this, gradOut);
  }

  /** A new tensor sharing this one's storage with another shape (same numel). */
  view(shape: readonly number[]): Tensor {
    return new Tensor(this.storage.retain(), resolveShape(shape, this.numel), this.dtype);
  }

  /** Same storage, cut from the tape (no gradient flows through it). */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** Releases the tape reference so the graph behind this tensor can be collected. */
  detachInPlace(): this {
    this.node = null;
    return this;
  }
}

/** Replaces one -1 in `shape` by the inferred size. */
export function resolveShape(shape: readonly number[], numel: number): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = out.reduce((p, d, i) => (i === neg ? p : p * d), 1);
    out[neg] = rest === 0 ? 0 : numel / rest;
  }
  if (numelOf(out) !== numel) throw new Error(`cannot view ${numel} elements as [${shape}]`);
  return out;
}

/** Uninitialized tensor of a shape. */
export function empty(backend: Backend, shape: readonly number[], dtype: DType = "f32"): Tensor {
  return fromBuf(backend, backend.alloc(numelOf(shape), dtype), shape);
}

/** A tensor owning an existing buffer (freed when the tensor is disposed). */
export function fromBuf(backend: Backend, buf: Buf, shape: readonly number[]): Tensor {
  return new Tensor(new Storage(backend, buf), shape, buf.dtype);
}

/** Tensor filled with a constant. */
export function full(
  backend: Backend,
  shape: readonly number[],
  value: number,
  dtype: DType = "f32",
): Tensor {
  const t = empty(backend, shape, dtype);
  backend.fill(t.buf, value);
  return t;
}

/** Tensor of zeros. */
export function zeros(backend: Backend, shape: readonly number[], dtype: DType = "f32"): Tensor {
  return full(backend, shape, 0, dtype);
}

/** Uploads host data (f32 unless an Int32Array or dtype "i32"). */
export function tensor(
  backend: Backend,
  data: ArrayLike<number> | Float32Array | Int32Array,
  shape?: readonly number[],
  dtype?: DType,
): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? "i32" : "f32");
  const shp = shape ?? [data.length];
  if (numelOf(shp) !== data.length) {
    throw new Error(`tensor: ${data.length} values do not fill shape [${shp}]`);
  }
  const t = empty(backend, shp, dt);
  const arr = dt === "f32"
    ? (data instanceof Float32Array ? data : Float32Array.from(data))
    : (data instanceof Int32Array ? data : Int32Array.from(data));
  if (arr.length > 0) backend.write(t.buf, arr);
  return t;
}

/** A trainable leaf: requiresGrad, kept across scopes, named. */
export function parameter(t: Tensor, name?: string): Tensor {
  t.requiresGrad = true;
  t.name = name;
  return t.persist();
}

/**
 * Records `out` as produced by an op when grad mode is on and any input requires grad.
 * Returns `out`.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (g: Tensor) => (Tensor | null)[],
): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}
