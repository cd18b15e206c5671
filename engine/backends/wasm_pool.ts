/**
 * Thread pool for the `wasm` backend: one instance of the kernel module on the main thread
 * (thread 0) and one in each of N-1 Deno Workers, all on one shared WebAssembly.Memory.
 * Dispatch goes through a control block in shared memory (generation counter + argument slots)
 * with Atomics.wait/notify: no postMessage per kernel.
 */

/** Control-block layout (Int32 slots, then Float64 argument slots from byte ARGS_BYTE). */
export const CTRL = {
  GEN: 0, // bumped once per dispatch
  DONE: 1, // workers finished with this generation
  FN: 2, // index into the kernel name table
  NARGS: 3,
  ACTIVE: 4, // threads taking part (nt passed to the kernel)
  QUIT: 5,
  ERROR: 6, // set to 1 + tid when a worker's kernel threw
  COUNTER: 7, // work-item counter kernels claim items from (zeroed before each dispatch)
  ARGS_BYTE: 64,
  MAX_ARGS: 48,
  BYTES: 64 + 48 * 8,
} as const;

/** Message a worker receives once, at start. */
export interface WorkerInit {
  module: WebAssembly.Module;
  micro: WebAssembly.Module;
  memory: WebAssembly.Memory;
  tid: number;
  stackTop: number;
  ctrl: number; // byte address of the control block
  names: string[]; // kernel table, indexed by CTRL.FN
}

import { compileMicroKernel } from "./wasm_micro.ts";
import {
  checkExports,
  KERNEL_NAMES,
  kernelArgList,
  type KernelArgs,
  type KernelName,
  queryArgList,
  type QueryArgs,
  type QueryName,
} from "./wasm_kernels.ts";

type Kernel = (...args: number[]) => void;

const STACK_BYTES = 1 << 20;
/** Below this much work (elements or flops/64) a kernel runs on the main thread only. */
const PARALLEL_MIN = 1 << 15;
const SPIN_MAIN = 200_000;

/** Kernel module instances on all threads plus the dispatcher. */
export class WasmPool {
  private readonly exports: WebAssembly.Exports;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly fnIndex = new Map<string, number>();
  private readonly workers: Worker[] = [];
  private destroyed = false;

  private constructor(
    readonly memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    readonly nthreads: number,
    readonly ctrl: number,
    /** First free byte after the pool's reservations (control block, worker stacks). */
    readonly heapStart: number,
    /** Whether the GEMM micro-kernel uses relaxed-SIMD fused multiply-add. */
    readonly fma: boolean,
  ) {
    this.exports = instance.exports;
    this.i32 = new Int32Array(memory.buffer, ctrl, CTRL.ARGS_BYTE / 4);
    this.f64 = new Float64Array(memory.buffer, ctrl + CTRL.ARGS_BYTE, CTRL.MAX_ARGS);
    KERNEL_NAMES.forEach((n, i) => this.fnIndex.set(n, i));
    this.query("set_work_counter", { addr: ctrl + 4 * CTRL.COUNTER });
  }

  /** Compiles `wasmBytes`, instantiates it on `nthreads` threads and waits for all to be ready. */
  static async create(
    wasmBytes: Uint8Array,
    nthreads: number,
    initialBytes: number,
  ): Promise<WasmPool> {
    const module = await WebAssembly.compile(wasmBytes as BufferSource);
    const memory = new WebAssembly.Memory({
      initial: Math.ceil(initialBytes / 65536),
      maximum: 65536,
      shared: true,
    });
    const { module: micro, fma } = compileMicroKernel();
    const instance = instantiate(module, micro, memory);
    checkExports(instance.exports);
    const heapBase = (instance.exports.__heap_base as WebAssembly.Global).value as number;
    const ctrl = align(heapBase, 64);
    let top = align(ctrl + CTRL.BYTES, 65536);
    const stackTops: number[] = [];
    for (let t = 1; t < nthreads; t++) {
      top += STACK_BYTES;
      stackTops.push(top); // stacks grow down
    }
    new Uint8Array(memory.buffer, ctrl, CTRL.BYTES).fill(0);
    const pool = new WasmPool(memory, instance, nthreads, ctrl, top, fma);
    await Promise.all(
      stackTops.map((stackTop, i) => pool.spawn(module, micro, i + 1, stackTop, KERNEL_NAMES)),
    );
    return pool;
  }

  private spawn(
    module: WebAssembly.Module,
    micro: WebAssembly.Module,
    tid: number,
    stackTop: number,
    names: string[],
  ): Promise<void> {
    const w = new Worker(new URL("./wasm_worker.ts", import.meta.url).href, { type: "module" });
    this.workers.push(w);
    return new Promise((resolve, reject) => {
      w.onmessage = (e) => {
        if (e.data === "ready") resolve();
        else reject(new Error(`wasm worker ${tid}: ${e.data}`));
      };
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`wasm worker ${tid} failed: ${e.message}`));
      };
      const init: WorkerInit = {
        module,
        micro,
        memory: this.memory,
        tid,
        stackTop,
        ctrl: this.ctrl,
        names,
      };
      w.postMessage(init);
    });
  }

  /**
   * Runs kernel `name(tid, nt, ...args)` on `threads` threads (default all) and waits for it;
   * `args` are named as in the kernel's Rust signature (see wasm_kernels.ts).
   */
  call<K extends KernelName>(name: K, named: KernelArgs<K>, threads = this.nthreads): void {
    const args = kernelArgList(name, named);
    const fn = this.exports[name] as Kernel;
    const nt = Math.max(1, Math.min(threads, this.nthreads));
    Atomics.store(this.i32, CTRL.COUNTER, 0);
    if (nt === 1 || this.workers.length === 0) {
      fn(0, 1, ...args);
      return;
    }
    if (this.destroyed) throw new Error("wasm backend used after destroy()");
    if (args.length > CTRL.MAX_ARGS) throw new Error(`too many kernel args for ${name}`);
    const i32 = this.i32;
    this.f64.set(args);
    i32[CTRL.FN] = this.fnIndex.get(name)!;
    i32[CTRL.NARGS] = args.length;
    i32[CTRL.ACTIVE] = nt;
    Atomics.store(i32, CTRL.DONE, 0);
    Atomics.add(i32, CTRL.GEN, 1);
    Atomics.notify(i32, CTRL.GEN);
    let mainError: unknown = null;
    try {
      fn(0, nt, ...args);
    } catch (e) {
      mainError = e;
    }
    const want = this.workers.length;
    let spins = 0;
    for (;;) {
      const d = Atomics.load(i32, CTRL.DONE);
      if (d >= want) break;
      if (++spins > SPIN_MAIN) Atomics.wait(i32, CTRL.DONE, d, 50);
    }
    if (mainError) throw mainError;
    const err = Atomics.exchange(i32, CTRL.ERROR, 0);
    if (err) throw new Error(`wasm kernel '${name}' failed on worker ${err - 1}`);
  }

  /** Threads for `work` independent elements (all, or 1 when too little to share). */
  threadsFor(work: number): number {
    return work >= PARALLEL_MIN ? this.nthreads : 1;
  }

  /** Threads for a row-split kernel: never more than there are rows. */
  threadsForRows(rows: number, perRow: number): number {
    return Math.min(rows, this.threadsFor(rows * perRow));
  }

  /** Calls main-thread function `name` (a size or set-up query) and returns its result. */
  query<Q extends QueryName>(name: Q, named: QueryArgs<Q>): number {
    const fn = this.exports[name] as (...a: number[]) => number;
    return fn(...queryArgList(name, named));
  }

  /** Stops and terminates the workers. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.i32, CTRL.QUIT, 1);
    Atomics.add(this.i32, CTRL.GEN, 1);
    Atomics.notify(this.i32, CTRL.GEN);
    for (const w of this.workers) w.terminate();
  }
}

/** Instantiates the kernel module on `memory`, wired to its own micro-kernel instance. */
export function instantiate(
  module: WebAssembly.Module,
  micro: WebAssembly.Module,
  memory: WebAssembly.Memory,
): WebAssembly.Instance {
  const tile = new WebAssembly.Instance(micro, { env: { memory } }).exports.tile_6x8;
  return new WebAssembly.Instance(module, { env: { memory }, micro: { tile_6x8: tile } });
}

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
