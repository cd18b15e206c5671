/**
 * Worker side of the wasm thread pool: instantiates the kernel module on the shared memory with
 * its own stack, then loops forever waiting on the control block's generation counter.
 */
import { CTRL, instantiate, type WorkerInit } from "./wasm_pool.ts";

type Kernel = (...args: number[]) => void;
const SPIN = 20_000;

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  const { module, micro, memory, tid, stackTop, ctrl, names } = e.data;
  let fns: Kernel[];
  try {
    const inst = instantiate(module, micro, memory);
    (inst.exports.__stack_pointer as WebAssembly.Global).value = stackTop;
    fns = names.map((n) => inst.exports[n] as Kernel);
  } catch (err) {
    self.postMessage(String(err));
    return;
  }
  const i32 = new Int32Array(memory.buffer, ctrl, CTRL.ARGS_BYTE / 4);
  // Read the generation before reporting ready: the first dispatch may follow at once.
  const seen = Atomics.load(i32, CTRL.GEN);
  self.postMessage("ready");
  serve(i32, memory, ctrl, tid, fns, seen);
};

function serve(
  i32: Int32Array,
  memory: WebAssembly.Memory,
  ctrl: number,
  tid: number,
  fns: Kernel[],
  seen: number,
): void {
  const f64 = new Float64Array(memory.buffer, ctrl + CTRL.ARGS_BYTE, CTRL.MAX_ARGS);
  for (;;) {
    let g = Atomics.load(i32, CTRL.GEN);
    for (let s = 0; g === seen && s < SPIN; s++) g = Atomics.load(i32, CTRL.GEN);
    if (g === seen) {
      Atomics.wait(i32, CTRL.GEN, seen);
      continue;
    }
    seen = g;
    if (Atomics.load(i32, CTRL.QUIT)) return;
    const nt = i32[CTRL.ACTIVE];
    if (tid < nt) {
      const n = i32[CTRL.NARGS];
      const args = new Array<number>(n + 2);
      args[0] = tid;
      args[1] = nt;
      for (let i = 0; i < n; i++) args[i + 2] = f64[i];
      try {
        fns[i32[CTRL.FN]](...args);
      } catch (_) {
        Atomics.store(i32, CTRL.ERROR, tid + 1);
      }
    }
    Atomics.add(i32, CTRL.DONE, 1);
    Atomics.notify(i32, CTRL.DONE);
  }
}
