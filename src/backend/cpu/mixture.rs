//! CPU twins of shaders/mixture.wgsl: the kernels that let a model sum its objective over a
//! discrete latent y in one batched pass (M2, GM-DGM). A batch of R rows is expanded to R * K
//! rows, one per (row, class) (`repeat_rows`, adjoint `repeat_rows_backward`); per-row losses
//! computed on the expanded batch are then weighted by q(y|x) (`weighted_row_sum`, which also
//! gives the gradient w.r.t. the weights, and `row_scale`, which weights the loss's own
//! gradient). `categorical_kl` is the discrete KL term and `kl_gaussians` the KL between two
//! diagonal Gaussians with gradients for both (the GM-DGM's learned class-conditional prior).

/// out[r * copies + k, :] = x[r, :].
pub fn repeat_rows(rows: usize, cols: usize, copies: usize, x: &[f32], out: &mut [f32]) {
    for r in 0..rows {
        for k in 0..copies {
            let o = (r * copies + k) * cols;
            out[o..o + cols].copy_from_slice(&x[r * cols..(r + 1) * cols]);
        }
    }
}

/// dx[r, :] = sum over k of dout[r * copies + k, :].
pub fn repeat_rows_backward(rows: usize, cols: usize, copies: usize, dout: &[f32], dx: &mut [f32]) {
    for r in 0..rows {
        for j in 0..cols {
            let mut s = 0.0f32;
            for k in 0..copies {
                s += dout[(r * copies + k) * cols + j];
            }
            dx[r * cols + j] = s;
        }
    }
}

/// y[r, :] = alpha * w[r] * x[r, :].
pub fn row_scale(rows: usize, cols: usize, alpha: f32, x: &[f32], w: &[f32], y: &mut [f32]) {
    for r in 0..rows {
        let a = alpha * w[r];
        for i in r * cols..(r + 1) * cols {
            y[i] = a * x[i];
        }
    }
}

/// out[r] = scale * sum_k w[r, k] loss[r, k]; dw[r, k] = scale * loss[r, k].
pub fn weighted_row_sum(rows: usize, classes: usize, scale: f32, loss: &[f32], w: &[f32], out: &mut [f32], dw: &mut [f32]) {
    for r in 0..rows {
        let mut s = 0.0f32;
        for i in r * classes..(r + 1) * classes {
            s += w[i] * loss[i];
            dw[i] = scale * loss[i];
        }
        out[r] = scale * s;
    }
}

/// Unlabeled rows (label >= classes): KL(q || p) = sum_k q_k (log q_k - log p_k) with
/// q = softmax(logits), gradient d/dlogit_j = q_j ((log q_j - log p_j) - KL). Labeled rows:
/// -log p(y), gradient 0. Everything times `scale`.
#[allow(clippy::too_many_arguments)]
pub fn categorical_kl(
    rows: usize,
    classes: usize,
    scale: f32,
    logits: &[f32],
    log_prior: &[f32],
    labels: &[u32],
    loss: &mut [f32],
    dl: &mut [f32],
) {
    for r in 0..rows {
        let s = r * classes..(r + 1) * classes;
        let y = labels[r] as usize;
        if y < classes {
            loss[r] = -scale * log_prior[y];
            dl[s].fill(0.0);
            continue;
        }
        let row = &logits[s.clone()];
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
        let lse = max + sum.ln();
        let mut kl = 0.0f32;
        for j in 0..classes {
            let lq = row[j] - lse;
            kl += lq.exp() * (lq - log_prior[j]);
        }
        loss[r] = scale * kl;
        for (j, i) in s.enumerate() {
            let lq = row[j] - lse;
            dl[i] = scale * lq.exp() * ((lq - log_prior[j]) - kl);
        }
    }
}

/// Log-softmax of one row into `out`.
fn log_softmax(row: &[f32], out: &mut [f32]) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let lse = max + sum.ln();
    for (o, &x) in out.iter_mut().zip(row) {
        *o = x - lse;
    }
}

/// loss[r] = scale KL(softmax(target_r) || softmax(logits_r)) = scale sum_j p_j (log p_j -
/// log q_j); dl = scale (q - p), the gradient w.r.t. `logits` (the target is held fixed).
pub fn consistency_kl(rows: usize, classes: usize, scale: f32, logits: &[f32], target: &[f32], loss: &mut [f32], dl: &mut [f32]) {
    let mut lq = vec![0f32; classes];
    let mut lp = vec![0f32; classes];
    for r in 0..rows {
        let s = r * classes..(r + 1) * classes;
        log_softmax(&logits[s.clone()], &mut lq);
        log_softmax(&target[s.clone()], &mut lp);
        let mut kl = 0.0f32;
        for j in 0..classes {
            kl += lp[j].exp() * (lp[j] - lq[j]);
        }
        loss[r] = scale * kl;
        for (j, i) in s.enumerate() {
            dl[i] = scale * (lq[j].exp() - lp[j].exp());
        }
    }
}

/// KL(N(mq, e^lq) || N(mp, e^lp)) = 0.5 sum (lp - lq + (e^lq + (mq - mp)^2) / e^lp - 1) per
/// row; gradients: d/dmq = (mq - mp) / vp, d/dlq = 0.5 (vq / vp - 1),
/// d/dlp = 0.5 (1 - (vq + (mq - mp)^2) / vp); all times `scale`.
#[allow(clippy::too_many_arguments)]
pub fn kl_gaussians(
    rows: usize,
    cols: usize,
    scale: f32,
    mq: &[f32],
    lq: &[f32],
    mp: &[f32],
    lp: &[f32],
    loss: &mut [f32],
    dmq: &mut [f32],
    dlq: &mut [f32],
    dlp: &mut [f32],
) {
    for r in 0..rows {
        let mut s = 0.0f64;
        for i in r * cols..(r + 1) * cols {
            let inv_vp = (-lp[i]).exp();
            let vq_over_vp = (lq[i] - lp[i]).exp();
            let d = mq[i] - mp[i];
            s += (0.5 * (lp[i] - lq[i] + vq_over_vp + d * d * inv_vp - 1.0)) as f64;
            dmq[i] = scale * d * inv_vp;
            dlq[i] = scale * 0.5 * (vq_over_vp - 1.0);
            dlp[i] = scale * 0.5 * (1.0 - vq_over_vp - d * d * inv_vp);
        }
        loss[r] = scale * s as f32;
    }
}
