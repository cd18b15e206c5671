/**
 * Data parallelism over an MPI world, as the paper trains (8 GPUs, per-GPU batch norm): every
 * rank holds the whole model and runs its share of each step's batch; after the backward pass one
 * in-place allreduce over one flat buffer (every gradient, then the loss) sums the ranks'
 * contributions, which are divided by the world size, so each rank takes the identical optimizer
 * step on the identical averaged gradient and the weights stay bitwise equal across ranks (checked
 * by `verify`). Batch-norm running statistics follow rank 0's, broadcast after each step (as
 * PyTorch's DistributedDataParallel does with its buffers), and rank 0's restored checkpoint is
 * broadcast at start.
 */
import type { Backend } from "../../engine/backend.ts";
import type { Mpi } from "../../engine/dist/mpi.ts";
import type { Tensor } from "../../engine/tensor.ts";

/**
 * Elements per MPI_Allreduce call when averaging gradients: the one flat buffer is reduced in
 * consecutive 16 MB slices (each element's sum is unchanged). bench/scale measured OpenMPI 4.1.4
 * (2 ranks, shared memory, this 2-core machine): a flat call of 64 MB or more takes 4–7x as long
 * as the same bytes in 16 MB buckets (64 MB: 1.53 s flat, 0.22 s in 16 MB and 0.35 s in 4 MB
 * buckets; 100 MB: 1.80, 0.32, 0.70 s); up to 16 MB one call is as fast.
 */
export const ALLREDUCE_BUCKET_ELEMENTS = (16 * 1e6) / 4;

/** Parameters and buffers that ranks keep in step. */
export interface Replicated {
  params: Tensor[];
  buffers: Tensor[]; // batch-norm running statistics
}

/** Copies tensors into one flat host array (null: zeros), in order. */
async function gather(ts: (Tensor | null)[], sizes: number[]): Promise<Float32Array> {
  const flat = new Float32Array(sizes.reduce((a, b) => a + b, 0) + 1);
  let o = 0;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    if (t) flat.set(await t.f32(), o);
    o += sizes[i];
  }
  return flat;
}

/** Writes `flat`'s slices back into the tensors (null ones are skipped). */
function scatter(be: Backend, ts: (Tensor | null)[], sizes: number[], flat: Float32Array): void {
  let o = 0;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    if (t) be.write(t.buf, flat.subarray(o, o + sizes[i]));
    o += sizes[i];
  }
}

/** Keeps the replicas of one model in step over `mpi`. */
export class DataParallel {
  private readonly paramSizes: number[];
  private readonly bufferSizes: number[];

  constructor(
    private readonly mpi: Mpi,
    private readonly backend: Backend,
    private readonly state: Replicated,
  ) {
    this.paramSizes = state.params.map((p) => p.numel);
    this.bufferSizes = state.buffers.map((b) => b.numel);
  }

  get rank(): number {
    return this.mpi.rank;
  }

  get size(): number {
    return this.mpi.size;
  }

  /** Makes every rank's parameters and buffers rank 0's. */
  async broadcastModel(): Promise<void> {
    for (
      const [ts, sizes] of [[this.state.params, this.paramSizes], [
        this.state.buffers,
        this.bufferSizes,
      ]] as const
    ) {
      const flat = await gather(ts, sizes);
      this.mpi.broadcast(flat, 0);
      if (this.rank !== 0) scatter(this.backend, ts, sizes, flat);
    }
    await this.backend.flush();
  }

  /** Makes every rank's batch-norm buffers rank 0's. */
  async broadcastBuffers(): Promise<void> {
    if (this.state.buffers.length === 0) return;
    const flat = await gather(this.state.buffers, this.bufferSizes);
    this.mpi.broadcast(flat, 0);
    if (this.rank !== 0) scatter(this.backend, this.state.buffers, this.bufferSizes, flat);
  }

  /** Broadcasts rank 0's bytes (e.g. optimizer state) to every rank; returns them. */
  broadcastBytes(bytes: Uint8Array | null): Uint8Array {
    const len = new Float64Array([this.rank === 0 ? bytes!.length : 0]);
    this.mpi.broadcast(len, 0);
    const out = this.rank === 0 ? bytes! : new Uint8Array(len[0]);
    this.mpi.broadcast(out, 0);
    return out;
  }

  /** Broadcasts rank 0's numbers (step, RNG state, ...) to every rank; returns them. */
  broadcastNumbers(values: number[]): number[] {
    const a = Float64Array.from(values);
    this.mpi.broadcast(a, 0);
    return Array.from(a);
  }

  /**
   * Averages the gradients (and the local loss) over the ranks in place: one allreduce over one
   * flat buffer (in buckets of ALLREDUCE_BUCKET_ELEMENTS). Parameters without a gradient count as
   * zeros. Returns the mean loss.
   */
  async allreduceGradients(localLoss: number): Promise<number> {
    const { params } = this.state;
    const grads = params.map((p) => p.grad && !p.grad.disposed ? p.grad : null);
    const flat = await gather(grads, this.paramSizes);
    flat[flat.length - 1] = localLoss;
    this.mpi.allreduceSum(flat, ALLREDUCE_BUCKET_ELEMENTS);
    const inv = 1 / this.size;
    for (let i = 0; i < flat.length; i++) flat[i] *= inv;
    scatter(this.backend, grads, this.paramSizes, flat);
    return flat[flat.length - 1];
  }

  /**
   * Throws when the ranks' parameters differ: each rank's position-weighted float64 sum of its
   * parameters is compared by an allreduce of (max, max of negated).
   */
  async verify(step: number): Promise<void> {
    let sum = 0, k = 0;
    for (const p of this.state.params) {
      const d = await p.f32();
      for (let i = 0; i < d.length; i++) sum += d[i] * ((k++ % 1021) + 1);
    }
    const m = new Float64Array([sum, -sum]);
    this.mpi.allreduceMax(m);
    if (m[0] !== -m[1]) {
      throw new Error(
        `data parallel: the ranks' weights diverged by step ${step} (checksums from ${-m[1]} ` +
          `to ${m[0]}); the ranks no longer train one model`,
      );
    }
  }
}
