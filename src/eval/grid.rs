//! Class-by-style sample grids (paper Figures 2 and 3): the decoder fed a chosen one-hot class
//! and a latent z ~ N(0, I). One row per class, one column per style; a column shares its z,
//! so it shows one style in every class. `traverse` instead walks a 2-D latent plane at
//! quantiles of N(0, 1), one block per class.

use std::path::Path;

use image::RgbImage;

use crate::backend::{Backend, DType};
use crate::error::{Error, Result};
use crate::graph::exec::{compile, CompileOptions, ParamStore, Program};
use crate::graph::{Graph, TensorId};
use crate::model::ModelSpec;

/// Largest PNG side we write (keeps files viewable and memory bounded).
pub const MAX_SIDE: usize = 16384;

/// The decoder of a model as its own program: inputs `z` (batch x latent) and `onehot`
/// (batch x classes, SS only), output pixel probabilities (batch x features).
pub struct Decoder<B: Backend> {
    program: Program<B>,
    z: TensorId,
    /// The class one-hots (models whose decoder takes pi).
    onehot: Option<TensorId>,
    out: TensorId,
    batch: usize,
    spec: ModelSpec,
}

impl<B: Backend> Decoder<B> {
    pub fn new(be: &B, spec: &ModelSpec, store: &ParamStore<B>, batch: usize) -> Result<Self> {
        if !spec.has_decoder() {
            return Err(Error::Invalid(format!("{} has no decoder, so it cannot generate samples", spec.name())));
        }
        if spec.real_input {
            return Err(Error::Invalid(format!(
                "{} was trained on real-valued features (a table), not images: sample grids are for image models",
                spec.name()
            )));
        }
        let mut g = Graph::new();
        let z = g.input("z", &[batch, spec.latent], DType::F32);
        let onehot = spec.decoder_takes_pi().then(|| g.input("onehot", &[batch, spec.classes], DType::F32));
        let dec_in = match onehot {
            Some(y) => g.concat("dec_in", z, y),
            None => z,
        };
        let out = crate::model::decoder(&mut g, spec, dec_in, None, false)?;
        let program = compile(be, g, store, CompileOptions { keep: vec![out], ..Default::default() })?;
        Ok(Decoder { program, z, onehot, out, batch, spec: spec.clone() })
    }

    /// Decodes rows of (z, class); returns batch x features probabilities for the given rows.
    pub fn decode(&self, be: &B, zs: &[Vec<f32>], classes: &[usize]) -> Result<Vec<f32>> {
        let d = self.spec.input_dim;
        let mut out = Vec::with_capacity(zs.len() * d);
        for start in (0..zs.len()).step_by(self.batch) {
            let rows = (zs.len() - start).min(self.batch);
            let mut zb = vec![0f32; self.batch * self.spec.latent];
            for r in 0..rows {
                zb[r * self.spec.latent..(r + 1) * self.spec.latent].copy_from_slice(&zs[start + r]);
            }
            be.write_f32(self.program.input(self.z)?, &zb)?;
            if let Some(onehot) = self.onehot {
                let mut oh = vec![0f32; self.batch * self.spec.classes];
                for r in 0..rows {
                    oh[r * self.spec.classes + classes[start + r]] = 1.0;
                }
                be.write_f32(self.program.input(onehot)?, &oh)?;
            }
            self.program.run(be)?;
            // the decoder gives Bernoulli logits; the image is their probabilities
            out.extend(self.program.read(be, self.out)?[..rows * d].iter().map(|&l| crate::backend::Act::Sigmoid.apply(l)));
        }
        Ok(out)
    }
}

/// Standard normal draw for style `column`, latent dimension `j` (the shared RNG, so a grid
/// is reproducible from its seed).
pub fn style_z(seed: u64, column: usize, latent: usize) -> Vec<f32> {
    let ctr = crate::rng::counter(seed, column as u32);
    (0..latent).map(|j| crate::rng::normal_at(&ctr, 0x57_71E, j as u32)).collect()
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.383577518672690e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Generated cells of a grid: `rows` x `cols` images of `shape` (height, width, channels)
/// values in [0, 1], channels last, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub cells: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    pub shape: (usize, usize, usize),
}

/// Checks that a `rows` x `cols` grid of h x w cells stays under [`MAX_SIDE`] pixels a side
/// (checked without overflow, before anything is decoded).
pub fn check_grid(rows: usize, cols: usize, h: usize, w: usize) -> Result<()> {
    let gap = 2;
    let side = |n: usize, s: usize| n.checked_mul(s + gap).and_then(|v| v.checked_add(gap)).filter(|&v| v <= MAX_SIDE);
    match (side(cols, w), side(rows, h)) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err(Error::Invalid(format!(
            "a {rows} x {cols} grid of {h} x {w} images is over the {MAX_SIDE} pixel limit; ask for fewer styles"
        ))),
    }
}

fn check_shape(spec: &ModelSpec, (h, w, c): (usize, usize, usize)) -> Result<()> {
    if h * w * c != spec.input_dim {
        return Err(Error::Invalid(format!("image shape {h}x{w}x{c} does not match the model's {} features", spec.input_dim)));
    }
    Ok(())
}

/// The class-by-style grid: one row per class (one row for a model without pi), one column
/// per style z (the same z down a column).
pub fn class_style_grid<B: Backend>(be: &B, dec: &Decoder<B>, styles: usize, seed: u64, shape: (usize, usize, usize)) -> Result<Grid> {
    if styles == 0 {
        return Err(Error::Invalid("--styles must be at least 1".into()));
    }
    let spec = &dec.spec;
    let rows = if spec.decoder_takes_pi() { spec.classes } else { 1 };
    check_shape(spec, shape)?;
    check_grid(rows, styles, shape.0, shape.1)?;
    let mut zs = Vec::new();
    let mut classes = Vec::new();
    for r in 0..rows {
        for c in 0..styles {
            zs.push(style_z(seed, c, spec.latent));
            classes.push(r);
        }
    }
    Ok(Grid { cells: dec.decode(be, &zs, &classes)?, rows, cols: styles, shape })
}

/// Per class, an n x n walk over the first two latent dimensions at quantiles of N(0, 1)
/// (other dimensions 0); classes side by side (n rows, n x classes columns).
pub fn traverse<B: Backend>(be: &B, dec: &Decoder<B>, n: usize, shape: (usize, usize, usize)) -> Result<Grid> {
    let spec = &dec.spec;
    if spec.latent < 2 {
        return Err(Error::Invalid("--traverse needs a latent space of at least 2 dimensions".into()));
    }
    if n == 0 {
        return Err(Error::Invalid("--styles must be at least 1".into()));
    }
    check_shape(spec, shape)?;
    let classes = if spec.decoder_takes_pi() { spec.classes } else { 1 };
    let q: Vec<f32> = (0..n).map(|i| normal_quantile((i as f64 + 0.5) / n as f64) as f32).collect();
    check_grid(n, n.saturating_mul(classes), shape.0, shape.1)?;
    let (mut zs, mut cls) = (Vec::new(), Vec::new());
    for row in 0..n {
        for k in 0..classes {
            for col in 0..n {
                let mut z = vec![0f32; spec.latent];
                z[0] = q[col];
                z[1] = q[n - 1 - row];
                zs.push(z);
                cls.push(k);
            }
        }
    }
    Ok(Grid { cells: dec.decode(be, &zs, &cls)?, rows: n, cols: n * classes, shape })
}

pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    img.save(path).map_err(|e| Error::Io { path: path.to_path_buf(), msg: format!("cannot write PNG: {e}") })
}
