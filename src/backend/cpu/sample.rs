//! CPU twins of shaders/sample.wgsl, drawing from the shared generator in `crate::rng`.

use crate::rng;

/// out[i] = first Philox word for element i (for checking the generator bit for bit).
pub fn random_bits(ctr: &[u32], stream: u32, out: &mut [u32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = rng::draw(ctr, stream, i as u32)[0];
    }
}

pub fn random_normal(ctr: &[u32], stream: u32, out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = rng::normal_at(ctr, stream, i as u32);
    }
}

/// z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1); eps is kept for the backward pass.
pub fn reparam(ctr: &[u32], stream: u32, mu: &[f32], logvar: &[f32], z: &mut [f32], eps: &mut [f32]) {
    use rayon::prelude::*;
    // blocks of elements in parallel: every draw is addressed by its index, so the blocks
    // give the same values as one loop
    const BLOCK: usize = 4096;
    let n = mu.len();
    z[..n].par_chunks_mut(BLOCK).zip(eps[..n].par_chunks_mut(BLOCK)).enumerate().for_each(|(blk, (zb, eb))| {
        for (j, (z, e)) in zb.iter_mut().zip(eb.iter_mut()).enumerate() {
            let i = blk * BLOCK + j;
            *e = rng::normal_at(ctr, stream, i as u32);
            *z = mu[i] + (0.5 * logvar[i]).exp() * *e;
        }
    });
}

/// dmu = dz; dlogvar = dz * eps * exp(logvar / 2) / 2.
pub fn reparam_backward(dz: &[f32], logvar: &[f32], eps: &[f32], dmu: &mut [f32], dlogvar: &mut [f32]) {
    use rayon::prelude::*;
    const BLOCK: usize = 4096;
    let n = dz.len();
    dmu[..n].copy_from_slice(dz);
    dlogvar[..n].par_chunks_mut(BLOCK).enumerate().for_each(|(blk, db)| {
        for (j, d) in db.iter_mut().enumerate() {
            let i = blk * BLOCK + j;
            *d = dz[i] * eps[i] * 0.5 * (0.5 * logvar[i]).exp();
        }
    });
}

/// y = x * mask with mask = (u >= rate) / (1 - rate), u uniform in [0, 1) from word `i % 4` of
/// Philox draw `i / 4` (the GPU reads the same words), so both backends drop the same units;
/// one draw serves four elements (a feature map's mask is millions of them).
pub fn dropout(ctr: &[u32], stream: u32, rate: f32, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    use rayon::prelude::*;
    // blocks of 4096 elements (1024 draws) a task: 4-element tasks spent more in rayon's
    // splitting than in the generator (SS_CNN's 1.6M-element masks took 5.3 ms)
    const BLOCK: usize = 4096;
    let keep = 1.0 / (1.0 - rate);
    let n = y.len().min(mask.len());
    y[..n].par_chunks_mut(BLOCK).zip(mask[..n].par_chunks_mut(BLOCK)).enumerate().for_each(|(blk, (yb, mb))| {
        let base = blk * BLOCK;
        for (d, (yk, mk)) in yb.chunks_mut(4).zip(mb.chunks_mut(4)).enumerate() {
            let k = base / 4 + d;
            let w = rng::draw(ctr, stream, k as u32);
            for j in 0..yk.len() {
                let m = if rng::uniform(w[j]) >= rate { keep } else { 0.0 };
                mk[j] = m;
                yk[j] = x[4 * k + j] * m;
            }
        }
    });
}

/// y = (x + g) / tau, g standard Gumbel noise from word 0 of draw i (see [`rng::gumbel`]).
pub fn gumbel(ctr: &[u32], stream: u32, tau: f32, x: &[f32], y: &mut [f32]) {
    let inv = 1.0 / tau;
    for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        *y = (x + rng::gumbel(rng::draw(ctr, stream, i as u32)[0])) * inv;
    }
}

/// The random translation and amplitude scaling of [`crate::backend::Op::ShiftScale`]: per row
/// r (shape [rows, height, width, channels]) draw r gives dy, dx (words 0, 1: uniform in
/// [-max_shift, max_shift], dx = 0 for width 1) and s = 1 + scale N(0, 1) (words 2, 3);
/// y[r, i, j, c] = s x[r, i + dy, j + dx, c], 0 where that falls outside the sample.
pub fn shift_scale(ctr: &[u32], stream: u32, shape: [usize; 4], max_shift: u32, scale: f32, x: &[f32], y: &mut [f32]) {
    let [rows, h, w, c] = shape;
    let per = h * w * c;
    for r in 0..rows {
        let (dy, dx, s) = shift_scale_draw(ctr, stream, r as u32, w, max_shift, scale);
        for i in 0..h {
            for j in 0..w {
                let (si, sj) = (i as i64 + dy, j as i64 + dx);
                let inside = si >= 0 && si < h as i64 && sj >= 0 && sj < w as i64;
                for ch in 0..c {
                    let o = r * per + (i * w + j) * c + ch;
                    y[o] = if inside { s * x[r * per + (si as usize * w + sj as usize) * c + ch] } else { 0.0 };
                }
            }
        }
    }
}

/// Row `r`'s (dy, dx, scale factor) of [`shift_scale`], as the GPU computes them.
pub fn shift_scale_draw(ctr: &[u32], stream: u32, r: u32, width: usize, max_shift: u32, scale: f32) -> (i64, i64, f32) {
    let wd = rng::draw(ctr, stream, r);
    let span = 2 * max_shift + 1;
    let dy = (wd[0] % span) as i64 - max_shift as i64;
    let dx = if width > 1 { (wd[1] % span) as i64 - max_shift as i64 } else { 0 };
    (dy, dx, 1.0 + scale * rng::normal(wd[2], wd[3]))
}
