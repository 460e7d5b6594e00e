//! CPU twin of shaders/gemm.wgsl: `C = act(alpha * op(A) op(B) + bias + beta * C)`.

use crate::backend::{Act, Gemm};

pub fn gemm(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
    let (m, n, k) = (g.m, g.n, g.k);
    if g.trans_a && !g.trans_b && m * n <= LONG_K_MAX_OUTPUT && k >= LONG_K_MIN {
        let prod = gemm_tn_long_k(m, n, k, a, b);
        for (i, v) in c[..m * n].iter_mut().enumerate() {
            let x = g.alpha * prod[i] + bias.map_or(0.0, |b| b[i % n]) + if g.beta != 0.0 { g.beta * *v } else { 0.0 };
            *v = g.act.apply(x);
        }
        return;
    }
    // Row/column strides of op(A) (m x k) and op(B) (k x n) in their stored layouts.
    let (rsa, csa) = if g.trans_a { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if g.trans_b { (1, k as isize) } else { (n as isize, 1) };
    let fused = g.bias || g.act != Act::Identity;
    if fused && g.beta != 0.0 {
        return gemm_with_old(g, a, b, bias, c);
    }
    let c = &mut c[..m * n];
    if fused && !g.trans_a && k > 0 && m >= FUSED_MIN_ROWS && m * n >= 1 << 16 {
        return gemm_fused_blocks(g, a, b, bias, c);
    }
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (checked by Op::check), and
    // the strides above address exactly those elements.
    unsafe { sgemm_strided(m, n, k, g.alpha, a, (rsa, csa), b, (rsb, csb), if fused { 0.0 } else { g.beta }, c) };
    if fused {
        epilogue(n, g.act, bias, c);
    }
}

/// Fewest rows of a block of [`gemm_fused_blocks`].
const FUSED_BLOCK_ROWS_MIN: usize = 64;
/// Fewest rows of a product that [`gemm_fused_blocks`] takes: each block packs B again, which
/// pays only when B is small next to the output (the RNN's k = 6-160 projections over batch x
/// steps rows), not for the dense layers at batch 128 (B up to 1024 x 1024), which keep the
/// threaded product and the separate epilogue.
const FUSED_MIN_ROWS: usize = 2048;

/// `act(A op(B) + bias)` with many rows (the RNN's 16384-row input projections and per-step
/// heads): blocks of rows over the threads, each block's product (one thread) followed at once
/// by its bias and activation while the block is still in L2 (~64 KiB), instead of a second
/// pass over an output of several MiB after the whole product.
fn gemm_fused_blocks(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
    use rayon::prelude::*;
    let (m, n, k) = (g.m, g.n, g.k);
    let rows = (16384 / n).max(FUSED_BLOCK_ROWS_MIN).min(m);
    let (rsb, csb) = if g.trans_b { (1, k as isize) } else { (n as isize, 1) };
    with_act!(g.act, f => c.par_chunks_mut(rows * n).enumerate().for_each(|(blk, cb)| {
        let r0 = blk * rows;
        let mb = cb.len() / n;
        // SAFETY: rows r0..r0 + mb of A (row-major, k wide) and all of B are in bounds (Op::check)
        unsafe { gemm_crate(mb, n, k, g.alpha, &a[r0 * k..(r0 + mb) * k], (k as isize, 1), b, (rsb, csb), 0.0, cb, gemm::Parallelism::None) };
        for row in cb.chunks_exact_mut(n) {
            match bias {
                Some(bv) => row.iter_mut().zip(&bv[..n]).for_each(|(v, bb)| *v = f(*v + bb)),
                None => row.iter_mut().for_each(|v| *v = f(*v)),
            }
        }
    }))
}

/// c = act(c + bias) over the rows of a row-major output n wide: rows in blocks over the
/// threads, the activation compiled into the loop (a `match` per element kept this scalar and
/// single-threaded, and it took longer than the product itself on the RNN's 16384 x 160
/// outputs).
fn epilogue(n: usize, act: Act, bias: Option<&[f32]>, c: &mut [f32]) {
    use rayon::prelude::*;
    if n == 0 {
        return;
    }
    let block = (16384 / n).max(1) * n;
    with_act!(act, f => c.par_chunks_mut(block).for_each(|blk| {
        for row in blk.chunks_exact_mut(n) {
            match bias {
                Some(b) => row.iter_mut().zip(&b[..n]).for_each(|(v, b)| *v = f(*v + b)),
                None => row.iter_mut().for_each(|v| *v = f(*v)),
            }
        }
    }))
}

/// `c (m x n, row-major) = alpha * op(A) op(B) + beta * c`, op(A) and op(B) addressed by
/// (row, column) strides, through the engine that is faster for the shape on the CPUs measured
/// (BENCHMARKS.md, "Two GEMM engines"): matrixmultiply for A^T B with a large output (the dense
/// layers' weight gradients, 1024 x 1024 over 128 rows: 172-204 GFLOP/s against 146-183) and
/// for long plain products with 128 or more columns (the RNN's 16384 x 160 input
/// projections); the `gemm` crate for the rest, where matrixmultiply's packing dominates (the
/// dense layers at batch 128: 128 x 1024 x 1024 at 154-169 GFLOP/s against 64-132; the
/// convolutions' per-image 784 x 64 x 576: 180 against 129; 16384 x 40 x 160 with B
/// transposed: 156 against 92). Both are deterministic, and the choice depends only on the
/// shape, so a run gives the same bits every time on the same machine.
///
/// # Safety
/// `a`, `b` and `c` must hold every element the strides address.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_strided(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    beta: f32,
    c: &mut [f32],
) {
    let a_transposed = rsa == 1 && csa != 1;
    let b_transposed = rsb == 1 && csb != 1;
    let matrixmultiply_wins =
        if a_transposed && !b_transposed { m * n >= 1 << 18 } else { !a_transposed && !b_transposed && m >= 4096 && n >= 128 };
    if m == 0 || n == 0 {
        return;
    }
    if matrixmultiply_wins || k == 0 {
        matrixmultiply::sgemm(m, k, n, alpha, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1);
        return;
    }
    // threads only where there is enough work to share (about 1 ms of one core)
    let parallelism = if m * n * k >= 1 << 20 { gemm::Parallelism::Rayon(rayon::current_num_threads()) } else { gemm::Parallelism::None };
    gemm_crate(m, n, k, alpha, a, (rsa, csa), b, (rsb, csb), beta, c, parallelism)
}

/// The `gemm` crate's product with [`sgemm_strided`]'s arguments.
///
/// # Safety
/// As [`sgemm_strided`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    beta: f32,
    c: &mut [f32],
    parallelism: gemm::Parallelism,
) {
    // gemm's naming: dst = alpha * dst + beta * lhs rhs, strides (column, row)
    gemm::gemm(
        m,
        n,
        k,
        c.as_mut_ptr(),
        1,
        n as isize,
        beta != 0.0,
        a.as_ptr(),
        csa,
        rsa,
        b.as_ptr(),
        csb,
        rsb,
        beta,
        alpha,
        false,
        false,
        false,
        parallelism,
    );
}

/// General path keeping the old C for `beta != 0` together with a bias or activation.
fn gemm_with_old(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
    let old: Vec<f32> = c[..g.m * g.n].to_vec();
    let plain = Gemm { bias: false, act: Act::Identity, beta: 0.0, ..*g };
    gemm(&plain, a, b, None, c);
    for (i, v) in c[..g.m * g.n].iter_mut().enumerate() {
        let x = *v + bias.map_or(0.0, |b| b[i % g.n]) + g.beta * old[i];
        *v = g.act.apply(x);
    }
}

/// A^T B (A stored k x m) with a small output and a long k is a weight gradient summed over
/// batch x steps rows (e.g. 40 x 160 over 16384 rows in the RNN). matrixmultiply runs such a
/// product on one core at a few GFLOP/s, so: split k over the threads, each accumulating its
/// rows in register tiles (below), then sum the partial products.
const LONG_K_MIN: usize = 4096;
const LONG_K_MAX_OUTPUT: usize = 1 << 16;

/// Register tile of the long-k product: TM rows of the output by TN columns (two 8-wide
/// vectors), 8 accumulators that stay in registers over KC rows of A and B. The previous
/// kernel added one outer product at a time into the output in memory (a load and a store per
/// multiply-add) and ran the RNN's weight gradients at ~60 GFLOP/s.
const TM: usize = 4;
const TN: usize = 16;
/// Rows of A and B per panel: a column tile of B (KC x TN floats, 4 KiB) stays in L1 while
/// the row tiles of A pass over it (64 measured 4-8% faster than 32 on the RNN's gradients).
const KC: usize = 64;

fn gemm_tn_long_k(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    // the padded output is the smaller way round: C or C^T = B^T A (a 40 x 6 product pads to
    // 8 x 48 transposed instead of 40 x 16)
    let pad = |x: usize, t: usize| x.div_ceil(t) * t;
    if pad(n, TM) * pad(m, TN) < pad(m, TM) * pad(n, TN) {
        let ct = gemm_tn_long_k_tiles(n, m, k, b, a);
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = ct[j * m + i];
            }
        }
        return c;
    }
    gemm_tn_long_k_tiles(m, n, k, a, b)
}

fn gemm_tn_long_k_tiles(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1024;
    let fma = super::fma_available();
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(TN) * TN);
    let padded = (0..k.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ch| {
            let mut acc = vec![0f32; mp * np];
            let rows = ch * CHUNK..((ch + 1) * CHUNK).min(k);
            #[cfg(target_arch = "x86_64")]
            if fma {
                // SAFETY: `fma` is true only where the CPU has AVX2 and FMA
                unsafe { tiles_avx2_fma(m, n, rows, a, b, &mut acc) };
                return acc;
            }
            let _ = fma;
            tiles::<false>(m, n, rows, a, b, &mut acc);
            acc
        })
        .reduce(
            || vec![0f32; mp * np],
            |mut x, y| {
                x.iter_mut().zip(&y).for_each(|(p, q)| *p += q);
                x
            },
        );
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        c[i * n..(i + 1) * n].copy_from_slice(&padded[i * np..i * np + n]);
    }
    c
}

/// acc (mp x np, the output padded to whole tiles) += sum over rows kk of a[kk] (m) outer
/// b[kk] (n): KC rows at a time, copied into zero-padded panels where m or n is not a whole
/// number of tiles (so every tile is whole),
/// then each TM x TN tile sums them in registers and adds the result into acc once.
#[inline(always)]
fn tiles<const FMA: bool>(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(TN) * TN);
    // a panel is copied only where padding is needed; whole-tile widths are read in place
    let mut pa_buf = vec![0f32; if mp == m { 0 } else { KC * mp }];
    let mut pb_buf = vec![0f32; if np == n { 0 } else { KC * np }];
    let mut k0 = rows.start;
    while k0 < rows.end {
        let kc = KC.min(rows.end - k0);
        let pa: &[f32] = if mp == m {
            &a[k0 * m..(k0 + kc) * m]
        } else {
            for r in 0..kc {
                pa_buf[r * mp..r * mp + m].copy_from_slice(&a[(k0 + r) * m..(k0 + r + 1) * m]);
            }
            &pa_buf
        };
        let pb: &[f32] = if np == n {
            &b[k0 * n..(k0 + kc) * n]
        } else {
            for r in 0..kc {
                pb_buf[r * np..r * np + n].copy_from_slice(&b[(k0 + r) * n..(k0 + r + 1) * n]);
            }
            &pb_buf
        };
        for j0 in (0..np).step_by(TN) {
            for i0 in (0..mp).step_by(TM) {
                let mut t = [[0f32; TN]; TM];
                for r in 0..kc {
                    let av: &[f32; TM] = pa[r * mp + i0..r * mp + i0 + TM].try_into().unwrap();
                    let bv: &[f32; TN] = pb[r * np + j0..r * np + j0 + TN].try_into().unwrap();
                    for x in 0..TM {
                        for y in 0..TN {
                            t[x][y] = super::madd::<FMA>(av[x], bv[y], t[x][y]);
                        }
                    }
                }
                for x in 0..TM {
                    let o = &mut acc[(i0 + x) * np + j0..(i0 + x) * np + j0 + TN];
                    for y in 0..TN {
                        o[y] += t[x][y];
                    }
                }
            }
        }
        k0 += kc;
    }
}

/// [`tiles`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tiles_avx2_fma(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    tiles::<true>(m, n, rows, a, b, acc)
}
