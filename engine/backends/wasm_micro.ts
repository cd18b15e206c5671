/**
 * Generates, at run time, a tiny WebAssembly module holding the GEMM micro-kernel: a 6x8 f32
 * register tile over k, written with `f32x4.relaxed_madd` (one fused multiply-add per vector on
 * CPUs with FMA) when the engine supports relaxed SIMD, else with f32x4.mul + f32x4.add.
 * Debian's rustc 1.63 cannot emit relaxed SIMD, so kernels/engine imports this function as
 * `micro.tile_6x8(kc, pa, pb, out, ldo, accumulate, rows)`: pa is an MR-interleaved packed A
 * panel [kc][6], pb an NR-interleaved packed B panel [kc][8]; row r < rows of the 6x8 result
 * goes to out + r*ldo bytes (8 floats), added to what is there when `accumulate` is not 0.
 * Writing straight into C saves the round trip through a stack tile for every 8-column tile.
 */

const MR = 6;
const UNROLL = 4;

/** Unsigned LEB128. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (for i32.const). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const op = {
  get: (i: number) => [0x20, ...leb(i)],
  set: (i: number) => [0x21, ...leb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  sub: [0x6b],
  mul32: [0x6c],
  geU: [0x4f],
  leU: [0x4d],
  eqz: [0x45],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  brIf: (d: number) => [0x0d, ...leb(d)],
  br: (d: number) => [0x0c, ...leb(d)],
  end: [0x0b],
  load: (off: number) => [0xfd, ...leb(0x00), 4, ...leb(off)],
  splat32: (off: number) => [0xfd, ...leb(0x09), 2, ...leb(off)],
  store: (off: number) => [0xfd, ...leb(0x0b), 4, ...leb(off)],
  madd: [0xfd, ...leb(0x105)],
  mul: [0xfd, ...leb(0xe6)],
  fadd: [0xfd, ...leb(0xe4)],
  if: [0x04, 0x40],
};

// Locals: params kc 0, pa 1, pb 2, out 3, ldo 4, accumulate 5, rows 6; v128: acc 7..18 (row r,
// half h -> 7 + 2r + h), b0 19, b1 20, a 21.
const OUT = 3, LDO = 4, ACCUMULATE = 5, ROWS = 6;
const ACC = (r: number, h: number) => 7 + 2 * r + h;
const B0 = 19, B1 = 20, A = 21;

/**
 * Pushes `base + off` and loads from there at static offset 0. Deno runs V8 without its wasm trap
 * handler, so every access carries a software bounds check against the memory size minus the
 * static offset: with one offset for all accesses the limit stays in one register and each access
 * costs an add, a compare-and-branch and the load (a distinct static offset per access would also
 * cost a limit computation each time). Measured on this machine: ~1.3x faster micro-kernel.
 */
function at(base: number, off: number, access: number[]): number[] {
  return at32(op.get(base), off, access);
}

/** As `at`, with the base given as code that pushes it. */
function at32(base: number[], off: number, access: number[]): number[] {
  const index = off === 0 ? base : [...base, ...op.i32(off), ...op.add];
  return [...index, ...access];
}

/** One k step reading A at pa+4*MR*u and B at pb+32*u. */
function step(u: number, fma: boolean): number[] {
  const code: number[] = [];
  code.push(...at(2, 32 * u, op.load(0)), ...op.set(B0));
  code.push(...at(2, 32 * u + 16, op.load(0)), ...op.set(B1));
  for (let r = 0; r < MR; r++) {
    code.push(...at(1, 4 * (MR * u + r), op.splat32(0)), ...op.set(A));
    for (let h = 0; h < 2; h++) {
      const b = h === 0 ? B0 : B1;
      if (fma) {
        code.push(...op.get(A), ...op.get(b), ...op.get(ACC(r, h)), ...op.madd);
      } else {
        code.push(...op.get(A), ...op.get(b), ...op.mul, ...op.get(ACC(r, h)), ...op.fadd);
      }
      code.push(...op.set(ACC(r, h)));
    }
  }
  return code;
}

/** Loop running `u` steps per iteration while kc >= u. */
function loop(u: number, fma: boolean): number[] {
  const code: number[] = [...op.block, ...op.loop];
  // if kc < u: break
  code.push(...op.get(0), ...op.i32(u), ...op.geU, ...op.eqz, ...op.brIf(1));
  for (let i = 0; i < u; i++) code.push(...step(i, fma));
  code.push(...op.get(1), ...op.i32(4 * MR * u), ...op.add, ...op.set(1));
  code.push(...op.get(2), ...op.i32(32 * u), ...op.add, ...op.set(2));
  code.push(...op.get(0), ...op.i32(u), ...op.sub, ...op.set(0));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

/** Row r of the output tile: out + r*ldo (then + 16 for the second half). */
function rowPointer(r: number): number[] {
  if (r === 0) return op.get(OUT);
  return [...op.get(OUT), ...op.get(LDO), ...op.i32(r), ...op.mul32, ...op.add];
}

/** Module bytes: imports env.memory (shared), exports tile_6x8. */
export function microKernelBytes(fma: boolean): Uint8Array {
  const body: number[] = [];
  body.push(...leb(1), ...leb(15), 0x7b); // 15 v128 locals (indices 7..21)
  body.push(...loop(UNROLL, fma), ...loop(1, fma));
  // Rows 0..rows: (if accumulate: acc += out row), out row = acc.
  body.push(...op.block);
  for (let r = 0; r < MR; r++) {
    if (r > 0) body.push(...op.get(ROWS), ...op.i32(r), ...op.leU, ...op.brIf(0));
    body.push(...op.get(ACCUMULATE), ...op.if);
    for (let h = 0; h < 2; h++) {
      body.push(...op.get(ACC(r, h)), ...at32(rowPointer(r), 16 * h, op.load(0)), ...op.fadd);
      body.push(...op.set(ACC(r, h)));
    }
    body.push(...op.end);
    for (let h = 0; h < 2; h++) {
      body.push(...at32(rowPointer(r), 16 * h, []), ...op.get(ACC(r, h)), ...op.store(0));
    }
  }
  body.push(...op.end, ...op.end);
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  const str = (s: string) => [...leb(s.length), ...new TextEncoder().encode(s)];
  const type = section(1, [1, 0x60, 7, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]);
  const imports = section(2, [
    1,
    ...str("env"),
    ...str("memory"),
    0x02,
    0x03, // limits: min + max, shared; min 1 page lets the engine drop static-offset checks
    ...leb(1),
    ...leb(65536),
  ]);
  const funcs = section(3, [1, 0]);
  const exports = section(7, [1, ...str("tile_6x8"), 0x00, 0]);
  const code = section(10, [1, ...leb(body.length), ...body]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...type,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
}

/** The micro-kernel module: FMA (relaxed SIMD) when this engine validates it, else mul+add. */
export function compileMicroKernel(): { module: WebAssembly.Module; fma: boolean } {
  const fmaBytes = microKernelBytes(true);
  const fma = WebAssembly.validate(fmaBytes as BufferSource);
  const bytes = fma ? fmaBytes : microKernelBytes(false);
  return { module: new WebAssembly.Module(bytes as BufferSource), fma };
}
