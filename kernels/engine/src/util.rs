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
