//! CPU twins of shaders/batchnorm.wgsl: batch normalisation over the columns of a rows x cols
//! matrix (a dense layer's output is batch x features; a conv feature map is
//! (batch*h*w) x channels), with a fused activation.
//!
//! Training: mean and biased variance of the batch normalise, and running averages
//! (`running = (1 - momentum) running + momentum batch`, unbiased variance, as PyTorch) are
//! kept for inference. The backward pass is the usual closed form:
//! dx = invstd * (dz - mean(dz) - xhat * mean(dz * xhat)) * gamma, with dz = dy * act'(y).
//!
//! The column reductions go in chunks of rows (`bn_chunk_rows`), reduced in parallel and then
//! combined, exactly as the GPU kernels do it (there, so that a 10^5-row feature map with a
//! few dozen channels gives hundreds of workgroups instead of two).

use rayon::prelude::*;

use crate::backend::ops::bn_chunk_rows;
use crate::backend::Act;

/// The rows of chunk `ch` (see [`Op::BatchNormPartial`](crate::backend::Op)).
fn chunk_range(rows: usize, ch: usize) -> std::ops::Range<usize> {
    let cr = bn_chunk_rows(rows);
    ch * cr..((ch + 1) * cr).min(rows)
}

/// Per-chunk mean and sum of squared deviations of each column (two passes over the chunk's
/// rows, f32 as the GPU kernel), into `part[ch][0..2][cols]`; chunks in parallel.
pub fn batch_norm_partial(rows: usize, cols: usize, chunks: usize, x: &[f32], part: &mut [f32]) {
    part[..chunks * 2 * cols].par_chunks_mut(2 * cols).enumerate().for_each(|(ch, p)| {
        let r = chunk_range(rows, ch);
        let n = r.len() as f32;
        let (mean, m2) = p.split_at_mut(cols);
        mean.fill(0.0);
        m2.fill(0.0);
        for row in r.clone() {
            mean.iter_mut().zip(&x[row * cols..(row + 1) * cols]).for_each(|(a, v)| *a += v);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        for row in r {
            for ((a, v), mu) in m2.iter_mut().zip(&x[row * cols..(row + 1) * cols]).zip(mean.iter()) {
                *a += (v - mu) * (v - mu);
            }
        }
    });
}

/// `stats = [mean; invstd]` of the batch from the chunks' statistics (Chan et al.: the sum of
/// squared deviations is the chunks' own plus n_ch (mean_ch - mean)^2 each); running averages
/// updated in place.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_stats(
    rows: usize,
    cols: usize,
    chunks: usize,
    momentum: f32,
    eps: f32,
    part: &[f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
    stats: &mut [f32],
) {
    let (mean, invstd) = stats[..2 * cols].split_at_mut(cols);
    for c in 0..cols {
        let mut m = 0f64;
        for ch in 0..chunks {
            m += chunk_range(rows, ch).len() as f64 * part[ch * 2 * cols + c] as f64;
        }
        m /= rows as f64;
        let mut sq = 0f64;
        for ch in 0..chunks {
            let d = part[ch * 2 * cols + c] as f64 - m;
            sq += part[(ch * 2 + 1) * cols + c] as f64 + chunk_range(rows, ch).len() as f64 * d * d;
        }
        let var = sq / rows as f64;
        let unbiased = if rows > 1 { sq / (rows - 1) as f64 } else { var };
        mean[c] = m as f32;
        invstd[c] = (1.0 / (var + eps as f64).sqrt()) as f32;
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * m as f32;
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * unbiased as f32;
    }
}

pub fn batch_norm_running(cols: usize, eps: f32, running_mean: &[f32], running_var: &[f32], stats: &mut [f32]) {
    let (mean, invstd) = stats[..2 * cols].split_at_mut(cols);
    for c in 0..cols {
        mean[c] = running_mean[c];
        invstd[c] = 1.0 / (running_var[c] + eps).sqrt();
    }
}

#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward(rows: usize, cols: usize, act: Act, x: &[f32], stats: &[f32], gamma: &[f32], beta: &[f32], y: &mut [f32]) {
    let (mean, invstd) = stats[..2 * cols].split_at(cols);
    // rows in blocks, so a task does enough work to pay for itself on narrow (64-wide) maps
    let block = (4096 / cols.max(1)).max(1) * cols;
    with_act!(act, f => y[..rows * cols].par_chunks_mut(block).zip(x[..rows * cols].par_chunks(block)).for_each(|(yb, xb)| {
        for (yr, xr) in yb.chunks_exact_mut(cols).zip(xb.chunks_exact(cols)) {
            for c in 0..cols {
                yr[c] = f(gamma[c] * (xr[c] - mean[c]) * invstd[c] + beta[c]);
            }
        }
    }))
}

/// Per-chunk sums of dz and dz * xhat into `part[ch][0..2][cols]`; chunks in parallel.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_partial(
    rows: usize,
    cols: usize,
    chunks: usize,
    act: Act,
    x: &[f32],
    stats: &[f32],
    y: &[f32],
    dy: &[f32],
    part: &mut [f32],
) {
    let (mean, invstd) = stats[..2 * cols].split_at(cols);
    with_act_grad!(act, grad => part[..chunks * 2 * cols].par_chunks_mut(2 * cols).enumerate().for_each(|(ch, p)| {
        let (sdz, sdzx) = p.split_at_mut(cols);
        sdz.fill(0.0);
        sdzx.fill(0.0);
        for r in chunk_range(rows, ch) {
            let (xr, yr, dyr) = (&x[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
            for c in 0..cols {
                let d = dyr[c] * grad(yr[c]);
                sdz[c] += d;
                sdzx[c] += d * (xr[c] - mean[c]) * invstd[c];
            }
        }
    }))
}

/// dbeta, dgamma: the chunks' sums, added in chunk order.
pub fn batch_norm_backward_reduce(cols: usize, chunks: usize, part: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
    for c in 0..cols {
        let (mut a, mut b) = (0f32, 0f32);
        for ch in 0..chunks {
            a += part[ch * 2 * cols + c];
            b += part[(ch * 2 + 1) * cols + c];
        }
        dbeta[c] = a;
        dgamma[c] = b;
    }
}

/// dx = gamma invstd (dz - dbeta / rows - xhat dgamma / rows), elementwise.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    rows: usize,
    cols: usize,
    act: Act,
    x: &[f32],
    stats: &[f32],
    gamma: &[f32],
    y: &[f32],
    dy: &[f32],
    dgamma: &[f32],
    dbeta: &[f32],
    dx: &mut [f32],
) {
    let (mean, invstd) = stats[..2 * cols].split_at(cols);
    let n = rows as f32;
    let block = (4096 / cols.max(1)).max(1) * cols;
    with_act_grad!(act, grad => dx[..rows * cols].par_chunks_mut(block).enumerate().for_each(|(bi, dxb)| {
        let r0 = bi * (block / cols);
        for (j, dxr) in dxb.chunks_exact_mut(cols).enumerate() {
            let i0 = (r0 + j) * cols;
            let (xr, yr, dyr) = (&x[i0..i0 + cols], &y[i0..i0 + cols], &dy[i0..i0 + cols]);
            for c in 0..cols {
                let dz = dyr[c] * grad(yr[c]);
                let xhat = (xr[c] - mean[c]) * invstd[c];
                dxr[c] = gamma[c] * invstd[c] * (dz - dbeta[c] / n - xhat * dgamma[c] / n);
            }
        }
    }))
}
