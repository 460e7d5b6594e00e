//! `ssvae feedback`: flags -> [`FeedbackRequest`], then `ssvae::run::apply_feedback` (see
//! there for what a feedback round does and keeps).

use std::path::PathBuf;

use anyhow::Result;
use ssvae::run::{apply_feedback, FeedbackRequest};

use super::{on_backend, DeviceArgs, Progress};

#[derive(clap::Args)]
pub struct FeedbackArgs {
    /// A folder written by `ssvae anomaly` with an SS model (ss-dense, ss-cnn).
    #[arg(long)]
    run: PathBuf,
    /// Normal samples the detector scored high. One of: indices into the run's test set, one
    /// per line; rows copied from the run's anomaly_scores.csv with its header line (the
    /// `index` column is used); or images in the formats `ssvae score --input` takes (IDX,
    /// or a CSV with one sample per line).
    #[arg(long)]
    false_positives: Option<PathBuf>,
    /// Anomalies the detector scored low (same formats as --false-positives).
    #[arg(long)]
    false_negatives: Option<PathBuf>,
    /// Additional passes over the training set.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Times each feedback sample enters the labeled pool [default: each feedback class as
    /// often as an average dataset class].
    #[arg(long)]
    repeat: Option<usize>,
    /// Draws of z per anomaly score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    score_samples: usize,
    /// No progress bar or per-epoch lines (the final JSON line is still printed).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn feedback(a: FeedbackArgs) -> Result<()> {
    let req = FeedbackRequest {
        false_positives: a.false_positives.clone(),
        false_negatives: a.false_negatives.clone(),
        epochs: a.epochs,
        repeat: a.repeat,
        score_samples: a.score_samples,
    };
    let mut progress = Progress::new(a.quiet).stop_on_ctrl_c();
    let summary = on_backend!(a.dev, be => apply_feedback(be, &a.run, &req, &mut progress)?);
    super::finish(&summary)
}
