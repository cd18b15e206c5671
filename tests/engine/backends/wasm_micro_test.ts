/**
 * The generated GEMM micro-kernel (engine/backends/wasm_micro.ts) on its own: both encodings
 * (relaxed-SIMD FMA and mul + add) against a float64 reference, for k counts that exercise the
 * unrolled loop, the one-step remainder loop and both together, writing into a strided output
 * (overwrite, and accumulate into what is there; all six rows or the first few).
 */
import assert from "node:assert";
import { microKernelBytes } from "../../../engine/backends/wasm_micro.ts";

const MR = 6, NR = 8;

type Tile = (
  kc: number,
  pa: number,
  pb: number,
  out: number,
  ldo: number,
  accumulate: number,
  rows: number,
) => void;

function instantiate(fma: boolean, memory: WebAssembly.Memory): Tile | null {
  const bytes = microKernelBytes(fma);
  if (!WebAssembly.validate(bytes as BufferSource)) return null; // no relaxed SIMD here
  const module = new WebAssembly.Module(bytes as BufferSource);
  return new WebAssembly.Instance(module, { env: { memory } }).exports.tile_6x8 as Tile;
}

for (const fma of [true, false]) {
  Deno.test(`micro-kernel (${fma ? "relaxed FMA" : "mul + add"}) matches a float64 reference`, () => {
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536, shared: true });
    const tile = instantiate(fma, memory);
    if (!tile) {
      console.log("  skipped: this engine rejects relaxed SIMD");
      return;
    }
    const f32 = new Float32Array(memory.buffer);
    const pa = 4096, pb = 65536, out = 1024, ldo = 4 * 13; // bytes; rows 13 floats apart
    const o = (r: number, c: number) => out / 4 + (r * ldo) / 4 + c;
    for (const kc of [1, 3, 4, 7, 64, 513]) {
      for (const [accumulate, rows] of [[0, MR], [1, MR], [0, 4], [1, 1]]) {
        for (let i = 0; i < kc * MR; i++) f32[pa / 4 + i] = Math.sin(i * 0.37 + kc);
        for (let i = 0; i < kc * NR; i++) f32[pb / 4 + i] = Math.cos(i * 0.11 - kc);
        // Prior contents: a known value inside the tile, a sentinel in the gaps between rows.
        f32.fill(-7, out / 4, o(MR, 0));
        for (let r = 0; r < MR; r++) for (let c = 0; c < NR; c++) f32[o(r, c)] = 0.25 * (r - c);
        tile(kc, pa, pb, out, ldo, accumulate, rows);
        const what = `kc ${kc}, accumulate ${accumulate}, rows ${rows}`;
        for (let r = 0; r < MR; r++) {
          for (let c = 0; c < NR; c++) {
            const got = f32[o(r, c)];
            if (r >= rows) { // rows past `rows` are left alone
              assert(got === 0.25 * (r - c), `${what}: wrote row ${r}`);
              continue;
            }
            let want = accumulate ? 0.25 * (r - c) : 0, mag = Math.abs(want);
            for (let p = 0; p < kc; p++) {
              const t = f32[pa / 4 + p * MR + r] * f32[pb / 4 + p * NR + c];
              want += t;
              mag += Math.abs(t);
            }
            assert(
              Math.abs(got - want) <= 1e-6 * mag + 1e-7,
              `${what}, tile (${r}, ${c}): ${got} vs ${want}`,
            );
          }
          for (let c = NR; c < ldo / 4 && r < MR - 1; c++) {
            assert(f32[o(r, c)] === -7, `${what}: wrote outside the tile at row ${r}, col ${c}`);
          }
        }
      }
    }
  });
}
