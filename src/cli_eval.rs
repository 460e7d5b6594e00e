//! `ssvae eval`, `ssvae score`, `ssvae sample` and `ssvae plot`: using a saved run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ssvae::backend::cpu::CpuBackend;
use ssvae::data;
use ssvae::eval::grid::{class_style_grid, save_png, traverse, Decoder};
use ssvae::eval::Scorer;
use ssvae::train::checkpoint::{self, METRICS_FILE};
use ssvae::train::Evaluator;
use ssvae::Backend;

use crate::cli_train::{load_dataset, load_run};
use crate::DeviceArgs;

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// A folder written by `ssvae train` or `ssvae anomaly` (SS or EU model).
    #[arg(long)]
    run: PathBuf,
    /// Samples to score: an IDX image file (raw or .gz) or a CSV with one sample per line
    /// (values in [0, 1], or 0..255 if any exceeds 1; an optional header line is skipped).
    /// For an RNN run: a CSV read like the run's --train-csv (its layout and columns), or, for
    /// a run on uci-har or synthetic-sensor, one window per line (steps x channels values,
    /// step-major, raw units: the run's standardisation is applied).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the CSV of scores.
    #[arg(long, default_value = "scores.csv")]
    out: PathBuf,
    /// Draws of z per score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    samples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    dev: DeviceArgs,
}

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

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A folder written by `ssvae train` (SS or EU model).
    #[arg(long)]
    run: PathBuf,
    /// The PNG to write.
    #[arg(long, default_value = "grid.png")]
    out: PathBuf,
    /// Columns (styles); with --traverse, the side of each class's latent walk.
    #[arg(long, default_value_t = 10)]
    styles: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Walk the first two latent dimensions at quantiles of N(0, 1), one block per class.
    #[arg(long)]
    traverse: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A folder written by `ssvae train`.
    #[arg(long)]
    run: PathBuf,
    /// Evaluate on this dataset's test split instead of the run's.
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn score(a: ScoreArgs) -> Result<()> {
    match a.dev.open()? {
        Some(gpu) => run_score(&gpu, a),
        None => run_score(&CpuBackend::new(), a),
    }
}

pub fn sample(a: SampleArgs) -> Result<()> {
    match a.dev.open()? {
        Some(gpu) => run_sample(&gpu, a),
        None => run_sample(&CpuBackend::new(), a),
    }
}

pub fn plot(a: PlotArgs) -> Result<()> {
    match a.dev.open()? {
        Some(gpu) => run_plot(&gpu, a),
        None => run_plot(&CpuBackend::new(), a),
    }
}

/// Training curves from metrics.jsonl, the ROC curve of an anomaly run, and the latent
/// scatter of test data coloured by class.
fn run_plot<B: Backend>(be: &B, a: PlotArgs) -> Result<()> {
    use ssvae::eval::plot::{line_chart, scatter};
    let (run, store) = load_run(be, &a.run)?;
    let spec = &run.train.model;
    let mut written = Vec::new();
    let save = |img: &image::RgbImage, name: &str, written: &mut Vec<PathBuf>| -> Result<()> {
        let p = a.run.join(name);
        img.save(&p).with_context(|| p.display().to_string())?;
        written.push(p);
        Ok(())
    };
    let metrics = std::fs::read_to_string(a.run.join(METRICS_FILE)).with_context(|| format!("{}", a.run.join(METRICS_FILE).display()))?;
    let lines: Vec<serde_json::Value> = metrics.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
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
    if let Ok(csv) = std::fs::read_to_string(a.run.join("anomaly_scores.csv")) {
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
        let title = format!("ROC, anomaly class {}: AUC {auc:.3}", run.anomaly_class.map_or("?".into(), |k| k.to_string()));
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
    if spec.has_decoder() && spec.latent >= 2 && spec.family != ssvae::model::Family::Rnn {
        let split = load_dataset(&run.train.dataset, run.data_dir.as_deref(), run.synthetic)?;
        let n = a.points.min(split.test.n).max(1);
        let test = split.test.subset(&(0..n).collect::<Vec<_>>());
        let mus = Scorer::new(be, spec, &store, &test.pixels, run.train.eval_batch)?.latent_means(be)?;
        let pts: Vec<(f64, f64, usize)> =
            (0..n).map(|i| (mus[i * spec.latent] as f64, mus[i * spec.latent + 1] as f64, test.labels[i] as usize)).collect();
        let img = scatter(&format!("latent means of {n} test samples"), "z1", "z2", &pts, &test.class_names, (640, 560));
        save(&img, "latent.png", &mut written)?;
    }
    println!("{}", serde_json::json!({"plots": written}));
    Ok(())
}

/// Samples from an IDX image file or a CSV (one sample per line) as bytes.
pub(crate) fn read_samples(path: &Path, dim: usize) -> Result<Vec<u8>> {
    if let Ok((dims, bytes)) = data::read_idx(path) {
        let per: usize = dims[1..].iter().product();
        if per != dim {
            bail!("{}: samples have {per} values ({:?}), the model expects {dim}", path.display(), &dims[1..]);
        }
        return Ok(bytes);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("--input {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text); // a byte-order mark
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let vals: std::result::Result<Vec<f64>, _> = cells.iter().map(|c| c.parse::<f64>()).collect();
        match vals {
            Ok(v) => {
                if v.len() != dim {
                    bail!("{} line {}: {} values, the model expects {dim}", path.display(), ln + 1, v.len());
                }
                if let Some(j) = v.iter().position(|x| !x.is_finite() || *x < 0.0) {
                    bail!("{} line {}, column {}: value {} is not a finite number >= 0", path.display(), ln + 1, j + 1, v[j]);
                }
                rows.push(v);
            }
            // a header: only on the first line, and only if no cell is a number
            Err(_) if ln == 0 && cells.iter().all(|c| c.parse::<f64>().is_err()) => continue,
            Err(e) => bail!("{} line {}: {e}", path.display(), ln + 1),
        }
    }
    if rows.is_empty() {
        bail!("{}: no samples", path.display());
    }
    // values in [0, 1], or whole numbers 0..255 (as image files store them)
    let all = || rows.iter().flatten();
    let scale = if all().all(|&v| v <= 1.0) {
        255.0
    } else if all().all(|&v| v <= 255.0 && v.fract() == 0.0) {
        1.0
    } else {
        bail!("{}: values must be all in [0, 1] or all whole numbers 0..255", path.display());
    };
    Ok(rows.iter().flatten().map(|&v| (v * scale).round() as u8).collect())
}

fn run_score<B: Backend>(be: &B, a: ScoreArgs) -> Result<()> {
    let (run, store) = load_run(be, &a.run)?;
    let spec = &run.train.model;
    let t0 = Instant::now();
    let scorer = match spec.series_shape.filter(|_| spec.family == ssvae::model::Family::Rnn) {
        Some(shape) => {
            let ds =
                crate::cli_data::read_series_input(&a.input, &run.series, run.train.dataset == "csv", shape, run.standardizer.as_deref())?;
            Scorer::with_data(be, spec, &store, ssvae::train::TrainData::Series(&ds), run.train.eval_batch)?
        }
        None => Scorer::new(be, spec, &store, &read_samples(&a.input, spec.input_dim)?, run.train.eval_batch)?,
    };
    let (scores, probs) = scorer.run(be, a.samples, a.seed)?;
    // runs with anomaly feedback also get the eq. 6 score (see `cli_feedback`)
    let adjusted = match (&run.feedback, &probs) {
        (Some(fb), Some(p)) => Some(ssvae::eval::feedback::adjusted_scores(&scores, p, fb.classes, fb.score_offset)?),
        _ => None,
    };
    let mut csv = String::from(match (&probs, &adjusted) {
        (Some(_), Some(_)) => "index,score,predicted_class,adjusted_score\n",
        (Some(_), None) => "index,score,predicted_class\n",
        _ => "index,score\n",
    });
    for (i, s) in scores.iter().enumerate() {
        match &probs {
            Some(p) => {
                let row = &p[i * spec.classes..(i + 1) * spec.classes];
                let arg = (0..spec.classes).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                match &adjusted {
                    Some(adj) => csv += &format!("{i},{s},{arg},{}\n", adj[i]),
                    None => csv += &format!("{i},{s},{arg}\n"),
                }
            }
            None => csv += &format!("{i},{s}\n"),
        }
    }
    checkpoint::write_atomic(&a.out, csv.as_bytes())?;
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    println!(
        "{}",
        serde_json::json!({"scored": scores.len(), "out": a.out, "mean_score": mean, "samples": a.samples, "seconds": t0.elapsed().as_secs_f64(), "adapter": be.describe()})
    );
    Ok(())
}

fn run_sample<B: Backend>(be: &B, a: SampleArgs) -> Result<()> {
    let (run, store) = load_run(be, &a.run)?;
    let spec = &run.train.model;
    if spec.family == ssvae::model::Family::Rnn {
        bail!(
            "--run {}: {} is a recurrent model of sensor windows; sample grids are for image models (dense, cnn)",
            a.run.display(),
            spec.name()
        );
    }
    let side = (spec.input_dim as f64).sqrt() as usize;
    if side * side != spec.input_dim {
        bail!("the model's {} features are not a square image; sample grids need image data", spec.input_dim);
    }
    let dec = Decoder::new(be, spec, &store, 100)?;
    let img = if a.traverse {
        traverse(be, &dec, a.styles, (side, side))?
    } else {
        class_style_grid(be, &dec, a.styles, a.seed, (side, side))?.0
    };
    save_png(&img, &a.out)?;
    println!("{}", serde_json::json!({"out": a.out, "width": img.width(), "height": img.height(), "traverse": a.traverse}));
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    match a.dev.open()? {
        Some(gpu) => run_eval(&gpu, "gpu", a),
        None => run_eval(&CpuBackend::new(), "cpu", a),
    }
}

fn run_eval<B: Backend>(be: &B, backend: &str, a: EvalArgs) -> Result<()> {
    let t0 = Instant::now();
    let (run, store) = load_run(be, &a.run)?;
    let dataset = a.dataset.clone().unwrap_or(run.train.dataset.clone());
    let data_dir = a.data_dir.clone().or(run.data_dir.clone());
    let split = run.load_data(&dataset, data_dir.as_deref())?;
    let spec = &run.train.model;
    let ev = Evaluator::with_data(be, spec, &store, split.test(), run.train.eval_batch)?;
    let r = ev.run(be, run.train.seed)?;
    // cluster-and-label as at the end of training (semi-unsupervised runs, M2, GM-DGM), with
    // the slots mapped on the dataset's whole training split
    let cluster = match &split {
        crate::cli_data::Loaded::Images(images)
            if spec.has_classifier() && (run.train.labeled_classes.is_some() || spec.sums_over_classes()) =>
        {
            let lc = run.train.labeled_classes.clone().unwrap_or_default();
            Some(ssvae::train::semi::cluster_scores(
                be,
                spec,
                &store,
                &images.train,
                &images.test,
                &lc,
                run.train.eval_batch,
                run.train.seed,
            )?)
        }
        _ => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "model": spec.name(), "dataset": dataset, "labels": run.labels_used, "epochs": run.epochs_done,
            "accuracy": r.accuracy, "log_loss": r.log_loss, "test_rec": r.rec, "test_kl": r.kl, "n": r.n,
            "cluster": cluster,
            "seconds": secs, "samples_per_s": r.n as f64 / secs, "backend": backend, "adapter": be.describe(),
        })
    );
    Ok(())
}
