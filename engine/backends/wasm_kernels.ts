/**
 * The one table of engine.wasm's exports: every kernel's parameters, named and ordered exactly as
 * in its Rust signature (kernels/engine/src/*.rs). Calls pass a named-argument object that is
 * turned into the positional list here, so no caller orders arguments by hand; `checkExports`
 * compares the table with the module's exports (names and arity) when the module is loaded, and
 * tests/engine/backends/wasm_kernels_test.ts compares the parameter names with the Rust source.
 */

/** Threaded kernels: called as `name(tid, nt, ...params)` on every thread of the pool. */
export const THREADED_KERNELS = {
  // gemm.rs
  gemm: [
    "batch",
    "m",
    "n",
    "k",
    "a",
    "b",
    "c",
    "trans_a",
    "trans_b",
    "stride_a",
    "stride_b",
    "stride_c",
    "alpha",
    "beta",
    "ws",
    "ws_stride",
  ],
  gemm_pack_b_shared: ["n", "k", "b", "trans_b", "pb"],
  gemm_rows_shared_b: [
    "m",
    "n",
    "k",
    "a",
    "trans_a",
    "c",
    "alpha",
    "beta",
    "pb",
    "ws",
    "ws_stride",
  ],
  // conv.rs
  conv2d_fwd_img: [
    "x",
    "w",
    "y",
    "c",
    "h",
    "wd",
    "o",
    "kh",
    "kw",
    "s",
    "p",
    "oh",
    "ow",
    "ws",
    "ws_stride",
  ],
  conv2d_fwd_batch: [
    "x",
    "w",
    "bias",
    "y",
    "n",
    "c",
    "h",
    "wd",
    "o",
    "kh",
    "kw",
    "s",
    "p",
    "oh",
    "ow",
    "ws",
    "ws_stride",
  ],
  conv2d_bwd_data_batch: [
    "dy",
    "w",
    "dx",
    "n",
    "c",
    "h",
    "wd",
    "o",
    "kh",
    "kw",
    "s",
    "p",
    "oh",
    "ow",
    "ws",
    "ws_stride",
  ],
  conv2d_bwd_filter_batch: [
    "x",
    "dy",
    "n",
    "c",
    "h",
    "wd",
    "o",
    "kh",
    "kw",
    "s",
    "p",
    "oh",
    "ow",
    "ws",
    "ws_stride",
  ],
  im2col: ["x", "col", "c", "h", "wd", "kh", "kw", "s", "p", "oh", "ow"],
  col2im: ["col", "dx", "c", "h", "wd", "kh", "kw", "s", "p", "oh", "ow"],
  im2col_batch: ["x", "col", "n", "c", "h", "wd", "kh", "kw", "s", "p", "oh", "ow"],
  col2im_batch: ["col", "dx", "n", "c", "h", "wd", "kh", "kw", "s", "p", "oh", "ow"],
  bias_add_planes: ["y", "bias", "n", "o", "hw"],
  reduce_partials: ["dst", "base", "stride", "offset_floats", "count", "n", "accumulate"],
  flip_weights: ["w", "w2", "o", "c", "kh", "kw"],
  swap_outer: ["src", "dst", "a", "b", "l", "bias"],
  // elementwise.rs
  unary: ["op", "x", "y", "n"],
  unary_bwd: ["op", "x", "dy", "dx", "n"],
  binary: ["op", "a", "b", "out", "meta"],
  copy_strided: ["x", "y", "meta"],
  axpby: ["x", "y", "alpha", "beta", "n"],
  reduce_sum: ["x", "y", "outer", "reduce", "inner", "accumulate"],
  sum_squares_partial: ["x", "n", "partials"],
  clip_by_norm: ["x", "n", "sumsq", "max_norm"],
  sgd_step: ["w", "g", "m", "n", "lr", "momentum", "wd"],
  lookahead_sync: ["fast", "slow", "n", "alpha"],
  dropout_mask: ["mask", "n", "p", "seed", "offset"],
  // misc.rs
  embedding: ["ids", "table", "out", "n", "dim"],
  embedding_bwd: ["ids", "dy", "dtable", "n", "dim"],
  cross_entropy: ["logits", "targets", "loss", "dlogits", "rows", "cols", "ignore", "scale"],
  // norm.rs
  softmax: ["x", "y", "rows", "cols"],
  softmax_bwd: ["y", "dy", "dx", "rows", "cols"],
  layer_norm: ["x", "gamma", "beta", "y", "mean", "rstd", "rows", "cols", "eps"],
  layer_norm_bwd: [
    "x",
    "gamma",
    "mean",
    "rstd",
    "dy",
    "dx",
    "rows",
    "cols",
    "part",
    "part_stride",
  ],
  bn_stats: ["x", "mean", "var", "n", "c", "hw"],
  bn_apply: ["x", "mean", "var", "gamma", "beta", "y", "n", "c", "hw", "eps"],
  bn_bwd: ["x", "mean", "var", "gamma", "dy", "dx", "dgamma", "dbeta", "n", "c", "hw", "eps"],
  max_pool: ["x", "y", "argmax", "planes", "h", "w", "k", "s", "pad", "oh", "ow"],
  max_pool_bwd: ["dy", "argmax", "dx", "planes", "hw_in", "hw_out"],
} as const;

/** Plain functions called on the main thread only (sizes, set-up); they return a number. */
export const QUERY_FUNCTIONS = {
  gemm_ws_bytes: [],
  gemm_shared_b_floats: ["n", "k"],
  conv_ws_floats: ["c", "o", "kh", "kw", "oh", "ow"],
  set_work_counter: ["addr"],
} as const;

export type KernelName = keyof typeof THREADED_KERNELS;
export type QueryName = keyof typeof QUERY_FUNCTIONS;

/** A value for one kernel parameter: addresses and sizes as numbers, flags as booleans. */
export type KernelValue = number | boolean;

/** The named arguments of kernel `K` (every parameter of its Rust signature after tid, nt). */
export type KernelArgs<K extends KernelName> = {
  [P in typeof THREADED_KERNELS[K][number]]: KernelValue;
};

/** The named arguments of query function `Q`. */
export type QueryArgs<Q extends QueryName> = {
  [P in typeof QUERY_FUNCTIONS[Q][number]]: number;
};

/** Kernel names in table order: the index a worker uses to find a kernel (CTRL.FN). */
export const KERNEL_NAMES = Object.keys(THREADED_KERNELS) as KernelName[];

/** Orders kernel `name`'s named arguments as its Rust signature does (booleans become 0/1). */
export function kernelArgList<K extends KernelName>(name: K, args: KernelArgs<K>): number[] {
  const params = THREADED_KERNELS[name] as readonly string[];
  const values = args as Record<string, KernelValue>;
  const out = new Array<number>(params.length);
  for (let i = 0; i < params.length; i++) {
    const v = values[params[i]];
    out[i] = v === true ? 1 : v === false ? 0 : v;
  }
  return out;
}

/** Orders query function `name`'s named arguments as its Rust signature does. */
export function queryArgList<Q extends QueryName>(name: Q, args: QueryArgs<Q>): number[] {
  const values = args as Record<string, number>;
  return (QUERY_FUNCTIONS[name] as readonly string[]).map((p) => values[p]);
}

/**
 * Checks the module's function exports against the table: every table entry is exported with
 * the table's arity (plus tid and nt for kernels), and every exported function is in the table.
 * Throws one error listing every mismatch.
 */
export function checkExports(exports: WebAssembly.Exports): void {
  const problems: string[] = [];
  const expect = new Map<string, number>();
  for (const [name, params] of Object.entries(THREADED_KERNELS)) {
    expect.set(name, params.length + 2);
  }
  for (const [name, params] of Object.entries(QUERY_FUNCTIONS)) expect.set(name, params.length);
  for (const [name, arity] of expect) {
    const fn = exports[name];
    if (typeof fn !== "function") problems.push(`'${name}' is not exported`);
    else if (fn.length !== arity) {
      problems.push(`'${name}' takes ${fn.length} arguments, the table says ${arity}`);
    }
  }
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value === "function" && !expect.has(name)) {
      problems.push(`'${name}' is exported but not in the table`);
    }
  }
  if (problems.length) {
    throw new Error(
      `engine.wasm does not match engine/backends/wasm_kernels.ts (rebuild with 'make kernels'` +
        ` or update the table): ${problems.join("; ")}`,
    );
  }
}
