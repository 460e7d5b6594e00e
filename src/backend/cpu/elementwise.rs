//! CPU twins of shaders/elementwise.wgsl.

use crate::backend::Act;

pub fn act_forward(act: Act, x: &[f32], y: &mut [f32]) {
    with_act!(act, f => y.iter_mut().zip(x).for_each(|(y, &x)| *y = f(x)))
}

/// dx = dy * f'(x), with f' written in terms of the output y.
pub fn act_backward(act: Act, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    use rayon::prelude::*;
    // blocks over the threads (each element on its own, so the same bits as one loop): the
    // RNN's per-step layers are 16384 x 40 and more, a few hundred microseconds on one core
    const BLOCK: usize = 1 << 14;
    with_act_grad!(act, f => dx.par_chunks_mut(BLOCK).zip(y.par_chunks(BLOCK)).zip(dy.par_chunks(BLOCK)).for_each(|((dx, y), dy)| {
        dx.iter_mut().zip(y).zip(dy).for_each(|((dx, &y), &dy)| *dx = dy * f(y))
    }))
}

pub fn add(a: &[f32], b: &[f32], c: &mut [f32]) {
    for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
        *c = a + b;
    }
}

pub fn mul(a: &[f32], b: &[f32], c: &mut [f32]) {
    for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
        *c = a * b;
    }
}

pub fn scale(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = alpha * x;
    }
}

/// y += alpha * x
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// c[r] = [a[r], b[r]] along the feature axis.
pub fn concat_cols(rows: usize, ca: usize, cb: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    for r in 0..rows {
        let row = &mut c[r * (ca + cb)..(r + 1) * (ca + cb)];
        row[..ca].copy_from_slice(&a[r * ca..(r + 1) * ca]);
        row[ca..].copy_from_slice(&b[r * cb..(r + 1) * cb]);
    }
}

/// The inverse of `concat_cols`.
pub fn split_cols(rows: usize, ca: usize, cb: usize, c: &[f32], a: &mut [f32], b: &mut [f32]) {
    for r in 0..rows {
        let row = &c[r * (ca + cb)..(r + 1) * (ca + cb)];
        a[r * ca..(r + 1) * ca].copy_from_slice(&row[..ca]);
        b[r * cb..(r + 1) * cb].copy_from_slice(&row[ca..]);
    }
}

/// out[r] = one_hot(labels[r]) for labeled rows (label < classes), else pi[r].
pub fn label_mix(rows: usize, classes: usize, pi: &[f32], labels: &[u32], out: &mut [f32]) {
    for r in 0..rows {
        let y = labels[r] as usize;
        for j in 0..classes {
            let i = r * classes + j;
            out[i] = if y < classes {
                if j == y {
                    1.0
                } else {
                    0.0
                }
            } else {
                pi[i]
            };
        }
    }
}

/// y[r] = one_hot(argmax x[r]), the first of equal maxima (a NaN never wins a comparison).
pub fn one_hot_argmax(rows: usize, classes: usize, x: &[f32], y: &mut [f32]) {
    for r in 0..rows {
        let row = &x[r * classes..(r + 1) * classes];
        let best = (1..classes).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        for (j, v) in y[r * classes..(r + 1) * classes].iter_mut().enumerate() {
            *v = if j == best { 1.0 } else { 0.0 };
        }
    }
}

/// dpi[r] = 0 for labeled rows, else dout[r].
pub fn label_mix_backward(rows: usize, classes: usize, dout: &[f32], labels: &[u32], dpi: &mut [f32]) {
    for r in 0..rows {
        let labeled = (labels[r] as usize) < classes;
        for i in r * classes..(r + 1) * classes {
            dpi[i] = if labeled { 0.0 } else { dout[i] };
        }
    }
}

/// out (+)= the sum of `slices` slices of `n` values of part, added in slice order.
pub fn sum_slices(n: usize, slices: usize, accumulate: bool, part: &[f32], out: &mut [f32]) {
    for (i, o) in out[..n].iter_mut().enumerate() {
        let mut v = if accumulate { *o } else { 0.0 };
        for s in 0..slices {
            v += part[s * n + i];
        }
        *o = v;
    }
}
