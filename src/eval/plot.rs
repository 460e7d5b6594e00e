//! Figures for a report, drawn with `plotters` as PNG (its bitmap backend, encoded by the
//! `image` crate) or SVG, with an embedded font (a DejaVu Sans subset in assets/fonts: Latin,
//! Greek and the usual symbols such as ± α β σ), so they look the same on any machine and need
//! no system fonts:
//!
//! - [`curves`]: training curves, one panel per quantity (each on its own axis) with integer
//!   epoch ticks and the legend outside the data;
//! - [`roc`]: the ROC curve with a dashed grey chance line and the AUC in the legend;
//! - [`scatter`]: the 2-D latent space coloured by class, a legend of class names;
//! - [`confusion`]: a confusion matrix with counts and class names;
//! - [`histograms`]: a score histogram per group (anomaly runs: per class);
//! - [`label_grid`]: a grid of generated images with class names on the rows.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBColor};

use crate::error::{Error, Result};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

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

fn colour(i: usize) -> RGBColor {
    let [r, g, b] = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // the font is compiled in; registering it cannot fail unless the file is not a font
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, FONT);
    });
}

/// The file format of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Size and format of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure {
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

impl Figure {
    pub fn png(width: u32, height: u32) -> Self {
        Figure { width, height, format: Format::Png }
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("drawing a figure: {e}"))
}

/// Runs `$body` with `$root` bound to a white drawing area of the figure's backend and returns
/// the encoded file (PNG bytes or SVG text).
macro_rules! render {
    ($fig:expr, $root:ident => $body:block) => {{
        register_font();
        let fig: Figure = $fig;
        if fig.width < 64 || fig.height < 64 || fig.width > 8192 || fig.height > 8192 {
            return Err(Error::Invalid(format!("--width/--height must be between 64 and 8192 (got {}x{})", fig.width, fig.height)));
        }
        match fig.format {
            Format::Png => {
                let mut buf = vec![255u8; fig.width as usize * fig.height as usize * 3];
                {
                    let $root = BitMapBackend::with_buffer(&mut buf, (fig.width, fig.height)).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body
                    $root.present().map_err(err)?;
                }
                encode_png(buf, fig.width, fig.height)
            }
            Format::Svg => {
                let mut svg = String::new();
                {
                    let $root = SVGBackend::with_string(&mut svg, (fig.width, fig.height)).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body
                    $root.present().map_err(err)?;
                }
                Ok(svg.into_bytes())
            }
        }
    }};
}

fn encode_png(rgb: Vec<u8>, w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| err("buffer size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(err)?;
    Ok(out.into_inner())
}

/// A named line of (x, y) points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points }
    }
}

/// One panel of [`curves`]: its y-axis label and the series on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
}

/// A legend drawn in the right margin of `area` (off the data): a line (or a box) and the name
/// of each series, top down.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, items: &[(String, RGBColor, bool)], top: i32) -> Result<()> {
    let x = area.dim_in_pixel().0 as i32 - 140;
    for (i, (name, c, boxed)) in items.iter().enumerate() {
        let y = top + 18 * i as i32;
        if *boxed {
            area.draw(&Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.6).filled())).map_err(err)?;
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))).map_err(err)?;
        }
        area.draw(&Text::new(name.clone(), (x + 24, y), (FAMILY, 13).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
            .map_err(err)?;
    }
    Ok(())
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-6 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

/// Training curves against the epoch: one panel per quantity, stacked, each with its own
/// y axis; x ticks at whole epochs; the legend to the right of the data.
pub fn curves(fig: Figure, title: &str, panels: &[Panel]) -> Result<Vec<u8>> {
    let panels: Vec<&Panel> = panels.iter().filter(|p| p.series.iter().any(|s| !s.points.is_empty())).collect();
    if panels.is_empty() {
        return Err(Error::Invalid("no curve has any point to draw".into()));
    }
    let max_epoch = panels.iter().flat_map(|p| &p.series).flat_map(|s| &s.points).map(|p| p.0).fold(1.0, f64::max);
    render!(fig, root => {
        let (head, body) = root.split_vertically(36);
        head.titled(title, (FAMILY, 20).into_font()).map_err(err)?;
        let areas = body.split_evenly((panels.len(), 1));
        for (k, (area, panel)) in areas.iter().zip(&panels).enumerate() {
            let (lo, hi) = range(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let last = k + 1 == panels.len();
            let mut chart = ChartBuilder::on(area)
                .margin_left(8)
                .margin_right(150)
                .margin_top(6)
                .x_label_area_size(if last { 36 } else { 18 })
                .y_label_area_size(64)
                .build_cartesian_2d(0.5f64..max_epoch + 0.5, lo..hi)
                .map_err(err)?;
            let epochs = max_epoch as usize;
            chart
                .configure_mesh()
                .x_labels(epochs.min(12) + 1)
                .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 && *x >= 1.0 { format!("{}", x.round() as i64) } else { String::new() })
                .x_desc(if last { "epoch" } else { "" })
                .y_desc(panel.y_label.as_str())
                .label_style((FAMILY, 13))
                .axis_desc_style((FAMILY, 14))
                .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT)
                .draw()
                .map_err(err)?;
            for (i, s) in panel.series.iter().enumerate() {
                let c = colour(i);
                chart.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2))).map_err(err)?;
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(err)?;
            }
            let items: Vec<(String, RGBColor, bool)> = panel.series.iter().enumerate().map(|(i, s)| (s.name.clone(), colour(i), false)).collect();
            legend(area, &items, 16)?;
        }
    })
}

/// The ROC curve (false positive rate, true positive rate) with the AUC in the legend and the
/// chance diagonal dashed in grey.
pub fn roc(fig: Figure, title: &str, curve: &[(f64, f64)], auc: f64) -> Result<Vec<u8>> {
    render!(fig, root => {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("false positive rate")
            .y_desc("true positive rate")
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 6, 5, grey.stroke_width(1)))
            .map_err(err)?
            .label("chance (AUC 0.5)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1)));
        let c = colour(0);
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(format!("model (AUC {auc:.3})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .margin(8)
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(err)?;
    })
}

/// Points (x, y, class) coloured by class, with a legend of class names to the right.
pub fn scatter(fig: Figure, title: &str, labels: (&str, &str), pts: &[(f64, f64, usize)], class_names: &[String]) -> Result<Vec<u8>> {
    let (xlo, xhi) = range(pts.iter().map(|p| p.0));
    let (ylo, yhi) = range(pts.iter().map(|p| p.1));
    render!(fig, root => {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 18))
            .margin(12)
            .margin_right(160)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(xlo..xhi, ylo..yhi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(labels.0)
            .y_desc(labels.1)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        let mut items = Vec::new();
        for (c, name) in class_names.iter().enumerate() {
            let col = colour(c);
            let these: Vec<(f64, f64)> = pts.iter().filter(|p| p.2 == c).map(|p| (p.0, p.1)).collect();
            if these.is_empty() {
                continue;
            }
            chart.draw_series(these.into_iter().map(|p| Circle::new(p, 2, col.mix(0.7).filled()))).map_err(err)?;
            items.push((name.clone(), col, true));
        }
        legend(&root, &items, 48)?;
    })
}

/// A confusion matrix: rows the true class, columns the predicted one, each cell its count
/// shaded by its share of the row.
pub fn confusion(fig: Figure, title: &str, matrix: &[Vec<usize>], class_names: &[String]) -> Result<Vec<u8>> {
    let k = class_names.len();
    if k == 0 || matrix.len() != k || matrix.iter().any(|r| r.len() != k) {
        return Err(Error::Invalid(format!("a confusion matrix needs {k} x {k} counts")));
    }
    let longest = class_names.iter().map(|n| n.chars().count()).max().unwrap_or(1).min(28) as i32;
    render!(fig, root => {
        let (w, h) = root.dim_in_pixel();
        let (left, top, bottom, right) = (34 + 7 * longest, 44, 64, 16);
        let cell = ((w as i32 - left - right) / k as i32).min((h as i32 - top - bottom) / k as i32).max(8);
        root.draw(&Text::new(title.to_string(), (w as i32 / 2, 12), (FAMILY, 18).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)))).map_err(err)?;
        let small = (FAMILY, 12).into_font().color(&BLACK);
        for (t, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = top + t as i32 * cell;
            root.draw(&Text::new(class_names[t].clone(), (left - 6, y + cell / 2), small.clone().pos(Pos::new(HPos::Right, VPos::Center)))).map_err(err)?;
            for (p, &n) in row.iter().enumerate() {
                let x = left + p as i32 * cell;
                let share = n as f64 / total;
                let shade = RGBColor((255.0 - 224.0 * share) as u8, (255.0 - 136.0 * share) as u8, (255.0 - 75.0 * share) as u8);
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], shade.filled())).map_err(err)?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(210, 210, 210))).map_err(err)?;
                let text_colour = if share > 0.55 { WHITE } else { BLACK };
                let font = (FAMILY, 13).into_font().color(&text_colour).pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(n.to_string(), (x + cell / 2, y + cell / 2), font)).map_err(err)?;
            }
        }
        let below = top + k as i32 * cell;
        for (p, name) in class_names.iter().enumerate() {
            let x = left + p as i32 * cell + cell / 2;
            root.draw(&Text::new(name.clone(), (x, below + 6), small.clone().pos(Pos::new(HPos::Center, VPos::Top)))).map_err(err)?;
        }
        let mid_x = left + k as i32 * cell / 2;
        root.draw(&Text::new("predicted class", (mid_x, below + 30), (FAMILY, 14).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)))).map_err(err)?;
        root.draw(&Text::new("true class", (4, top - 18), (FAMILY, 14).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top)))).map_err(err)?;
    })
}

/// A histogram of values per group (anomaly runs: the score per class), overlaid, with a legend.
pub fn histograms(fig: Figure, title: &str, x_label: &str, groups: &[(String, Vec<f64>)], bins: usize) -> Result<Vec<u8>> {
    let all: Vec<f64> = groups.iter().flat_map(|g| g.1.iter().copied()).filter(|v| v.is_finite()).collect();
    if all.is_empty() {
        return Err(Error::Invalid("no finite value to draw a histogram of".into()));
    }
    // the x range ends at the 99.5th percentile: a few far outliers would squeeze the rest
    // into a few bins (they are counted in the last bin)
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let top = sorted[((sorted.len() - 1) as f64 * 0.995) as usize];
    let (lo, hi) = range([sorted[0], top].into_iter());
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let counts: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            let mut c = vec![0usize; bins];
            for v in g.1.iter().filter(|v| v.is_finite()) {
                c[(((v - lo) / width).max(0.0) as usize).min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    let ymax = counts.iter().flatten().copied().max().unwrap_or(1) as f64 * 1.1;
    render!(fig, root => {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 18))
            .margin(12)
            .margin_right(160)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(lo..hi, 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("samples")
            .y_label_formatter(&|v| format!("{}", v.round() as i64))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .bold_line_style(RGBColor(225, 225, 225))
                .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        let mut items = Vec::new();
        for (gi, (g, c)) in groups.iter().zip(&counts).enumerate() {
            let col = colour(gi);
            chart
                .draw_series(c.iter().enumerate().filter(|(_, &n)| n > 0).map(|(b, &n)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, n as f64)], col.mix(0.45).filled())
                }))
                .map_err(err)?;
            items.push((g.0.clone(), col, true));
        }
        legend(&root, &items, 48)?;
    })
}

/// A grid of images (`cells`: rows x cols images of h x w x c values in [0, 1], channels last,
/// row after row) scaled by `scale` (nearest neighbour), with `row_labels` to the left of the
/// rows and, when given, `col_labels` above the columns. PNG bytes.
#[allow(clippy::too_many_arguments)]
pub fn label_grid(
    cells: &[f32],
    (rows, cols): (usize, usize),
    (h, w, c): (usize, usize, usize),
    scale: usize,
    row_labels: &[String],
    col_labels: Option<&[String]>,
) -> Result<image::RgbImage> {
    if c != 1 && c != 3 {
        return Err(Error::Invalid(format!("sample grids draw 1 or 3 channels, the model has {c}")));
    }
    if cells.len() != rows * cols * h * w * c {
        return Err(Error::Invalid(format!("{} values do not make {rows} x {cols} images of {h}x{w}x{c}", cells.len())));
    }
    let scale = scale.clamp(1, 16);
    let gap = 2;
    let left = if row_labels.is_empty() { gap } else { 12 + 8 * row_labels.iter().map(|s| s.chars().count()).max().unwrap_or(1).min(24) };
    let top = if col_labels.is_some() { 22 } else { gap };
    let (cw, ch) = (w * scale, h * scale);
    let width = left + cols * (cw + gap);
    let height = top + rows * (ch + gap);
    if width > 16384 || height > 16384 {
        return Err(Error::Invalid(format!("the grid would be {width}x{height} pixels; use fewer styles or a smaller --scale")));
    }
    let mut buf = vec![255u8; width * height * 3];
    for r in 0..rows {
        for col in 0..cols {
            let cell = &cells[(r * cols + col) * h * w * c..][..h * w * c];
            for y in 0..ch {
                for x in 0..cw {
                    let px = &cell[((y / scale) * w + x / scale) * c..][..c];
                    let rgb = if c == 1 { [px[0]; 3] } else { [px[0], px[1], px[2]] };
                    let (gx, gy) = (left + col * (cw + gap) + x, top + r * (ch + gap) + y);
                    for (k, v) in rgb.iter().enumerate() {
                        buf[(gy * width + gx) * 3 + k] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    register_font();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width as u32, height as u32)).into_drawing_area();
        let font = (FAMILY, 13).into_font().color(&BLACK);
        for (r, label) in row_labels.iter().enumerate().take(rows) {
            let y = (top + r * (ch + gap) + ch / 2) as i32;
            root.draw(&Text::new(label.clone(), (6, y), font.clone().pos(Pos::new(HPos::Left, VPos::Center)))).map_err(err)?;
        }
        if let Some(labels) = col_labels {
            for (k, label) in labels.iter().enumerate().take(cols) {
                let x = (left + k * (cw + gap) + cw / 2) as i32;
                root.draw(&Text::new(label.clone(), (x, 4), font.clone().pos(Pos::new(HPos::Center, VPos::Top)))).map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    image::RgbImage::from_raw(width as u32, height as u32, buf).ok_or_else(|| err("buffer size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(bytes).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn every_figure_renders_in_both_formats() {
        let s = |n: &str, k: f64| Series::new(n, (1..=3).map(|e| (e as f64, k * e as f64)).collect());
        let panels = vec![
            Panel { y_label: "accuracy".into(), series: vec![s("test", 0.2)] },
            Panel { y_label: "KL (nats)".into(), series: vec![s("train", 3.0), s("test", 2.5)] },
        ];
        let names: Vec<String> = ["circle", "square ± σ"].iter().map(|s| s.to_string()).collect();
        for format in [Format::Png, Format::Svg] {
            let fig = Figure { width: 500, height: 400, format };
            let outs = [
                curves(fig, "Training α, β", &panels).unwrap(),
                roc(fig, "ROC", &[(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)], 0.83).unwrap(),
                scatter(fig, "latent", ("z1", "z2"), &[(0.0, 1.0, 0), (1.0, 0.5, 1)], &names).unwrap(),
                confusion(fig, "confusion", &[vec![3, 1], vec![0, 4]], &names).unwrap(),
                histograms(fig, "scores", "score", &[("a".into(), vec![1.0, 2.0]), ("b".into(), vec![3.0])], 10).unwrap(),
            ];
            for o in outs {
                match format {
                    Format::Png => assert_eq!(png_size(&o), (500, 400)),
                    Format::Svg => {
                        let t = String::from_utf8(o).unwrap();
                        assert!(t.starts_with("<svg") && t.contains("</svg>"), "{t:.80}");
                    }
                }
            }
        }
        // the legend keeps characters a 5x7 bitmap font dropped
        let svg =
            String::from_utf8(curves(Figure { width: 500, height: 400, format: Format::Svg }, "Training α, β", &panels).unwrap()).unwrap();
        assert!(svg.contains("Training α, β"), "title text in the SVG");
        let svg =
            String::from_utf8(roc(Figure { width: 500, height: 400, format: Format::Svg }, "ROC", &[(0.0, 0.0), (1.0, 1.0)], 0.5).unwrap())
                .unwrap();
        assert!(svg.contains("model (AUC 0.500)"), "the AUC is in the legend");
        assert!(
            svg.contains("stroke-dasharray") || svg.matches("<line").count() + svg.matches("<polyline").count() > 2,
            "a dashed chance line"
        );
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        // a title with and without text differs: glyphs are rendered (no system font needed)
        let p = vec![Panel { y_label: "y".into(), series: vec![Series::new("s", vec![(1.0, 1.0), (2.0, 2.0)])] }];
        let a = curves(Figure::png(300, 200), "", &p).unwrap();
        let b = curves(Figure::png(300, 200), "Accuracy ± σ", &p).unwrap();
        assert_ne!(image::load_from_memory(&a).unwrap().to_rgb8().into_raw(), image::load_from_memory(&b).unwrap().to_rgb8().into_raw());
    }

    #[test]
    fn label_grid_draws_rgb_cells_and_row_names() {
        let (h, w) = (4, 4);
        let mut cells = vec![0f32; 2 * 3 * h * w * 3];
        cells[..3].copy_from_slice(&[1.0, 0.0, 0.0]); // top-left pixel of the first cell red
        let img = label_grid(&cells, (2, 3), (h, w, 3), 2, &["circle".into(), "square".into()], None).unwrap();
        let left = 12 + 8 * 6;
        assert_eq!(img.get_pixel(left as u32, 2).0, [255, 0, 0], "the red pixel, scaled x2");
        assert_eq!(img.get_pixel(left as u32 + 1, 3).0, [255, 0, 0]);
        // the label column holds dark text pixels
        let dark =
            (0..left as u32).flat_map(|x| (0..img.height()).map(move |y| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100).count();
        assert!(dark > 20, "row names drawn: {dark} dark pixels");
        assert!(label_grid(&cells, (2, 3), (h, w, 2), 1, &[], None).is_err());
    }
}
