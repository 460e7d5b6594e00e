//! CPU twins of shaders/lstm.wgsl: the LSTM recurrence and its backprop through time, one batch
//! row per task (rows are independent; rayon spreads them over the cores), each step in the
//! order the GPU kernels use.
//!
//! Layout: sequences are row-major [batch, steps, features]; gates are packed [i | f | g | o]
//! (PyTorch's order) along the last axis, 4H wide. With z = xproj_t + h_{t-1} W_hh:
//!   i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_g), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
//! The input projection x W_ih + b is NOT done here: it is one GEMM over all batch * steps
//! rows, and likewise the weight gradients are GEMMs over the `dgates` this backward writes.

use crate::backend::Act;

/// tanh as the WGSL side computes it (argument clamped to +/-15, where tanh is +/-1 in f32).
fn tanh_c(x: f32) -> f32 {
    x.clamp(-15.0, 15.0).tanh()
}

/// z_k = xproj[k] + sum_j h[j] w_hh[j, k], activated per gate block.
fn gate_activations(hidden: usize, xproj: &[f32], w_hh: &[f32], h: &[f32], gates: &mut [f32]) {
    let g4 = 4 * hidden;
    // z = xproj + h W_hh, accumulated row by row of W_hh (contiguous, so it vectorises)
    gates[..g4].copy_from_slice(&xproj[..g4]);
    for j in 0..hidden {
        let hj = h[j];
        for (z, w) in gates[..g4].iter_mut().zip(&w_hh[j * g4..(j + 1) * g4]) {
            *z += hj * w;
        }
    }
    for (k, z) in gates[..g4].iter_mut().enumerate() {
        *z = if (2 * hidden..3 * hidden).contains(&k) { tanh_c(*z) } else { Act::Sigmoid.apply(*z) };
    }
}

/// sum_k a[k] b[k] with eight partial sums (vectorises; a plain fold would not).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// Forward over the whole sequence. Outputs h_seq, c_seq, the activated gates and hprev
/// (h_{t-1} per step, h0 at t = 0, so dW_hh = hprev^T dgates is one GEMM).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    batch: usize,
    steps: usize,
    hidden: usize,
    xproj: &[f32],
    w_hh: &[f32],
    h0: &[f32],
    c0: &[f32],
    h_seq: &mut [f32],
    c_seq: &mut [f32],
    gates: &mut [f32],
    hprev: &mut [f32],
) {
    use rayon::prelude::*;
    let (h4, g4) = (hidden, 4 * hidden);
    // batch rows are independent: each owns its [steps x ...] block of every output
    let blocks = h_seq[..batch * steps * h4]
        .par_chunks_mut(steps * h4)
        .zip(c_seq[..batch * steps * h4].par_chunks_mut(steps * h4))
        .zip(gates[..batch * steps * g4].par_chunks_mut(steps * g4))
        .zip(hprev[..batch * steps * h4].par_chunks_mut(steps * h4));
    blocks.enumerate().for_each(|(b, (((h_seq, c_seq), gates), hprev))| {
        let mut h = h0[b * h4..(b + 1) * h4].to_vec();
        let mut c = c0[b * h4..(b + 1) * h4].to_vec();
        for t in 0..steps {
            let row = b * steps + t;
            let gt = &mut gates[t * g4..(t + 1) * g4];
            gate_activations(hidden, &xproj[row * g4..(row + 1) * g4], w_hh, &h, gt);
            hprev[t * h4..(t + 1) * h4].copy_from_slice(&h);
            for u in 0..hidden {
                let (i, f, g, o) = (gt[u], gt[h4 + u], gt[2 * h4 + u], gt[3 * h4 + u]);
                c[u] = f * c[u] + i * g;
                h[u] = o * tanh_c(c[u]);
            }
            c_seq[t * h4..(t + 1) * h4].copy_from_slice(&c);
            h_seq[t * h4..(t + 1) * h4].copy_from_slice(&h);
        }
    });
}

/// Backprop through time. `dh_seq` is dL/dh_t for every step (from the layers above); the
/// recurrent part dL/dh_{t-1} = dz_t W_hh^T and dL/dc_{t-1} = dc_t f_t are carried backwards
/// and end up as dh0, dc0. Writes the pre-activation gate gradients `dgates`:
///   dc = dc_next + dh o (1 - tanh^2 c_t)
///   dz_i = dc g i (1 - i), dz_f = dc c_{t-1} f (1 - f), dz_g = dc i (1 - g^2),
///   dz_o = dh tanh(c_t) o (1 - o).
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    batch: usize,
    steps: usize,
    hidden: usize,
    gates: &[f32],
    c_seq: &[f32],
    c0: &[f32],
    w_hh: &[f32],
    dh_seq: &[f32],
    dgates: &mut [f32],
    dh0: &mut [f32],
    dc0: &mut [f32],
) {
    use rayon::prelude::*;
    let (h4, g4) = (hidden, 4 * hidden);
    // batch rows are independent: each owns its block of dgates, dh0 and dc0
    let blocks = dgates[..batch * steps * g4]
        .par_chunks_mut(steps * g4)
        .zip(dh0[..batch * h4].par_chunks_mut(h4))
        .zip(dc0[..batch * h4].par_chunks_mut(h4));
    blocks.enumerate().for_each(|(b, ((dgates, dh0), dc0))| {
        // running dL/dh_t (recurrent part) and dL/dc_t, as in the kernel's dh0 / dc0 rows
        let mut dh_rec = vec![0f32; hidden];
        let mut dc_next = vec![0f32; hidden];
        for t in (0..steps).rev() {
            let row = b * steps + t;
            let gt = &gates[row * g4..(row + 1) * g4];
            let dz = &mut dgates[t * g4..(t + 1) * g4];
            for u in 0..hidden {
                let (i, f, g, o) = (gt[u], gt[h4 + u], gt[2 * h4 + u], gt[3 * h4 + u]);
                let c = c_seq[row * h4 + u];
                let c_prev = if t == 0 { c0[b * h4 + u] } else { c_seq[(row - 1) * h4 + u] };
                let tc = tanh_c(c);
                let dh = dh_seq[row * h4 + u] + dh_rec[u];
                let dc = dc_next[u] + dh * o * (1.0 - tc * tc);
                dz[u] = dc * g * (i * (1.0 - i));
                dz[h4 + u] = dc * c_prev * (f * (1.0 - f));
                dz[2 * h4 + u] = dc * i * (1.0 - g * g);
                dz[3 * h4 + u] = dh * tc * (o * (1.0 - o));
                dc_next[u] = dc * f;
            }
            for j in 0..hidden {
                dh_rec[j] = dot(dz, &w_hh[j * g4..(j + 1) * g4]);
            }
        }
        dh0.copy_from_slice(&dh_rec);
        dc0.copy_from_slice(&dc_next);
    });
}
