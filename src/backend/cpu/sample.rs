//! CPU twins of shaders/sample.wgsl, drawing from the shared generator in `crate::rng`.

use crate::rng;

/// out[i] = first Philox word for element i (for checking the generator bit for bit).
pub fn random_bits(ctr: &[u32], stream: u32, out: &mut [u32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = rng::draw(ctr, stream, i as u32)[0];
    }
}

pub fn random_normal(ctr: &[u32], stream: u32, out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = rng::normal_at(ctr, stream, i as u32);
    }
}

/// z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1); eps is kept for the backward pass.
pub fn reparam(ctr: &[u32], stream: u32, mu: &[f32], logvar: &[f32], z: &mut [f32], eps: &mut [f32]) {
    for i in 0..mu.len() {
        let e = rng::normal_at(ctr, stream, i as u32);
        eps[i] = e;
        z[i] = mu[i] + (0.5 * logvar[i]).exp() * e;
    }
}

/// dmu = dz; dlogvar = dz * eps * exp(logvar / 2) / 2.
pub fn reparam_backward(dz: &[f32], logvar: &[f32], eps: &[f32], dmu: &mut [f32], dlogvar: &mut [f32]) {
    for i in 0..dz.len() {
        dmu[i] = dz[i];
        dlogvar[i] = dz[i] * eps[i] * 0.5 * (0.5 * logvar[i]).exp();
    }
}

/// y = x * mask with mask = (u >= rate) / (1 - rate), u uniform in [0, 1) from word `i % 4` of
/// Philox draw `i / 4` (the GPU reads the same words), so both backends drop the same units;
/// one draw serves four elements (a feature map's mask is millions of them).
pub fn dropout(ctr: &[u32], stream: u32, rate: f32, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    use rayon::prelude::*;
    let keep = 1.0 / (1.0 - rate);
    y.par_chunks_mut(4).zip(mask.par_chunks_mut(4)).enumerate().for_each(|(k, (yk, mk))| {
        let w = rng::draw(ctr, stream, k as u32);
        for j in 0..yk.len() {
            let u = rng::uniform(w[j]);
            mk[j] = if u >= rate { keep } else { 0.0 };
            yk[j] = x[4 * k + j] * mk[j];
        }
    });
}
