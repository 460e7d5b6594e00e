//! CPU twins of shaders/optim.wgsl: one update over a flat parameter buffer.

/// RMSprop with momentum, PyTorch semantics (`torch.optim.RMSprop`, centered = false):
/// s = a s + (1 - a) g^2;  b = mu b + g / (sqrt(s) + eps);  p -= lr b.
/// hyper = [lr, alpha, momentum, eps].
pub fn rmsprop(hyper: &[f32], g: &[f32], p: &mut [f32], s: &mut [f32], b: &mut [f32]) {
    use rayon::prelude::*;
    let (lr, alpha, mu, eps) = (hyper[0], hyper[1], hyper[2], hyper[3]);
    // chunks of 64K elements in parallel: the update is memory-bound
    const CHUNK: usize = 1 << 16;
    (p.par_chunks_mut(CHUNK), s.par_chunks_mut(CHUNK), b.par_chunks_mut(CHUNK), g.par_chunks(CHUNK)).into_par_iter().for_each(
        |(p, s, b, g)| {
            for i in 0..p.len() {
                s[i] = alpha * s[i] + (1.0 - alpha) * g[i] * g[i];
                b[i] = mu * b[i] + g[i] / (s[i].sqrt() + eps);
                p[i] -= lr * b[i];
            }
        },
    );
}

/// Adam (Kingma & Ba) with bias correction; hyper = [lr, beta1, beta2, eps, t] with t >= 1.
pub fn adam(hyper: &[f32], g: &[f32], p: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let (lr, b1, b2, eps, t) = (hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]);
    let c1 = 1.0 - b1.powf(t);
    let c2 = 1.0 - b2.powf(t);
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    (p.par_chunks_mut(CHUNK), m.par_chunks_mut(CHUNK), v.par_chunks_mut(CHUNK), g.par_chunks(CHUNK)).into_par_iter().for_each(
        |(p, m, v, g)| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        },
    );
}
