//! What a run reports: [`RunSummary`] (its JSON serialisation is the last line `ssvae train`
//! prints and the run folder's summary.json), the [`Observer`] a caller passes to watch
//! training, and [`Metric`], the summary figures the reproduction tables read by name.

use std::path::PathBuf;

use crate::train::{EvalReport, Losses};

/// The result of [`super::train`] / [`super::resume`]. Fields that do not apply to the run
/// (an AUC of a run without anomaly class, cluster scores of a plain classifier) are `None`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunSummary {
    pub model: String,
    pub dataset: String,
    /// Labeled training samples used (0 for EU models).
    pub labels: usize,
    /// Epochs done in total (a resumed run counts the earlier ones).
    pub epochs: usize,
    /// Training steps done in total.
    pub steps: u64,
    /// Stopped before its epochs were done (Ctrl-C): the checkpoint holds the steps so far,
    /// and a resume continues the interrupted epoch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    pub accuracy: Option<f64>,
    pub log_loss: Option<f64>,
    pub test_rec: Option<f64>,
    pub test_kl: Option<f64>,
    /// Wall time of this call, and of its training steps alone.
    pub seconds: f64,
    pub train_seconds: f64,
    pub samples_per_s: f64,
    /// "gpu" or "cpu", and the adapter's description.
    pub backend: String,
    pub adapter: String,
    pub seed: u64,
    pub alpha: f32,
    pub out: PathBuf,
    /// "test", or "validation" when the run held out training samples to evaluate on.
    pub evaluated_on: String,
    pub anomaly_class: Option<usize>,
    pub auc: Option<f64>,
    /// Anomaly runs with feedback: the eq. 6 adjusted AUC, and both without the marked samples.
    pub auc_adjusted: Option<f64>,
    pub auc_unmarked: Option<f64>,
    pub auc_adjusted_unmarked: Option<f64>,
    pub labeled_classes: Option<Vec<usize>>,
    /// Width of pi (classes, plus extra slots of M2 / GM-DGM).
    pub slots: usize,
    /// Model selection (`--validation-labels`): the epoch kept as the run's model, its
    /// validation accuracy, and the last epoch's test accuracy (`accuracy` is the kept epoch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_epoch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_epoch_accuracy: Option<f64>,
    /// Weight averaging (`--average-weights`): the first and last epoch whose weights the
    /// run's model averages (`accuracy` is the average's, `last_epoch_accuracy` the last
    /// epoch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged_epochs: Option<[usize; 2]>,
    /// Cluster-and-label (semi-unsupervised runs, M2, GM-DGM).
    pub cluster_accuracy: Option<f64>,
    pub labeled_class_accuracy: Option<f64>,
    pub unlabeled_class_accuracy: Option<f64>,
    pub slot_class: Option<Vec<Option<usize>>>,
    pub cluster_labeled_slots_kept: Option<GroupScores>,
    /// A feedback round: the AUC before it and the marks it recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc_before_feedback: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positives: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_negatives: Option<usize>,
}

/// Accuracy overall and over the labeled / unlabeled classes' test points.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupScores {
    pub accuracy: f64,
    pub labeled_class_accuracy: Option<f64>,
    pub unlabeled_class_accuracy: Option<f64>,
}

/// A figure of a [`RunSummary`] that a reproduction table reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Accuracy,
    LogLoss,
    Auc,
    ClusterAccuracy,
    LabeledClassAccuracy,
    UnlabeledClassAccuracy,
}

impl Metric {
    /// The summary's key (and the column header).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::LogLoss => "log_loss",
            Metric::Auc => "auc",
            Metric::ClusterAccuracy => "cluster_accuracy",
            Metric::LabeledClassAccuracy => "labeled_class_accuracy",
            Metric::UnlabeledClassAccuracy => "unlabeled_class_accuracy",
        }
    }

    pub fn of(self, s: &RunSummary) -> Option<f64> {
        match self {
            Metric::Accuracy => s.accuracy,
            Metric::LogLoss => s.log_loss,
            Metric::Auc => s.auc,
            Metric::ClusterAccuracy => s.cluster_accuracy,
            Metric::LabeledClassAccuracy => s.labeled_class_accuracy,
            Metric::UnlabeledClassAccuracy => s.unlabeled_class_accuracy,
        }
    }
}

/// Where a run starts (for the observer's first message).
#[derive(Clone, Debug)]
pub struct RunStart {
    pub model: String,
    pub dataset: String,
    pub n_train: usize,
    pub n_test: usize,
    pub labeled: usize,
    /// e.g. "RMSprop lr 0.0005".
    pub optimizer: String,
    pub adapter: String,
    /// The adapter is a software rasterizer, far slower than the CPU backend.
    pub software_adapter: bool,
    pub out: PathBuf,
    pub steps_per_epoch: usize,
    pub epochs: usize,
    pub batch_size: usize,
}

/// Progress inside an epoch; `losses` is set on the steps where they were read back.
#[derive(Clone, Debug)]
pub struct StepProgress<'a> {
    /// The epoch under way (1-based, counting a resumed run's earlier epochs).
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step_in_epoch: usize,
    pub losses: Option<&'a Losses>,
    pub samples_per_s: f64,
}

/// One finished epoch: what metrics.jsonl records.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub step: u64,
    pub train_rec: Option<f64>,
    pub train_kl: Option<f64>,
    pub train_ce: Option<f64>,
    pub train_objective: f64,
    pub test_accuracy: Option<f64>,
    pub test_log_loss: Option<f64>,
    pub test_rec: Option<f64>,
    pub test_kl: Option<f64>,
    pub epoch_seconds: f64,
    pub samples_per_s: f64,
    /// Model selection: the held-out labeled samples' accuracy and log loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_log_loss: Option<f64>,
}

impl EpochReport {
    pub(crate) fn new(epoch: usize, step: u64, l: &Losses, e: &EvalReport, secs: f64, samples: usize) -> Self {
        EpochReport {
            epoch,
            step,
            train_rec: l.rec,
            train_kl: l.kl,
            train_ce: l.ce,
            train_objective: l.objective,
            test_accuracy: e.accuracy,
            test_log_loss: e.log_loss,
            test_rec: e.rec,
            test_kl: e.kl,
            epoch_seconds: secs,
            samples_per_s: samples as f64 / secs,
            validation_accuracy: None,
            validation_log_loss: None,
        }
    }
}

/// Watches a run: a progress bar, a log, a notebook widget. Every method has an empty default.
pub trait Observer {
    fn started(&mut self, _start: &RunStart) {}
    fn step(&mut self, _p: &StepProgress<'_>) {}
    fn epoch(&mut self, _e: &EpochReport) {}
    /// A line worth showing (anomaly AUC, cluster-and-label scores).
    fn note(&mut self, _msg: &str) {}
    fn finished(&mut self) {}
    /// Asked after every step: `true` stops the run there, with a checkpoint of the steps done
    /// (the CLI answers `true` after Ctrl-C).
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Watches nothing.
pub struct Quiet;

impl Observer for Quiet {}
