//! `ssvae plot`: PNG plots of a saved run: training curves, the ROC curve (anomaly runs) and
//! the latent scatter of test samples.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ssvae::eval::plot::{line_chart, scatter};
use ssvae::model::Family;
use ssvae::run::{Loaded, Run, ANOMALY_SCORES_FILE};
use ssvae::train::checkpoint::METRICS_FILE;
use ssvae::train::TrainData;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A folder written by `ssvae train` or `ssvae anomaly`; plots are written into it.
    #[arg(long)]
    run: PathBuf,
    /// Test samples in the latent scatter.
    #[arg(long, default_value_t = 5000)]
    points: usize,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn plot(a: PlotArgs) -> Result<()> {
    on_backend!(a.dev, be => run_plot(be, a))
}

/// Training curves from metrics.jsonl, the ROC curve of an anomaly run, and the latent
/// scatter of test data coloured by class.
fn run_plot<B: Backend>(be: &B, a: PlotArgs) -> Result<()> {
    if a.points == 0 {
        anyhow::bail!("--points must be at least 1");
    }
    let run = Run::open(be, &a.run)?;
    let spec = run.model();
    let mut written = Vec::new();
    let save = |img: &image::RgbImage, name: &str, written: &mut Vec<PathBuf>| -> Result<()> {
        let p = a.run.join(name);
        img.save(&p).with_context(|| p.display().to_string())?;
        written.push(p);
        Ok(())
    };
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
    let series = |key: &str| -> (String, Vec<(f64, f64)>) {
        (key.replace('_', " "), lines.iter().filter_map(|l| Some((l["epoch"].as_f64()?, l[key].as_f64()?))).collect())
    };
    if spec.has_classifier() {
        let img = line_chart(
            "test classification",
            "epoch",
            "accuracy / log loss",
            &[series("test_accuracy"), series("test_log_loss")],
            (640, 400),
        );
        save(&img, "curves_classification.png", &mut written)?;
    }
    if spec.has_decoder() {
        let img = line_chart(
            "negative ELBO terms per sample",
            "epoch",
            "nats",
            &[series("train_rec"), series("test_rec"), series("train_kl"), series("test_kl")],
            (640, 400),
        );
        save(&img, "curves_elbo.png", &mut written)?;
    }
    if let Ok(csv) = std::fs::read_to_string(a.run.join(ANOMALY_SCORES_FILE)) {
        let (mut scores, mut pos) = (Vec::new(), Vec::new());
        for l in csv.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            if let (Some(p), Some(s)) = (f.get(2), f.get(3).and_then(|s| s.parse::<f64>().ok())) {
                pos.push(*p == "1");
                scores.push(s);
            }
        }
        let auc = ssvae::eval::roc_auc(&scores, &pos).unwrap_or(f64::NAN);
        let curve = ssvae::eval::roc_curve(&scores, &pos);
        let k = run.config.spec.data.anomaly_class.map_or("?".into(), |k| k.to_string());
        let title = format!("ROC, anomaly class {k}: AUC {auc:.3}");
        let img = line_chart(
            &title,
            "false positive rate",
            "true positive rate",
            &[("model".into(), curve), ("chance".into(), vec![(0.0, 0.0), (1.0, 1.0)])],
            (520, 480),
        );
        save(&img, "roc.png", &mut written)?;
    }
    // the latent scatter plots one z per sample: image models only (an RNN has one per step)
    if spec.has_decoder() && spec.latent >= 2 && spec.family != Family::Rnn {
        if let Loaded::Images(split) = run.load_data(None, None)? {
            let n = a.points.min(split.test.n).max(1);
            let test = split.test.subset(&(0..n).collect::<Vec<_>>());
            let mus = run.encode(be, TrainData::Images(&test))?;
            let pts: Vec<(f64, f64, usize)> =
                (0..n).map(|i| (mus[i * spec.latent] as f64, mus[i * spec.latent + 1] as f64, test.labels[i] as usize)).collect();
            let img = scatter(&format!("latent means of {n} test samples"), "z1", "z2", &pts, &test.class_names, (640, 560));
            save(&img, "latent.png", &mut written)?;
        }
    }
    println!("{}", serde_json::json!({"plots": written}));
    Ok(())
}
