//! Elementwise kernels: unary activations (+ backward), strided/broadcast binary ops, strided
//! copies, axpby, reductions, and the optimizer updates. Work is split over threads by element
//! ranges aligned to SIMD width.

use crate::util::{f32p, split, split_aligned};
use core::arch::wasm32::*;

/// erf(x) via the Chebyshev-fitted erfc of Numerical Recipes (fractional error < 1.2e-7), in f64.
#[inline]
pub fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * poly.exp();
    (if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }) as f32
}

const INV_SQRT2: f32 = core::f32::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f32 = 0.398_942_28;

#[inline]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn unary_scalar(op: u32, x: f32) -> f32 {
    match op {
        0 => if x > 0.0 { x } else { 0.0 },
        1 => 0.5 * x * (1.0 + erf(x * INV_SQRT2)),
        2 => x.exp(),
        3 => x.ln(),
        4 => -x,
        5 => x.sqrt(),
        6 => 1.0 / x.sqrt(),
        7 => x.tanh(),
        8 => sigmoid(x),
        9 => x.abs(),
        10 => x * x,
        _ => f32::NAN,
    }
}

/// y[i] = op(x[i]); ops: relu gelu exp log neg sqrt rsqrt tanh sigmoid abs square (0..10).
#[no_mangle]
pub unsafe extern "C" fn unary(tid: u32, nt: u32, op: u32, x: u32, y: u32, n: u32) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let (xp, yp) = (f32p(x), f32p(y));
    let mut i = i0;
    if op == 0 || op == 4 || op == 9 || op == 10 {
        let z = f32x4_splat(0.0);
        while i + 4 <= i1 {
            let v = v128_load(xp.add(i) as *const v128);
            let r = match op {
                0 => f32x4_pmax(v, z),
                4 => f32x4_neg(v),
                9 => f32x4_abs(v),
                _ => f32x4_mul(v, v),
            };
            v128_store(yp.add(i) as *mut v128, r);
            i += 4;
        }
    }
    while i < i1 {
        *yp.add(i) = unary_scalar(op, *xp.add(i));
        i += 1;
    }
}

/// dx[i] = dy[i] * f'(x[i]) for relu (0), gelu (1), tanh (7), sigmoid (8).
#[no_mangle]
pub unsafe extern "C" fn unary_bwd(tid: u32, nt: u32, op: u32, x: u32, dy: u32, dx: u32, n: u32) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let (xp, gp, dp) = (f32p(x), f32p(dy), f32p(dx));
    for i in i0..i1 {
        let v = *xp.add(i);
        let d = match op {
            0 => if v > 0.0 { 1.0 } else { 0.0 },
            1 => {
                let cdf = 0.5 * (1.0 + erf(v * INV_SQRT2));
                cdf + v * INV_SQRT_2PI * (-0.5 * v * v).exp()
            }
            7 => {
                let t = v.tanh();
                1.0 - t * t
            }
            8 => {
                let s = sigmoid(v);
                s * (1.0 - s)
            }
            _ => f32::NAN,
        };
        *dp.add(i) = *gp.add(i) * d;
    }
}

#[inline(always)]
fn bin_scalar(op: u32, a: f32, b: f32) -> f32 {
    match op {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        3 => a / b,
        4 => if a > b || a.is_nan() { a } else { b },
        _ => if a < b || a.is_nan() { a } else { b },
    }
}

#[inline(always)]
unsafe fn bin_vec(op: u32, a: v128, b: v128) -> v128 {
    match op {
        0 => f32x4_add(a, b),
        1 => f32x4_sub(a, b),
        2 => f32x4_mul(a, b),
        3 => f32x4_div(a, b),
        4 => f32x4_max(a, b),
        _ => f32x4_min(a, b),
    }
}

/// One innermost row: out[j] = a[j*sa] op b[j*sb], SIMD when strides are 0/1.
#[inline(always)]
unsafe fn bin_row(op: u32, a: *const f32, sa: isize, b: *const f32, sb: isize, o: *mut f32, len: usize) {
    let mut j = 0;
    if sa == 1 && sb == 1 {
        while j + 4 <= len {
            let r = bin_vec(op, v128_load(a.add(j) as *const v128), v128_load(b.add(j) as *const v128));
            v128_store(o.add(j) as *mut v128, r);
            j += 4;
        }
    } else if sa == 1 && sb == 0 {
        let vb = f32x4_splat(*b);
        while j + 4 <= len {
            v128_store(o.add(j) as *mut v128, bin_vec(op, v128_load(a.add(j) as *const v128), vb));
            j += 4;
        }
    } else if sa == 0 && sb == 1 {
        let va = f32x4_splat(*a);
        while j + 4 <= len {
            v128_store(o.add(j) as *mut v128, bin_vec(op, va, v128_load(b.add(j) as *const v128)));
            j += 4;
        }
    }
    while j < len {
        *o.add(j) = bin_scalar(op, *a.offset(j as isize * sa), *b.offset(j as isize * sb));
        j += 1;
    }
}

/// Reads a strided-iteration descriptor: i32 [rank, shape[rank], sa[rank], sb[rank]].
unsafe fn desc(meta: u32) -> (usize, *const i32, *const i32, *const i32) {
    let m = meta as usize as *const i32;
    let rank = *m as usize;
    (rank, m.add(1), m.add(1 + rank), m.add(1 + 2 * rank))
}

/// out[i] = a[view_a(i)] op b[view_b(i)]; views coalesced by the caller (rank >= 1). Rows of the
/// last axis are split over threads. Pointers already include the view offsets.
#[no_mangle]
pub unsafe extern "C" fn binary(tid: u32, nt: u32, op: u32, a: u32, b: u32, out: u32, meta: u32) {
    let (rank, shape, sa, sb) = desc(meta);
    let len = *shape.add(rank - 1) as usize;
    let mut rows = 1usize;
    for d in 0..rank - 1 {
        rows *= *shape.add(d) as usize;
    }
    let (r0, r1) = split(rows, tid as usize, nt as usize);
    for r in r0..r1 {
        let (mut oa, mut ob, mut rem) = (0isize, 0isize, r);
        for d in (0..rank - 1).rev() {
            let n = *shape.add(d) as usize;
            let idx = (rem % n) as isize;
            rem /= n;
            oa += idx * *sa.add(d) as isize;
            ob += idx * *sb.add(d) as isize;
        }
        bin_row(
            op,
            f32p(a).offset(oa),
            *sa.add(rank - 1) as isize,
            f32p(b).offset(ob),
            *sb.add(rank - 1) as isize,
            f32p(out).add(r * len),
            len,
        );
    }
}

/// y[i] = x[view(i)] (contiguous y, f32 or i32); descriptor as `binary` with sb unused.
#[no_mangle]
pub unsafe extern "C" fn copy_strided(tid: u32, nt: u32, x: u32, y: u32, meta: u32) {
    let (rank, shape, sx, _) = desc(meta);
    let len = *shape.add(rank - 1) as usize;
    let inner = *sx.add(rank - 1) as isize;
    let mut rows = 1usize;
    for d in 0..rank - 1 {
        rows *= *shape.add(d) as usize;
    }
    let (r0, r1) = split(rows, tid as usize, nt as usize);
    for r in r0..r1 {
        let (mut ox, mut rem) = (0isize, r);
        for d in (0..rank - 1).rev() {
            let n = *shape.add(d) as usize;
            ox += (rem % n) as isize * *sx.add(d) as isize;
            rem /= n;
        }
        // Bit copies (u32), so i32 buffers go through the same kernel.
        let src = (x as usize as *const u32).offset(ox);
        let dst = (y as usize as *mut u32).add(r * len);
        if inner == 1 {
            core::ptr::copy(src, dst, len);
        } else {
            for j in 0..len {
                *dst.add(j) = *src.offset(j as isize * inner);
            }
        }
    }
}

/// y = alpha*x + beta*y (beta == 0 overwrites without reading y).
#[no_mangle]
pub unsafe extern "C" fn axpby(tid: u32, nt: u32, x: u32, y: u32, alpha: f32, beta: f32, n: u32) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let (xp, yp) = (f32p(x), f32p(y));
    let (va, vb) = (f32x4_splat(alpha), f32x4_splat(beta));
    let mut i = i0;
    while i + 4 <= i1 {
        let vx = f32x4_mul(va, v128_load(xp.add(i) as *const v128));
        let r = if beta == 0.0 {
            vx
        } else {
            f32x4_add(vx, f32x4_mul(vb, v128_load(yp.add(i) as *const v128)))
        };
        v128_store(yp.add(i) as *mut v128, r);
        i += 4;
    }
    while i < i1 {
        let v = alpha * *xp.add(i);
        *yp.add(i) = if beta == 0.0 { v } else { v + beta * *yp.add(i) };
        i += 1;
    }
}

/// y[o, i] (+)= sum_r x[o, r, i]; the (outer, inner) output is split over threads by outer
/// rows when outer >= nt, else by inner columns.
#[no_mangle]
pub unsafe extern "C" fn reduce_sum(
    tid: u32, nt: u32, x: u32, y: u32, outer: u32, reduce: u32, inner: u32, accumulate: u32,
) {
    let (outer, reduce, inner) = (outer as usize, reduce as usize, inner as usize);
    let (o0, o1, j0, j1) = if outer >= nt as usize {
        let (a, b) = split(outer, tid as usize, nt as usize);
        (a, b, 0, inner)
    } else {
        let (a, b) = split_aligned(inner, 4, tid as usize, nt as usize);
        (0, outer, a, b)
    };
    let (xp, yp) = (f32p(x), f32p(y));
    for o in o0..o1 {
        let xo = xp.add(o * reduce * inner);
        let yo = yp.add(o * inner);
        if inner == 1 {
            let mut acc = f32x4_splat(0.0);
            let mut r = 0;
            while r + 4 <= reduce {
                acc = f32x4_add(acc, v128_load(xo.add(r) as *const v128));
                r += 4;
            }
            let mut s = f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc)
                + f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc);
            while r < reduce {
                s += *xo.add(r);
                r += 1;
            }
            if j0 < j1 {
                *yo = if accumulate != 0 { *yo + s } else { s };
            }
            continue;
        }
        let mut j = j0;
        while j + 4 <= j1 {
            let mut acc = if accumulate != 0 { v128_load(yo.add(j) as *const v128) } else { f32x4_splat(0.0) };
            for r in 0..reduce {
                acc = f32x4_add(acc, v128_load(xo.add(r * inner + j) as *const v128));
            }
            v128_store(yo.add(j) as *mut v128, acc);
            j += 4;
        }
        while j < j1 {
            let mut s = if accumulate != 0 { *yo.add(j) } else { 0.0 };
            for r in 0..reduce {
                s += *xo.add(r * inner + j);
            }
            *yo.add(j) = s;
            j += 1;
        }
    }
}

/// Per-thread partial sum of squares of x[0..n) into partials[tid] (f64, byte address).
#[no_mangle]
pub unsafe extern "C" fn sum_squares_partial(tid: u32, nt: u32, x: u32, n: u32, partials: u32) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let xp = f32p(x);
    let mut total = 0f64;
    let mut i = i0;
    while i < i1 {
        // Blocks of 4096 in f32x4 lanes, folded into f64 to keep long sums accurate.
        let end = (i + 4096).min(i1);
        let mut acc = f32x4_splat(0.0);
        while i + 4 <= end {
            let v = v128_load(xp.add(i) as *const v128);
            acc = f32x4_add(acc, f32x4_mul(v, v));
            i += 4;
        }
        let mut s = (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc)) as f64
            + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc)) as f64;
        while i < end {
            let v = *xp.add(i);
            s += (v * v) as f64;
            i += 1;
        }
        total += s;
    }
    *((partials as usize + 8 * tid as usize) as *mut f64) = total;
}

/// x *= min(1, max_norm / (sqrt(sumsq[0]) + 1e-6)).
#[no_mangle]
pub unsafe extern "C" fn clip_by_norm(tid: u32, nt: u32, x: u32, n: u32, sumsq: u32, max_norm: f32) {
    let norm = (*f32p(sumsq)).sqrt();
    let scale = max_norm / (norm + 1e-6);
    if !(scale < 1.0) {
        return;
    }
    let (i0, i1) = split(n as usize, tid as usize, nt as usize);
    let xp = f32p(x);
    for i in i0..i1 {
        *xp.add(i) *= scale;
    }
}

/// PyTorch SGD (no dampening): d = g + wd*w; m = mom*m + d; w -= lr*m.
#[no_mangle]
pub unsafe extern "C" fn sgd_step(
    tid: u32, nt: u32, w: u32, g: u32, m: u32, n: u32, lr: f32, momentum: f32, wd: f32,
) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let (wp, gp, mp) = (f32p(w), f32p(g), f32p(m));
    for i in i0..i1 {
        let d = *gp.add(i) + wd * *wp.add(i);
        let mv = momentum * *mp.add(i) + d;
        *mp.add(i) = mv;
        *wp.add(i) -= lr * mv;
    }
}

/// slow += alpha*(fast - slow); fast = slow.
#[no_mangle]
pub unsafe extern "C" fn lookahead_sync(tid: u32, nt: u32, fast: u32, slow: u32, n: u32, alpha: f32) {
    let (i0, i1) = split_aligned(n as usize, 16, tid as usize, nt as usize);
    let (fp, sp) = (f32p(fast), f32p(slow));
    for i in i0..i1 {
        let s = *sp.add(i);
        let v = s + alpha * (*fp.add(i) - s);
        *sp.add(i) = v;
        *fp.add(i) = v;
    }
}

#[inline]
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846ca68b);
    x ^= x >> 16;
    x
}

/// mask[i] = uniform(seed, offset + i) >= p ? 1/(1-p) : 0 (same stream as engine/backend.ts).
#[no_mangle]
pub unsafe extern "C" fn dropout_mask(tid: u32, nt: u32, mask: u32, n: u32, p: f64, seed: u32, offset: u32) {
    let (i0, i1) = split(n as usize, tid as usize, nt as usize);
    let hs = hash32(seed);
    let keep = 1.0 / (1.0 - p);
    let mp = f32p(mask);
    for i in i0..i1 {
        let u = (hash32(hs ^ offset.wrapping_add(i as u32)) >> 8) as f64 / 16777216.0;
        *mp.add(i) = if u >= p { keep as f32 } else { 0.0 };
    }
}
