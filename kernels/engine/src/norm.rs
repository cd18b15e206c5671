//! Row softmax, layer norm, batch norm and max pooling (forward + backward). Rows / channels /
//! planes are split over threads; parameter gradients that sum over rows go to per-thread
//! partials that `reduce_partials` adds up.

use crate::util::{exp_shift_sum, f32p, i32p, row_max, scale_row, split};

/// y = softmax(x) per row of [rows, cols].
#[no_mangle]
pub unsafe extern "C" fn softmax(tid: u32, nt: u32, x: u32, y: u32, rows: u32, cols: u32) {
    let (r0, r1) = split(rows as usize, tid as usize, nt as usize);
    let cols = cols as usize;
    for r in r0..r1 {
        let xr = f32p(x).add(r * cols);
        let yr = f32p(y).add(r * cols);
        let mx = row_max(xr, cols);
        let s = exp_shift_sum(xr, yr, cols, mx);
        scale_row(yr, cols, 1.0 / s);
    }
}

/// dx = y * (dy - sum(dy * y)) per row.
#[no_mangle]
pub unsafe extern "C" fn softmax_bwd(tid: u32, nt: u32, y: u32, dy: u32, dx: u32, rows: u32, cols: u32) {
    let (r0, r1) = split(rows as usize, tid as usize, nt as usize);
    let cols = cols as usize;
    for r in r0..r1 {
        let (yr, gr, dr) = (f32p(y).add(r * cols), f32p(dy).add(r * cols), f32p(dx).add(r * cols));
        let mut dot = 0f32;
        for j in 0..cols {
            dot += *yr.add(j) * *gr.add(j);
        }
        for j in 0..cols {
            *dr.add(j) = *yr.add(j) * (*gr.add(j) - dot);
        }
    }
}

/// LayerNorm over the last dim of [rows, cols]; saves mean/rstd [rows].
#[no_mangle]
pub unsafe extern "C" fn layer_norm(
    tid: u32, nt: u32, x: u32, gamma: u32, beta: u32, y: u32, mean: u32, rstd: u32,
    rows: u32, cols: u32, eps: f32,
) {
    let (r0, r1) = split(rows as usize, tid as usize, nt as usize);
    let cols = cols as usize;
    let (g, b) = (f32p(gamma), f32p(beta));
    for r in r0..r1 {
        let xr = f32p(x).add(r * cols);
        let yr = f32p(y).add(r * cols);
        let mut s = 0f32;
        for j in 0..cols {
            s += *xr.add(j);
        }
        let mu = s / cols as f32;
        let mut v = 0f32;
        for j in 0..cols {
            let d = *xr.add(j) - mu;
            v += d * d;
        }
        let rs = 1.0 / (v / cols as f32 + eps).sqrt();
        *f32p(mean).add(r) = mu;
        *f32p(rstd).add(r) = rs;
        for j in 0..cols {
            *yr.add(j) = (*xr.add(j) - mu) * rs * *g.add(j) + *b.add(j);
        }
    }
}

/// LayerNorm backward: writes dx; this thread's dgamma/dbeta partial sums go to
/// part + tid*part_stride bytes as [dgamma(cols), dbeta(cols)].
#[no_mangle]
pub unsafe extern "C" fn layer_norm_bwd(
    tid: u32, nt: u32, x: u32, gamma: u32, mean: u32, rstd: u32, dy: u32, dx: u32,
    rows: u32, cols: u32, part: u32, part_stride: u32,
) {
    let (r0, r1) = split(rows as usize, tid as usize, nt as usize);
    let cols = cols as usize;
    let g = f32p(gamma);
    let pg = f32p(part + tid * part_stride);
    let pb = pg.add(cols);
    for j in 0..2 * cols {
        *pg.add(j) = 0.0;
    }
    for r in r0..r1 {
        let (xr, gr, dr) = (f32p(x).add(r * cols), f32p(dy).add(r * cols), f32p(dx).add(r * cols));
        let (mu, rs) = (*f32p(mean).add(r), *f32p(rstd).add(r));
        let (mut s1, mut s2) = (0f32, 0f32);
        for j in 0..cols {
            let xh = (*xr.add(j) - mu) * rs;
            let gy = *gr.add(j);
            let dxh = gy * *g.add(j);
            s1 += dxh;
            s2 += dxh * xh;
            *pg.add(j) += gy * xh;
            *pb.add(j) += gy;
        }
        let inv = 1.0 / cols as f32;
        for j in 0..cols {
            let xh = (*xr.add(j) - mu) * rs;
            let dxh = *gr.add(j) * *g.add(j);
            *dr.add(j) = rs * (dxh - inv * s1 - xh * inv * s2);
        }
    }
}

/// Per-channel mean and biased variance of x [N, C, HW]; channels split over threads.
#[no_mangle]
pub unsafe extern "C" fn bn_stats(tid: u32, nt: u32, x: u32, mean: u32, var: u32, n: u32, c: u32, hw: u32) {
    let (c0, c1) = split(c as usize, tid as usize, nt as usize);
    let (n, c, hw) = (n as usize, c as usize, hw as usize);
    let cnt = (n * hw) as f64;
    for ch in c0..c1 {
        let mut s = 0f64;
        for i in 0..n {
            let p = f32p(x).add((i * c + ch) * hw);
            let mut a = 0f32;
            for j in 0..hw {
                a += *p.add(j);
            }
            s += a as f64;
        }
        let mu = s / cnt;
        let muf = mu as f32;
        let mut v = 0f64;
        for i in 0..n {
            let p = f32p(x).add((i * c + ch) * hw);
            let mut a = 0f32;
            for j in 0..hw {
                let d = *p.add(j) - muf;
                a += d * d;
            }
            v += a as f64;
        }
        *f32p(mean).add(ch) = muf;
        *f32p(var).add(ch) = (v / cnt) as f32;
    }
}

/// y = (x - mean) / sqrt(var + eps) * gamma + beta; (n, c) planes split over threads.
#[no_mangle]
pub unsafe extern "C" fn bn_apply(
    tid: u32, nt: u32, x: u32, mean: u32, var: u32, gamma: u32, beta: u32, y: u32,
    n: u32, c: u32, hw: u32, eps: f32,
) {
    let (p0, p1) = split((n * c) as usize, tid as usize, nt as usize);
    let (c, hw) = (c as usize, hw as usize);
    for pl in p0..p1 {
        let ch = pl % c;
        let rs = 1.0 / (*f32p(var).add(ch) + eps).sqrt();
        let scale = rs * *f32p(gamma).add(ch);
        let shift = *f32p(beta).add(ch) - *f32p(mean).add(ch) * scale;
        let (xp, yp) = (f32p(x).add(pl * hw), f32p(y).add(pl * hw));
        for j in 0..hw {
            *yp.add(j) = *xp.add(j) * scale + shift;
        }
    }
}

/// Training-mode batch-norm backward; channels split over threads; accumulates dgamma/dbeta.
#[no_mangle]
pub unsafe extern "C" fn bn_bwd(
    tid: u32, nt: u32, x: u32, mean: u32, var: u32, gamma: u32, dy: u32, dx: u32,
    dgamma: u32, dbeta: u32, n: u32, c: u32, hw: u32, eps: f32,
) {
    let (c0, c1) = split(c as usize, tid as usize, nt as usize);
    let (n, c, hw) = (n as usize, c as usize, hw as usize);
    let cnt = (n * hw) as f32;
    for ch in c0..c1 {
        let mu = *f32p(mean).add(ch);
        let rs = 1.0 / (*f32p(var).add(ch) + eps).sqrt();
        let (mut sdy, mut sdyx) = (0f64, 0f64);
        for i in 0..n {
            let (xp, gp) = (f32p(x).add((i * c + ch) * hw), f32p(dy).add((i * c + ch) * hw));
            let (mut a, mut b) = (0f32, 0f32);
            for j in 0..hw {
                let g = *gp.add(j);
                a += g;
                b += g * (*xp.add(j) - mu);
            }
            sdy += a as f64;
            sdyx += b as f64;
        }
        let sdy = sdy as f32;
        let sdxh = sdyx as f32 * rs; // sum(dy * xhat)
        *f32p(dgamma).add(ch) += sdxh;
        *f32p(dbeta).add(ch) += sdy;
        let k = *f32p(gamma).add(ch) * rs;
        let (m1, m2) = (sdy / cnt, sdxh / cnt);
        for i in 0..n {
            let off = (i * c + ch) * hw;
            let (xp, gp, dp) = (f32p(x).add(off), f32p(dy).add(off), f32p(dx).add(off));
            for j in 0..hw {
                let xh = (*xp.add(j) - mu) * rs;
                *dp.add(j) = k * (*gp.add(j) - m1 - xh * m2);
            }
        }
    }
}

/// Max pool over [N*C] planes; argmax is the input-plane index (iy*W + ix).
#[no_mangle]
pub unsafe extern "C" fn max_pool(
    tid: u32, nt: u32, x: u32, y: u32, argmax: u32, planes: u32, h: u32, w: u32,
    k: u32, s: u32, pad: u32, oh: u32, ow: u32,
) {
    let (p0, p1) = split(planes as usize, tid as usize, nt as usize);
    let (h, w, k, s, pad, oh, ow) =
        (h as isize, w as isize, k as isize, s as isize, pad as isize, oh as usize, ow as usize);
    for pl in p0..p1 {
        let xp = f32p(x).add(pl * (h * w) as usize);
        let yp = f32p(y).add(pl * oh * ow);
        let ap = i32p(argmax).add(pl * oh * ow);
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut bi) = (f32::NEG_INFINITY, -1i32);
                for ky in 0..k {
                    let iy = oy as isize * s - pad + ky;
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    for kx in 0..k {
                        let ix = ox as isize * s - pad + kx;
                        if ix < 0 || ix >= w {
                            continue;
                        }
                        let v = *xp.offset(iy * w + ix);
                        if v > best || bi < 0 {
                            best = v;
                            bi = (iy * w + ix) as i32;
                        }
                    }
                }
                *yp.add(oy * ow + ox) = best;
                *ap.add(oy * ow + ox) = bi;
            }
        }
    }
}

/// dx (overwritten) = scatter-add of dy at argmax, per plane.
#[no_mangle]
pub unsafe extern "C" fn max_pool_bwd(
    tid: u32, nt: u32, dy: u32, argmax: u32, dx: u32, planes: u32, hw_in: u32, hw_out: u32,
) {
    let (p0, p1) = split(planes as usize, tid as usize, nt as usize);
    let (hi, ho) = (hw_in as usize, hw_out as usize);
    for pl in p0..p1 {
        let dp = f32p(dx).add(pl * hi);
        for j in 0..hi {
            *dp.add(j) = 0.0;
        }
        let (gp, ap) = (f32p(dy).add(pl * ho), i32p(argmax).add(pl * ho));
        for j in 0..ho {
            let a = *ap.add(j);
            if a >= 0 {
                *dp.add(a as usize) += *gp.add(j);
            }
        }
    }
}
