//! Compute-engine kernels for the `wasm` backend: SIMD128, shared memory, one instance per thread.
//! Every exported kernel takes `(tid, nt, ...)` and does its share `tid` of `nt`; the TS pool
//! runs it on all threads at once. Pointers are byte addresses into the shared memory; nothing
//! here allocates (the TS allocator in engine/backends/wasm_alloc.ts owns the heap above
//! `__heap_base`).

#![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]

mod conv;
mod elementwise;
mod gemm;
mod misc;
mod norm;
mod util;
