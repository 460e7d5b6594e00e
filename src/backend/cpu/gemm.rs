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
    let c = &mut c[..m * n];
    if fused && g.beta == 0.0 && !g.trans_a && k > 0 && m >= FUSED_MIN_ROWS && m * n >= 1 << 16 {
        return gemm_fused_blocks(g, a, b, bias, c);
    }
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (checked by Op::check), and
    // the strides above address exactly those elements.
    unsafe { sgemm_strided(m, n, k, g.alpha, a, (rsa, csa), b, (rsb, csb), g.beta, c) };
    // act(alpha A B + beta C + bias): the old C joins in the product's pass
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
/// (BENCHMARKS.md, "Two GEMM engines"; where the gemm crate runs AVX-512, the gemm crate for
/// all of them, see "AVX-512 in the gemm crate"): matrixmultiply for A^T B with a large output
/// (the dense layers' weight gradients, 1024 x 1024 over 128 rows: 172-204 GFLOP/s against
/// 146-183) and for long plain products with 128 or more columns (the RNN's 16384 x 160 input
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
    // (measured with the gemm crate's AVX2 kernels; with its AVX-512 kernels it wins these
    // shapes too: A^T B 1034 x 1024 x 1280 at 304 GFLOP/s against 237, 16384 x 160 x 40 at 271
    // against 246)
    let matrixmultiply_wins = !gemm_crate_has_avx512()
        && if a_transposed && !b_transposed { m * n >= 1 << 18 } else { !a_transposed && !b_transposed && m >= 4096 && n >= 128 };
    if m == 0 || n == 0 {
        return;
    }
    if matrixmultiply_wins || k == 0 {
        matrixmultiply::sgemm(m, k, n, alpha, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1);
        return;
    }
    // threads only where there is enough work to share (about 1 ms of one core)
    let parallelism = if m * n * k >= 1 << 20 { gemm::Parallelism::Rayon(rayon::current_num_threads()) } else { gemm::Parallelism::None };
    if b_transposed && !a_transposed && beta == 0.0 && nt_through_column_major(m, n, k) {
        return NT_SCRATCH.with(|t| {
            let mut t = t.borrow_mut();
            t.resize(m * n, 0.0);
            // C^T (n x m, row-major) is C column-major: the crate's preferred output layout,
            // with A (few rows) as the operand it packs instead of the large B
            gemm_crate_to(m, n, k, alpha, a, (rsa, csa), b, (rsb, csb), 0.0, t.as_mut_ptr(), (1, m as isize), parallelism);
            transpose(&t, n, m, c);
        });
    }
    gemm_crate(m, n, k, alpha, a, (rsa, csa), b, (rsb, csb), beta, c, parallelism)
}

thread_local! {
    /// The column-major output of [`nt_through_column_major`]'s products, kept between calls
    /// (a fresh buffer of up to 1 MiB a call costs page faults on every step).
    static NT_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `A B^T` with few rows (the dense layers' input gradients: 128 x 1024 x 1024 at batch
/// 128) runs faster into a column-major buffer transposed afterwards. With its AVX-512 kernels
/// the `gemm` crate (as its timings suggest) writes a row-major output as the transposed
/// problem, whose packed operand is then B (n x k, contiguous along k: a transposing gather of
/// 4 MiB a call): 125-135 GFLOP/s against 230-250 for the plain product. Written
/// column-major, the packed operand is A (m x k, 8x smaller) and the product runs at 250-270
/// GFLOP/s; the output's transpose (128 x 1024: 0.05-0.07 ms) leaves 235-250 (BENCHMARKS.md, "AVX-512 in the gemm crate").
/// With the AVX2 kernels both ways run at the same speed (157-166 GFLOP/s), and for many rows
/// (M2's 1280 x 1024 x 1024) or short k the plain call is faster, hence the bounds.
fn nt_through_column_major(m: usize, n: usize, k: usize) -> bool {
    (16..=256).contains(&m) && n >= 2 * m && k >= 256 && m * n <= 1 << 18 && gemm_crate_has_avx512()
}

/// Whether the `gemm` crate runs its AVX-512 kernels here: it detects them itself (the
/// `x86-v4` feature), whatever `SSVAE_CPU_SIMD` says.
fn gemm_crate_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `dst` (cols x rows, row-major) = `src` (rows x cols, row-major) transposed, in 16 x 16
/// blocks so that both sides stay in cache.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    for c0 in (0..cols).step_by(B) {
        for r0 in (0..rows).step_by(B) {
            for c in c0..(c0 + B).min(cols) {
                let out = &mut dst[c * rows..(c + 1) * rows];
                for r in r0..(r0 + B).min(rows) {
                    out[r] = src[r * cols + c];
                }
            }
        }
    }
}

/// [`sgemm_strided`] on the calling thread alone (the gemm crate without threads): for
/// callers that run several products at once, one per thread.
///
/// # Safety
/// As [`sgemm_strided`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_strided_one_thread(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    sa: (isize, isize),
    b: &[f32],
    sb: (isize, isize),
    beta: f32,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v = if beta == 0.0 { 0.0 } else { beta * *v });
        return;
    }
    gemm_crate(m, n, k, alpha, a, sa, b, sb, beta, c, gemm::Parallelism::None)
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
    gemm_crate_to(m, n, k, alpha, a, (rsa, csa), b, (rsb, csb), beta, c.as_mut_ptr(), (n as isize, 1), parallelism)
}

/// [`gemm_crate`] into an output addressed by (row, column) strides.
///
/// # Safety
/// As [`sgemm_strided`], with `c` holding every element its strides address.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate_to(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    beta: f32,
    c: *mut f32,
    (rsc, csc): (isize, isize),
    parallelism: gemm::Parallelism,
) {
    // gemm's naming: dst = alpha * dst + beta * lhs rhs, strides (column, row)
    gemm::gemm(
        m,
        n,
        k,
        c,
        csc,
        rsc,
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

/// A^T B (A stored k x m) with a small output and a long k is a weight gradient summed over
/// batch x steps rows (e.g. 40 x 160 over 16384 rows in the RNN). matrixmultiply runs such a
/// product on one core at a few GFLOP/s, so: split k over the threads, each accumulating its
/// rows in register tiles (below), then sum the partial products.
const LONG_K_MIN: usize = 4096;
const LONG_K_MAX_OUTPUT: usize = 1 << 16;

/// Register tile of the long-k product: TM rows of the output by TN columns, TM x TN / lanes
/// accumulators that stay in registers over KC rows of A and B. The previous kernel added one
/// outer product at a time into the output in memory (a load and a store per multiply-add) and
/// ran the RNN's weight gradients at ~60 GFLOP/s. With AVX2 a tile is 4 x 16 (two 8-wide
/// vectors a row, 8 accumulators: exactly the FMA latency times the two FMA pipes, and 4 x 20
/// or 5 x 16 spilled or ran slower); with AVX-512, 4 x 32 (two 16-wide vectors a row), the same
/// eight accumulators with twice the work each, so the latency is hidden twice over (a 16-wide
/// multiply-add occupies both 8-wide pipes of a Zen 4 core, and CPUs with two 16-wide FMA
/// units get twice the peak).
const TM: usize = 4;
const TN_AVX2: usize = 16;
const TN_AVX512: usize = 32;
/// Rows of A and B per panel: a column tile of B (KC x TN floats, 4-8 KiB) stays in L1 while
/// the row tiles of A pass over it (64 measured 4-8% faster than 32 on the RNN's gradients).
const KC: usize = 64;

use super::{simd, Simd};

fn gemm_tn_long_k(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    gemm_tn_long_k_with(simd(), m, n, k, a, b)
}

/// [`gemm_tn_long_k`] with the tiles built for `simd` (each output element adds the same
/// products in the same order whatever the tile: every build with fused multiply-adds gives
/// the same bits).
fn gemm_tn_long_k_with(simd: Simd, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let tn = if simd == Simd::Avx512 { TN_AVX512 } else { TN_AVX2 };
    // the padded output is the smaller way round: C or C^T = B^T A (a 40 x 6 product pads to
    // 8 x 48 transposed instead of 40 x 16)
    let pad = |x: usize, t: usize| x.div_ceil(t) * t;
    if pad(n, TM) * pad(m, tn) < pad(m, TM) * pad(n, tn) {
        let ct = gemm_tn_long_k_tiles(simd, n, m, k, b, a);
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = ct[j * m + i];
            }
        }
        return c;
    }
    gemm_tn_long_k_tiles(simd, m, n, k, a, b)
}

fn gemm_tn_long_k_tiles(simd: Simd, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1024;
    let tn = if simd == Simd::Avx512 { TN_AVX512 } else { TN_AVX2 };
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(tn) * tn);
    let padded = (0..k.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ch| {
            let mut acc = vec![0f32; mp * np];
            let rows = ch * CHUNK..((ch + 1) * CHUNK).min(k);
            match simd {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `simd()` reports AVX-512 only where the CPU has AVX-512F, AVX2 and FMA
                Simd::Avx512 => unsafe { tiles_avx512(m, n, rows, a, b, &mut acc) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `simd()` reports AVX2 + FMA only where the CPU has them
                Simd::Avx2Fma => unsafe { tiles_avx2_fma(m, n, rows, a, b, &mut acc) },
                _ => tiles::<TN_AVX2, false>(m, n, rows, a, b, &mut acc),
            }
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

/// Calls `f(pa, pb, kc)` for each panel of KC (fewer at the end) of `rows`: pa and pb are
/// those rows of A (m wide) and B (n wide), copied into zero-padded panels mp = m up to whole
/// `TM` and np = n up to whole `TN` wide where m or n is not a whole number of tiles (so every
/// tile is whole), read in place otherwise.
#[inline(always)]
fn for_panels<const TN: usize>(
    m: usize,
    n: usize,
    rows: std::ops::Range<usize>,
    a: &[f32],
    b: &[f32],
    mut f: impl FnMut(&[f32], &[f32], usize),
) {
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(TN) * TN);
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
        f(pa, pb, kc);
        k0 += kc;
    }
}

/// acc (mp x np, the output padded to whole tiles) += sum over rows kk of a[kk] (m) outer
/// b[kk] (n), panel by panel (`for_panels`): each TM x TN tile sums a panel's rows in
/// registers, in row order, and adds the result into acc once.
#[inline(always)]
fn tiles<const TN: usize, const FMA: bool>(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(TN) * TN);
    for_panels::<TN>(m, n, rows, a, b, |pa, pb, kc| {
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
    })
}

/// [`tiles`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tiles_avx2_fma(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    tiles::<TN_AVX2, true>(m, n, rows, a, b, acc)
}

/// [`tiles`] with AVX-512 intrinsics: TM x 32 tiles, two 16-wide vectors a row (written out:
/// the compiler's own vectorisation of `tiles` at this width kept the 128 accumulators in
/// memory, one scalar multiply-add at a time). Same products, same order per element.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tiles_avx512(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    use std::arch::x86_64::*;
    const TN: usize = TN_AVX512;
    let (mp, np) = (m.div_ceil(TM) * TM, n.div_ceil(TN) * TN);
    assert!(acc.len() >= mp * np);
    for_panels::<TN>(m, n, rows, a, b, |pa, pb, kc| {
        assert!(pa.len() >= kc * mp && pb.len() >= kc * np);
        for j0 in (0..np).step_by(TN) {
            for i0 in (0..mp).step_by(TM) {
                // SAFETY: r < kc, i0 + x < mp and j0 + TN <= np, so every address is inside
                // pa (kc x mp), pb (kc x np) and acc (mp x np), checked above
                unsafe {
                    let mut t = [[_mm512_setzero_ps(); 2]; TM];
                    for r in 0..kc {
                        let bp = pb.as_ptr().add(r * np + j0);
                        let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
                        let ap = pa.as_ptr().add(r * mp + i0);
                        for (x, tx) in t.iter_mut().enumerate() {
                            let av = _mm512_set1_ps(*ap.add(x));
                            tx[0] = _mm512_fmadd_ps(av, b0, tx[0]);
                            tx[1] = _mm512_fmadd_ps(av, b1, tx[1]);
                        }
                    }
                    for (x, tx) in t.iter().enumerate() {
                        let o = acc.as_mut_ptr().add((i0 + x) * np + j0);
                        _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), tx[0]));
                        _mm512_storeu_ps(o.add(16), _mm512_add_ps(_mm512_loadu_ps(o.add(16)), tx[1]));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift stream of values uniform in [-0.5, 0.5): `n` more at each call.
    fn uniform_values(mut seed: u64) -> impl FnMut(usize) -> Vec<f32> {
        move |n| {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        }
    }

    /// Every build of the long-k tiles that this CPU can run gives the same bits as the AVX2
    /// one (the same products added in the same order per output element), and the plain one
    /// agrees to rounding, on awkward shapes (m, n not whole tiles, k not whole chunks).
    #[test]
    fn long_k_builds_agree() {
        let builds = match simd() {
            Simd::Avx512 => vec![Simd::Avx512, Simd::Avx2Fma],
            Simd::Avx2Fma => vec![Simd::Avx2Fma],
            Simd::Plain => vec![],
        };
        let mut values = uniform_values(0x2545_F491_4F6C_DD1D);
        for &(m, n, k) in &[(40usize, 160usize, 5000usize), (33, 70, 4100), (6, 40, 4096), (40, 6, 4500), (3, 200, 2100)] {
            let (a, b) = (values(k * m), values(k * n));
            let plain = gemm_tn_long_k_with(Simd::Plain, m, n, k, &a, &b);
            let built: Vec<Vec<f32>> = builds.iter().map(|&s| gemm_tn_long_k_with(s, m, n, k, &a, &b)).collect();
            for (s, c) in builds.iter().zip(&built) {
                let worst = c.iter().zip(&plain).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-3, "{m}x{n}x{k} {s:?} vs plain: {worst}");
                assert!(c == &built[builds.len() - 1], "{m}x{n}x{k}: {s:?} differs from AVX2");
            }
        }
        eprintln!("long-k builds compared: {builds:?} and Plain");
    }

    /// Every transpose of `sgemm_strided` against an f64 product, on shapes that take each
    /// engine: few rows with B transposed (the column-major route where the gemm crate runs
    /// AVX-512), many rows, short k, and a beta that keeps the old output (which that route
    /// must not take).
    #[test]
    fn strided_products_match_a_plain_sum() {
        let mut values = uniform_values(0x9E37_79B9_7F4A_7C15);
        let shapes = [(128usize, 1024usize, 300usize), (17, 300, 257), (256, 512, 256), (100, 40, 70), (300, 64, 33), (5, 7, 3)];
        let mut routed = 0;
        for &(m, n, k) in &shapes {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for beta in [0.0f32, 0.5] {
                    let (a, b, old) = (values(m * k), values(k * n), values(m * n));
                    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
                    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
                    let mut c = old.clone();
                    // SAFETY: a, b and c hold m*k, k*n and m*n elements, as the strides address
                    unsafe { sgemm_strided(m, n, k, 0.75, &a, (rsa, csa), &b, (rsb, csb), beta, &mut c) };
                    routed += usize::from(tb && !ta && beta == 0.0 && nt_through_column_major(m, n, k));
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 = (0..k)
                                .map(|l| {
                                    let x = a[(i as isize * rsa + l as isize * csa) as usize] as f64;
                                    x * b[(l as isize * rsb + j as isize * csb) as usize] as f64
                                })
                                .sum();
                            let want = 0.75 * dot + beta as f64 * old[i * n + j] as f64;
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{m}x{n}x{k} ta={ta} tb={tb} beta={beta} at ({i}, {j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
        eprintln!("products through the column-major route: {routed} (gemm crate AVX-512: {})", gemm_crate_has_avx512());
        assert_eq!(routed > 0, gemm_crate_has_avx512());
    }
}
