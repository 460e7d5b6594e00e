//! `ssvae predict`: a saved run's predictions on new data, one CSV row per sample.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use ssvae::run::Run;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A folder written by `ssvae train` (any model).
    #[arg(long)]
    run: PathBuf,
    /// The samples, read the way the run's training data was: a folder of images (class
    /// sub-folders optional) or one image file for image runs (also IDX files, or a CSV of one
    /// image per line); a table with the run's feature columns for table runs; a CSV read with
    /// the run's options for sensor-log runs. Checked against the run (shape, channels,
    /// columns) and standardised with its statistics.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the CSV: id, label (when the input has labels), predicted class name,
    /// p_<class> per class, score (anomaly score: higher = more anomalous), adjusted_score
    /// (runs with feedback), z0.. (latent means), as far as the model has them.
    #[arg(long, default_value = "predictions.csv")]
    out: PathBuf,
    /// Draws of z per anomaly score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    samples: usize,
    /// Seed of the draws of z.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    on_backend!(a.dev, be => run_predict(be, a))
}

fn run_predict<B: Backend>(be: &B, a: PredictArgs) -> Result<()> {
    let t0 = Instant::now();
    let run = Run::open(be, &a.run)?;
    let samples = run.read_samples(&a.data)?;
    let p = run.predict(be, &samples, a.samples, a.seed)?;
    ssvae::fsutil::write_atomic(&a.out, p.to_csv().as_bytes()).with_context(|| format!("--out {}", a.out.display()))?;
    // accuracy over the samples whose label is one of the run's classes
    let (mut right, mut known) = (0usize, 0usize);
    for i in 0..p.len() {
        if let (Some(l), Some(k)) = (&p.labels[i], p.predicted(i)) {
            if p.class_names.contains(l) {
                known += 1;
                right += usize::from(&p.class_names[k] == l);
            }
        }
    }
    let accuracy = (known > 0).then(|| right as f64 / known as f64);
    println!(
        "{}",
        serde_json::json!({"predicted": p.len(), "out": a.out, "labeled": known, "accuracy": accuracy, "seconds": t0.elapsed().as_secs_f64(), "adapter": be.describe()})
    );
    Ok(())
}
