//! Image augmentation kernels (single-threaded, WASM SIMD128): bilinear crop+resize from
//! interleaved uint8 HWC into planar f32 CHW in [0, 1], colour jitter ops with torchvision's
//! float semantics, ImageNet-style normalization, and an antialiased (triangle filter) uint8
//! resize used to pack images into shards. Parallelism comes from several instances (Workers).

#![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]

use core::arch::wasm32::*;
use std::alloc::{alloc as sys_alloc, dealloc as sys_dealloc, Layout};

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// Allocates `bytes` (16-byte aligned); returns 0 on failure.
#[no_mangle]
pub extern "C" fn aug_alloc(bytes: usize) -> *mut u8 {
    match Layout::from_size_align(bytes.max(16), 16) {
        Ok(l) => unsafe { sys_alloc(l) },
        Err(_) => core::ptr::null_mut(),
    }
}

/// Frees a block from `aug_alloc` of the same size.
#[no_mangle]
pub unsafe extern "C" fn aug_free(ptr: *mut u8, bytes: usize) {
    if !ptr.is_null() {
        sys_dealloc(ptr, Layout::from_size_align_unchecked(bytes.max(16), 16));
    }
}

// ---------------------------------------------------------------------------------------------
// Bilinear crop + resize (align_corners = false, as torch.nn.functional.interpolate)
// ---------------------------------------------------------------------------------------------

/// Source index pair and weights for one output coordinate.
struct Tap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

/// A horizontal tap with offsets into an interleaved row and splatted weights.
struct HTap {
    w0: v128,
    w1: v128,
    o0: u32,
    o1: u32,
}

/// Taps for `out` output coordinates of a box of `len` source pixels resized to `full`,
/// starting at output offset `off` (a window of the resized box).
fn taps(len: usize, full: usize, off: usize, out: usize) -> Vec<Tap> {
    let scale = len as f32 / full as f32;
    let mut v = Vec::with_capacity(out);
    for x in 0..out {
        let mut s = ((x + off) as f32 + 0.5) * scale - 0.5;
        if s < 0.0 {
            s = 0.0;
        }
        let i0 = (s as usize).min(len - 1);
        let i1 = if i0 + 1 < len { i0 + 1 } else { i0 };
        let l1 = (s - i0 as f32).clamp(0.0, 1.0);
        v.push(Tap {
            i0,
            i1,
            w0: 1.0 - l1,
            w1: l1,
        });
    }
    v
}

/// Loads 16 bytes and widens them to four f32x4.
#[inline(always)]
unsafe fn u8x16_to_f32(p: *const u8) -> [v128; 4] {
    let v = v128_load(p as *const v128);
    let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
    [
        f32x4_convert_u32x4(u32x4_extend_low_u16x8(lo)),
        f32x4_convert_u32x4(u32x4_extend_high_u16x8(lo)),
        f32x4_convert_u32x4(u32x4_extend_low_u16x8(hi)),
        f32x4_convert_u32x4(u32x4_extend_high_u16x8(hi)),
    ]
}

/// Resamples the box (bx, by, bw, bh) of an interleaved RGB uint8 image (sw × sh) as if resized
/// to full_w × full_h, and writes the window starting at (off_x, off_y) of size out_w × out_h as
/// planar f32 [3, out_h, out_w] scaled to [0, 1]. `flip` mirrors the output horizontally.
#[no_mangle]
pub unsafe extern "C" fn aug_resample(
    src: *const u8,
    sw: usize,
    _sh: usize,
    bx: usize,
    by: usize,
    bw: usize,
    bh: usize,
    full_w: usize,
    full_h: usize,
    off_x: usize,
    off_y: usize,
    out_w: usize,
    out_h: usize,
    flip: u32,
    dst: *mut f32,
) {
    let mut tx = taps(bw, full_w, off_x, out_w);
    if flip != 0 {
        tx.reverse();
    }
    let ty = taps(bh, full_h, off_y, out_h);
    let hx: Vec<HTap> = tx
        .iter()
        .map(|t| HTap {
            w0: f32x4_splat(t.w0),
            w1: f32x4_splat(t.w1),
            o0: (t.i0 * 3) as u32,
            o1: (t.i1 * 3) as u32,
        })
        .collect();
    let row_len = bw * 3;
    // One vertically interpolated source row, interleaved RGB, already scaled by 1/255.
    // [bw*3 (+ pad)]
    let mut tmp: Vec<f32> = vec![0.0; row_len + 16];
    let plane = out_w * out_h;
    let inv = 1.0f32 / 255.0;
    for (y, t) in ty.iter().enumerate() {
        let r0 = src.add(((by + t.i0) * sw + bx) * 3);
        let r1 = src.add(((by + t.i1) * sw + bx) * 3);
        let a = t.w0 * inv;
        let b = t.w1 * inv;
        let va = f32x4_splat(a);
        let vb = f32x4_splat(b);
        let tp = tmp.as_mut_ptr();
        let mut k = 0;
        if t.w1 == 0.0 {
            while k + 16 <= row_len {
                let x = u8x16_to_f32(r0.add(k));
                let q = tp.add(k) as *mut v128;
                for j in 0..4 {
                    v128_store(q.add(j), f32x4_mul(x[j], va));
                }
                k += 16;
            }
        } else {
            while k + 16 <= row_len {
                let x0 = u8x16_to_f32(r0.add(k));
                let x1 = u8x16_to_f32(r1.add(k));
                let q = tp.add(k) as *mut v128;
                for j in 0..4 {
                    v128_store(
                        q.add(j),
                        f32x4_add(f32x4_mul(x0[j], va), f32x4_mul(x1[j], vb)),
                    );
                }
                k += 16;
            }
        }
        while k < row_len {
            *tp.add(k) = *r0.add(k) as f32 * a + *r1.add(k) as f32 * b;
            k += 1;
        }
        // Horizontal taps into the three planes.
        let o = y * out_w;
        let dr = dst.add(o);
        let dg = dst.add(plane + o);
        let db = dst.add(2 * plane + o);
        for (x, t) in hx.iter().enumerate() {
            // One RGB(+next R) vector per tap; tmp is padded so the 4th lane is readable.
            let a = v128_load(tp.add(t.o0 as usize) as *const v128);
            let b = v128_load(tp.add(t.o1 as usize) as *const v128);
            let v = f32x4_add(f32x4_mul(a, t.w0), f32x4_mul(b, t.w1));
            *dr.add(x) = f32x4_extract_lane::<0>(v);
            *dg.add(x) = f32x4_extract_lane::<1>(v);
            *db.add(x) = f32x4_extract_lane::<2>(v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Colour jitter on planar f32 [3, n] in [0, 1] (torchvision.transforms.functional, float path)
// ---------------------------------------------------------------------------------------------

// pmin/pmax (one x86 instruction each) instead of min/max (NaN-propagating, several): inputs
// here are never NaN.
#[inline(always)]
fn clamp01(x: v128) -> v128 {
    f32x4_pmin(f32x4_pmax(x, f32x4_splat(0.0)), f32x4_splat(1.0))
}

#[inline(always)]
fn gray(r: v128, g: v128, b: v128) -> v128 {
    // 0.2989 r + 0.587 g + 0.114 b, in torchvision's order.
    f32x4_add(
        f32x4_add(
            f32x4_mul(f32x4_splat(0.2989), r),
            f32x4_mul(f32x4_splat(0.587), g),
        ),
        f32x4_mul(f32x4_splat(0.114), b),
    )
}

#[inline(always)]
fn gray1(r: f32, g: f32, b: f32) -> f32 {
    0.2989 * r + 0.587 * g + 0.114 * b
}

/// Pixels per chunk of the fused colour pass (three planes of it stay in L1).
const CHUNK: usize = 1024;

/// The three planes of `len` pixels starting at pixel `at` of planar [3, n].
#[derive(Clone, Copy)]
struct Planes {
    r: *mut f32,
    g: *mut f32,
    b: *mut f32,
    len: usize,
}

impl Planes {
    unsafe fn of(buf: *mut f32, n: usize, at: usize, len: usize) -> Planes {
        Planes {
            r: buf.add(at),
            g: buf.add(n + at),
            b: buf.add(2 * n + at),
            len,
        }
    }
}

/// Applies `f4` to every 4 pixels of `p` (the tail through a zero-padded copy).
#[inline(always)]
unsafe fn map_pixels<F: Fn(v128, v128, v128) -> (v128, v128, v128)>(p: Planes, f4: F) {
    let mut i = 0;
    while i + 4 <= p.len {
        let (qr, qg, qb) = (
            p.r.add(i) as *mut v128,
            p.g.add(i) as *mut v128,
            p.b.add(i) as *mut v128,
        );
        let (r, g, b) = f4(v128_load(qr), v128_load(qg), v128_load(qb));
        v128_store(qr, r);
        v128_store(qg, g);
        v128_store(qb, b);
        i += 4;
    }
    if i < p.len {
        let k = p.len - i;
        let mut t = [[0.0f32; 4]; 3];
        for j in 0..k {
            t[0][j] = *p.r.add(i + j);
            t[1][j] = *p.g.add(i + j);
            t[2][j] = *p.b.add(i + j);
        }
        let (r, g, b) = f4(
            v128_load(t[0].as_ptr() as *const v128),
            v128_load(t[1].as_ptr() as *const v128),
            v128_load(t[2].as_ptr() as *const v128),
        );
        v128_store(t[0].as_mut_ptr() as *mut v128, r);
        v128_store(t[1].as_mut_ptr() as *mut v128, g);
        v128_store(t[2].as_mut_ptr() as *mut v128, b);
        for j in 0..k {
            *p.r.add(i + j) = t[0][j];
            *p.g.add(i + j) = t[1][j];
            *p.b.add(i + j) = t[2][j];
        }
    }
}

/// x = clamp(f·x).
unsafe fn brightness_p(p: Planes, f: f32) {
    let vf = f32x4_splat(f);
    map_pixels(p, |r, g, b| {
        (
            clamp01(f32x4_mul(r, vf)),
            clamp01(f32x4_mul(g, vf)),
            clamp01(f32x4_mul(b, vf)),
        )
    });
}

/// x = clamp(f·x + c) with c = (1 − f)·mean(gray).
unsafe fn contrast_p(p: Planes, f: f32, c: f32) {
    let (vf, vc) = (f32x4_splat(f), f32x4_splat(c));
    map_pixels(p, |r, g, b| {
        (
            clamp01(f32x4_add(f32x4_mul(r, vf), vc)),
            clamp01(f32x4_add(f32x4_mul(g, vf), vc)),
            clamp01(f32x4_add(f32x4_mul(b, vf), vc)),
        )
    });
}

/// x = clamp(f·x + (1 − f)·gray(pixel)).
unsafe fn saturation_p(p: Planes, f: f32) {
    let (vf, vg) = (f32x4_splat(f), f32x4_splat(1.0 - f));
    map_pixels(p, |r, g, b| {
        let l = f32x4_mul(gray(r, g, b), vg);
        (
            clamp01(f32x4_add(f32x4_mul(r, vf), l)),
            clamp01(f32x4_add(f32x4_mul(g, vf), l)),
            clamp01(f32x4_add(f32x4_mul(b, vf), l)),
        )
    });
}

/// Hue rotation by h.
unsafe fn hue_p(p: Planes, h: f32) {
    let vh = f32x4_splat(h);
    map_pixels(p, |r, g, b| hue4(r, g, b, vh));
}

/// x = (x − mean[c]) · inv_std[c]; m = [mean0 mean1 mean2 inv0 inv1 inv2].
unsafe fn normalize_p(p: Planes, m: &[f32; 6]) {
    let (m0, m1, m2) = (f32x4_splat(m[0]), f32x4_splat(m[1]), f32x4_splat(m[2]));
    let (i0, i1, i2) = (f32x4_splat(m[3]), f32x4_splat(m[4]), f32x4_splat(m[5]));
    map_pixels(p, |r, g, b| {
        (
            f32x4_mul(f32x4_sub(r, m0), i0),
            f32x4_mul(f32x4_sub(g, m1), i1),
            f32x4_mul(f32x4_sub(b, m2), i2),
        )
    });
}

/// Sum of the grayscale values of `p` (f32 lanes, then f64).
unsafe fn gray_sum_p(p: Planes) -> f64 {
    let mut acc = f32x4_splat(0.0);
    let mut i = 0;
    while i + 4 <= p.len {
        let r = v128_load(p.r.add(i) as *const v128);
        let g = v128_load(p.g.add(i) as *const v128);
        let b = v128_load(p.b.add(i) as *const v128);
        acc = f32x4_add(acc, gray(r, g, b));
        i += 4;
    }
    let mut s = (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc)) as f64
        + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc)) as f64;
    while i < p.len {
        s += gray1(*p.r.add(i), *p.g.add(i), *p.b.add(i)) as f64;
        i += 1;
    }
    s
}

/// Mean of the grayscale image over planar [3, n], summed per CHUNK as the fused pass does.
unsafe fn gray_mean(buf: *mut f32, n: usize) -> f32 {
    let mut total = 0.0f64;
    let mut at = 0;
    while at < n {
        let len = CHUNK.min(n - at);
        total += gray_sum_p(Planes::of(buf, n, at, len));
        at += len;
    }
    (total / n as f64) as f32
}

/// Brightness: x = clamp(f·x) over planar [3, n].
#[no_mangle]
pub unsafe extern "C" fn aug_brightness(buf: *mut f32, n: usize, f: f32) {
    brightness_p(Planes::of(buf, n, 0, n), f);
}

/// Contrast: x = clamp(f·x + (1-f)·mean(gray)) over planar [3, n].
#[no_mangle]
pub unsafe extern "C" fn aug_contrast(buf: *mut f32, n: usize, f: f32) {
    let c = (1.0 - f) * gray_mean(buf, n);
    contrast_p(Planes::of(buf, n, 0, n), f, c);
}

/// Saturation: x = clamp(f·x + (1-f)·gray(pixel)) over planar [3, n].
#[no_mangle]
pub unsafe extern "C" fn aug_saturation(buf: *mut f32, n: usize, f: f32) {
    saturation_p(Planes::of(buf, n, 0, n), f);
}

/// Hue shift by `hue` (in [-0.5, 0.5]) over planar [3, n].
#[no_mangle]
pub unsafe extern "C" fn aug_hue(buf: *mut f32, n: usize, hue: f32) {
    hue_p(Planes::of(buf, n, 0, n), hue);
}

/// Per-channel normalization x = (x - mean[c]) / std[c] over planar [3, n].
#[no_mangle]
pub unsafe extern "C" fn aug_normalize(
    buf: *mut f32,
    n: usize,
    m0: f32,
    m1: f32,
    m2: f32,
    s0: f32,
    s1: f32,
    s2: f32,
) {
    let m = [m0, m1, m2, 1.0 / s0, 1.0 / s1, 1.0 / s2];
    normalize_p(Planes::of(buf, n, 0, n), &m);
}

#[inline(always)]
fn fract(x: v128) -> v128 {
    f32x4_sub(x, f32x4_floor(x))
}

/// Hue shift of 4 pixels: RGB → HSV, h = (h + hue) mod 1, HSV → RGB. Same maths as
/// torchvision's _rgb2hsv/_hsv2rgb, rearranged to two divisions and no table lookups: each
/// channel is v − v·s·clamp(min(k, 4 − k), 0, 1) with k = (n + 6h) mod 6, n = 5, 3, 1 for r, g, b.
#[inline(always)]
fn hue4(r: v128, g: v128, b: v128, hue: v128) -> (v128, v128, v128) {
    let one = f32x4_splat(1.0);
    let zero = f32x4_splat(0.0);
    let maxc = f32x4_pmax(f32x4_pmax(r, g), b);
    let minc = f32x4_pmin(f32x4_pmin(r, g), b);
    let eqc = f32x4_eq(maxc, minc);
    let cr = f32x4_sub(maxc, minc);
    let s = f32x4_div(cr, v128_bitselect(one, maxc, eqc));
    let inv = f32x4_div(one, v128_bitselect(one, cr, eqc));
    let is_r = f32x4_eq(maxc, r);
    let is_g = f32x4_eq(maxc, g);
    // 6h = (g−b)/cr if max is r; 2 + (b−r)/cr if g; 4 + (r−g)/cr otherwise (0 for grays).
    let num = v128_bitselect(
        f32x4_sub(g, b),
        v128_bitselect(f32x4_sub(b, r), f32x4_sub(r, g), is_g),
        is_r,
    );
    let base = v128_bitselect(
        zero,
        v128_bitselect(f32x4_splat(2.0), f32x4_splat(4.0), is_g),
        is_r,
    );
    let h6 = f32x4_add(base, f32x4_mul(num, inv)); // in [-1, 5]
    let h = fract(f32x4_add(
        f32x4_mul(h6, f32x4_splat(1.0 / 6.0)),
        f32x4_add(one, hue),
    ));
    let h6 = f32x4_mul(h, f32x4_splat(6.0)); // in [0, 6]
    let vs = f32x4_mul(maxc, s);
    let six = f32x4_splat(6.0);
    let chan = |n: f32| -> v128 {
        let k = f32x4_add(h6, f32x4_splat(n));
        let k = f32x4_sub(k, v128_and(f32x4_ge(k, six), six));
        let w = f32x4_pmin(
            f32x4_pmax(f32x4_pmin(k, f32x4_sub(f32x4_splat(4.0), k)), zero),
            one,
        );
        f32x4_sub(maxc, f32x4_mul(vs, w))
    };
    (chan(5.0), chan(3.0), chan(1.0))
}

/// Applies colour ops (0 brightness, 1 contrast with offset `c`, 2 saturation, 3 hue) to a chunk.
unsafe fn apply_ops(p: Planes, ops: &[u32], fs: &[f32; 4], c: f32) {
    for &op in ops {
        match op {
            0 => brightness_p(p, fs[0]),
            1 => contrast_p(p, fs[1], c),
            2 => saturation_p(p, fs[2]),
            _ => hue_p(p, fs[3]),
        }
    }
}

/// Colour jitter + normalization over planar [3, n], chunk by chunk (each chunk goes through
/// all ops while in L1): the `count` ops in `ops_ptr` (0 brightness, 1 contrast, 2 saturation,
/// 3 hue, applied in that order) with factors `factors_ptr[op]`, then (x − mean[c]) · inv_std[c]
/// with `norm_ptr` = [m0 m1 m2 inv0 inv1 inv2]. A contrast op splits the work in two sweeps:
/// the ops before it also sum the grayscale image for its mean.
#[no_mangle]
pub unsafe extern "C" fn aug_jitter_normalize(
    buf: *mut f32,
    n: usize,
    ops_ptr: *const u32,
    count: usize,
    factors_ptr: *const f32,
    norm_ptr: *const f32,
) {
    let ops = core::slice::from_raw_parts(ops_ptr, count.min(4));
    let mut fs = [0.0f32; 4];
    for (k, v) in fs.iter_mut().enumerate() {
        *v = *factors_ptr.add(k);
    }
    let mut norm = [0.0f32; 6];
    for (k, v) in norm.iter_mut().enumerate() {
        *v = *norm_ptr.add(k);
    }
    let chunks = |f: &mut dyn FnMut(Planes)| {
        let mut at = 0;
        while at < n {
            let len = CHUNK.min(n - at);
            f(Planes::of(buf, n, at, len));
            at += len;
        }
    };
    let split = ops.iter().position(|&o| o == 1).unwrap_or(ops.len());
    let (pre, post) = ops.split_at(split);
    let mut c = 0.0f32;
    if !post.is_empty() {
        let mut total = 0.0f64;
        chunks(&mut |p| {
            apply_ops(p, pre, &fs, 0.0);
            total += gray_sum_p(p);
        });
        c = (1.0 - fs[1]) * (total / n as f64) as f32;
    }
    let todo = if post.is_empty() { pre } else { post };
    chunks(&mut |p| {
        apply_ops(p, todo, &fs, c);
        normalize_p(p, &norm);
    });
}

// ---------------------------------------------------------------------------------------------
// Antialiased uint8 resize (triangle filter widened by the downscale factor, as PIL's BILINEAR)
// ---------------------------------------------------------------------------------------------

/// Per output coordinate: first source index and normalized weights.
fn aa_coeffs(inp: usize, out: usize) -> (Vec<usize>, Vec<usize>, Vec<f32>, usize) {
    let scale = inp as f64 / out as f64;
    let fs = if scale > 1.0 { scale } else { 1.0 };
    let support = fs; // triangle filter support 1, widened
    let ksize = support.ceil() as usize * 2 + 1;
    let mut starts = Vec::with_capacity(out);
    let mut counts = Vec::with_capacity(out);
    let mut w = vec![0.0f32; out * ksize];
    for x in 0..out {
        let center = (x as f64 + 0.5) * scale;
        let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
        let hi = ((center + support + 0.5).floor() as usize).min(inp);
        let n = (hi - lo).min(ksize);
        let mut ws = vec![0.0f64; n];
        let mut total = 0.0;
        for k in 0..n {
            let d = ((k + lo) as f64 - center + 0.5) / fs;
            let v = (1.0 - d.abs()).max(0.0);
            ws[k] = v;
            total += v;
        }
        for k in 0..n {
            w[x * ksize + k] = if total > 0.0 {
                (ws[k] / total) as f32
            } else {
                0.0
            };
        }
        starts.push(lo);
        counts.push(n);
    }
    (starts, counts, w, ksize)
}

/// Resizes interleaved RGB uint8 sw × sh to dw × dh with an antialiased triangle filter
/// (horizontal pass, then vertical), rounding to nearest.
#[no_mangle]
pub unsafe extern "C" fn aug_resize_u8(
    src: *const u8,
    sw: usize,
    sh: usize,
    dst: *mut u8,
    dw: usize,
    dh: usize,
) {
    let (xs, xc, xw, xk) = aa_coeffs(sw, dw);
    let (ys, yc, yw, yk) = aa_coeffs(sh, dh);
    // Horizontal pass over the source rows the vertical pass needs: [sh, dw*3].
    let mut mid = vec![0.0f32; sh * dw * 3];
    for y in 0..sh {
        let row = src.add(y * sw * 3);
        let m = mid.as_mut_ptr().add(y * dw * 3);
        for x in 0..dw {
            let (s0, n) = (xs[x], xc[x]);
            let w = &xw[x * xk..x * xk + n];
            let (mut r, mut g, mut b) = (0.0f32, 0.0f32, 0.0f32);
            for k in 0..n {
                let p = row.add((s0 + k) * 3);
                r += w[k] * *p as f32;
                g += w[k] * *p.add(1) as f32;
                b += w[k] * *p.add(2) as f32;
            }
            *m.add(x * 3) = r;
            *m.add(x * 3 + 1) = g;
            *m.add(x * 3 + 2) = b;
        }
    }
    let row_len = dw * 3;
    let mut acc = vec![0.0f32; row_len + 4];
    for y in 0..dh {
        let (s0, n) = (ys[y], yc[y]);
        let w = &yw[y * yk..y * yk + n];
        for v in acc.iter_mut() {
            *v = 0.0;
        }
        let ap = acc.as_mut_ptr();
        for k in 0..n {
            let m = mid.as_ptr().add((s0 + k) * row_len);
            let vw = f32x4_splat(w[k]);
            let mut i = 0;
            while i + 4 <= row_len {
                let q = ap.add(i) as *mut v128;
                let x = v128_load(m.add(i) as *const v128);
                v128_store(q, f32x4_add(v128_load(q), f32x4_mul(x, vw)));
                i += 4;
            }
            while i < row_len {
                *ap.add(i) += w[k] * *m.add(i);
                i += 1;
            }
        }
        let d = dst.add(y * row_len);
        for i in 0..row_len {
            let v = (*ap.add(i) + 0.5).floor().clamp(0.0, 255.0);
            *d.add(i) = v as u8;
        }
    }
}
