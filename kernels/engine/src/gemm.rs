//! Packed, cache-blocked SGEMM with a register-blocked SIMD128 micro-kernel.
//!
//! C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C, where A and B are arbitrary strided
//! views (row stride, column stride), so transposes cost nothing extra: packing absorbs them.
//! Blocking follows the usual Goto/BLIS scheme: NC columns of B packed per (KC) slab into
//! NR-wide panels, MC rows of A packed into MR-tall panels, an MR x NR micro-kernel in registers.

use core::arch::wasm32::*;
use crate::util::f32p;

pub const MR: usize = 6;
pub const NR: usize = 8;
pub const KC: usize = 512;
pub const MC: usize = 144;
pub const NC: usize = 2048;

/// Floats of per-thread workspace one `gemm_st` call needs (packed A block + packed B slab).
pub const WS_FLOATS: usize = (MC + MR) * KC + KC * (NC + NR);

/// A strided matrix view: element (i, j) lives at `ptr + i*rs + j*cs` (in elements).
#[derive(Clone, Copy)]
pub struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    /// The rows x cols operand at `ptr`: stored row-major, or as its transpose ([cols, rows]
    /// row-major) when `trans` is not 0.
    pub fn view(ptr: *const f32, rows: usize, cols: usize, trans: u32) -> Mat {
        if trans != 0 {
            Mat { ptr, rs: 1, cs: rows as isize }
        } else {
            Mat { ptr, rs: cols as isize, cs: 1 }
        }
    }

    #[inline(always)]
    pub unsafe fn at(&self, i: usize, j: usize) -> *const f32 {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}

/// Transposes the 4x4 block whose rows are r0..r3: returns its columns.
#[inline(always)]
pub fn transpose4(r0: v128, r1: v128, r2: v128, r3: v128) -> [v128; 4] {
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
    let t1 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
    let t2 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t1),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t1),
        i32x4_shuffle::<0, 1, 4, 5>(t2, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t2, t3),
    ]
}

/// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of A into MR-row panels: panel-major, then k, then row.
unsafe fn pack_a(a: &Mat, i0: usize, p0: usize, mc: usize, kc: usize, dst: *mut f32) {
    let mut d = dst;
    let mut ir = 0;
    while ir < mc {
        let rows = (mc - ir).min(MR);
        if rows == MR && a.cs == 1 {
            let mut src = [core::ptr::null::<f32>(); MR];
            for r in 0..MR {
                src[r] = a.at(i0 + ir + r, p0);
            }
            // Four k at a time: one vector load per row, a 4x4 transpose for rows 0..4 and
            // pairs for rows 4..6 (a quarter of the scalar accesses, each bounds-checked).
            let mut p = 0;
            while p + 4 <= kc {
                let v: [v128; MR] = core::array::from_fn(|r| v128_load(src[r].add(p) as *const v128));
                let t = transpose4(v[0], v[1], v[2], v[3]);
                let lo = i32x4_shuffle::<0, 4, 1, 5>(v[4], v[5]); // (r4,r5) at k+0, k+1
                let hi = i32x4_shuffle::<2, 6, 3, 7>(v[4], v[5]); // (r4,r5) at k+2, k+3
                let dp = d.add(p * MR);
                v128_store(dp as *mut v128, t[0]);
                v128_store64_lane::<0>(lo, dp.add(4) as *mut u64);
                v128_store(dp.add(MR) as *mut v128, t[1]);
                v128_store64_lane::<1>(lo, dp.add(MR + 4) as *mut u64);
                v128_store(dp.add(2 * MR) as *mut v128, t[2]);
                v128_store64_lane::<0>(hi, dp.add(2 * MR + 4) as *mut u64);
                v128_store(dp.add(3 * MR) as *mut v128, t[3]);
                v128_store64_lane::<1>(hi, dp.add(3 * MR + 4) as *mut u64);
                p += 4;
            }
            while p < kc {
                for r in 0..MR {
                    *d.add(p * MR + r) = *src[r].add(p);
                }
                p += 1;
            }
        } else if rows == MR && a.rs == 1 {
            for p in 0..kc {
                let s = a.at(i0 + ir, p0 + p);
                for r in 0..MR {
                    *d.add(p * MR + r) = *s.add(r);
                }
            }
        } else {
            for p in 0..kc {
                for r in 0..MR {
                    *d.add(p * MR + r) = if r < rows { *a.at(i0 + ir + r, p0 + p) } else { 0.0 };
                }
            }
        }
        d = d.add(MR * kc);
        ir += MR;
    }
}

/// Packs rows [p0, p0+kc) x cols [j0, j0+nc) of B into NR-column panels: panel, then k, then col.
unsafe fn pack_b(b: &Mat, p0: usize, j0: usize, kc: usize, nc: usize, dst: *mut f32) {
    let mut d = dst;
    let mut jr = 0;
    while jr < nc {
        let cols = (nc - jr).min(NR);
        if cols == NR && b.cs == 1 {
            for p in 0..kc {
                let s = b.at(p0 + p, j0 + jr);
                let dp = d.add(p * NR);
                v128_store(dp as *mut v128, v128_load(s as *const v128));
                v128_store(dp.add(4) as *mut v128, v128_load(s.add(4) as *const v128));
            }
        } else if cols == NR && b.rs == 1 {
            let mut src = [core::ptr::null::<f32>(); NR];
            for c in 0..NR {
                src[c] = b.at(p0, j0 + jr + c);
            }
            // Four k at a time: one vector load per column, two 4x4 transposes.
            let mut p = 0;
            while p + 4 <= kc {
                let v: [v128; NR] = core::array::from_fn(|c| v128_load(src[c].add(p) as *const v128));
                let lo = transpose4(v[0], v[1], v[2], v[3]);
                let hi = transpose4(v[4], v[5], v[6], v[7]);
                let dp = d.add(p * NR);
                for q in 0..4 {
                    v128_store(dp.add(q * NR) as *mut v128, lo[q]);
                    v128_store(dp.add(q * NR + 4) as *mut v128, hi[q]);
                }
                p += 4;
            }
            while p < kc {
                for c in 0..NR {
                    *d.add(p * NR + c) = *src[c].add(p);
                }
                p += 1;
            }
        } else {
            for p in 0..kc {
                for c in 0..NR {
                    *d.add(p * NR + c) = if c < cols { *b.at(p0 + p, j0 + jr + c) } else { 0.0 };
                }
            }
        }
        d = d.add(NR * kc);
        jr += NR;
    }
}

#[link(wasm_import_module = "micro")]
extern "C" {
    /// out[r*ldo bytes .. +8 floats] (+)= (pa[kc][6]^T @ pb[kc][8])[r] for r in 0..rows (added
    /// when `accumulate` != 0): the register-tile loop, generated at run time by
    /// engine/backends/wasm_micro.ts (relaxed-SIMD FMA, which rustc 1.63 cannot emit).
    fn tile_6x8(
        kc: usize,
        pa: *const f32,
        pb: *const f32,
        out: *mut f32,
        ldo: usize,
        accumulate: u32,
        rows: usize,
    );
}

/// MR x NR register tile: acc = pa[MR, kc] @ pb[kc, NR]; then C = alpha*acc + beta*C on the
/// valid `rows` x `cols` corner (beta == 0 never reads C).
#[inline(never)]
unsafe fn micro(
    kc: usize,
    pa: *const f32,
    pb: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    if cols == NR && alpha == 1.0 && (beta == 0.0 || beta == 1.0) {
        // The common case: the generated kernel writes (or adds into) C's rows itself.
        tile_6x8(kc, pa, pb, c, ldc * 4, (beta != 0.0) as u32, rows);
        return;
    }
    let mut tmp = [f32x4_splat(0.0); MR * NR / 4];
    let t = tmp.as_mut_ptr() as *mut f32;
    tile_6x8(kc, pa, pb, t, NR * 4, 0, MR);
    let va = f32x4_splat(alpha);
    if rows == MR && cols == NR {
        let vb = f32x4_splat(beta);
        for r in 0..MR {
            let cp = c.add(r * ldc);
            let mut v0 = tmp[2 * r];
            let mut v1 = tmp[2 * r + 1];
            if alpha != 1.0 {
                v0 = f32x4_mul(v0, va);
                v1 = f32x4_mul(v1, va);
            }
            if beta != 0.0 {
                v0 = f32x4_add(v0, f32x4_mul(vb, v128_load(cp as *const v128)));
                v1 = f32x4_add(v1, f32x4_mul(vb, v128_load(cp.add(4) as *const v128)));
            }
            v128_store(cp as *mut v128, v0);
            v128_store(cp.add(4) as *mut v128, v1);
        }
    } else {
        for r in 0..rows {
            for j in 0..cols {
                let cp = c.add(r * ldc + j);
                let v = alpha * *t.add(r * NR + j);
                *cp = if beta != 0.0 { v + beta * *cp } else { v };
            }
        }
    }
}

/// C[mc, nc] (ldc apart) = alpha * (packed A block [mc, kc]) @ (packed B panels [kc, nc]) + beta*C:
/// the loops over NR-column B panels (L1) and MR-row A panels (L2) around the micro-kernel.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel(
    mc: usize,
    nc: usize,
    kc: usize,
    pa: *const f32,
    pb: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    let mut jr = 0;
    while jr < nc {
        let cols = (nc - jr).min(NR);
        let mut ir = 0;
        while ir < mc {
            let rows = (mc - ir).min(MR);
            micro(kc, pa.add(ir * kc), pb.add(jr * kc), c.add(ir * ldc + jr), ldc, rows, cols, alpha, beta);
            ir += MR;
        }
        jr += NR;
    }
}

/// Single-threaded GEMM on strided views; C rows are `ldc` apart with unit column stride.
/// `ws` must hold WS_FLOATS floats.
pub unsafe fn gemm_st(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &Mat,
    b: &Mat,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    ws: *mut f32,
) {
    let pack = |p0: usize, j0: usize, kc: usize, nc: usize, dst: *mut f32| pack_b(b, p0, j0, kc, nc, dst);
    gemm_core(m, n, k, alpha, a, &pack, beta, c, ldc, ws);
}

/// GEMM whose B operand is produced by `pack_b(p0, j0, kc, nc, dst)`: rows [p0, p0+kc) x
/// cols [j0, j0+nc) of B written as NR-column panels (see `pack_b`). Lets convolution pack
/// image patches straight into panels (implicit im2col).
pub unsafe fn gemm_core<PB: Fn(usize, usize, usize, usize, *mut f32)>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &Mat,
    pack_b: &PB,
    beta: f32,
    c: *mut f32,
    ldc: usize,
    ws: *mut f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        for i in 0..m {
            for j in 0..n {
                let cp = c.add(i * ldc + j);
                *cp = if beta != 0.0 { beta * *cp } else { 0.0 };
            }
        }
        return;
    }
    let pa = ws;
    let pb = ws.add((MC + MR) * KC);
    // Equal-sized k and m blocks (no thin remainder block), m blocks whole micro-panels.
    let kstep = k_step(k);
    let mblocks = (m + MC - 1) / MC;
    let mstep = (((m + mblocks - 1) / mblocks + MR - 1) / MR * MR).min(MC);
    let mut jc = 0;
    while jc < n {
        let nc = (n - jc).min(NC);
        let mut pc = 0;
        while pc < k {
            let kc = (k - pc).min(kstep);
            let beta_eff = if pc == 0 { beta } else { 1.0 };
            pack_b(pc, jc, kc, nc, pb);
            let mut ic = 0;
            while ic < m {
                let mc = (m - ic).min(mstep);
                pack_a(a, ic, pc, mc, kc, pa);
                macro_kernel(mc, nc, kc, pa, pb, c.add(ic * ldc + jc), ldc, alpha, beta_eff);
                ic += mstep;
            }
            pc += kstep;
        }
        jc += NC;
    }
}

/// This thread's output tile [m0, m1) x [n0, n1) of an m x n product split over `nt` threads.
pub fn thread_tile(m: usize, n: usize, tid: usize, nt: usize) -> (usize, usize, usize, usize) {
    let (tm, tn) = thread_grid(m, n, nt);
    let (ti, tj) = (tid / tn, tid % tn);
    let (m0, m1) = crate::util::split_aligned(m, MR, ti, tm);
    let (n0, n1) = crate::util::split_aligned(n, NR, tj, tn);
    (m0, m1, n0, n1)
}

/// Chooses a tm x tn thread grid (tm * tn == nt) that keeps per-thread tiles near square.
fn thread_grid(m: usize, n: usize, nt: usize) -> (usize, usize) {
    let mut best = (1, nt);
    let mut best_cost = f64::MAX;
    for tm in 1..=nt {
        if nt % tm != 0 {
            continue;
        }
        let tn = nt / tm;
        // Per-thread tile, rounded up to whole micro-tiles; cost = work + imbalance + packing.
        let bm = ((m + tm - 1) / tm + MR - 1) / MR * MR;
        let bn = ((n + tn - 1) / tn + NR - 1) / NR * NR;
        let cost = (bm * bn) as f64 + 0.5 * (bm + bn) as f64 * 64.0;
        if cost < best_cost {
            best_cost = cost;
            best = (tm, tn);
        }
    }
    best
}

/// Threaded batched GEMM. Pointers are byte addresses; strides/offsets in elements.
/// Threads claim whole products or output chunks dynamically (see `util::next_item`).
#[no_mangle]
pub unsafe extern "C" fn gemm(
    tid: u32,
    nt: u32,
    batch: u32,
    m: u32,
    n: u32,
    k: u32,
    a: u32,
    b: u32,
    c: u32,
    trans_a: u32,
    trans_b: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    alpha: f32,
    beta: f32,
    ws: u32,
    ws_stride: u32,
) {
    let (tid, nt) = (tid as usize, nt as usize);
    let (batch, m, n, k) = (batch as usize, m as usize, n as usize, k as usize);
    let wsp = (ws as usize + tid * ws_stride as usize) as *mut f32;
    let mat_a = |bi: usize| Mat::view(f32p(a).add(bi * stride_a as usize), m, k, trans_a);
    let mat_b = |bi: usize| Mat::view(f32p(b).add(bi * stride_b as usize), k, n, trans_b);
    let cp = |bi: usize| (c as usize as *mut f32).add(bi * stride_c as usize);
    // Work items: whole products when there are enough, else chunks of each product's output
    // along its longer side, as few as give every thread the same number (each chunk repacks
    // the unsplit operand: 2 chunks of a 1024^3 product on 2 threads ran ~6 % faster than 6);
    // threads claim items from the shared counter.
    let per = if nt == 1 || batch >= 2 * nt { 1 } else { nt / gcd(batch, nt) };
    let items = batch * per;
    loop {
        let item = crate::util::next_item();
        if item >= items {
            break;
        }
        let (bi, ci) = (item / per, item % per);
        let (mut m0, mut m1, mut n0, mut n1) = (0, m, 0, n);
        if per > 1 {
            if n >= m {
                (n0, n1) = crate::util::split_aligned(n, NR, ci, per);
            } else {
                (m0, m1) = crate::util::split_aligned(m, MR, ci, per);
            }
        }
        if m0 >= m1 || n0 >= n1 {
            continue;
        }
        let ma = mat_a(bi);
        let mb = mat_b(bi);
        let sa = Mat { ptr: ma.at(m0, 0), rs: ma.rs, cs: ma.cs };
        let sb = Mat { ptr: mb.at(0, n0), rs: mb.rs, cs: mb.cs };
        gemm_st(m1 - m0, n1 - n0, k, alpha, &sa, &sb, beta, cp(bi).add(m0 * n + n0), n, wsp);
    }
    let _ = tid;
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Per-thread workspace bytes `gemm` needs.
#[no_mangle]
pub extern "C" fn gemm_ws_bytes() -> u32 {
    (WS_FLOATS * 4) as u32
}

// ---- One product on all threads with a shared packed B: phase 1 packs B once (panels split
// over threads), phase 2 hands out blocks of C's rows (each thread packs only its own A rows).
// Unlike splitting the output into one chunk per thread, no operand is packed twice and a thread
// that falls behind (a busy host core) holds up at most one small row block.

/// k-block height: k in equal blocks of at most KC (no thin remainder block). Every path uses it,
/// so a product's k summation order (and result) does not depend on how it was split.
fn k_step(k: usize) -> usize {
    let blocks = (k + KC - 1) / KC;
    (k + blocks - 1) / blocks
}

/// n rounded up to whole NR-column panels.
fn padded_cols(n: usize) -> usize {
    (n + NR - 1) / NR * NR
}

/// Floats of the shared packed B for an n x k operand: k rows of n columns rounded up to NR.
#[no_mangle]
pub extern "C" fn gemm_shared_b_floats(n: u32, k: u32) -> u32 {
    (padded_cols(n as usize) * k as usize) as u32
}

/// Phase 1: packs op(B) [k, n] into `pb`: k block p0 (height kc) at pb + p0 * npad, its NR-column
/// panels one after another (panel j at + j*NR*kc). Panels are split over threads.
#[no_mangle]
pub unsafe extern "C" fn gemm_pack_b_shared(
    tid: u32, nt: u32, n: u32, k: u32, b: u32, trans_b: u32, pb: u32,
) {
    let (n, k) = (n as usize, k as usize);
    let mb = Mat::view(f32p(b), k, n, trans_b);
    let npad = padded_cols(n);
    let (j0, j1) = crate::util::split(npad / NR, tid as usize, nt as usize);
    if j0 >= j1 {
        return;
    }
    let (c0, c1) = (j0 * NR, (j1 * NR).min(n));
    let kstep = k_step(k);
    let mut pc = 0;
    while pc < k {
        let kc = (k - pc).min(kstep);
        pack_b(&mb, pc, c0, kc, c1 - c0, f32p(pb).add(pc * npad + c0 * kc));
        pc += kstep;
    }
}

/// Phase 2: C = alpha * op(A) @ B + beta * C with B packed by `gemm_pack_b_shared`; threads claim
/// blocks of C's rows, about six per thread (a multiple of MR, at most MC rows each).
#[no_mangle]
pub unsafe extern "C" fn gemm_rows_shared_b(
    tid: u32, nt: u32, m: u32, n: u32, k: u32, a: u32, trans_a: u32, c: u32,
    alpha: f32, beta: f32, pb: u32, ws: u32, ws_stride: u32,
) {
    let (m, n, k, nt) = (m as usize, n as usize, k as usize, nt as usize);
    let mstep = ((m + 6 * nt - 1) / (6 * nt) + MR - 1) / MR * MR;
    let mstep = mstep.clamp(MR, MC);
    let ma = Mat::view(f32p(a), m, k, trans_a);
    let pa = f32p(ws + tid * ws_stride);
    let c = f32p(c);
    let npad = padded_cols(n);
    let kstep = k_step(k);
    loop {
        let ic = crate::util::next_item() * mstep;
        if ic >= m {
            break;
        }
        let mc = (m - ic).min(mstep);
        let mut pc = 0;
        while pc < k {
            let kc = (k - pc).min(kstep);
            let beta_eff = if pc == 0 { beta } else { 1.0 };
            pack_a(&ma, ic, pc, mc, kc, pa);
            let pbk = f32p(pb).add(pc * npad);
            macro_kernel(mc, n, kc, pa, pbk, c.add(ic * n), n, alpha, beta_eff);
            pc += kstep;
        }
    }
}
