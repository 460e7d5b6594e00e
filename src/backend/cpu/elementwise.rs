//! CPU twins of shaders/elementwise.wgsl.

use crate::backend::Act;

pub fn act_forward(act: Act, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = act.apply(x);
    }
}

/// dx = dy * f'(x), with f' written in terms of the output y.
pub fn act_backward(act: Act, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = dy * act.grad_from_output(y);
    }
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
