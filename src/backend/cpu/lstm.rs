//! CPU twins of shaders/lstm.wgsl: the LSTM recurrence and its backprop through time, one batch
//! row per task (rows are independent; rayon spreads them over the cores), each step in the
//! order the GPU kernels use.
//!
//! Layout: sequences are row-major [batch, steps, features]; gates are packed [i | f | g | o]
//! (PyTorch's order) along the last axis, 4H wide. With z = xproj_t + h_{t-1} W_hh:
//!   i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_g), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
//! The input projection x W_ih + b is NOT done here: it is one GEMM over all batch * steps
//! rows, and likewise the weight gradients are GEMMs over the `dgates` this backward writes.

/// e^x without a libm call, so loops over gates compile to vector code (libm's expf and tanhf,
/// called per element, were most of the recurrence's time: 200 per batch row and step).
/// Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial for e^r (about 1 ulp),
/// 2^n from the exponent bits; rounding by the 1.5 * 2^23 trick (no `round`, which is a libm
/// call on baseline x86-64).
#[inline(always)]
fn exp_v(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    const MAGIC: f32 = 12582912.0; // 1.5 * 2^23
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// The logistic function as the WGSL side writes it: e^{-|x|} only, so nothing overflows.
#[inline(always)]
fn sigmoid_v(x: f32) -> f32 {
    let e = exp_v(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// tanh as the WGSL side computes it (argument clamped to +/-15, where tanh is +/-1 in f32):
/// Cephes' odd polynomial below 0.625 (where 1 - e^{-2|x|} would cancel), else
/// (1 - e^{-2|x|}) / (1 + e^{-2|x|}) with the sign of x.
#[inline(always)]
fn tanh_c(x: f32) -> f32 {
    let x = x.clamp(-15.0, 15.0);
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z + -5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z + -3.333_328_2e-1;
    let small = x + x * z * p;
    let e = exp_v(-2.0 * x.abs());
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    if x.abs() < 0.625 {
        small
    } else {
        big
    }
}

/// z_k = xproj[k] + sum_j h[j] w_hh[j, k], activated per gate block.
#[inline(always)]
fn gate_activations(hidden: usize, xproj: &[f32], w_hh: &[f32], h: &[f32], gates: &mut [f32]) {
    let g4 = 4 * hidden;
    // z = xproj + h W_hh, accumulated row by row of W_hh (contiguous, so it vectorises)
    // in blocks of 32 gates held in registers over all j (W_hh from L1 is the only load);
    // each z_k still adds its terms in j order
    const B: usize = 32;
    let mut k0 = 0;
    while k0 + B <= g4 {
        let mut acc = [0f32; B];
        acc.copy_from_slice(&xproj[k0..k0 + B]);
        for (j, &hj) in h[..hidden].iter().enumerate() {
            let w = &w_hh[j * g4 + k0..j * g4 + k0 + B];
            for l in 0..B {
                acc[l] += hj * w[l];
            }
        }
        gates[k0..k0 + B].copy_from_slice(&acc);
        k0 += B;
    }
    gates[k0..g4].copy_from_slice(&xproj[k0..g4]);
    for (j, &hj) in h[..hidden].iter().enumerate() {
        for (z, w) in gates[k0..g4].iter_mut().zip(&w_hh[j * g4 + k0..(j + 1) * g4]) {
            *z += hj * w;
        }
    }
    // i, f sigmoid; g tanh; o sigmoid: three branch-free loops that vectorise
    let (ifg, o) = gates[..g4].split_at_mut(3 * hidden);
    let (i_f, g) = ifg.split_at_mut(2 * hidden);
    // plain loops: an iterator adapter such as `chain` was compiled as a separate function
    // outside the AVX2 path and was ~15% of the forward (perf, one thread)
    for z in i_f.iter_mut() {
        *z = sigmoid_v(*z);
    }
    for z in o.iter_mut() {
        *z = sigmoid_v(*z);
    }
    for z in g.iter_mut() {
        *z = tanh_c(*z);
    }
}

/// sum_k a[k] b[k] with eight partial sums (vectorises; a plain fold would not).
#[inline(always)]
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
        let rows = &xproj[b * steps * g4..(b + 1) * steps * g4];
        let (h0, c0) = (&h0[b * h4..(b + 1) * h4], &c0[b * h4..(b + 1) * h4]);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above)
            return unsafe { forward_row_avx2(steps, hidden, rows, w_hh, h0, c0, h_seq, c_seq, gates, hprev) };
        }
        forward_row(steps, hidden, rows, w_hh, h0, c0, h_seq, c_seq, gates, hprev)
    });
}

/// One batch row's recurrence (its blocks of the outputs; `xproj` its steps x 4H rows).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_row(
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
    let (h4, g4) = (hidden, 4 * hidden);
    let mut h = h0.to_vec();
    let mut c = c0.to_vec();
    for t in 0..steps {
        let gt = &mut gates[t * g4..(t + 1) * g4];
        gate_activations(hidden, &xproj[t * g4..(t + 1) * g4], w_hh, &h, gt);
        hprev[t * h4..(t + 1) * h4].copy_from_slice(&h);
        let (i, rest) = gt.split_at(h4);
        let (f, rest) = rest.split_at(h4);
        let (g, o) = rest.split_at(h4);
        for u in 0..hidden {
            c[u] = f[u] * c[u] + i[u] * g[u];
            h[u] = o[u] * tanh_c(c[u]);
        }
        c_seq[t * h4..(t + 1) * h4].copy_from_slice(&c);
        h_seq[t * h4..(t + 1) * h4].copy_from_slice(&h);
    }
}

/// [`forward_row`] compiled for AVX2 (8-wide vectors instead of baseline x86-64's 4): the
/// same operations in the same order, so the same results (no FMA contraction: the `fma`
/// feature is not enabled).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_row_avx2(
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
    forward_row(steps, hidden, xproj, w_hh, h0, c0, h_seq, c_seq, gates, hprev)
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
        let (gates, c_seq, dh_seq) = (
            &gates[b * steps * g4..(b + 1) * steps * g4],
            &c_seq[b * steps * h4..(b + 1) * steps * h4],
            &dh_seq[b * steps * h4..(b + 1) * steps * h4],
        );
        let c0 = &c0[b * h4..(b + 1) * h4];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above)
            return unsafe { backward_row_avx2(steps, hidden, gates, c_seq, c0, w_hh, dh_seq, dgates, dh0, dc0) };
        }
        backward_row(steps, hidden, gates, c_seq, c0, w_hh, dh_seq, dgates, dh0, dc0)
    });
}

/// One batch row's backprop through time (its blocks of every input and output).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row(
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
    let (h4, g4) = (hidden, 4 * hidden);
    // running dL/dh_t (recurrent part) and dL/dc_t, as in the kernel's dh0 / dc0 rows
    let mut dh_rec = vec![0f32; hidden];
    let mut dc_next = vec![0f32; hidden];
    for t in (0..steps).rev() {
        let gt = &gates[t * g4..(t + 1) * g4];
        let dz = &mut dgates[t * g4..(t + 1) * g4];
        let c_prev = if t == 0 { c0 } else { &c_seq[(t - 1) * h4..t * h4] };
        let (c_t, dh_t) = (&c_seq[t * h4..(t + 1) * h4], &dh_seq[t * h4..(t + 1) * h4]);
        for u in 0..hidden {
            let (i, f, g, o) = (gt[u], gt[h4 + u], gt[2 * h4 + u], gt[3 * h4 + u]);
            let tc = tanh_c(c_t[u]);
            let dh = dh_t[u] + dh_rec[u];
            let dc = dc_next[u] + dh * o * (1.0 - tc * tc);
            dz[u] = dc * g * (i * (1.0 - i));
            dz[h4 + u] = dc * c_prev[u] * (f * (1.0 - f));
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
}

/// [`backward_row`] compiled for AVX2, as [`forward_row_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_row_avx2(
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
    backward_row(steps, hidden, gates, c_seq, c0, w_hh, dh_seq, dgates, dh0, dc0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorisable exp, sigmoid and tanh against f64 over [-20, 20] in steps of 1e-3
    /// (and the clamped tails): within 2 ulp relative, 1e-7 absolute.
    #[test]
    fn fast_activations_match_f64() {
        let (mut worst_exp, mut worst_sig, mut worst_tanh) = (0f64, 0f64, 0f64);
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            let xd = x as f64;
            worst_exp = worst_exp.max(((exp_v(x) as f64) - xd.exp()).abs() / xd.exp());
            worst_sig = worst_sig.max(((sigmoid_v(x) as f64) - 1.0 / (1.0 + (-xd).exp())).abs());
            worst_tanh = worst_tanh.max(((tanh_c(x) as f64) - xd.tanh()).abs() / xd.tanh().abs().max(1e-3));
        }
        assert!(worst_exp < 2.5e-7, "exp: worst relative error {worst_exp}");
        assert!(worst_sig < 1.2e-7, "sigmoid: worst absolute error {worst_sig}");
        assert!(worst_tanh < 2.5e-7, "tanh: worst relative error {worst_tanh}");
        assert_eq!(tanh_c(40.0), 1.0);
        assert!(sigmoid_v(-200.0) < 1e-37);
    }
}
