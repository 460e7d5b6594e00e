//! `ssvae plot`: the figures of a saved run (PNG or SVG) and a self-contained `report.html`
//! that shows them with the run's configuration and results.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ssvae::eval::plot::{confusion, curves, histograms, roc, scatter, Figure, Format, Panel, Series};
use ssvae::model::Family;
use ssvae::run::{Run, ANOMALY_SCORES_FILE, SUMMARY_FILE};
use ssvae::train::checkpoint::METRICS_FILE;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Bitmaps, for slides and documents.
    Png,
    /// Vector graphics, for the web and print.
    Svg,
}

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A folder written by `ssvae train` or `ssvae anomaly`; figures and report.html are
    /// written into it.
    #[arg(long)]
    run: PathBuf,
    /// Test samples in the latent scatter.
    #[arg(long, default_value_t = 5000)]
    points: usize,
    /// File format of the figures (the sample grid is always PNG).
    #[arg(long, value_enum, default_value = "png")]
    format: FormatArg,
    /// Width of each figure in pixels.
    #[arg(long, default_value_t = 720)]
    width: u32,
    /// Height of each figure in pixels (the training curves get 1.5x per two panels).
    #[arg(long, default_value_t = 480)]
    height: u32,
    /// No report.html, only the figures.
    #[arg(long)]
    no_report: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn plot(a: PlotArgs) -> Result<()> {
    on_backend!(a.dev, be => run_plot(be, a))
}

/// One figure of the report.
struct Written {
    title: String,
    path: PathBuf,
    bytes: Vec<u8>,
    format: Format,
}

/// Splits one CSV line into cells (double quotes, `""` inside quotes).
fn csv_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    cells.push(cur);
    cells
}

fn run_plot<B: Backend>(be: &B, a: PlotArgs) -> Result<()> {
    if a.points == 0 {
        anyhow::bail!("--points must be at least 1");
    }
    let format = match a.format {
        FormatArg::Png => Format::Png,
        FormatArg::Svg => Format::Svg,
    };
    let fig = Figure { width: a.width, height: a.height, format };
    let run = Run::open(be, &a.run)?;
    let spec = run.model().clone();
    let names = run.class_names();
    let mut written: Vec<Written> = Vec::new();
    let mut save = |title: &str, stem: &str, bytes: Vec<u8>, format: Format| -> Result<()> {
        let p = a.run.join(format!("{stem}.{}", format.extension()));
        std::fs::write(&p, &bytes).with_context(|| p.display().to_string())?;
        written.push(Written { title: title.into(), path: p, bytes, format });
        Ok(())
    };

    // training curves: one panel per quantity
    let metrics_path = a.run.join(METRICS_FILE);
    let metrics = std::fs::read_to_string(&metrics_path).with_context(|| format!("{}", metrics_path.display()))?;
    let mut lines: Vec<serde_json::Value> = Vec::new();
    for (i, l) in metrics.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).ok().filter(|v: &serde_json::Value| v["epoch"].is_u64()).with_context(|| {
            format!("{} line {}: not an epoch line of `ssvae train` (a JSON object with \"epoch\")", metrics_path.display(), i + 1)
        })?;
        lines.push(v);
    }
    if lines.is_empty() {
        anyhow::bail!("{}: no epochs recorded yet (the run has not finished its first epoch); nothing to plot", metrics_path.display());
    }
    let series =
        |key: &str, name: &str| Series::new(name, lines.iter().filter_map(|l| Some((l["epoch"].as_f64()?, l[key].as_f64()?))).collect());
    let mut panels = Vec::new();
    if spec.has_classifier() {
        panels.push(Panel { y_label: "test accuracy".into(), series: vec![series("test_accuracy", "test")] });
        panels.push(Panel { y_label: "test log loss".into(), series: vec![series("test_log_loss", "test")] });
    }
    if spec.has_decoder() {
        panels.push(Panel {
            y_label: "reconstruction (nats)".into(),
            series: vec![series("train_rec", "train"), series("test_rec", "test")],
        });
        panels.push(Panel { y_label: "KL (nats)".into(), series: vec![series("train_kl", "train"), series("test_kl", "test")] });
    }
    let curve_fig = Figure { height: (a.height as usize * (panels.len().max(2)) * 3 / 4).min(8192) as u32, ..fig };
    save(
        "Training curves",
        "curves",
        curves(curve_fig, &format!("{} on {}", spec.name(), run.config.spec.data.dataset), &panels)?,
        format,
    )?;

    // anomaly runs: ROC and the score histogram per class
    if let Ok(csv) = std::fs::read_to_string(a.run.join(ANOMALY_SCORES_FILE)) {
        let mut rows = csv.lines();
        let head = csv_cells(rows.next().unwrap_or(""));
        let col = |n: &str| head.iter().position(|h| h == n);
        let (Some(li), Some(ai), Some(si)) = (col("label"), col("anomalous"), col("score")) else {
            anyhow::bail!("{}: not the anomaly_scores.csv `ssvae train` writes", a.run.join(ANOMALY_SCORES_FILE).display());
        };
        let (mut scores, mut pos, mut groups) = (Vec::new(), Vec::new(), Vec::<(String, Vec<f64>)>::new());
        for l in rows {
            let f = csv_cells(l);
            let (Some(label), Some(anom), Some(score)) = (f.get(li), f.get(ai), f.get(si).and_then(|s| s.parse::<f64>().ok())) else {
                continue;
            };
            if label.is_empty() {
                continue;
            }
            pos.push(anom == "1");
            scores.push(score);
            // the normal classes together, each anomalous class on its own
            let label = if anom == "1" { format!("{label} (anomalous)") } else { "normal classes".to_string() };
            match groups.iter_mut().find(|g| g.0 == label) {
                Some(g) => g.1.push(score),
                None => groups.push((label, vec![score])),
            }
        }
        let auc = ssvae::eval::roc_auc(&scores, &pos).unwrap_or(f64::NAN);
        let curve = ssvae::eval::roc_curve(&scores, &pos);
        save("ROC of the anomaly score", "roc", roc(fig, "ROC: detecting the anomalous classes", &curve, auc)?, format)?;
        groups.sort_by(|x, y| (x.0 != "normal classes").cmp(&(y.0 != "normal classes")).then(x.0.cmp(&y.0)));
        save(
            "Anomaly score: normal and anomalous classes",
            "scores",
            histograms(fig, "Anomaly score per class (higher = more anomalous)", "score (nats)", &groups, 40)?,
            format,
        )?;
    }

    // the split the run was reported on (the test split, or a --validation hold-out; a run
    // trained for model choice never shows the test set here): confusion matrix
    // (classifiers) and latent scatter (2-D latents)
    let split = run.load_run_splits(None)?;
    let test = split.test();
    let split_name = if run.config.spec.data.validation.is_some() { "validation" } else { "test" };
    if spec.has_classifier() && test.n() > 0 {
        let probs = run.predict_proba(be, test)?;
        let k = spec.classes;
        let shown = names.len().min(k);
        let mut m = vec![vec![0usize; shown]; shown];
        for i in 0..test.n() {
            if let Some(t) = test.label(i).map(|l| l as usize).filter(|&t| t < shown) {
                let row = &probs[i * k..(i + 1) * k];
                let p = (0..shown).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                m[t][p] += 1;
            }
        }
        let title = format!("Confusion matrix, {} {split_name} samples", m.iter().flatten().sum::<usize>());
        let side = Figure {
            width: fig.width.max(160 + 48 * shown as u32).min(4096),
            height: fig.height.max(140 + 40 * shown as u32).min(4096),
            ..fig
        };
        save(&format!("Confusion matrix ({split_name} split)"), "confusion", confusion(side, &title, &m, &names[..shown])?, format)?;
    }
    if spec.has_decoder() && spec.latent >= 2 && spec.family != Family::Rnn && test.n() > 0 {
        let n = a.points.min(test.n());
        let mus = run.encode(be, test)?;
        let pts: Vec<(f64, f64, usize)> =
            (0..n).filter_map(|i| Some((mus[i * spec.latent] as f64, mus[i * spec.latent + 1] as f64, test.label(i)? as usize))).collect();
        save(
            &format!("Latent means of {split_name} samples"),
            "latent",
            scatter(fig, &format!("Latent means of {} {split_name} samples", pts.len()), ("z1", "z2"), &pts, &names)?,
            format,
        )?;
    }
    // the sample grid (image models with a decoder)
    if spec.has_decoder() && run.image_shape().is_some() && !spec.real_input && spec.family != Family::Rnn {
        let scale = if run.image_shape().is_some_and(|s| s[0] < 32) { 2 } else { 1 };
        let img = run.sample(be, 8, 0, false, scale, false)?;
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).context("encoding the sample grid")?;
        save("Generated samples: one row per class, one column per style", "grid", png.into_inner(), Format::Png)?;
    }
    let mut out: Vec<PathBuf> = written.iter().map(|w| w.path.clone()).collect();
    if !a.no_report {
        let p = a.run.join("report.html");
        std::fs::write(&p, report(&run, &written)?).with_context(|| p.display().to_string())?;
        out.push(p);
    }
    println!("{}", serde_json::json!({ "plots": out }));
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            s.push(if k <= c.len() { T[(n >> (18 - 6 * k) & 63) as usize] as char } else { '=' });
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// report.html: the run's configuration and results and every figure, inlined (PNG as base64,
/// SVG as markup), so the one file can be mailed or put on a wiki.
fn report<B: Backend>(run: &Run<B>, figures: &[Written]) -> Result<String> {
    let c = &run.config;
    let spec = run.model();
    let summary: Option<serde_json::Value> =
        std::fs::read_to_string(run.dir.join(SUMMARY_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok());
    let num = |k: &str| summary.as_ref().and_then(|s| s[k].as_f64());
    let mut rows: Vec<(String, String)> = vec![
        ("Model".into(), format!("{} (latent {}, hidden {:?})", spec.name(), spec.latent, spec.hidden)),
        (
            "Data".into(),
            format!("{}{}", c.spec.data.dataset, c.spec.data.path.as_ref().map_or(String::new(), |p| format!(" ({})", p.display()))),
        ),
        ("Classes".into(), run.class_names().join(", ")),
        ("Labeled training samples".into(), c.labels_used.to_string()),
        ("Epochs".into(), format!("{} ({} steps, batch {})", c.epochs_done, c.steps_done, c.train.batch_size)),
        ("Seed".into(), c.train.seed.to_string()),
    ];
    for (k, label) in [("accuracy", "Test accuracy"), ("log_loss", "Test log loss"), ("auc", "Anomaly ROC AUC")] {
        if let Some(v) = num(k) {
            rows.push((label.into(), format!("{v:.4}")));
        }
    }
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ssvae report</title>\n<style>\
         body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
         h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\
         table{border-collapse:collapse}td{padding:.25em 1em .25em 0;vertical-align:top}td:first-child{color:#555}\
         figure{margin:1em 0}img,svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.9em}\
         </style></head><body>\n",
    );
    html += &format!("<h1>ssvae run: {}</h1>\n<p>{}</p>\n<table>\n", esc(&spec.name()), esc(&run.dir.display().to_string()));
    for (k, v) in &rows {
        html += &format!("<tr><td>{}</td><td>{}</td></tr>\n", esc(k), esc(v));
    }
    html += "</table>\n";
    for f in figures {
        html += &format!("<h2>{}</h2>\n<figure>", esc(&f.title));
        match f.format {
            Format::Png => html += &format!("<img alt=\"{}\" src=\"data:image/png;base64,{}\">", esc(&f.title), base64(&f.bytes)),
            Format::Svg => {
                let svg = String::from_utf8_lossy(&f.bytes);
                html += svg.trim_start_matches(|c| c != '<');
            }
        }
        html += &format!("<figcaption>{}</figcaption></figure>\n", esc(&file_name(&f.path)));
    }
    html += "<h2>Configuration</h2>\n<pre>";
    html += &esc(&serde_json::to_string_pretty(&c.spec).unwrap_or_default());
    html += "</pre>\n</body></html>\n";
    Ok(html)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        for (raw, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn csv_cells_keep_quoted_commas() {
        assert_eq!(csv_cells("1,\"a, b\",\"say \"\"hi\"\"\",x"), ["1", "a, b", "say \"hi\"", "x"]);
    }
}
