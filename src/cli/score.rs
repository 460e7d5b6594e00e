//! `ssvae score`: anomaly scores (and predicted classes) of new samples with a saved run; the
//! input is read as `ssvae predict` reads it (which also writes class names, probabilities and
//! latent means).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ssvae::run::Run;
use ssvae::train::checkpoint;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// A folder written by `ssvae train` or `ssvae anomaly` (SS or EU model).
    #[arg(long)]
    run: PathBuf,
    /// Samples to score, as `ssvae predict --data` takes them: for image runs a folder of
    /// images, an image file, an IDX file (raw or .gz) or a CSV with one sample per line (values
    /// in [0, 1], or 0..255; an optional header line is skipped); for table runs a table with
    /// the run's feature columns; for RNN runs a CSV read like the run's training CSV, or, for a
    /// run on uci-har or synthetic-sensor, one window per line (steps x channels values,
    /// step-major, raw units: the run's standardisation is applied).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the CSV of scores.
    #[arg(long, default_value = "scores.csv")]
    out: PathBuf,
    /// Draws of z per score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    samples: usize,
    /// Seed of the draws of z.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn score(a: ScoreArgs) -> Result<()> {
    on_backend!(a.dev, be => run_score(be, a))
}

fn run_score<B: Backend>(be: &B, a: ScoreArgs) -> Result<()> {
    let run = Run::open(be, &a.run)?;
    let classes = run.model().classes;
    let t0 = Instant::now();
    if !run.model().has_decoder() {
        anyhow::bail!(
            "--run {}: {} has no decoder, so it gives no anomaly scores; `ssvae predict --run {} --data {}` writes its class predictions",
            a.run.display(),
            run.model().name(),
            a.run.display(),
            a.input.display()
        );
    }
    // read and checked as `predict` reads it: the run's shape, channels, columns and scaling
    let input = run.read_samples(&a.input)?;
    let (scores, probs) = run.score(be, input.data(), a.samples, a.seed)?;
    // runs with anomaly feedback also get the eq. 6 score (see `ssvae::run::feedback`)
    let adjusted = match (&run.config.feedback, &probs) {
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
                let row = &p[i * classes..(i + 1) * classes];
                let arg = (0..classes).fold(0, |b, j| if row[j] > row[b] { j } else { b });
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
