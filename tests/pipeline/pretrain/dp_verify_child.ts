/**
 * Run by mpi_test.ts under `mpirun -np 2`: gradients are averaged over the ranks, rank 0's model
 * reaches every rank, a bucketed allreduce sums every slice, and verify() throws once one rank's
 * weights differ. Prints one JSON line per rank.
 */
import { createBackend } from "../../../engine/device.ts";
import { Mpi } from "../../../engine/dist/mpi.ts";
import { tensor } from "../../../engine/tensor.ts";
import { DataParallel } from "../../../pipeline/pretrain/data_parallel.ts";

const mpi = Mpi.init();
const be = await createBackend("ref");
const w = tensor(be, [1, 2, 3].map((v) => v * (mpi.rank + 1))); // differs until broadcast
const bn = tensor(be, [mpi.rank, mpi.rank]);
w.grad = tensor(be, [mpi.rank + 1, 0, 2]);
const dp = new DataParallel(mpi, be, { params: [w], buffers: [bn] });
await dp.broadcastModel();
const loss = await dp.allreduceGradients(10 * (mpi.rank + 1));
await dp.verify(1); // equal after the broadcast: no throw
// Bucketed allreduce: slices of 3 elements, the last one short.
const bucketed = Float32Array.from([1, 2, 3, 4, 5].map((v) => v * (mpi.rank + 1)));
mpi.allreduceSum(bucketed, 3);
const out: Record<string, unknown> = {
  rank: mpi.rank,
  bucketed: Array.from(bucketed),
  weights: Array.from(await w.f32()),
  buffers: Array.from(await bn.f32()),
  grad: Array.from(await w.grad!.f32()),
  loss,
};
if (mpi.rank === 1) be.write(w.buf, Float32Array.from([1, 2, 3.0000002]));
try {
  await dp.verify(2);
  out.diverged = false;
} catch (e) {
  out.diverged = (e as Error).message.includes("diverged by step 2");
}
console.log(JSON.stringify(out));
mpi.finalize();
