/**
 * Runs one kernel call on several backends with the same host inputs and reads its outputs back:
 * the plumbing the per-backend kernel tests (wasm, webgpu) compare against the reference backend.
 */
import type { Backend, Buf } from "../../../engine/backend.ts";

/** Host data of a buffer. */
export type Data = Float32Array | Int32Array;

/** An output buffer: its size, dtype and optional initial content (for accumulate/beta). */
export interface Out {
  n: number;
  dtype?: "f32" | "i32";
  init?: Data;
}

/**
 * Runs `call` on each backend with buffers named as `inputs` and `outputs`; returns the outputs,
 * one record per backend. An output without `init` starts filled with `unwritten(out)`.
 */
export async function runOnBackends(
  backends: Backend[],
  inputs: Record<string, Data>,
  outputs: Record<string, Out>,
  call: (be: Backend, b: Record<string, Buf>) => void,
  unwritten: (o: Out) => number,
): Promise<Record<string, Data>[]> {
  const res: Record<string, Data>[] = [];
  for (const be of backends) {
    const bufs: Record<string, Buf> = {};
    for (const [k, d] of Object.entries(inputs)) {
      bufs[k] = be.alloc(d.length, d instanceof Int32Array ? "i32" : "f32");
      be.write(bufs[k], d);
    }
    for (const [k, o] of Object.entries(outputs)) {
      bufs[k] = be.alloc(o.n, o.dtype ?? "f32");
      if (o.init) be.write(bufs[k], o.init);
      else be.fill(bufs[k], unwritten(o));
    }
    call(be, bufs);
    const out: Record<string, Data> = {};
    for (const k of Object.keys(outputs)) out[k] = await be.read(bufs[k]);
    for (const b of Object.values(bufs)) be.free(b);
    res.push(out);
  }
  return res;
}
