//! Linear SVM kernel: dual coordinate descent for L2-regularized L2-loss (squared hinge) SVC,
//! the method of LIBLINEAR's solver 1 (Hsieh et al., ICML 2008, Algorithm 3 with shrinking).
//!
//! Single-threaded SIMD module; the TS side runs one instance per Deno Worker.
//! Features are dense f32 rows of `stride` floats (stride a multiple of 4). The caller appends the
//! bias feature (value 1) inside each row, so the bias weight is regularized like `liblinear -B 1`,
//! and zero-pads the rest of the row.

use core::arch::wasm32::*;
use std::alloc::{alloc, dealloc, Layout};

/// Allocates `bytes` bytes aligned to 16; returns 0 on failure.
#[no_mangle]
pub extern "C" fn svm_alloc(bytes: usize) -> *mut u8 {
    if bytes == 0 {
        return 16 as *mut u8;
    }
    match Layout::from_size_align(bytes, 16) {
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees a block from `svm_alloc` (same `bytes`).
#[no_mangle]
pub extern "C" fn svm_free(ptr: *mut u8, bytes: usize) {
    if bytes == 0 || ptr.is_null() {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(bytes, 16) {
        unsafe { dealloc(ptr, layout) }
    }
}

/// a · b over `len` floats (`len` a multiple of 4, both 16-byte aligned), four f32x4 accumulators.
#[inline(always)]
unsafe fn dot(a: *const f32, b: *const f32, len: usize) -> f32 {
    let mut acc0 = f32x4_splat(0.0);
    let mut acc1 = f32x4_splat(0.0);
    let mut acc2 = f32x4_splat(0.0);
    let mut acc3 = f32x4_splat(0.0);
    let mut k = 0;
    while k + 16 <= len {
        let pa = a.add(k) as *const v128;
        let pb = b.add(k) as *const v128;
        acc0 = f32x4_add(acc0, f32x4_mul(v128_load(pa), v128_load(pb)));
        acc1 = f32x4_add(acc1, f32x4_mul(v128_load(pa.add(1)), v128_load(pb.add(1))));
        acc2 = f32x4_add(acc2, f32x4_mul(v128_load(pa.add(2)), v128_load(pb.add(2))));
        acc3 = f32x4_add(acc3, f32x4_mul(v128_load(pa.add(3)), v128_load(pb.add(3))));
        k += 16;
    }
    while k < len {
        let pa = a.add(k) as *const v128;
        let pb = b.add(k) as *const v128;
        acc0 = f32x4_add(acc0, f32x4_mul(v128_load(pa), v128_load(pb)));
        k += 4;
    }
    let s = f32x4_add(f32x4_add(acc0, acc1), f32x4_add(acc2, acc3));
    (f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s))
        + (f32x4_extract_lane::<2>(s) + f32x4_extract_lane::<3>(s))
}

/// w += d · x over `len` floats (`len` a multiple of 4, both 16-byte aligned).
#[inline(always)]
unsafe fn axpy(d: f32, x: *const f32, w: *mut f32, len: usize) {
    let dv = f32x4_splat(d);
    let mut k = 0;
    while k < len {
        let px = x.add(k) as *const v128;
        let pw = w.add(k) as *mut v128;
        v128_store(pw, f32x4_add(v128_load(pw), f32x4_mul(dv, v128_load(px))));
        k += 4;
    }
}

/// Small deterministic generator (xorshift64*) for the per-iteration permutation.
struct Rng(u64);

impl Rng {
    fn new(seed: u32) -> Rng {
        Rng((seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    /// Uniform integer in [0, n) (n > 0).
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % (n as u64)) as usize
    }
}

/// Trains one binary SVM on the rows `rows[0..m]` of `x` (row r starts at `x + r*stride`), with
/// labels `y[r]` (> 0 positive, otherwise negative; indexed by row id, not by position in `rows`).
/// Minimizes 0.5|w|² + Σ C_i max(0, 1 − y_i w·x_i)² with C_i = `cp` for positives, `cn` for
/// negatives, through the dual: min_α 0.5 αᵀ(Q + D)α − eᵀα, α ≥ 0, D_ii = 1/(2 C_i).
/// Stops when the projected-gradient spread max PG − min PG ≤ `eps` over all variables, or after
/// `max_iter` outer iterations. Writes w (`stride` floats) and returns the outer iteration count.
///
/// # Safety
/// Pointers must be valid for the sizes above and 16-byte aligned; `stride % 4 == 0`.
#[no_mangle]
pub unsafe extern "C" fn svm_train(
    x: *const f32,
    stride: usize,
    rows: *const u32,
    m: usize,
    y: *const i8,
    cp: f64,
    cn: f64,
    eps: f64,
    max_iter: u32,
    seed: u32,
    w: *mut f32,
) -> u32 {
    for k in 0..stride {
        *w.add(k) = 0.0;
    }
    if m == 0 {
        return 0;
    }
    let rows = core::slice::from_raw_parts(rows, m);
    let diag_pos = 0.5 / cp;
    let diag_neg = 0.5 / cn;
    let mut sign: Vec<f64> = Vec::with_capacity(m);
    let mut diag: Vec<f64> = Vec::with_capacity(m);
    let mut qd: Vec<f64> = Vec::with_capacity(m);
    let mut alpha: Vec<f64> = vec![0.0; m];
    let mut index: Vec<usize> = (0..m).collect();
    for &r in rows.iter() {
        let xi = x.add(r as usize * stride);
        let positive = *y.add(r as usize) > 0;
        let dg = if positive { diag_pos } else { diag_neg };
        sign.push(if positive { 1.0 } else { -1.0 });
        diag.push(dg);
        qd.push(dg + dot(xi, xi, stride) as f64);
    }
    let mut rng = Rng::new(seed);
    let mut active = m;
    let mut pg_max_old = f64::INFINITY;
    let mut iter: u32 = 0;
    while iter < max_iter {
        let mut pg_max_new = f64::NEG_INFINITY;
        let mut pg_min_new = f64::INFINITY;
        for i in 0..active {
            let j = i + rng.below(active - i);
            index.swap(i, j);
        }
        let mut s = 0;
        while s < active {
            let i = index[s];
            let xi = x.add(rows[i] as usize * stride);
            let yi = sign[i];
            let g = yi * dot(w, xi, stride) as f64 - 1.0 + alpha[i] * diag[i];
            // L2 loss: no upper bound, so only α = 0 can be at a bound (LIBLINEAR's PGmin_old
            // shrinking applies to α = C and never fires here).
            let mut pg = g;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    // Shrink: this variable very likely stays at 0.
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g >= 0.0 {
                    pg = 0.0;
                }
            }
            if pg > pg_max_new {
                pg_max_new = pg;
            }
            if pg < pg_min_new {
                pg_min_new = pg;
            }
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                let new = (old - g / qd[i]).max(0.0);
                alpha[i] = new;
                axpy(((new - old) * yi) as f32, xi, w, stride);
            }
            s += 1;
        }
        iter += 1;
        if pg_max_new - pg_min_new <= eps {
            if active == m {
                break;
            }
            // Converged on the active set: re-check every variable without shrinking.
            active = m;
            pg_max_old = f64::INFINITY;
            continue;
        }
        pg_max_old = if pg_max_new <= 0.0 { f64::INFINITY } else { pg_max_new };
    }
    iter
}

/// Decision values out[k] = w · x[rows[k]] for k < m.
///
/// # Safety
/// Pointers must be valid for the sizes above and 16-byte aligned; `stride % 4 == 0`.
#[no_mangle]
pub unsafe extern "C" fn svm_decision(
    x: *const f32,
    stride: usize,
    rows: *const u32,
    m: usize,
    w: *const f32,
    out: *mut f32,
) {
    for k in 0..m {
        let r = *rows.add(k) as usize;
        *out.add(k) = dot(w, x.add(r * stride), stride);
    }
}
