//! A run as a library artifact: what the CLI does, a library user can do with the same calls.
//!
//! - [`RunSpec`] says what to train (data, model choice, labels, optimizer, epochs);
//!   [`train`] turns it into a run folder and a typed [`RunSummary`] (whose JSON is the last
//!   line `ssvae train` prints), reporting progress to an [`Observer`] (the CLI's progress bar
//!   is one). [`resume`] continues a saved run with [`ResumeChanges`] (more labels, epochs).
//! - [`Run::open`] loads a run folder as a model: `predict_proba`, `encode`, `score`, `sample`.
//! - [`apply_feedback`] corrects an anomaly run, [`reproduce`] runs the paper's tables.
//!
//! The run folder: config.json ([`RunConfig`]: the spec as asked, the configuration as trained,
//! progress), model.safetensors (weights and optimizer state), metrics.jsonl (one line per
//! epoch), summary.json, and for anomaly runs anomaly_scores.csv.

pub mod data;
pub mod feedback;
mod feedback_round;
pub mod folder;
mod load;
pub mod memory;
mod open;
mod predict;
pub mod reproduce;
mod spec;
mod summary;
mod train;
pub mod user_data;

pub use data::{DataSpec, DatasetName, Loaded, SeriesLayout, SeriesOptions, SeriesOrder, SeriesScaling};
pub use feedback::FeedbackRecord;
pub use feedback_round::{apply_feedback, FeedbackRequest};
pub use open::Run;
pub use predict::{Predictions, Samples};
pub use spec::{
    optimizer_lr, recipe_consistency_shift, recipe_labeled_share, ModelChoice, OptimizerKind, Recipe, ResumeChanges, RunConfig, RunSpec,
    DEFAULT_CONSISTENCY_NOISE, DEFAULT_LABELS, FORMAT_VERSION, RECIPE_CONSISTENCY_NOISE_IMAGES, RECIPE_CONSISTENCY_SCALE_SERIES,
    RECIPE_CONSISTENCY_SHIFT_FRACTION, RECIPE_CONSISTENCY_WEIGHT, RECIPE_ENTROPY_WEIGHT, RECIPE_HALF_SHARE_FRACTION, RECIPE_KL_WARMUP,
    RECIPE_LABELED_SHARE, RECIPE_LABEL_SMOOTHING, RECIPE_TABLE_FEW_LABELS_FRACTION, RECIPE_TABLE_HIDDEN, RECIPE_TABLE_MIN_EPOCH_STEPS,
    RECIPE_VAR_FLOOR,
};
pub use summary::{EpochReport, GroupScores, Metric, Observer, Quiet, RunStart, RunSummary, StepProgress};
pub use train::{resume, train};

/// The run's result, as the last `train` line printed it.
pub const SUMMARY_FILE: &str = "summary.json";
/// The training samples that kept their label (id, class), so that a baseline can be given
/// the same labels.
pub const LABELED_FILE: &str = "labeled.csv";
/// Anomaly runs: one row per test sample with its score.
pub const ANOMALY_SCORES_FILE: &str = "anomaly_scores.csv";
