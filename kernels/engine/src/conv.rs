//! GEMM-based 2-D convolution (NCHW): im2col + packed GEMM for the forward pass and the filter
//! gradient, GEMM with the transposed filter + col2im for the data gradient. 1x1 stride-1 pad-0
//! convolutions skip im2col (the image already is the column matrix).

use crate::gemm::{gemm_core, gemm_st, thread_tile, Mat, NR, WS_FLOATS};
use core::arch::wasm32::*;
use crate::util::{f32p, next_item, split};

/// Convolution geometry, as passed from TS.
#[derive(Clone, Copy)]
pub struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    #[allow(clippy::too_many_arguments)]
    fn new(c: u32, h: u32, w: u32, o: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32) -> Self {
        Geom {
            c: c as usize,
            h: h as usize,
            w: w as usize,
            o: o as usize,
            kh: kh as usize,
            kw: kw as usize,
            stride: s as usize,
            pad: p as usize,
            oh: oh as usize,
            ow: ow as usize,
        }
    }
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
    /// Valid output columns [lo, hi) for kernel column `kx` (input column in range).
    #[inline]
    fn ow_range(&self, kx: usize) -> (usize, usize) {
        let s = self.stride;
        // iw = ow*s + kx - pad must be in [0, w)
        let lo = if kx >= self.pad { 0 } else { (self.pad - kx + s - 1) / s };
        let lim = self.w + self.pad; // ow*s + kx < lim
        let hi = if lim > kx { ((lim - kx - 1) / s + 1).min(self.ow) } else { 0 };
        (lo.min(hi), hi)
    }
}

/// col[r, (oy, ox)] for rows r in [r0, r1) of one image x [C, H, W]; row r of col starts at
/// `col + r * row_stride` (OH*OW for one image's column matrix; N*OH*OW when the columns of a
/// whole batch sit side by side and `col` points at this image's first column).
unsafe fn im2col_rows(x: *const f32, col: *mut f32, g: &Geom, r0: usize, r1: usize, row_stride: usize) {
    for r in r0..r1 {
        let c = r / (g.kh * g.kw);
        let ky = (r / g.kw) % g.kh;
        let kx = r % g.kw;
        let (lo, hi) = g.ow_range(kx);
        let xc = x.add(c * g.h * g.w);
        let dst = col.add(r * row_stride);
        for oy in 0..g.oh {
            let d = dst.add(oy * g.ow);
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.h as isize {
                for ox in 0..g.ow {
                    *d.add(ox) = 0.0;
                }
                continue;
            }
            let row = xc.add(iy as usize * g.w);
            for ox in 0..lo {
                *d.add(ox) = 0.0;
            }
            if g.stride == 1 {
                let src = row.add(lo + kx - g.pad);
                core::ptr::copy_nonoverlapping(src, d.add(lo), hi - lo);
            } else {
                for ox in lo..hi {
                    *d.add(ox) = *row.add(ox * g.stride + kx - g.pad);
                }
            }
            for ox in hi..g.ow {
                *d.add(ox) = 0.0;
            }
        }
    }
}

/// dx[c] += scatter of col rows belonging to channels [c0, c1); dx is one image [C, H, W],
/// already zeroed by the caller; row r of col starts at `col + r * row_stride`.
unsafe fn col2im_channels(col: *const f32, dx: *mut f32, g: &Geom, c0: usize, c1: usize, row_stride: usize) {
    for c in c0..c1 {
        let dxc = dx.add(c * g.h * g.w);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let (lo, hi) = g.ow_range(kx);
                let src = col.add(r * row_stride);
                for oy in 0..g.oh {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let row = dxc.add(iy as usize * g.w);
                    let s = src.add(oy * g.ow);
                    for ox in lo..hi {
                        *row.add(ox * g.stride + kx - g.pad) += *s.add(ox);
                    }
                }
            }
        }
    }
}

/// Packs rows [p0, p0+kc) x cols [j0, j0+nc) of the (virtual) im2col matrix of image `x`
/// [C, H, W] into NR-column panels, reading the image directly (implicit im2col).
unsafe fn pack_b_im2col(x: *const f32, g: &Geom, p0: usize, j0: usize, kc: usize, nc: usize, dst: *mut f32) {
    let ohw = g.ohw();
    // Row p's tap (c, ky, kx): its image offset c*H*W + ky*W + kx, and (ky, kx) (kc <= KC).
    let mut tap = [0u32; crate::gemm::KC];
    let mut kyx = [(0u16, 0u16); crate::gemm::KC];
    {
        let (mut c, mut ky, mut kx) = (p0 / (g.kh * g.kw), (p0 / g.kw) % g.kh, p0 % g.kw);
        for p in 0..kc {
            tap[p] = (c * g.h * g.w + ky * g.w + kx) as u32;
            kyx[p] = (ky as u16, kx as u16);
            kx += 1;
            if kx == g.kw {
                kx = 0;
                ky += 1;
                if ky == g.kh {
                    ky = 0;
                    c += 1;
                }
            }
        }
    }
    // Output position of the panel's first column, stepped without division.
    let (mut oy0, mut ox0) = (j0 / g.ow, j0 % g.ow);
    let mut d = dst;
    let mut jr = 0;
    while jr < nc {
        // Interior panel: NR outputs on one row (stride 1) whose every tap is inside the image.
        let interior = g.stride == 1
            && jr + NR <= nc
            && ox0 + NR <= g.ow
            && oy0 >= g.pad
            && oy0 + g.kh <= g.h + g.pad
            && ox0 >= g.pad
            && ox0 + NR + g.kw <= g.w + g.pad + 1;
        if interior {
            let base = x.add((oy0 - g.pad) * g.w + ox0 - g.pad);
            for p in 0..kc {
                let s = base.add(tap[p] as usize);
                let dp = d.add(p * NR);
                v128_store(dp as *mut v128, v128_load(s as *const v128));
                v128_store(dp.add(4) as *mut v128, v128_load(s.add(4) as *const v128));
            }
        } else if g.stride == 1 && jr + NR <= nc && ox0 + NR <= g.ow && j0 + jr + NR <= ohw {
            // NR outputs on one row: whole-vector copies for the taps inside the image.
            let (w, h, pad) = (g.w as isize, g.h as isize, g.pad as isize);
            let origin = (oy0 as isize - pad) * w + ox0 as isize - pad;
            for p in 0..kc {
                let dp = d.add(p * NR);
                let (ky, kx) = (kyx[p].0 as isize, kyx[p].1 as isize);
                let (iy, ix0) = (oy0 as isize + ky - pad, ox0 as isize + kx - pad);
                let s = x.wrapping_offset(origin + tap[p] as isize);
                if iy >= 0 && iy < h && ix0 >= 0 && ix0 + NR as isize <= w {
                    v128_store(dp as *mut v128, v128_load(s as *const v128));
                    v128_store(dp.add(4) as *mut v128, v128_load(s.add(4) as *const v128));
                } else {
                    for t in 0..NR {
                        let ix = ix0 + t as isize;
                        let inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        *dp.add(t) = if inside { *s.wrapping_offset(t as isize) } else { 0.0 };
                    }
                }
            }
        } else {
            // Output positions of this panel's columns (usize::MAX past the end).
            let mut oy = [usize::MAX; NR];
            let mut ox = [0usize; NR];
            let (mut y, mut xx) = (oy0, ox0);
            for t in 0..NR {
                if jr + t < nc && j0 + jr + t < ohw {
                    oy[t] = y;
                    ox[t] = xx;
                }
                xx += 1;
                if xx == g.ow {
                    xx = 0;
                    y += 1;
                }
            }
            for p in 0..kc {
                let dp = d.add(p * NR);
                let (ky, kx) = (kyx[p].0 as usize, kyx[p].1 as usize);
                let xc = x.add(tap[p] as usize - ky * g.w - kx); // channel c's plane
                for t in 0..NR {
                    let mut v = 0.0;
                    if oy[t] != usize::MAX {
                        let iy = (oy[t] * g.stride + ky) as isize - g.pad as isize;
                        let ix = (ox[t] * g.stride + kx) as isize - g.pad as isize;
                        if iy >= 0 && iy < g.h as isize && ix >= 0 && ix < g.w as isize {
                            v = *xc.add(iy as usize * g.w + ix as usize);
                        }
                    }
                    *dp.add(t) = v;
                }
            }
        }
        ox0 += NR;
        while ox0 >= g.ow {
            ox0 -= g.ow;
            oy0 += 1;
        }
        d = d.add(NR * kc);
        jr += NR;
    }
}

/// y_img[o, :] = W @ im2col(x_img) over output tile rows [m0, m1) x cols [n0, n1).
unsafe fn conv_fwd_tile(
    x: *const f32, w: *const f32, y: *mut f32, g: &Geom,
    m0: usize, m1: usize, n0: usize, n1: usize, ws: *mut f32,
) {
    let (ckk, ohw) = (g.ckk(), g.ohw());
    let wm = Mat { ptr: w.add(m0 * ckk), rs: ckk as isize, cs: 1 };
    let yt = y.add(m0 * ohw + n0);
    if g.is_pointwise() {
        let bm = Mat { ptr: x.add(n0), rs: ohw as isize, cs: 1 };
        gemm_st(m1 - m0, n1 - n0, ckk, 1.0, &wm, &bm, 0.0, yt, ohw, ws);
    } else {
        let pack = |p0: usize, j0: usize, kc: usize, nc: usize, dst: *mut f32| {
            pack_b_im2col(x, g, p0, n0 + j0, kc, nc, dst)
        };
        gemm_core(m1 - m0, n1 - n0, ckk, 1.0, &wm, &pack, 0.0, yt, ohw, ws);
    }
}

/// Forward of one image with its output split over all threads (for small batches).
#[no_mangle]
pub unsafe extern "C" fn conv2d_fwd_img(
    tid: u32, nt: u32, x: u32, w: u32, y: u32,
    c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
    ws: u32, ws_stride: u32,
) {
    let g = Geom::new(c, h, wd, o, kh, kw, s, p, oh, ow);
    let (m0, m1, n0, n1) = thread_tile(g.o, g.ohw(), tid as usize, nt as usize);
    if m0 < m1 && n0 < n1 {
        conv_fwd_tile(f32p(x), f32p(w), f32p(y), &g, m0, m1, n0, n1, f32p(ws + tid * ws_stride));
    }
}

unsafe fn add_bias(y: *mut f32, bias: *const f32, o: usize, hw: usize) {
    for oc in 0..o {
        let b = *bias.add(oc);
        let yp = y.add(oc * hw);
        for i in 0..hw {
            *yp.add(i) += b;
        }
    }
}

/// Floats of per-thread workspace the batch-parallel conv kernels need.
#[no_mangle]
pub extern "C" fn conv_ws_floats(c: u32, o: u32, kh: u32, kw: u32, oh: u32, ow: u32) -> u32 {
    let ckk = (c * kh * kw) as usize;
    (WS_FLOATS + ckk * (oh * ow) as usize + (o as usize) * ckk) as u32
}

/// Forward, batch-parallel: threads claim whole images. y [N, O, OH, OW].
#[no_mangle]
pub unsafe extern "C" fn conv2d_fwd_batch(
    tid: u32, nt: u32, x: u32, w: u32, bias: u32, y: u32, n: u32,
    c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
    ws: u32, ws_stride: u32,
) {
    let g = Geom::new(c, h, wd, o, kh, kw, s, p, oh, ow);
    let wsp = f32p(ws + tid * ws_stride);
    let (ohw, chw) = (g.ohw(), g.c * g.h * g.w);
    let _ = nt;
    loop {
        let img = next_item();
        if img >= n as usize {
            break;
        }
        let xi = f32p(x).add(img * chw);
        let yi = f32p(y).add(img * g.o * ohw);
        conv_fwd_tile(xi, f32p(w), yi, &g, 0, g.o, 0, ohw, wsp);
        if bias != 0 {
            add_bias(yi, f32p(bias), g.o, ohw);
        }
    }
}

/// im2col of one image, rows split over threads (for small batches: then a threaded gemm).
#[no_mangle]
pub unsafe extern "C" fn im2col(
    tid: u32, nt: u32, x: u32, col: u32,
    c: u32, h: u32, wd: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
) {
    let g = Geom::new(c, h, wd, 0, kh, kw, s, p, oh, ow);
    let (r0, r1) = split(g.ckk(), tid as usize, nt as usize);
    im2col_rows(f32p(x), f32p(col), &g, r0, r1, g.ohw());
}

/// col2im of one image into dx (overwritten), channels split over threads.
#[no_mangle]
pub unsafe extern "C" fn col2im(
    tid: u32, nt: u32, col: u32, dx: u32,
    c: u32, h: u32, wd: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
) {
    let g = Geom::new(c, h, wd, 0, kh, kw, s, p, oh, ow);
    let (c0, c1) = split(g.c, tid as usize, nt as usize);
    let hw = g.h * g.w;
    let d = f32p(dx);
    for i in c0 * hw..c1 * hw {
        *d.add(i) = 0.0;
    }
    col2im_channels(f32p(col), d, &g, c0, c1, g.ohw());
}

/// y[n, o, :] += bias[o]; (n, o) planes split over threads.
#[no_mangle]
pub unsafe extern "C" fn bias_add_planes(tid: u32, nt: u32, y: u32, bias: u32, n: u32, o: u32, hw: u32) {
    let (p0, p1) = split((n * o) as usize, tid as usize, nt as usize);
    let hw = hw as usize;
    for pl in p0..p1 {
        let b = *f32p(bias).add(pl % o as usize);
        let yp = f32p(y).add(pl * hw);
        for i in 0..hw {
            *yp.add(i) += b;
        }
    }
}

/// Data gradient, batch-parallel: dx[n] = col2im(W^T @ dy[n]).
#[no_mangle]
pub unsafe extern "C" fn conv2d_bwd_data_batch(
    tid: u32, nt: u32, dy: u32, w: u32, dx: u32, n: u32,
    c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
    ws: u32, ws_stride: u32,
) {
    let g = Geom::new(c, h, wd, o, kh, kw, s, p, oh, ow);
    let wsp = f32p(ws + tid * ws_stride);
    let col = wsp.add(WS_FLOATS);
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.c * g.h * g.w);
    // W^T: [CKK, O] view of W [O, CKK].
    let wt = Mat { ptr: f32p(w), rs: 1, cs: ckk as isize };
    let _ = nt;
    loop {
        let img = next_item();
        if img >= n as usize {
            break;
        }
        let dyi = Mat { ptr: f32p(dy).add(img * g.o * ohw), rs: ohw as isize, cs: 1 };
        let dxi = f32p(dx).add(img * chw);
        if g.is_pointwise() {
            gemm_st(ckk, ohw, g.o, 1.0, &wt, &dyi, 0.0, dxi, ohw, wsp);
        } else {
            gemm_st(ckk, ohw, g.o, 1.0, &wt, &dyi, 0.0, col, ohw, wsp);
            for i in 0..chw {
                *dxi.add(i) = 0.0;
            }
            col2im_channels(col, dxi, &g, 0, g.c, ohw);
        }
    }
}

/// Filter gradient, batch-parallel: each thread sums dy[n] @ col[n]^T over a fixed, contiguous
/// range of images into its own partial [O, CKK] in the workspace (after the col buffer);
/// `reduce_partials` adds them up in thread order. The ranges are static (not claimed), so the
/// sum is bit-identical from run to run for a given thread count — exact resume relies on it.
#[no_mangle]
pub unsafe extern "C" fn conv2d_bwd_filter_batch(
    tid: u32, nt: u32, x: u32, dy: u32, n: u32,
    c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
    ws: u32, ws_stride: u32,
) {
    let g = Geom::new(c, h, wd, o, kh, kw, s, p, oh, ow);
    let wsp = f32p(ws + tid * ws_stride);
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.c * g.h * g.w);
    let col = wsp.add(WS_FLOATS);
    let part = col.add(ckk * ohw);
    let (i0, i1) = split(n as usize, tid as usize, nt as usize);
    let mut first = true;
    for img in i0..i1 {
        let xi = f32p(x).add(img * chw);
        let src = if g.is_pointwise() {
            xi as *const f32
        } else {
            im2col_rows(xi, col, &g, 0, ckk, ohw);
            col as *const f32
        };
        let dyi = Mat { ptr: f32p(dy).add(img * g.o * ohw), rs: ohw as isize, cs: 1 };
        let colt = Mat { ptr: src, rs: 1, cs: ohw as isize }; // [OHW, CKK] view
        let beta = if first { 0.0 } else { 1.0 };
        first = false;
        gemm_st(g.o, ckk, ohw, 1.0, &dyi, &colt, beta, part, ckk, wsp);
    }
    if first {
        for i in 0..g.o * ckk {
            *part.add(i) = 0.0;
        }
    }
}

/// dst[i] (+)= sum_t partial_t[i] for i in [0, n); partial t lives at base + t*stride bytes
/// (+ `offset_floats`). Elements split over threads.
#[no_mangle]
pub unsafe extern "C" fn reduce_partials(
    tid: u32, nt: u32, dst: u32, base: u32, stride: u32, offset_floats: u32, count: u32, n: u32,
    accumulate: u32,
) {
    let (i0, i1) = split(n as usize, tid as usize, nt as usize);
    let d = f32p(dst);
    for i in i0..i1 {
        let mut s = if accumulate != 0 { *d.add(i) } else { 0.0 };
        for t in 0..count {
            s += *f32p(base + t * stride).add(offset_floats as usize + i);
        }
        *d.add(i) = s;
    }
}

/// w2[c, o, KH-1-ky, KW-1-kx] = w[o, c, ky, kx]: the filter of the transposed convolution, so a
/// stride-1 data gradient is a plain forward convolution of dy (implicit im2col, no col2im).
#[no_mangle]
pub unsafe extern "C" fn flip_weights(tid: u32, nt: u32, w: u32, w2: u32, o: u32, c: u32, kh: u32, kw: u32) {
    let (o, c, kh, kw) = (o as usize, c as usize, kh as usize, kw as usize);
    let (i0, i1) = split(o * c, tid as usize, nt as usize);
    for i in i0..i1 {
        let (oc, ic) = (i / c, i % c);
        let src = f32p(w).add(i * kh * kw);
        let dst = f32p(w2).add((ic * o + oc) * kh * kw);
        for t in 0..kh * kw {
            *dst.add(kh * kw - 1 - t) = *src.add(t);
        }
    }
}

// ---- Batch-column convolution: for small output planes (deep layers at low resolution) the
// columns of all images sit side by side in one [CKK, N*OH*OW] matrix, so each pass is a single
// large GEMM instead of N tiny ones that each repack the whole filter.

/// col [CKK, N*OHW] of the batch x [N, C, H, W]; rows split over threads.
#[no_mangle]
pub unsafe extern "C" fn im2col_batch(
    tid: u32, nt: u32, x: u32, col: u32, n: u32,
    c: u32, h: u32, wd: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
) {
    let g = Geom::new(c, h, wd, 0, kh, kw, s, p, oh, ow);
    let (ohw, chw, n) = (g.ohw(), g.c * g.h * g.w, n as usize);
    let (r0, r1) = split(g.ckk(), tid as usize, nt as usize);
    for img in 0..n {
        im2col_rows(f32p(x).add(img * chw), f32p(col).add(img * ohw), &g, r0, r1, n * ohw);
    }
}

/// dx [N, C, H, W] (overwritten) = col2im of col [CKK, N*OHW]; (image, channel) planes split
/// over threads.
#[no_mangle]
pub unsafe extern "C" fn col2im_batch(
    tid: u32, nt: u32, col: u32, dx: u32, n: u32,
    c: u32, h: u32, wd: u32, kh: u32, kw: u32, s: u32, p: u32, oh: u32, ow: u32,
) {
    let g = Geom::new(c, h, wd, 0, kh, kw, s, p, oh, ow);
    let (ohw, hw, n) = (g.ohw(), g.h * g.w, n as usize);
    let (p0, p1) = split(n * g.c, tid as usize, nt as usize);
    for pl in p0..p1 {
        let (img, ch) = (pl / g.c, pl % g.c);
        let d = f32p(dx).add(img * g.c * hw);
        for i in ch * hw..(ch + 1) * hw {
            *d.add(i) = 0.0;
        }
        col2im_channels(f32p(col).add(img * ohw), d, &g, ch, ch + 1, n * ohw);
    }
}

/// dst [B, A, L] = src [A, B, L] with the two outer axes swapped, plus bias[a] when `bias` is
/// not 0; destination rows (b, a) split over threads.
#[no_mangle]
pub unsafe extern "C" fn swap_outer(
    tid: u32, nt: u32, src: u32, dst: u32, a: u32, b: u32, l: u32, bias: u32,
) {
    let (a, b, l) = (a as usize, b as usize, l as usize);
    let (r0, r1) = split(a * b, tid as usize, nt as usize);
    for r in r0..r1 {
        let (bi, ai) = (r / a, r % a);
        let s = f32p(src).add((ai * b + bi) * l);
        let d = f32p(dst).add(r * l);
        if bias != 0 {
            let bv = *f32p(bias).add(ai);
            for i in 0..l {
                *d.add(i) = *s.add(i) + bv;
            }
        } else {
            core::ptr::copy_nonoverlapping(s, d, l);
        }
    }
}
