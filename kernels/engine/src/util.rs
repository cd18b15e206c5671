//! Small helpers shared by the kernels: work partitioning and raw-pointer views.

/// Splits `0..n` into `nt` near-equal contiguous ranges and returns range `tid`.
#[inline]
pub fn split(n: usize, tid: usize, nt: usize) -> (usize, usize) {
    let base = n / nt;
    let rem = n % nt;
    let start = tid * base + tid.min(rem);
    let len = base + if tid < rem { 1 } else { 0 };
    (start, start + len)
}

/// Like `split`, but range boundaries fall on multiples of `align` (the last range takes the tail).
#[inline]
pub fn split_aligned(n: usize, align: usize, tid: usize, nt: usize) -> (usize, usize) {
    let blocks = (n + align - 1) / align;
    let (b0, b1) = split(blocks, tid, nt);
    ((b0 * align).min(n), (b1 * align).min(n))
}

#[inline]
pub fn f32p(addr: u32) -> *mut f32 {
    addr as usize as *mut f32
}

#[inline]
pub fn i32p(addr: u32) -> *mut i32 {
    addr as usize as *mut i32
}

use core::arch::wasm32::*;

/// exp on four lanes: 2^n * p(r) with x = n*ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial
/// (relative error < 2e-7); inputs are clamped to [-87.3, 88.7] (so exp(-inf) ~ 1e-38, not 0).
#[inline(always)]
pub fn exp4(x: v128) -> v128 {
    let x = f32x4_min(f32x4_max(x, f32x4_splat(-87.3)), f32x4_splat(88.7));
    let n = f32x4_nearest(f32x4_mul(x, f32x4_splat(core::f32::consts::LOG2_E)));
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693_145_75)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(1.428_606_8e-6)));
    let mut p = f32x4_splat(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let e = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(p, e)
}

/// Horizontal sum and max of four lanes.
#[inline(always)]
pub fn hsum(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
        + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
}

#[inline(always)]
pub fn hmax(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v)
        .max(f32x4_extract_lane::<1>(v))
        .max(f32x4_extract_lane::<2>(v).max(f32x4_extract_lane::<3>(v)))
}

/// In place: row[j] = exp(row[j] - mx) for j < n (reading src), returns the sum.
#[inline(always)]
pub unsafe fn exp_shift_sum(src: *const f32, dst: *mut f32, n: usize, mx: f32) -> f32 {
    let vm = f32x4_splat(mx);
    let mut acc = f32x4_splat(0.0);
    let mut j = 0;
    while j + 4 <= n {
        let e = exp4(f32x4_sub(v128_load(src.add(j) as *const v128), vm));
        v128_store(dst.add(j) as *mut v128, e);
        acc = f32x4_add(acc, e);
        j += 4;
    }
    let mut s = hsum(acc);
    while j < n {
        let e = (*src.add(j) - mx).exp();
        *dst.add(j) = e;
        s += e;
        j += 1;
    }
    s
}

/// Max of src[0..n) (NEG_INFINITY when empty).
#[inline(always)]
pub unsafe fn row_max(src: *const f32, n: usize) -> f32 {
    let mut vm = f32x4_splat(f32::NEG_INFINITY);
    let mut j = 0;
    while j + 4 <= n {
        vm = f32x4_max(vm, v128_load(src.add(j) as *const v128));
        j += 4;
    }
    let mut m = hmax(vm);
    while j < n {
        m = m.max(*src.add(j));
        j += 1;
    }
    m
}

/// dst[j] *= s for j < n.
#[inline(always)]
pub unsafe fn scale_row(dst: *mut f32, n: usize, s: f32) {
    let vs = f32x4_splat(s);
    let mut j = 0;
    while j + 4 <= n {
        v128_store(dst.add(j) as *mut v128, f32x4_mul(v128_load(dst.add(j) as *const v128), vs));
        j += 4;
    }
    while j < n {
        *dst.add(j) *= s;
        j += 1;
    }
}

/// Address of the shared work counter (an i32 in the pool's control block, zeroed by the pool
/// before every dispatch); set once by the TS loader.
static mut WORK_COUNTER: u32 = 0;

/// Tells the kernels where the pool's work counter lives.
#[no_mangle]
pub unsafe extern "C" fn set_work_counter(addr: u32) {
    WORK_COUNTER = addr;
}

/// Claims the next work item of the current dispatch (dynamic scheduling: a thread that the OS
/// delays simply takes fewer items, so a busy machine does not stall the whole kernel).
#[inline]
pub fn next_item() -> usize {
    use core::sync::atomic::{AtomicU32, Ordering};
    unsafe { (*(WORK_COUNTER as usize as *const AtomicU32)).fetch_add(1, Ordering::Relaxed) as usize }
}
