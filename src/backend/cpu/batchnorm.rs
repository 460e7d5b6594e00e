//! CPU twins of shaders/batchnorm.wgsl: batch normalisation over the columns of a rows x cols
//! matrix (a dense layer's output is batch x features; a conv feature map is
//! (batch*h*w) x channels), with a fused activation.
//!
//! Training: mean and biased variance of the batch normalise, and running averages
//! (`running = (1 - momentum) running + momentum batch`, unbiased variance, as PyTorch) are
//! kept for inference. The backward pass is the usual closed form:
//! dx = invstd * (dz - mean(dz) - xhat * mean(dz * xhat)) * gamma, with dz = dy * act'(y).

use rayon::prelude::*;

use crate::backend::Act;

/// Two per-column sums over the rows: `add(row, a, b)` adds row `row`'s contributions to the
/// accumulators `a` and `b` (cols each). Rows go in chunks of 256 accumulated in f32 (a
/// vectorisable inner loop over columns), chunks are combined in f64: rows can be ~10^5 for a
/// feature map.
fn col_sums2(rows: usize, cols: usize, add: impl Fn(usize, &mut [f32], &mut [f32]) + Sync) -> (Vec<f64>, Vec<f64>) {
    const CHUNK: usize = 256;
    let chunks: Vec<(Vec<f32>, Vec<f32>)> = (0..rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|k| {
            let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
            for r in k * CHUNK..((k + 1) * CHUNK).min(rows) {
                add(r, &mut a, &mut b);
            }
            (a, b)
        })
        .collect();
    let (mut a, mut b) = (vec![0f64; cols], vec![0f64; cols]);
    for (ca, cb) in chunks {
        for c in 0..cols {
            a[c] += ca[c] as f64;
            b[c] += cb[c] as f64;
        }
    }
    (a, b)
}

/// `stats = [mean; invstd]` of the batch; running averages updated in place.
pub fn batch_norm_stats(rows: usize, cols: usize, momentum: f32, eps: f32, x: &[f32], running_mean: &mut [f32], running_var: &mut [f32], stats: &mut [f32]) {
    let (mean, invstd) = stats[..2 * cols].split_at_mut(cols);
    let (sums, _) = col_sums2(rows, cols, |r, a, _| a.iter_mut().zip(&x[r * cols..(r + 1) * cols]).for_each(|(a, v)| *a += v));
    let m: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
    let mf: Vec<f32> = m.iter().map(|&v| v as f32).collect();
    let (sq, _) = col_sums2(rows, cols, |r, a, _| {
        for ((a, v), mu) in a.iter_mut().zip(&x[r * cols..(r + 1) * cols]).zip(&mf) {
            *a += (v - mu) * (v - mu);
        }
    });
    for c in 0..cols {
        let var = sq[c] / rows as f64;
        let unbiased = if rows > 1 { sq[c] / (rows - 1) as f64 } else { var };
        mean[c] = m[c] as f32;
        invstd[c] = (1.0 / (var + eps as f64).sqrt()) as f32;
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * m[c] as f32;
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
    y[..rows * cols].par_chunks_mut(cols).zip(x[..rows * cols].par_chunks(cols)).for_each(|(yr, xr)| {
        for c in 0..cols {
            yr[c] = act.apply(gamma[c] * (xr[c] - mean[c]) * invstd[c] + beta[c]);
        }
    });
}

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
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let (mean, invstd) = stats[..2 * cols].split_at(cols);
    let dz = |i: usize| dy[i] * act.grad_from_output(y[i]);
    let xhat = |i: usize, c: usize| (x[i] - mean[c]) * invstd[c];
    let (sum_dz, sum_dzx) = col_sums2(rows, cols, |r, a, b| {
        for c in 0..cols {
            let i = r * cols + c;
            let d = dz(i);
            a[c] += d;
            b[c] += d * xhat(i, c);
        }
    });
    let n = rows as f64;
    let (mdz, mdzx): (Vec<f32>, Vec<f32>) = (0..cols).map(|c| ((sum_dz[c] / n) as f32, (sum_dzx[c] / n) as f32)).unzip();
    dx[..rows * cols].par_chunks_mut(cols).enumerate().for_each(|(r, dxr)| {
        for c in 0..cols {
            let i = r * cols + c;
            dxr[c] = gamma[c] * invstd[c] * (dz(i) - mdz[c] - xhat(i, c) * mdzx[c]);
        }
    });
    for c in 0..cols {
        dgamma[c] = sum_dzx[c] as f32;
        dbeta[c] = sum_dz[c] as f32;
    }
}
