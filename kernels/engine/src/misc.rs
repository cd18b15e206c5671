//! Embedding gather/scatter-add and the fused softmax cross-entropy.

use crate::util::{exp_shift_sum, f32p, i32p, row_max, scale_row, split};

/// out[i, :] = table[ids[i], :]; rows split over threads.
#[no_mangle]
pub unsafe extern "C" fn embedding(tid: u32, nt: u32, ids: u32, table: u32, out: u32, n: u32, dim: u32) {
    let (r0, r1) = split(n as usize, tid as usize, nt as usize);
    let dim = dim as usize;
    for r in r0..r1 {
        let id = *i32p(ids).add(r) as usize;
        core::ptr::copy_nonoverlapping(f32p(table).add(id * dim), f32p(out).add(r * dim), dim);
    }
}

/// dtable[ids[i], :] += dy[i, :]; columns split over threads, so repeated ids never race.
#[no_mangle]
pub unsafe extern "C" fn embedding_bwd(tid: u32, nt: u32, ids: u32, dy: u32, dtable: u32, n: u32, dim: u32) {
    let dim = dim as usize;
    let (j0, j1) = split(dim, tid as usize, nt as usize);
    for r in 0..n as usize {
        let id = *i32p(ids).add(r) as usize;
        let (src, dst) = (f32p(dy).add(r * dim), f32p(dtable).add(id * dim));
        for j in j0..j1 {
            *dst.add(j) += *src.add(j);
        }
    }
}

/// Softmax cross-entropy per row; loss [rows]; dlogits = (softmax - onehot) * scale; ignored
/// rows (target == ignore) get loss 0 and zero gradient.
#[no_mangle]
pub unsafe extern "C" fn cross_entropy(
    tid: u32, nt: u32, logits: u32, targets: u32, loss: u32, dlogits: u32,
    rows: u32, cols: u32, ignore: i32, scale: f32,
) {
    let (r0, r1) = split(rows as usize, tid as usize, nt as usize);
    let cols = cols as usize;
    for r in r0..r1 {
        let xr = f32p(logits).add(r * cols);
        let dr = f32p(dlogits).add(r * cols);
        let t = *i32p(targets).add(r);
        if t == ignore {
            *f32p(loss).add(r) = 0.0;
            for j in 0..cols {
                *dr.add(j) = 0.0;
            }
            continue;
        }
        let mx = row_max(xr, cols);
        let s = exp_shift_sum(xr, dr, cols, mx);
        *f32p(loss).add(r) = s.ln() + mx - *xr.add(t as usize);
        scale_row(dr, cols, scale / s);
        *dr.add(t as usize) -= scale;
    }
}
