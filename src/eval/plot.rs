//! Small PNG plots drawn with the `image` crate and the 5x7 bitmap font in assets/ (no system
//! fonts or native libraries needed, so plots work on any machine): line charts (training
//! curves, ROC curves) and scatter plots (the 2-D latent space coloured by class).

use std::collections::HashMap;
use std::sync::OnceLock;

use image::{Rgb, RgbImage};

const FONT_SRC: &str = include_str!("../../assets/font5x7.txt");

/// Tableau's ten categorical colours.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GREY: Rgb<u8> = Rgb([225, 225, 225]);

fn font() -> &'static HashMap<char, [u8; 7]> {
    static FONT: OnceLock<HashMap<char, [u8; 7]>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut m = HashMap::new();
        for line in FONT_SRC.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(c), rows) = (parts.next().and_then(|s| s.chars().next()), parts) else { continue };
            let mut g = [0u8; 7];
            for (i, row) in rows.take(7).enumerate() {
                g[i] = row.chars().fold(0, |acc, ch| (acc << 1) | (ch == '#') as u8);
            }
            m.insert(c, g);
        }
        m
    })
}

/// A white canvas with text and line drawing.
pub struct Canvas {
    pub img: RgbImage,
}

impl Canvas {
    pub fn new(w: u32, h: u32) -> Self {
        Canvas { img: RgbImage::from_pixel(w, h, Rgb([255, 255, 255])) }
    }

    fn put(&mut self, x: i64, y: i64, c: Rgb<u8>) {
        if x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, c);
        }
    }

    /// Text with its top-left corner at (x, y); each font pixel is `scale` pixels.
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb<u8>, scale: i64) {
        let f = font();
        for (i, ch) in s.chars().enumerate() {
            let Some(g) = f.get(&ch.to_ascii_uppercase()) else { continue };
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(x + (i as i64 * 6 + col) * scale + dx, y + row as i64 * scale + dy, c);
                            }
                        }
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 6 * scale
    }

    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb<u8>, thick: i64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as i64).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + t * (x1 - x0)).round() as i64, (y0 + t * (y1 - y0)).round() as i64);
            for d in 0..thick {
                self.put(x, y + d - thick / 2, c);
                self.put(x + d - thick / 2, y, c);
            }
        }
    }

    pub fn dot(&mut self, x: f64, y: f64, c: Rgb<u8>, r: i64) {
        for dy in -r..=r {
            for dx in -r..=r {
                self.put(x.round() as i64 + dx, y.round() as i64 + dy, c);
            }
        }
    }
}

/// Round tick positions covering [lo, hi].
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= target as f64 + 0.5).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut v = Vec::new();
    while t <= hi + step * 1e-9 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Axes frame: maps data to pixels.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    left: f64,
    top: f64,
    w: f64,
    h: f64,
}

impl Frame {
    fn px(&self, x: f64, y: f64) -> (f64, f64) {
        (self.left + (x - self.x0) / (self.x1 - self.x0) * self.w, self.top + self.h - (y - self.y0) / (self.y1 - self.y0) * self.h)
    }
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.03 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Draws title, axes, grid and tick labels; returns the frame for the data.
fn axes(c: &mut Canvas, title: &str, xl: &str, yl: &str, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Frame {
    let (w, h) = (c.img.width() as f64, c.img.height() as f64);
    let f = Frame { x0, x1, y0, y1, left: 70.0, top: 40.0, w: w - 90.0, h: h - 95.0 };
    c.text(((w - Canvas::text_width(title, 2) as f64) / 2.0) as i64, 10, title, BLACK, 2);
    for t in ticks(x0, x1, 6) {
        let (px, _) = f.px(t, y0);
        c.line((px, f.top), (px, f.top + f.h), GREY, 1);
        let s = label(t);
        c.text(px as i64 - Canvas::text_width(&s, 1) / 2, (f.top + f.h + 6.0) as i64, &s, BLACK, 1);
    }
    for t in ticks(y0, y1, 6) {
        let (_, py) = f.px(x0, t);
        c.line((f.left, py), (f.left + f.w, py), GREY, 1);
        let s = label(t);
        c.text(f.left as i64 - Canvas::text_width(&s, 1) - 5, py as i64 - 3, &s, BLACK, 1);
    }
    c.line((f.left, f.top), (f.left, f.top + f.h), BLACK, 1);
    c.line((f.left, f.top + f.h), (f.left + f.w, f.top + f.h), BLACK, 1);
    c.text(((w - Canvas::text_width(xl, 1) as f64) / 2.0) as i64, (h - 22.0) as i64, xl, BLACK, 1);
    c.text(8, (f.top - 14.0) as i64, yl, BLACK, 1);
    f
}

fn legend(c: &mut Canvas, f: &Frame, names: &[(String, [u8; 3])]) {
    let x = (f.left + f.w) as i64 - names.iter().map(|(n, _)| Canvas::text_width(n, 1)).max().unwrap_or(0) - 24;
    for (i, (n, col)) in names.iter().enumerate() {
        let y = f.top as i64 + 6 + 12 * i as i64;
        c.line((x as f64, y as f64 + 3.0), (x as f64 + 12.0, y as f64 + 3.0), Rgb(*col), 3);
        c.text(x + 16, y, n, BLACK, 1);
    }
}

/// Line chart of named series of (x, y) points.
pub fn line_chart(title: &str, xl: &str, yl: &str, series: &[(String, Vec<(f64, f64)>)], size: (u32, u32)) -> RgbImage {
    let mut c = Canvas::new(size.0, size.1);
    let xr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
    let yr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    let f = axes(&mut c, title, xl, yl, xr, yr);
    let mut names = Vec::new();
    for (i, (name, pts)) in series.iter().enumerate() {
        let col = PALETTE[i % 10];
        let pts: Vec<(f64, f64)> = pts.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|&(x, y)| f.px(x, y)).collect();
        for w in pts.windows(2) {
            c.line(w[0], w[1], Rgb(col), 2);
        }
        if pts.len() == 1 {
            c.dot(pts[0].0, pts[0].1, Rgb(col), 2);
        }
        names.push((name.clone(), col));
    }
    legend(&mut c, &f, &names);
    c.img
}

/// Scatter of (x, y, class) points coloured by class, with a legend of class names.
pub fn scatter(title: &str, xl: &str, yl: &str, pts: &[(f64, f64, usize)], class_names: &[String], size: (u32, u32)) -> RgbImage {
    let mut c = Canvas::new(size.0, size.1);
    let f = axes(&mut c, title, xl, yl, range(pts.iter().map(|p| p.0)), range(pts.iter().map(|p| p.1)));
    for &(x, y, k) in pts {
        let (px, py) = f.px(x, y);
        c.dot(px, py, Rgb(PALETTE[k % 10]), 1);
    }
    let names: Vec<(String, [u8; 3])> = class_names.iter().enumerate().map(|(k, n)| (n.clone(), PALETTE[k % 10])).collect();
    legend(&mut c, &f, &names);
    c.img
}
