import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert";
import {
  checkExports,
  kernelArgList,
  QUERY_FUNCTIONS,
  THREADED_KERNELS,
} from "../../../engine/backends/wasm_kernels.ts";

const SRC = new URL("../../../kernels/engine/src/", import.meta.url);

/** Every `extern "C" fn` of the engine crate: name -> parameter names, as written in Rust. */
function rustSignatures(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const entry of Deno.readDirSync(SRC)) {
    if (!entry.name.endsWith(".rs")) continue;
    const text = Deno.readTextFileSync(new URL(entry.name, SRC));
    for (const m of text.matchAll(/pub (?:unsafe )?extern "C" fn (\w+)\s*\(([^)]*)\)/g)) {
      const params = m[2].split(",").map((p) => p.trim()).filter((p) => p.length > 0)
        .map((p) => p.split(":")[0].trim());
      out.set(m[1], params);
    }
  }
  return out;
}

Deno.test("wasm kernel table names every Rust parameter in order", () => {
  const rust = rustSignatures();
  const table = new Map<string, string[]>();
  for (const [name, params] of Object.entries(THREADED_KERNELS)) {
    table.set(name, ["tid", "nt", ...params]);
  }
  for (const [name, params] of Object.entries(QUERY_FUNCTIONS)) table.set(name, [...params]);
  assertEquals([...table.keys()].sort(), [...rust.keys()].sort());
  for (const [name, params] of table) assertEquals(params, rust.get(name), name);
});

Deno.test("checkExports rejects a missing, mis-sized or unlisted export", () => {
  // A fake module exporting every table entry with the right arity.
  const fake: Record<string, unknown> = {};
  const fnOfArity = (n: number) =>
    new Function(...Array.from({ length: n }, (_, i) => `a${i}`), "");
  for (const [name, params] of Object.entries(THREADED_KERNELS)) {
    fake[name] = fnOfArity(params.length + 2);
  }
  for (const [name, params] of Object.entries(QUERY_FUNCTIONS)) {
    fake[name] = fnOfArity(params.length);
  }
  checkExports(fake as WebAssembly.Exports);
  assertThrows(() => checkExports({ ...fake, gemm: fnOfArity(17) } as WebAssembly.Exports), /gemm/);
  const { unary: _, ...missing } = fake;
  assertThrows(() => checkExports(missing as WebAssembly.Exports), /'unary' is not exported/);
  assertThrows(
    () => checkExports({ ...fake, extra_kernel: fnOfArity(3) } as WebAssembly.Exports),
    /'extra_kernel' is exported but not in the table/,
  );
});

Deno.test("kernelArgList orders named arguments as the Rust signature", () => {
  assertEquals(
    kernelArgList("lookahead_sync", { alpha: 0.5, n: 3, slow: 200, fast: 100 }),
    [100, 200, 3, 0.5],
  );
  assertEquals(
    kernelArgList("reduce_sum", { x: 1, y: 2, outer: 3, reduce: 4, inner: 5, accumulate: true }),
    [1, 2, 3, 4, 5, 1],
  );
});
