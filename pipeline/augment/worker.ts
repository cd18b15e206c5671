/// <reference lib="deno.worker" />
/**
 * Augmentation worker: owns one augment kernel instance and shard file handles; for each job it
 * reads the listed images, transforms them and writes planar f32 into the shared batch buffer.
 */
import { AugmentKernel } from "../../kernels/augment.ts";
import { ShardReader } from "./shards.ts";
import {
  applyEvalLoaded,
  applyTrainLoaded,
  type TrainParams,
  type TransformConfig,
} from "./transforms.ts";

/** One image of a job: where it lives and, in train mode, its random parameters. */
export interface JobItem {
  shard: number;
  offset: number;
  width: number;
  height: number;
  params: TrainParams | null; // null: eval transform
}

export type WorkerRequest =
  | { type: "init"; dir: string; shards: string[]; transform: TransformConfig }
  | { type: "job"; id: number; items: JobItem[]; out: SharedArrayBuffer; offset: number }
  | { type: "close" };

export type WorkerReply =
  | { type: "ready" }
  | { type: "done"; id: number }
  | { type: "error"; id: number; message: string };

/** Transforms `items` into `out` starting at element `offset`, one [3, S, S] block each. */
export function runItems(
  kernel: AugmentKernel,
  reader: ShardReader,
  cfg: TransformConfig,
  items: readonly JobItem[],
  out: Float32Array,
  offset: number,
): void {
  const block = 3 * cfg.size * cfg.size;
  items.forEach((it, k) => {
    reader.readInto(it, kernel.imageBuffer(it.width, it.height)); // straight into wasm memory
    if (it.params) applyTrainLoaded(kernel, it.params, cfg, out, offset + k * block);
    else applyEvalLoaded(kernel, cfg, out, offset + k * block);
  });
}

// Runs only inside a Worker.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  let kernel: AugmentKernel | null = null;
  let reader: ShardReader | null = null;
  let cfg: TransformConfig | null = null;
  const post = (m: WorkerReply) => self.postMessage(m);
  self.onmessage = async (ev: MessageEvent<WorkerRequest>) => {
    const m = ev.data;
    if (m.type === "init") {
      try {
        kernel = await AugmentKernel.load();
        reader = new ShardReader(m.dir, m.shards);
        cfg = m.transform;
        post({ type: "ready" });
      } catch (e) {
        post({ type: "error", id: -1, message: (e as Error).message });
      }
    } else if (m.type === "job") {
      try {
        if (!kernel || !reader || !cfg) throw new Error("augment worker: job before init");
        runItems(kernel, reader, cfg, m.items, new Float32Array(m.out), m.offset);
        post({ type: "done", id: m.id });
      } catch (e) {
        post({ type: "error", id: m.id, message: (e as Error).message });
      }
    } else if (m.type === "close") {
      reader?.close();
      self.close();
    }
  };
}
