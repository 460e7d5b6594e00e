//! CPU twin of shaders/gemm.wgsl: `C = act(alpha * op(A) op(B) + bias + beta * C)`.

use crate::backend::Gemm;

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
    let fused = g.bias || g.act != crate::backend::Act::Identity;
    if fused && g.beta != 0.0 {
        return gemm_with_old(g, a, b, bias, c);
    }
    let c = &mut c[..m * n];
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (checked by Op::check), and
    // the strides above address exactly those elements.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            g.alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            if fused { 0.0 } else { g.beta },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    if !fused {
        return;
    }
    for row in c.chunks_mut(n) {
        for (j, v) in row.iter_mut().enumerate() {
            let x = *v + bias.map_or(0.0, |b| b[j]);
            *v = g.act.apply(x);
        }
    }
}

/// General path keeping the old C for `beta != 0` together with a bias or activation.
fn gemm_with_old(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
    let old: Vec<f32> = c[..g.m * g.n].to_vec();
    let plain = Gemm { bias: false, act: crate::backend::Act::Identity, beta: 0.0, ..*g };
    gemm(&plain, a, b, None, c);
    for (i, v) in c[..g.m * g.n].iter_mut().enumerate() {
        let x = *v + bias.map_or(0.0, |b| b[i % g.n]) + g.beta * old[i];
        *v = g.act.apply(x);
    }
}

/// A^T B (A stored k x m) with a small output and a long k is a weight gradient summed over
/// batch x steps rows (e.g. 40 x 160 over 16384 rows in the RNN). matrixmultiply runs such a
/// product on one core at a few GFLOP/s, so: split k over the threads, each adding outer
/// products of one row of A and one of B (both contiguous; a zero of A, e.g. a relu's, skips its
/// row), then sum the partial products.
const LONG_K_MIN: usize = 4096;
const LONG_K_MAX_OUTPUT: usize = 1 << 16;

fn gemm_tn_long_k(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1024;
    (0..k.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ch| {
            let mut acc = vec![0f32; m * n];
            let rows = ch * CHUNK..((ch + 1) * CHUNK).min(k);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above)
                unsafe { outer_products_avx2(m, n, rows, a, b, &mut acc) };
                return acc;
            }
            outer_products(m, n, rows, a, b, &mut acc);
            acc
        })
        .reduce(
            || vec![0f32; m * n],
            |mut x, y| {
                x.iter_mut().zip(&y).for_each(|(p, q)| *p += q);
                x
            },
        )
}

/// acc (m x n) += sum over rows kk of a[kk] (m) outer b[kk] (n).
#[inline(always)]
fn outer_products(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    for kk in rows {
        let (arow, brow) = (&a[kk * m..(kk + 1) * m], &b[kk * n..(kk + 1) * n]);
        for (i, &ai) in arow.iter().enumerate() {
            if ai != 0.0 {
                for (o, &bv) in acc[i * n..(i + 1) * n].iter_mut().zip(brow) {
                    *o += ai * bv;
                }
            }
        }
    }
}

/// [`outer_products`] compiled for AVX2 (the same operations in the same order; no FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn outer_products_avx2(m: usize, n: usize, rows: std::ops::Range<usize>, a: &[f32], b: &[f32], acc: &mut [f32]) {
    outer_products(m, n, rows, a, b, acc)
}
