/**
 * Generates, at run time, a tiny WebAssembly module holding the GEMM micro-kernel: a 6x8 f32
 * register tile over k, written with `f32x4.relaxed_madd` (one fused multiply-add per vector on
 * CPUs with FMA) when the engine supports relaxed SIMD, else with f32x4.mul + f32x4.add.
 * Debian's rustc 1.63 cannot emit relaxed SIMD, so kernels/engine imports this function as
 * `micro.tile_6x8(kc, pa, pb, out)`: pa is an MR-interleaved packed A panel [kc][6], pb an
 * NR-interleaved packed B panel [kc][8], out receives the 6x8 tile row-major (48 floats).
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
  geU: [0x4f],
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
};

// Locals: params kc 0, pa 1, pb 2, out 3; v128: acc 4..15 (row r, half h -> 4 + 2r + h),
// b0 16, b1 17, a 18.
const ACC = (r: number, h: number) => 4 + 2 * r + h;
const B0 = 16, B1 = 17, A = 18;

/** One k step reading A at pa+4*MR*u and B at pb+32*u. */
function step(u: number, fma: boolean): number[] {
  const code: number[] = [];
  code.push(...op.get(2), ...op.load(32 * u), ...op.set(B0));
  code.push(...op.get(2), ...op.load(32 * u + 16), ...op.set(B1));
  for (let r = 0; r < MR; r++) {
    code.push(...op.get(1), ...op.splat32(4 * (MR * u + r)), ...op.set(A));
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

/** Module bytes: imports env.memory (shared), exports tile_6x8. */
export function microKernelBytes(fma: boolean): Uint8Array {
  const body: number[] = [];
  body.push(...leb(1), ...leb(15), 0x7b); // 15 v128 locals (indices 4..18)
  body.push(...loop(UNROLL, fma), ...loop(1, fma));
  for (let r = 0; r < MR; r++) {
    for (let h = 0; h < 2; h++) {
      body.push(...op.get(3), ...op.get(ACC(r, h)), ...op.store(16 * (2 * r + h)));
    }
  }
  body.push(...op.end);
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  const str = (s: string) => [...leb(s.length), ...new TextEncoder().encode(s)];
  const type = section(1, [1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 0]);
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
