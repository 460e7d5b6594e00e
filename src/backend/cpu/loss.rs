//! CPU twins of shaders/loss.wgsl. Each loss writes one value per row (times `scale`) and the
//! gradient of the sum of those values with respect to its inputs, in one pass.

use crate::backend::UNLABELED;

/// The variance floor added to softplus(var_raw) in the Gaussian likelihood of models trained
/// before the floor was a setting (and of the paper protocol): 1e-6 in the data's standardised
/// units. See [`crate::model::ModelSpec::var_floor`].
pub const LEGACY_GAUSSIAN_VAR_FLOOR: f32 = 1e-6;

/// Bernoulli NLL from logits l and targets t in [0, 1], summed over the row's features:
/// sum_j softplus(l) - t l (stable form); d/dl = sigmoid(l) - t. Blocks of rows over the
/// threads; in a block, each element's term and gradient in one vectorisable loop (e =
/// e^{-|l|} serves softplus and the logistic function; exp and ln(1 + e) from `fastmath`, not
/// libm: the libm calls were 4% of the dense model's training step), then each row's terms
/// summed in f64 in feature order.
pub fn bce_logits(rows: usize, cols: usize, scale: f32, l: &[f32], t: &[f32], loss: &mut [f32], dl: &mut [f32]) {
    use rayon::prelude::*;
    if cols == 0 {
        loss[..rows].fill(0.0);
        return;
    }
    let br = (4096 / cols).max(1);
    let fma = super::fma_available();
    loss[..rows].par_chunks_mut(br).zip(dl[..rows * cols].par_chunks_mut(br * cols)).enumerate().for_each(|(blk, (loss_b, dl_b))| {
        let i0 = blk * br * cols;
        let n = dl_b.len();
        let mut terms = vec![0f32; n];
        let (lb, tb) = (&l[i0..i0 + n], &t[i0..i0 + n]);
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: `fma` is true only where the CPU has AVX2 and FMA
            unsafe { bce_elems_avx2_fma(scale, lb, tb, &mut terms, dl_b) };
        } else {
            bce_elems::<false>(scale, lb, tb, &mut terms, dl_b);
        }
        #[cfg(not(target_arch = "x86_64"))]
        bce_elems::<false>(scale, lb, tb, &mut terms, dl_b);
        let _ = fma;
        for (loss_r, tr) in loss_b.iter_mut().zip(terms.chunks_exact(cols)) {
            let s: f64 = tr.iter().map(|&v| v as f64).sum();
            *loss_r = scale * s as f32;
        }
    });
}

/// Per element: the Bernoulli NLL term (unscaled) and its gradient (scaled).
#[inline(always)]
fn bce_elems<const FMA: bool>(scale: f32, l: &[f32], t: &[f32], terms: &mut [f32], dl: &mut [f32]) {
    use super::fastmath::{exp_v, ln1p_v};
    let n = terms.len();
    let (l, t, dl) = (&l[..n], &t[..n], &mut dl[..n]);
    for i in 0..n {
        let (x, y) = (l[i], t[i]);
        let e = exp_v::<FMA>(-x.abs());
        terms[i] = x.max(0.0) + ln1p_v::<FMA>(e) - y * x;
        let sig = if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
        dl[i] = scale * (sig - y);
    }
}

/// [`bce_elems`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bce_elems_avx2_fma(scale: f32, l: &[f32], t: &[f32], terms: &mut [f32], dl: &mut [f32]) {
    bce_elems::<true>(scale, l, t, terms, dl)
}

/// Gaussian NLL with mean m and variance v = softplus(raw) + floor, summed over features:
/// 0.5 (ln 2pi + ln v + (x - m)^2 / v).
///
/// Blocks of rows over the threads; in a block, each element's term and gradients in one
/// vectorisable loop (e = e^{-|raw|} serves softplus and the logistic function, the logs
/// without libm: `fastmath`), then each row's terms summed in f64 in feature order. Per
/// element the libm calls (exp twice, ln_1p, ln) were ~3% of the RNN's training step, whose
/// rows are only 6 features wide.
#[allow(clippy::too_many_arguments)]
pub fn gaussian_nll(
    rows: usize,
    cols: usize,
    scale: f32,
    floor: f32,
    m: &[f32],
    raw: &[f32],
    x: &[f32],
    loss: &mut [f32],
    dm: &mut [f32],
    draw: &mut [f32],
) {
    use rayon::prelude::*;
    if cols == 0 {
        loss[..rows].fill(0.0);
        return;
    }
    let ln2pi = (2.0 * std::f32::consts::PI).ln();
    let br = (4096 / cols).max(1);
    let fma = super::fma_available();
    let blocks =
        loss[..rows].par_chunks_mut(br).zip(dm[..rows * cols].par_chunks_mut(br * cols)).zip(draw[..rows * cols].par_chunks_mut(br * cols));
    blocks.enumerate().for_each(|(blk, ((loss_b, dm_b), draw_b))| {
        let i0 = blk * br * cols;
        let n = dm_b.len();
        let mut terms = vec![0f32; n];
        let el = NllElems { scale, floor, ln2pi, m: &m[i0..i0 + n], raw: &raw[i0..i0 + n], x: &x[i0..i0 + n] };
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: `fma` is true only where the CPU has AVX2 and FMA
            unsafe { nll_elems_avx2_fma(&el, &mut terms, dm_b, draw_b) };
        } else {
            nll_elems::<false>(&el, &mut terms, dm_b, draw_b);
        }
        #[cfg(not(target_arch = "x86_64"))]
        nll_elems::<false>(&el, &mut terms, dm_b, draw_b);
        let _ = fma;
        for (l, t) in loss_b.iter_mut().zip(terms.chunks_exact(cols)) {
            let s: f64 = t.iter().map(|&v| v as f64).sum();
            *l = scale * s as f32;
        }
    });
}

/// The inputs of [`nll_elems`]: a block's means, raw variances and targets.
struct NllElems<'a> {
    scale: f32,
    floor: f32,
    ln2pi: f32,
    m: &'a [f32],
    raw: &'a [f32],
    x: &'a [f32],
}

/// Per element: the NLL term (unscaled), d/dm and d/draw (scaled).
#[inline(always)]
fn nll_elems<const FMA: bool>(el: &NllElems, terms: &mut [f32], dm: &mut [f32], draw: &mut [f32]) {
    use super::fastmath::{exp_v, ln1p_v, ln_v};
    let n = terms.len();
    let (m, raw, x, dm, draw) = (&el.m[..n], &el.raw[..n], &el.x[..n], &mut dm[..n], &mut draw[..n]);
    let (scale, floor, ln2pi) = (el.scale, el.floor, el.ln2pi);
    for i in 0..n {
        let r = raw[i];
        let e = exp_v::<FMA>(-r.abs());
        let v = r.max(0.0) + ln1p_v::<FMA>(e) + floor;
        let d = x[i] - m[i];
        terms[i] = 0.5 * (ln2pi + ln_v::<FMA>(v) + d * d / v);
        dm[i] = scale * (-d / v);
        let dv = 0.5 * (1.0 / v - d * d / (v * v));
        let sig = if r >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
        draw[i] = scale * dv * sig;
    }
}

/// [`nll_elems`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nll_elems_avx2_fma(el: &NllElems, terms: &mut [f32], dm: &mut [f32], draw: &mut [f32]) {
    nll_elems::<true>(el, terms, dm, draw)
}

/// KL(N(mu, exp(logvar)) || N(0, 1)) summed over the latent dimensions:
/// -0.5 sum (1 + lv - mu^2 - exp(lv)).
#[allow(clippy::too_many_arguments)]
pub fn kl_normal(rows: usize, cols: usize, scale: f32, mu: &[f32], lv: &[f32], loss: &mut [f32], dmu: &mut [f32], dlv: &mut [f32]) {
    use rayon::prelude::*;
    let per =
        loss[..rows].par_iter_mut().zip(dmu[..rows * cols].par_chunks_mut(cols.max(1))).zip(dlv[..rows * cols].par_chunks_mut(cols.max(1)));
    per.enumerate().for_each(|(r, ((loss_r, dmu_r), dlv_r))| {
        let mut s = 0.0f64;
        for (j, i) in (r * cols..(r + 1) * cols).enumerate() {
            let e = lv[i].exp();
            s += (-0.5 * (1.0 + lv[i] - mu[i] * mu[i] - e)) as f64;
            dmu_r[j] = scale * mu[i];
            dlv_r[j] = scale * 0.5 * (e - 1.0);
        }
        *loss_r = scale * s as f32;
    });
}

/// Softmax cross-entropy on labeled rows only, divided by the number of labeled rows.
/// A label outside 0..classes (e.g. `UNLABELED`) marks the row unlabeled: its loss and
/// gradient are exactly zero. With no labeled row everything is zero.
///
/// Label smoothing E (`smoothing`): the target t is (1 - E) one-hot(y) + E / K, the loss
/// -sum_j t_j log p_j = lse - (1 - E) l_y - (E / K) sum_j l_j and its gradient p - t (which
/// still sums to zero over the row). E = 0 computes exactly what the one-hot form did: lse - l_y
/// and p - one-hot, the same operations in the same order.
#[allow(clippy::too_many_arguments)]
pub fn softmax_ce(
    rows: usize,
    classes: usize,
    scale: f32,
    smoothing: f32,
    logits: &[f32],
    labels: &[u32],
    loss: &mut [f32],
    dl: &mut [f32],
) {
    use rayon::prelude::*;
    let _ = UNLABELED;
    let labeled = labels[..rows].iter().filter(|&&y| (y as usize) < classes).count();
    let w = if labeled > 0 { scale / labeled as f32 } else { 0.0 };
    if classes == 0 {
        loss[..rows].fill(0.0);
        return;
    }
    // blocks of rows over the threads (rows are independent; the RNN has 16384 of them, a
    // step each); libm's e^x, so that smoothing 0 stays the one-hot form bit for bit
    let exp = f32::exp;
    const BLOCK: usize = 1024;
    let blocks = loss[..rows].par_chunks_mut(BLOCK).zip(dl[..rows * classes].par_chunks_mut(BLOCK * classes));
    blocks.enumerate().for_each(|(blk, (loss_b, dl_b))| {
        for (k, (loss_r, dl_r)) in loss_b.iter_mut().zip(dl_b.chunks_exact_mut(classes)).enumerate() {
            let r = blk * BLOCK + k;
            let y = labels[r] as usize;
            if y >= classes {
                *loss_r = 0.0;
                dl_r.fill(0.0);
                continue;
            }
            let row = &logits[r * classes..(r + 1) * classes];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&x| exp(x - max)).sum();
            let lse = max + sum.ln();
            if smoothing > 0.0 {
                // t_j = on [j == y] + off
                let (on, off) = (1.0 - smoothing, smoothing / classes as f32);
                let total: f32 = row.iter().sum();
                *loss_r = w * (lse - on * row[y] - off * total);
                for (j, (d, &l)) in dl_r.iter_mut().zip(row).enumerate() {
                    let p = exp(l - lse);
                    *d = w * (p - (if j == y { on } else { 0.0 } + off));
                }
            } else {
                *loss_r = w * (lse - row[y]);
                for (j, (d, &l)) in dl_r.iter_mut().zip(row).enumerate() {
                    let p = exp(l - lse);
                    *d = w * (p - if j == y { 1.0 } else { 0.0 });
                }
            }
        }
    });
}
