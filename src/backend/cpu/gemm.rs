//! CPU twin of shaders/gemm.wgsl: `C = act(alpha * op(A) op(B) + bias + beta * C)`.

use crate::backend::Gemm;

pub fn gemm(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]) {
    let (m, n, k) = (g.m, g.n, g.k);
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
            m, k, n, g.alpha, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb,
            if fused { 0.0 } else { g.beta }, c.as_mut_ptr(), n as isize, 1,
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
