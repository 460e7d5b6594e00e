//! A built-in, MNIST-like dataset: 28 x 28 one-channel images of 10 stroke glyphs, rendered
//! in-process from a seed, so everything trains without a download.
//!
//! Each sample is a class (uniform over the 10 glyphs) and seven style factors drawn
//! independently and uniformly from the ranges in [`STYLE_FACTORS`]: position offset (x, y),
//! size, slant (shear), stroke width, small rotation and brightness. A glyph is a set of
//! polylines in a unit box; the style maps their vertices to pixel space (rotate, shear, scale,
//! translate) and each pixel's ink is the anti-aliased coverage of the strokes: full inside half
//! the stroke width of the nearest segment, falling linearly to 0 over one pixel. Background is
//! exactly 0, full ink `255 * brightness`.
//!
//! Sample `i` of the training (test) set depends only on `(seed, split, i)` (see
//! [`synthetic_factors`]), so the generating factors of any sample can be recovered, e.g. for
//! disentanglement metrics.

use std::f32::consts::PI;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::{Dataset, Split};

/// Side of a synthetic image in pixels.
pub const GLYPH_SIZE: usize = 28;

/// The ten glyphs, indexed by label.
pub const SYNTHETIC_CLASSES: [&str; 10] = ["circle", "square", "triangle", "cross", "plus", "arrow", "spiral", "S", "Z", "star"];

/// Name, minimum and maximum of each style factor, in the order of [`GlyphStyle::to_unit`].
pub const STYLE_FACTORS: [(&str, f32, f32); 7] = [
    ("dx", -2.5, 2.5),
    ("dy", -2.5, 2.5),
    ("size", 7.0, 10.0),
    ("slant", -0.3, 0.3),
    ("stroke", 1.6, 3.4),
    ("rotation", -0.26, 0.26),
    ("brightness", 0.6, 1.0),
];

/// How one glyph is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlyphStyle {
    /// Offset of the glyph centre from the image centre, in pixels (x right, y down).
    pub dx: f32,
    pub dy: f32,
    /// Half the side of the glyph's unit box, in pixels.
    pub size: f32,
    /// Shear: a point `h` pixels above the centre moves `slant * h` pixels right.
    pub slant: f32,
    /// Stroke width in pixels.
    pub stroke: f32,
    /// Rotation in radians (positive = clockwise on screen).
    pub rotation: f32,
    /// Peak ink in (0, 1]; pixel values reach `255 * brightness`.
    pub brightness: f32,
}

impl Default for GlyphStyle {
    fn default() -> Self {
        GlyphStyle::NEUTRAL
    }
}

impl GlyphStyle {
    /// Centred, upright, middle size and stroke, full brightness.
    pub const NEUTRAL: GlyphStyle = GlyphStyle { dx: 0.0, dy: 0.0, size: 8.5, slant: 0.0, stroke: 2.5, rotation: 0.0, brightness: 1.0 };

    /// The style whose factors sit at `u` (each in [0, 1], clamped) of their ranges in
    /// [`STYLE_FACTORS`].
    pub fn from_unit(u: [f32; 7]) -> Self {
        let v: [f32; 7] = std::array::from_fn(|k| {
            let (_, lo, hi) = STYLE_FACTORS[k];
            lo + (hi - lo) * u[k].clamp(0.0, 1.0)
        });
        GlyphStyle { dx: v[0], dy: v[1], size: v[2], slant: v[3], stroke: v[4], rotation: v[5], brightness: v[6] }
    }

    /// The inverse of [`GlyphStyle::from_unit`] (not clamped).
    pub fn to_unit(&self) -> [f32; 7] {
        let v = [self.dx, self.dy, self.size, self.slant, self.stroke, self.rotation, self.brightness];
        std::array::from_fn(|k| {
            let (_, lo, hi) = STYLE_FACTORS[k];
            (v[k] - lo) / (hi - lo)
        })
    }
}

type Polyline = Vec<[f32; 2]>;

fn arc(cx: f32, cy: f32, r: f32, a0: f32, a1: f32, steps: usize) -> Polyline {
    (0..=steps)
        .map(|k| {
            let a = a0 + (a1 - a0) * k as f32 / steps as f32;
            [cx + r * a.cos(), cy + r * a.sin()]
        })
        .collect()
}

/// The strokes of each glyph in a unit box [-1, 1]^2, y down.
fn glyphs() -> &'static [Vec<Polyline>; 10] {
    static G: OnceLock<[Vec<Polyline>; 10]> = OnceLock::new();
    G.get_or_init(|| {
        let spiral: Polyline = (0..=44)
            .map(|k| {
                let t = k as f32 / 44.0;
                let (a, r) = (-PI / 2.0 + t * 3.0 * PI, 0.08 + 0.8 * t);
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        let mut s_curve = arc(0.0, -0.42, 0.42, -PI / 6.0, -1.5 * PI, 18);
        s_curve.extend(arc(0.0, 0.42, 0.42, -PI / 2.0, 5.0 * PI / 6.0, 18).into_iter().skip(1));
        let star: Polyline = (0..=5)
            .map(|k| {
                let a = -PI / 2.0 + k as f32 * 4.0 * PI / 5.0;
                [0.9 * a.cos(), 0.9 * a.sin() + 0.05]
            })
            .collect();
        [
            vec![arc(0.0, 0.0, 0.85, 0.0, 2.0 * PI, 32)],
            vec![vec![[-0.75, -0.75], [0.75, -0.75], [0.75, 0.75], [-0.75, 0.75], [-0.75, -0.75]]],
            vec![vec![[0.0, -0.85], [0.85, 0.7], [-0.85, 0.7], [0.0, -0.85]]],
            vec![vec![[-0.75, -0.75], [0.75, 0.75]], vec![[0.75, -0.75], [-0.75, 0.75]]],
            vec![vec![[0.0, -0.9], [0.0, 0.9]], vec![[-0.9, 0.0], [0.9, 0.0]]],
            vec![vec![[0.0, 0.9], [0.0, -0.85]], vec![[-0.55, -0.3], [0.0, -0.85], [0.55, -0.3]]],
            vec![spiral],
            vec![s_curve],
            vec![vec![[-0.7, -0.75], [0.7, -0.75], [-0.7, 0.75], [0.7, 0.75]]],
            vec![star],
        ]
    })
}

/// Renders glyph `class` (< 10) in `style` into `out` (`GLYPH_SIZE * GLYPH_SIZE` bytes, row
/// major). Panics on a bad class or buffer length.
pub fn render_glyph_into(class: usize, style: &GlyphStyle, out: &mut [u8]) {
    const S: usize = GLYPH_SIZE;
    assert!(class < SYNTHETIC_CLASSES.len(), "glyph class {class} out of range (10 classes)");
    assert_eq!(out.len(), S * S, "render_glyph_into needs a {S} x {S} buffer");
    let (sin, cos) = style.rotation.sin_cos();
    let c = (S as f32 - 1.0) / 2.0;
    let to_px = |p: [f32; 2]| {
        let (rx, ry) = (cos * p[0] - sin * p[1], sin * p[0] + cos * p[1]);
        let sx = rx - style.slant * ry;
        [c + style.dx + style.size * sx, c + style.dy + style.size * ry]
    };
    let half = 0.5 * style.stroke.max(0.0);
    const RAMP: f32 = 1.0;
    let reach = half + 0.5 * RAMP;
    let mut d2 = [f32::INFINITY; S * S];
    for line in &glyphs()[class] {
        let pts: Vec<[f32; 2]> = line.iter().map(|&p| to_px(p)).collect();
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
            let len2 = ex * ex + ey * ey;
            let inv = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
            let x0 = (a[0].min(b[0]) - reach).floor().max(0.0) as usize;
            let y0 = (a[1].min(b[1]) - reach).floor().max(0.0) as usize;
            let x1 = (a[0].max(b[0]) + reach).ceil().min(S as f32 - 1.0);
            let y1 = (a[1].max(b[1]) + reach).ceil().min(S as f32 - 1.0);
            if x1 < 0.0 || y1 < 0.0 {
                continue;
            }
            for y in y0..=y1 as usize {
                for x in x0..=x1 as usize {
                    let (px, py) = (x as f32 - a[0], y as f32 - a[1]);
                    let t = ((px * ex + py * ey) * inv).clamp(0.0, 1.0);
                    let (qx, qy) = (px - t * ex, py - t * ey);
                    let d = qx * qx + qy * qy;
                    let cell = &mut d2[y * S + x];
                    if d < *cell {
                        *cell = d;
                    }
                }
            }
        }
    }
    let ink = 255.0 * style.brightness.clamp(0.0, 1.0);
    for (o, &d) in out.iter_mut().zip(d2.iter()) {
        let cover = ((half - d.sqrt()) / RAMP + 0.5).clamp(0.0, 1.0);
        *o = (ink * cover).round() as u8;
    }
}

/// [`render_glyph_into`] into a new `GLYPH_SIZE * GLYPH_SIZE` buffer.
pub fn render_glyph(class: usize, style: &GlyphStyle) -> Vec<u8> {
    let mut out = vec![0u8; GLYPH_SIZE * GLYPH_SIZE];
    render_glyph_into(class, style, &mut out);
    out
}

/// SplitMix64 (Steele et al. 2014): a tiny generator whose output never changes with library
/// versions, so the synthetic data stays the same everywhere.
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 * (1.0 / 16_777_216.0)
    }
}

/// The class and style of sample `index` of the synthetic training set (`test = false`) or test
/// set (`test = true`) generated from `seed`.
pub fn synthetic_factors(seed: u64, test: bool, index: usize) -> (u8, GlyphStyle) {
    let mut key = SplitMix64(seed);
    let base = key.next() ^ (u64::from(test) << 63);
    let mut rng = SplitMix64(base ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    rng.next();
    let class = ((rng.next() >> 32) * SYNTHETIC_CLASSES.len() as u64) >> 32;
    let u: [f32; 7] = std::array::from_fn(|_| rng.unit());
    (class as u8, GlyphStyle::from_unit(u))
}

fn generate(n: usize, seed: u64, test: bool) -> Dataset {
    const D: usize = GLYPH_SIZE * GLYPH_SIZE;
    let factors: Vec<(u8, GlyphStyle)> = (0..n).into_par_iter().map(|i| synthetic_factors(seed, test, i)).collect();
    let mut pixels = vec![0u8; n * D];
    pixels.par_chunks_mut(D).zip(factors.par_iter()).for_each(|(out, (class, style))| render_glyph_into(*class as usize, style, out));
    Dataset {
        name: "synthetic".into(),
        pixels,
        labels: factors.iter().map(|f| f.0).collect(),
        n,
        height: GLYPH_SIZE,
        width: GLYPH_SIZE,
        channels: 1,
        classes: SYNTHETIC_CLASSES.len(),
        class_names: SYNTHETIC_CLASSES.iter().map(|s| s.to_string()).collect(),
        unlabeled: Vec::new(),
        ids: Vec::new(),
    }
}

/// The synthetic glyph dataset: `n_train` training and `n_test` test images, 28 x 28 x 1,
/// 10 classes, a deterministic function of `seed`.
pub fn synthetic(n_train: usize, n_test: usize, seed: u64) -> Split {
    let (train, test) = rayon::join(|| generate(n_train, seed, false), || generate(n_test, seed, true));
    Split { train, test }
}
