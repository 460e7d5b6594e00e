//! A dSprites-like dataset (Matthey et al. 2017) rendered in-process: 64 x 64 one-channel images
//! of one white shape on black, made from five independent, discrete generating factors with a
//! known number of values each ([`SPRITE_FACTORS`]). Disentanglement metrics such as the betaVAE
//! score ([`crate::eval::disentangle`]) need exactly this: data whose every sample has known
//! factors, and fresh samples that share a chosen factor on demand. Rendering instead of
//! shipping the 2.6 MB dSprites archive keeps the project download-free, like [`super::synthetic`].
//!
//! Factors, in order:
//! - `shape`: square, ellipse, heart;
//! - `scale`: 6 values, 0.5 to 1.0 of the largest size (radius [`SPRITE_MAX_RADIUS`] px);
//! - `rotation`: 10 values spread over the shape's own symmetry period (90 degrees for the
//!   square, 180 for the ellipse, 360 for the heart), so that no two rotation values give the
//!   same image of a shape (dSprites instead spans 360 degrees for all, repeating images);
//! - `x`, `y`: 16 positions each, evenly spaced between [`SPRITE_MARGIN`] and
//!   `64 - SPRITE_MARGIN` px.
//!
//! Every shape fits its unit disc, scaled by at most `SPRITE_MAX_RADIUS` = 12 px, and the
//! centres keep 13 px from the borders, so at any rotation the shape stays inside the frame with
//! at least one empty pixel row/column around it (the tests check the borders of every extreme
//! case). Pixels are anti-aliased by 4 x 4 supersampling: a pixel is `255 * covered / 16`,
//! rounded, so sub-pixel changes of scale and rotation show.
//!
//! Randomness comes from the caller's `rand::Rng` (the crate uses `StdRng` seeded from a `u64`
//! throughout); [`sprites`] is a deterministic function of its seed.

use std::f32::consts::PI;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::Dataset;
use crate::error::{Error, Result};

/// Side of a sprite image in pixels.
pub const SPRITE_SIZE: usize = 64;

/// Name and number of values of each generating factor, in the order of a factor vector.
pub const SPRITE_FACTORS: [(&str, usize); 5] = [("shape", 3), ("scale", 6), ("rotation", 10), ("x", 16), ("y", 16)];

/// Number of generating factors.
pub const NUM_SPRITE_FACTORS: usize = SPRITE_FACTORS.len();

/// The shapes, indexed by the `shape` factor.
pub const SPRITE_SHAPES: [&str; 3] = ["square", "ellipse", "heart"];

/// Index of each factor in a factor vector.
pub const SHAPE: usize = 0;
pub const SCALE: usize = 1;
pub const ROTATION: usize = 2;
pub const POS_X: usize = 3;
pub const POS_Y: usize = 4;

/// Radius in pixels of the disc that holds a shape at the largest scale.
pub const SPRITE_MAX_RADIUS: f32 = 12.0;

/// Distance in pixels from the image border to the extreme shape centres.
pub const SPRITE_MARGIN: f32 = SPRITE_MAX_RADIUS + 1.0;

/// All factor values of one sprite, in the order of [`SPRITE_FACTORS`].
pub type SpriteFactors = [usize; NUM_SPRITE_FACTORS];

/// The number of values of every factor.
pub fn sprite_factor_sizes() -> [usize; NUM_SPRITE_FACTORS] {
    SPRITE_FACTORS.map(|(_, n)| n)
}

/// Scale as a fraction of the largest size: 0.5, 0.6, ..., 1.0.
fn scale_of(v: usize) -> f32 {
    0.5 + 0.5 * v as f32 / (SPRITE_FACTORS[SCALE].1 - 1) as f32
}

/// Rotation in radians (counter-clockwise on screen) over the shape's symmetry period.
fn rotation_of(shape: usize, v: usize) -> f32 {
    let period = match shape {
        0 => PI / 2.0,
        1 => PI,
        _ => 2.0 * PI,
    };
    period * v as f32 / SPRITE_FACTORS[ROTATION].1 as f32
}

/// Centre coordinate (in pixels, pixel `j` covering `[j, j + 1)`) of position value `v`.
fn position_of(v: usize, values: usize) -> f32 {
    SPRITE_MARGIN + (SPRITE_SIZE as f32 - 2.0 * SPRITE_MARGIN) * v as f32 / (values - 1) as f32
}

/// Whether the point (u, v) (unit coordinates, v up) lies inside `shape`. Every shape lies in
/// the unit disc.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    match shape {
        // half side 0.69: the corners sit at radius 0.976
        0 => u.abs() <= 0.69 && v.abs() <= 0.69,
        // semi-axes 0.97 and 0.5
        1 => (u / 0.97).powi(2) + (v / 0.5).powi(2) <= 1.0,
        // (x^2 + y^2 - 1)^3 <= x^2 y^3 spans x in [-1.14, 1.14], y in [-1, 1.24]; shifted down
        // by 0.25 its farthest point is 1.25 from the origin, so shrinking by 1.28 fits the disc
        _ => {
            let (x, y) = (1.28 * u, 1.28 * v + 0.25);
            let r = x * x + y * y - 1.0;
            r * r * r <= x * x * y * y * y
        }
    }
}

fn check_factors(factors: &[usize]) -> Result<()> {
    if factors.len() != NUM_SPRITE_FACTORS {
        return Err(Error::Invalid(format!(
            "a sprite has {NUM_SPRITE_FACTORS} factors (shape, scale, rotation, x, y), got {}",
            factors.len()
        )));
    }
    for (k, (&v, (name, n))) in factors.iter().zip(SPRITE_FACTORS).enumerate() {
        if v >= n {
            return Err(Error::Invalid(format!("sprite factor {k} ({name}) has {n} values (0..{n}), got {v}")));
        }
    }
    Ok(())
}

/// Renders the sprite with `factors` (see [`SPRITE_FACTORS`]) into `out`, which must hold
/// `SPRITE_SIZE * SPRITE_SIZE` bytes (row major, y down).
pub fn render_sprite_into(factors: &[usize], out: &mut [u8]) -> Result<()> {
    const S: usize = SPRITE_SIZE;
    const SUB: usize = 4;
    check_factors(factors)?;
    if out.len() != S * S {
        return Err(Error::Invalid(format!("render_sprite_into needs a {S} x {S} buffer, got {} bytes", out.len())));
    }
    out.fill(0);
    let shape = factors[SHAPE];
    let radius = SPRITE_MAX_RADIUS * scale_of(factors[SCALE]);
    let (sin, cos) = rotation_of(shape, factors[ROTATION]).sin_cos();
    let cx = position_of(factors[POS_X], SPRITE_FACTORS[POS_X].1);
    let cy = position_of(factors[POS_Y], SPRITE_FACTORS[POS_Y].1);
    // only the pixels that touch the shape's disc can be covered
    let x0 = (cx - radius).floor().max(0.0) as usize;
    let x1 = ((cx + radius).ceil() as usize).min(S - 1);
    let y0 = (cy - radius).floor().max(0.0) as usize;
    let y1 = ((cy + radius).ceil() as usize).min(S - 1);
    let inv = 1.0 / radius;
    for py in y0..=y1 {
        for px in x0..=x1 {
            let mut covered = 0u32;
            for sy in 0..SUB {
                for sx in 0..SUB {
                    // offset from the centre, in units of the radius, with v pointing up
                    let dx = (px as f32 + (sx as f32 + 0.5) / SUB as f32 - cx) * inv;
                    let dv = -(py as f32 + (sy as f32 + 0.5) / SUB as f32 - cy) * inv;
                    // rotate the sample back by the sprite's angle
                    let (u, v) = (cos * dx + sin * dv, -sin * dx + cos * dv);
                    covered += u32::from(inside(shape, u, v));
                }
            }
            out[py * S + px] = ((255 * covered) as f32 / (SUB * SUB) as f32).round() as u8;
        }
    }
    Ok(())
}

/// [`render_sprite_into`] into a new `SPRITE_SIZE * SPRITE_SIZE` buffer.
pub fn render_sprite(factors: &[usize]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; SPRITE_SIZE * SPRITE_SIZE];
    render_sprite_into(factors, &mut out)?;
    Ok(out)
}

/// Renders many sprites as f32 in [0, 1] (byte / 255, like [`Dataset::gather_f32`]), row major,
/// one image after another: the input an encoder sees.
pub fn render_sprites_f32(factors: &[SpriteFactors]) -> Result<Vec<f32>> {
    const D: usize = SPRITE_SIZE * SPRITE_SIZE;
    let mut bytes = vec![0u8; factors.len() * D];
    bytes.par_chunks_mut(D).zip(factors.par_iter()).try_for_each(|(out, f)| render_sprite_into(f, out))?;
    Ok(bytes.into_iter().map(|b| b as f32 / 255.0).collect())
}

/// One sprite's factors, each uniform over its values and independent of the others.
pub fn sample_factors<R: Rng + ?Sized>(rng: &mut R) -> SpriteFactors {
    SPRITE_FACTORS.map(|(_, n)| rng.random_range(0..n))
}

/// `pairs` pairs of factor vectors that share factor `k` (same value, itself uniform) while
/// every other factor is drawn independently for each member: the pairs of the betaVAE metric
/// (Higgins et al. 2017).
pub fn sample_pair_factors<R: Rng + ?Sized>(k: usize, pairs: usize, rng: &mut R) -> Result<Vec<(SpriteFactors, SpriteFactors)>> {
    if k >= NUM_SPRITE_FACTORS {
        return Err(Error::Invalid(format!("sprites have {NUM_SPRITE_FACTORS} factors, there is no factor {k}")));
    }
    Ok((0..pairs)
        .map(|_| {
            let a = sample_factors(rng);
            let mut b = sample_factors(rng);
            b[k] = a[k];
            (a, b)
        })
        .collect())
}

/// The images of [`sample_pair_factors`]: the first members and the second members, each
/// `pairs * SPRITE_SIZE^2` values in [0, 1]. Its signature is the pair source that
/// [`crate::eval::disentangle::beta_vae_score`] takes.
pub fn sprite_pair_images<R: Rng + ?Sized>(k: usize, pairs: usize, rng: &mut R) -> Result<(Vec<f32>, Vec<f32>)> {
    let (a, b): (Vec<SpriteFactors>, Vec<SpriteFactors>) = sample_pair_factors(k, pairs, rng)?.into_iter().unzip();
    Ok((render_sprites_f32(&a)?, render_sprites_f32(&b)?))
}

/// A sprite dataset: the images with one factor as the class label, and every factor of every
/// sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SpriteDataset {
    /// 64 x 64 x 1 images; `labels` is the value of factor `label_factor`.
    pub data: Dataset,
    /// All factor values of each sample, parallel to `data`.
    pub factors: Vec<SpriteFactors>,
    /// Which factor `data.labels` holds.
    pub label_factor: usize,
}

/// `n` sprites with independent, uniform factors, labeled by factor `label_factor` (0 = shape,
/// see [`SPRITE_FACTORS`]); a deterministic function of `seed`.
pub fn sprites(n: usize, label_factor: usize, seed: u64) -> Result<SpriteDataset> {
    const D: usize = SPRITE_SIZE * SPRITE_SIZE;
    let Some(&(label_name, classes)) = SPRITE_FACTORS.get(label_factor) else {
        return Err(Error::Invalid(format!(
            "label factor {label_factor} does not exist: sprites have {NUM_SPRITE_FACTORS} factors (0 shape, 1 scale, 2 rotation, 3 x, 4 y)"
        )));
    };
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5B_2173_E5D5);
    let factors: Vec<SpriteFactors> = (0..n).map(|_| sample_factors(&mut rng)).collect();
    let mut pixels = vec![0u8; n * D];
    pixels.par_chunks_mut(D).zip(factors.par_iter()).try_for_each(|(out, f)| render_sprite_into(f, out))?;
    let class_names = if label_factor == SHAPE {
        SPRITE_SHAPES.iter().map(|s| s.to_string()).collect()
    } else {
        (0..classes).map(|v| format!("{label_name} {v}")).collect()
    };
    let data = Dataset {
        name: "sprites".into(),
        pixels,
        labels: factors.iter().map(|f| f[label_factor] as u8).collect(),
        n,
        height: SPRITE_SIZE,
        width: SPRITE_SIZE,
        channels: 1,
        classes,
        class_names,
        unlabeled: Vec::new(),
        ids: Vec::new(),
    };
    Ok(SpriteDataset { data, factors, label_factor })
}
