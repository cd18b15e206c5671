/// <reference lib="deno.worker" />
/**
 * Worker side of the SVM pool (svm.ts runOnWorkers): one kernel instance, the features copied in
 * once, then one VOC07 class protocol per task message.
 */
import { SvmKernel, type SvmMatrix } from "../../kernels/svm.ts";
import type { SvmConfig, WorkerReply, WorkerRequest } from "./svm.ts";
import { type ClassResult, type ClassTask, solveClass } from "./voc07_class.ts";

let state: { kernel: SvmKernel; train: SvmMatrix; test: SvmMatrix; cfg: SvmConfig } | undefined;

function reply(msg: WorkerReply<ClassResult>): void {
  self.postMessage(msg);
}

self.onmessage = async (ev: MessageEvent<WorkerRequest<ClassTask>>) => {
  const msg = ev.data;
  if (msg.type === "init") {
    try {
      const kernel = await SvmKernel.load();
      state = {
        kernel,
        train: kernel.upload(msg.train.data, msg.train.rows, msg.train.dim),
        test: kernel.upload(msg.test.data, msg.test.rows, msg.test.dim),
        cfg: msg.cfg,
      };
      reply({ type: "ready" });
    } catch (e) {
      reply({ type: "error", id: -1, message: (e as Error).message });
    }
    return;
  }
  try {
    if (!state) throw new Error("task before init");
    const result = solveClass(state.kernel, state.train, state.test, msg.task, state.cfg);
    reply({ type: "result", id: msg.id, result });
  } catch (e) {
    reply({ type: "error", id: msg.id, message: (e as Error).message });
  }
};
