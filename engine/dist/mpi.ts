/**
 * MPI through Deno's FFI, for data-parallel training launched by `mpirun` / `srun`: no C shim,
 * the system's OpenMPI (`libmpi.so.40`, Debian's openmpi-bin + libopenmpi-dev). OpenMPI's handles
 * (communicator, datatypes, ops) are addresses of global symbols, which `Deno.dlopen` yields for
 * symbols declared `{ type: "pointer" }`; MPI_IN_PLACE is (void*)1. Only the main thread calls MPI
 * (initialised with MPI_THREAD_FUNNELED), and every call is synchronous (no `nonblocking` FFI).
 * MPICH, whose handles are integers, is not supported.
 */

const SYMBOLS = {
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  MPI_Bcast: { parameters: ["buffer", "i32", "pointer", "i32", "pointer"], result: "i32" },
  MPI_Barrier: { parameters: ["pointer"], result: "i32" },
  MPI_Abort: { parameters: ["pointer", "i32"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  ompi_mpi_comm_world: { type: "pointer" },
  ompi_mpi_float: { type: "pointer" },
  ompi_mpi_double: { type: "pointer" },
  ompi_mpi_byte: { type: "pointer" },
  ompi_mpi_op_sum: { type: "pointer" },
  ompi_mpi_op_max: { type: "pointer" },
} as const;

const MPI_THREAD_FUNNELED = 1;
/** Largest element count of one MPI call (counts are C ints). */
const MAX_COUNT = 1 << 30;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Typed views MPI can read and write in place (host memory, shared wasm memory included). */
export type MpiBuffer = Float32Array | Float64Array | Uint8Array;

let opened: Mpi | null = null;

/** The MPI world of this process: rank, size and the collectives data-parallel training uses. */
export class Mpi {
  private constructor(
    private readonly lib: Lib,
    readonly rank: number,
    readonly size: number,
  ) {}

  /**
   * Loads libmpi and initialises MPI (once per process). `path` defaults to $VIRTEX_MPI_LIB or
   * "libmpi.so.40". Throws a message naming the packages to install when the library is missing.
   */
  static init(path = Deno.env.get("VIRTEX_MPI_LIB") ?? "libmpi.so.40"): Mpi {
    if (opened) return opened;
    let lib: Lib;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      throw new Error(
        `MPI: cannot load ${path} (${(e as Error).message.split("\n")[0]}); install OpenMPI ` +
          "(Debian: apt-get install openmpi-bin libopenmpi-dev) or set VIRTEX_MPI_LIB",
      );
    }
    const s = lib.symbols;
    const flag = new Int32Array(1);
    s.MPI_Initialized(flag);
    if (!flag[0]) {
      const provided = new Int32Array(1);
      check(s.MPI_Init_thread(null, null, MPI_THREAD_FUNNELED, provided), "MPI_Init_thread");
    }
    const rank = new Int32Array(1), size = new Int32Array(1);
    check(s.MPI_Comm_rank(s.ompi_mpi_comm_world, rank), "MPI_Comm_rank");
    check(s.MPI_Comm_size(s.ompi_mpi_comm_world, size), "MPI_Comm_size");
    opened = new Mpi(lib, rank[0], size[0]);
    return opened;
  }

  /**
   * In place: every rank's `data` becomes the elementwise sum over ranks (f32 or f64), in
   * consecutive calls over slices of at most `bucket` elements (default: one call where the C int
   * count allows). Each element's sum is the same whatever the slicing with 2 ranks; with more,
   * MPI may pick another reduction order for another message size.
   */
  allreduceSum(data: Float32Array | Float64Array, bucket = MAX_COUNT): void {
    this.allreduce(data, "sum", bucket);
  }

  /** In place: elementwise maximum over ranks (f64). */
  allreduceMax(data: Float64Array): void {
    this.allreduce(data, "max");
  }

  /** Copies rank `root`'s `data` into every rank's `data`. */
  broadcast(data: MpiBuffer, root = 0): void {
    const s = this.lib.symbols;
    const type = data instanceof Float32Array
      ? s.ompi_mpi_float
      : data instanceof Float64Array
      ? s.ompi_mpi_double
      : s.ompi_mpi_byte;
    for (const [lo, hi] of chunks(data.length)) {
      check(
        s.MPI_Bcast(data.subarray(lo, hi), hi - lo, type, root, s.ompi_mpi_comm_world),
        "MPI_Bcast",
      );
    }
  }

  /** Waits until every rank has called barrier(). */
  barrier(): void {
    check(this.lib.symbols.MPI_Barrier(this.lib.symbols.ompi_mpi_comm_world), "MPI_Barrier");
  }

  /** Ends the whole job (every rank) with `code`. */
  abort(code = 1): never {
    this.lib.symbols.MPI_Abort(this.lib.symbols.ompi_mpi_comm_world, code);
    Deno.exit(code);
  }

  /** Finalises MPI (call once, at the end of the process). */
  finalize(): void {
    const s = this.lib.symbols, flag = new Int32Array(1);
    s.MPI_Finalized(flag);
    if (!flag[0]) check(s.MPI_Finalize(), "MPI_Finalize");
  }

  private allreduce(
    data: Float32Array | Float64Array,
    op: "sum" | "max",
    bucket = MAX_COUNT,
  ): void {
    const s = this.lib.symbols;
    const type = data instanceof Float32Array ? s.ompi_mpi_float : s.ompi_mpi_double;
    const mpiOp = op === "sum" ? s.ompi_mpi_op_sum : s.ompi_mpi_op_max;
    const inPlace = Deno.UnsafePointer.create(1n); // MPI_IN_PLACE
    for (const [lo, hi] of chunks(data.length, bucket)) {
      check(
        s.MPI_Allreduce(
          inPlace,
          data.subarray(lo, hi),
          hi - lo,
          type,
          mpiOp,
          s.ompi_mpi_comm_world,
        ),
        "MPI_Allreduce",
      );
    }
  }
}

function* chunks(n: number, size = MAX_COUNT): Generator<[number, number]> {
  const step = Math.max(1, Math.min(MAX_COUNT, Math.floor(size)));
  for (let lo = 0; lo < n; lo += step) yield [lo, Math.min(n, lo + step)];
}

function check(code: number, call: string): void {
  if (code !== 0) throw new Error(`MPI: ${call} failed with error code ${code}`);
}
