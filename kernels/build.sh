#!/usr/bin/env bash
# Builds one Rust kernel crate (kernels/<name>/src/lib.rs) to kernels/build/<name>.wasm.
# A crate holding a file named THREADED is built for shared memory (Deno Workers on one
# WebAssembly.Memory); the others are plain single-threaded SIMD modules.
set -euo pipefail
name="$1"
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/$name/src/lib.rs"
out="$here/build/$name.wasm"
rustc_bin="${RUSTC_WASM:-/usr/bin/rustc}"
if [ ! -x "$rustc_bin" ]; then
  echo "kernels/build.sh: $rustc_bin not found; install Debian's rustc and libstd-rust-dev-wasm32" >&2
  exit 1
fi
mkdir -p "$here/build"
flags=(--edition 2021 --crate-type cdylib --target wasm32-unknown-unknown -O
  -C opt-level=3 -C codegen-units=1 -C panic=abort -C debuginfo=0 -C strip=debuginfo)
if [ -f "$here/$name/THREADED" ]; then
  # Max memory: 4 GiB (65536 pages of 64 KiB).
  flags+=(-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals
    -C link-arg=--shared-memory -C link-arg=--import-memory
    -C link-arg=--max-memory=4294967296 -C link-arg=--no-check-features
    -C link-arg=--export=__stack_pointer -C link-arg=--export=__heap_base)
else
  flags+=(-C target-feature=+simd128)
fi
tmp="$out.tmp.$$"
"$rustc_bin" "${flags[@]}" -o "$tmp" "$src"
mv "$tmp" "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
