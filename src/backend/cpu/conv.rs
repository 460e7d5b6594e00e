//! CPU twins of shaders/conv.wgsl: 2-D convolution over NHWC tensors and its two adjoints.
//!
//! Each is "im2col + GEMM": a chunk of samples is unfolded into a matrix whose row is one
//! output pixel and whose columns are the `kh * kw * in_c` input values under the kernel
//! (zero outside the image), then one GEMM (`gemm::sgemm_strided`) does the arithmetic. Chunks
//! keep the unfolded matrix near 2 MiB whatever the batch; with a batch of several samples a
//! thread, whole pieces of the batch run on the threads, each with one-thread products. The
//! GPU kernels compute the same sums without materialising the matrix (implicit GEMM);
//! `tests/kernels_conv.rs` also checks these against direct loops.

use rayon::prelude::*;

use crate::backend::Conv2d;

/// Rows (output pixels) per sample and columns (kernel taps x input channels) of the unfolded
/// matrix.
fn dims(c: &Conv2d) -> (usize, usize) {
    (c.out_h * c.out_w, c.kh * c.kw * c.in_c)
}

/// A 1x1, stride 1, unpadded convolution is a plain GEMM on the input.
fn is_pointwise(c: &Conv2d) -> bool {
    c.kh == 1 && c.kw == 1 && c.stride == 1 && c.pad_h == 0 && c.pad_w == 0 && c.in_h == c.out_h && c.in_w == c.out_w
}

/// Samples per unfolded chunk: about `SSVAE_CONV_CHUNK` floats (default 2^19, 2 MiB), so the
/// unfolded matrix is still in cache when the GEMM packs it (16 MiB chunks went to memory and
/// back: SS_CNN's forward convolutions ran ~25% slower).
fn chunk_samples(c: &Conv2d) -> usize {
    let (p, k) = dims(c);
    (chunk_floats() / (p * k).max(1)).clamp(1, c.batch)
}

fn chunk_floats() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::env::var("SSVAE_CONV_CHUNK").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 19))
}

/// The adjoint of a stride-1 convolution is itself a stride-1 convolution of `dy` with the
/// kernel flipped in space and its channel axes swapped, padded by `k - 1 - pad`: as a forward
/// convolution it needs no scatter-add (col2im), which costs more than its GEMM.
fn adjoint_as_forward(c: &Conv2d) -> Option<Conv2d> {
    (c.stride == 1).then_some(Conv2d {
        batch: c.batch,
        in_h: c.out_h,
        in_w: c.out_w,
        in_c: c.out_c,
        out_h: c.in_h,
        out_w: c.in_w,
        out_c: c.in_c,
        kh: c.kh,
        kw: c.kw,
        stride: 1,
        pad_h: c.kh - 1 - c.pad_h,
        pad_w: c.kw - 1 - c.pad_w,
    })
}

/// `w` (kh x kw x in_c x out_c) flipped in space with its channel axes swapped: the weights of
/// [`adjoint_as_forward`] (kh x kw x out_c x in_c).
fn flip_weights(c: &Conv2d, w: &[f32]) -> Vec<f32> {
    let (ic, oc) = (c.in_c, c.out_c);
    let mut f = vec![0f32; c.w_len()];
    for ky in 0..c.kh {
        for kx in 0..c.kw {
            let src = ((c.kh - 1 - ky) * c.kw + (c.kw - 1 - kx)) * ic * oc;
            let dst = (ky * c.kw + kx) * oc * ic;
            for i in 0..ic {
                for o in 0..oc {
                    f[dst + o * ic + i] = w[src + i * oc + o];
                }
            }
        }
    }
    f
}

/// Unfolds samples `b0..b0 + nb` of `x` into `col` (nb * out_h * out_w rows of kh*kw*in_c),
/// over the threads where `threads`.
fn im2col(c: &Conv2d, x: &[f32], b0: usize, nb: usize, col: &mut [f32], threads: bool) {
    let (p, k) = dims(c);
    let img = c.in_h * c.in_w * c.in_c;
    let unfold_row = |(row, out): (usize, &mut [f32])| {
        let (b, pix) = (b0 + row / p, row % p);
        let (oy, ox) = (pix / c.out_w, pix % c.out_w);
        let xb = &x[b * img..(b + 1) * img];
        for ky in 0..c.kh {
            let iy = (oy * c.stride + ky) as isize - c.pad_h as isize;
            for kx in 0..c.kw {
                let ix = (ox * c.stride + kx) as isize - c.pad_w as isize;
                let dst = &mut out[(ky * c.kw + kx) * c.in_c..(ky * c.kw + kx + 1) * c.in_c];
                if iy < 0 || ix < 0 || iy >= c.in_h as isize || ix >= c.in_w as isize {
                    dst.fill(0.0);
                } else {
                    let s = (iy as usize * c.in_w + ix as usize) * c.in_c;
                    dst.copy_from_slice(&xb[s..s + c.in_c]);
                }
            }
        }
    };
    if threads {
        col[..nb * p * k].par_chunks_mut(k).enumerate().for_each(unfold_row);
    } else {
        col[..nb * p * k].chunks_mut(k).enumerate().for_each(unfold_row);
    }
}

/// Adds the unfolded gradient `col` of `nb` samples back onto their gradient `dx` (`nb` images,
/// the adjoint of `im2col`); samples are independent, so they run in parallel where `threads`.
fn col2im_add(c: &Conv2d, col: &[f32], nb: usize, dx: &mut [f32], threads: bool) {
    let (p, k) = dims(c);
    let img = c.in_h * c.in_w * c.in_c;
    let fold_sample = |(bi, dxb): (usize, &mut [f32])| {
        for pix in 0..p {
            let (oy, ox) = (pix / c.out_w, pix % c.out_w);
            let row = &col[(bi * p + pix) * k..(bi * p + pix + 1) * k];
            for ky in 0..c.kh {
                let iy = (oy * c.stride + ky) as isize - c.pad_h as isize;
                if iy < 0 || iy >= c.in_h as isize {
                    continue;
                }
                for kx in 0..c.kw {
                    let ix = (ox * c.stride + kx) as isize - c.pad_w as isize;
                    if ix < 0 || ix >= c.in_w as isize {
                        continue;
                    }
                    let s = (iy as usize * c.in_w + ix as usize) * c.in_c;
                    let src = &row[(ky * c.kw + kx) * c.in_c..(ky * c.kw + kx + 1) * c.in_c];
                    for (d, v) in dxb[s..s + c.in_c].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    };
    if threads {
        dx[..nb * img].par_chunks_mut(img).enumerate().for_each(fold_sample);
    } else {
        dx[..nb * img].chunks_mut(img).enumerate().for_each(fold_sample);
    }
}

/// Samples per piece when a convolution runs whole pieces of the batch on the threads (each
/// piece's unfolding and products on one thread), or `None` to run the samples in order with
/// the threads inside each product. The per-sample products are small (SS_CNN's 784 x 64 x
/// 576): the gemm crate runs them at 230 GFLOP/s on two threads against 165 on one (AVX-512;
/// 165 against 99 with AVX2), so two pieces at once do 1.4-2x the arithmetic of one product
/// over both threads. Four pieces a thread keep the threads even when a core is shared.
fn sample_pieces(batch: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (threads > 1 && batch >= 2 * threads).then(|| batch.div_ceil(4 * threads))
}

/// `c (m x n) = alpha * A B + beta * c` with explicit strides (row, column) for A and B.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    threads: bool,
) {
    let (sa, sb) = ((rsa as isize, csa as isize), (rsb as isize, csb as isize));
    // SAFETY: callers pass slices covering the addressed m x k, k x n and m x n elements.
    unsafe {
        if threads {
            super::gemm::sgemm_strided(m, n, k, 1.0, a, sa, b, sb, beta, &mut c[..m * n])
        } else {
            super::gemm::sgemm_strided_one_thread(m, n, k, 1.0, a, sa, b, sb, beta, &mut c[..m * n])
        }
    }
}

/// y = conv(x, w) + bias.
pub fn conv2d_forward(c: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (p, k) = dims(c);
    let oc = c.out_c;
    if is_pointwise(c) {
        sgemm(c.batch * p, oc, k, x, (k, 1), w, (oc, 1), 0.0, &mut y[..c.out_len()], true);
    } else {
        let img = c.in_h * c.in_w * c.in_c;
        match sample_pieces(c.batch) {
            Some(per) => y[..c.out_len()].par_chunks_mut(per * p * oc).enumerate().for_each(|(i, yp)| {
                let nb = yp.len() / (p * oc);
                forward_samples(c, &x[i * per * img..(i * per + nb) * img], w, nb, yp, false)
            }),
            None => forward_samples(c, x, w, c.batch, &mut y[..c.out_len()], true),
        }
    }
    if let Some(bias) = bias {
        y[..c.out_len()].par_chunks_mut(oc).for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
    }
}

/// The unfolded forward product of the `nb` samples in `x` into their outputs `y`, chunk by
/// chunk, with the threads inside each step where `threads`.
fn forward_samples(c: &Conv2d, x: &[f32], w: &[f32], nb: usize, y: &mut [f32], threads: bool) {
    let (p, k) = dims(c);
    let oc = c.out_c;
    let chunk = chunk_samples(c).min(nb.max(1));
    let mut col = vec![0f32; chunk * p * k];
    for b0 in (0..nb).step_by(chunk) {
        let n = chunk.min(nb - b0);
        im2col(c, x, b0, n, &mut col, threads);
        sgemm(n * p, oc, k, &col, (k, 1), w, (oc, 1), 0.0, &mut y[b0 * p * oc..(b0 + n) * p * oc], threads);
    }
}

/// dx = the adjoint of the convolution applied to dy, plus `bias` per input channel.
pub fn conv2d_backward_input(c: &Conv2d, dy: &[f32], w: &[f32], bias: Option<&[f32]>, dx: &mut [f32]) {
    let (p, k) = dims(c);
    let oc = c.out_c;
    let dx = &mut dx[..c.in_len()];
    if is_pointwise(c) {
        // dx (rows x in_c) = dy (rows x oc) W^T, W stored in_c x oc
        sgemm(c.batch * p, k, oc, dy, (oc, 1), w, (1, oc), 0.0, dx, true);
    } else if let Some(adj) = adjoint_as_forward(c) {
        conv2d_forward(&adj, dy, &flip_weights(c, w), None, dx);
    } else {
        let img = c.in_h * c.in_w * c.in_c;
        match sample_pieces(c.batch) {
            Some(per) => dx.par_chunks_mut(per * img).enumerate().for_each(|(i, dxp)| {
                let nb = dxp.len() / img;
                backward_input_samples(c, &dy[i * per * p * oc..(i * per + nb) * p * oc], w, nb, dxp, false)
            }),
            None => backward_input_samples(c, dy, w, c.batch, dx, true),
        }
    }
    if let Some(bias) = bias {
        dx.par_chunks_mut(c.in_c).for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
    }
}

/// The unfolded adjoint product (then col2im) of the `nb` samples of `dy` into their input
/// gradients `dx`, chunk by chunk, with the threads inside each step where `threads`.
fn backward_input_samples(c: &Conv2d, dy: &[f32], w: &[f32], nb: usize, dx: &mut [f32], threads: bool) {
    let (p, k) = dims(c);
    let (oc, img) = (c.out_c, c.in_h * c.in_w * c.in_c);
    dx.fill(0.0);
    let chunk = chunk_samples(c).min(nb.max(1));
    let mut col = vec![0f32; chunk * p * k];
    for b0 in (0..nb).step_by(chunk) {
        let n = chunk.min(nb - b0);
        sgemm(n * p, k, oc, &dy[b0 * p * oc..(b0 + n) * p * oc], (oc, 1), w, (1, oc), 0.0, &mut col[..n * p * k], threads);
        col2im_add(c, &col, n, &mut dx[b0 * img..(b0 + n) * img], threads);
    }
}

/// dw (kh*kw*in_c x out_c) = sum over samples of im2col(x)^T dy, written or accumulated.
pub fn conv2d_backward_weight(c: &Conv2d, x: &[f32], dy: &[f32], accumulate: bool, dw: &mut [f32]) {
    backward_weight(c, x, dy, accumulate, dw, true)
}

/// [`conv2d_backward_weight`], with the threads inside each step where `threads`.
fn backward_weight(c: &Conv2d, x: &[f32], dy: &[f32], accumulate: bool, dw: &mut [f32], threads: bool) {
    let (p, k) = dims(c);
    let oc = c.out_c;
    let dw = &mut dw[..c.w_len()];
    if is_pointwise(c) {
        // dw (in_c x oc) = x^T (in_c x rows) dy (rows x oc)
        sgemm(k, oc, c.batch * p, x, (1, k), dy, (oc, 1), if accumulate { 1.0 } else { 0.0 }, dw, threads);
        return;
    }
    let chunk = chunk_samples(c);
    let mut col = vec![0f32; chunk * p * k];
    for (i, b0) in (0..c.batch).step_by(chunk).enumerate() {
        let nb = chunk.min(c.batch - b0);
        im2col(c, x, b0, nb, &mut col, threads);
        let beta = if i > 0 || accumulate { 1.0 } else { 0.0 };
        sgemm(k, oc, nb * p, &col, (1, k), &dy[b0 * p * oc..(b0 + nb) * p * oc], (oc, 1), beta, dw, threads);
    }
}

/// Split-K twin: `part[s]` = the weight gradient of samples `s * samples ..` (at most
/// `samples` of them), each computed as [`conv2d_backward_weight`] on that sub-batch. The runs
/// are independent: where there are more of them than threads, each runs whole on one thread
/// (see [`sample_pieces`] for why), else one after another with the threads inside.
pub fn conv2d_backward_weight_split(c: &Conv2d, samples: usize, x: &[f32], dy: &[f32], part: &mut [f32]) {
    let (wl, inl, outl) = (c.w_len(), c.in_h * c.in_w * c.in_c, c.out_h * c.out_w * c.out_c);
    let runs = c.batch.div_ceil(samples.max(1));
    let run = |s: usize, dw: &mut [f32], threads: bool| {
        let b0 = s * samples;
        let nb = samples.min(c.batch - b0);
        let sub = Conv2d { batch: nb, ..*c };
        backward_weight(&sub, &x[b0 * inl..(b0 + nb) * inl], &dy[b0 * outl..(b0 + nb) * outl], false, dw, threads);
    };
    let part = &mut part[..runs * wl];
    if rayon::current_num_threads() > 1 && runs >= rayon::current_num_threads() {
        part.par_chunks_mut(wl).enumerate().for_each(|(s, dw)| run(s, dw, false));
    } else {
        part.chunks_mut(wl).enumerate().for_each(|(s, dw)| run(s, dw, true));
    }
}
