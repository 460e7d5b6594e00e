//! Anomaly feedback (the paper's equation 6, see [`crate::eval::feedback`]): a user's
//! corrections of an anomaly run become two extra classifier classes, the model is extended
//! ([`crate::train::migrate`]) and retrained from where it stopped, and the test set is scored
//! again, raw and adjusted.
//!
//! What is kept in the run folder, so a later resume or another feedback round trains on the
//! same corrections: the marked samples themselves (`feedback_samples.idx`, u8, one row per
//! sample: a test index may not be resolvable later, and image files may move) and, in
//! config.json, each sample's kind and origin. The first round also keeps the model before the
//! extension (`model.before-feedback.safetensors`, `summary.before-feedback.json`).
//!
//! Scope: image runs of an SS model trained with an anomaly class (feedback corrects anomaly
//! detections, so the run must have one; the score needs a decoder and the adjustment a
//! classifier). The feedback samples are weighted by repetition in the labeled draws, by
//! default so that each feedback class is drawn about as often as an average dataset class (a
//! few dozen marks among tens of thousands of labels would otherwise be seen a handful of
//! times and barely move the classifier).

use std::path::Path;

use crate::data::read_idx;
use crate::error::{Error, Result};
use crate::eval::feedback::FeedbackClasses;

use super::data::Loaded;

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// The marked samples, one u8 row each, in the order of `FeedbackRecord::samples`.
pub const SAMPLES_FILE: &str = "feedback_samples.idx";
pub const MODEL_BEFORE: &str = "model.before-feedback.safetensors";
pub const SUMMARY_BEFORE: &str = "summary.before-feedback.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    FalsePositive,
    FalseNegative,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FeedbackSample {
    pub mark: Mark,
    /// "test:<index>" or "<file>#<row>".
    pub source: String,
}

/// The feedback of a run, in config.json.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FeedbackRecord {
    pub classes: FeedbackClasses,
    pub samples: Vec<FeedbackSample>,
    #[serde(default)]
    pub repeat: Option<usize>,
    /// Subtracted from scores before eq. 6; 0 for the Bernoulli NLL, which is never negative.
    #[serde(default)]
    pub score_offset: f64,
}

impl FeedbackRecord {
    /// Test-set indices the user marked (their AUC contribution is also reported without them).
    pub fn marked_test_indices(&self) -> Vec<usize> {
        self.samples.iter().filter_map(|s| s.source.strip_prefix("test:")?.parse().ok()).collect()
    }
}

/// The stored feedback samples of a run (one row of `dim` bytes each).
pub fn load_samples(dir: &Path, fb: &FeedbackRecord, dim: usize) -> Result<Vec<Vec<u8>>> {
    let path = dir.join(SAMPLES_FILE);
    let (dims, px) = read_idx(&path).map_err(|e| Error::Invalid(format!("the run's feedback samples ({}): {e}", path.display())))?;
    if dims.len() != 2 || dims[1] != dim || dims[0] != fb.samples.len() {
        invalid!("{}: holds {dims:?}, config.json lists {} feedback samples of {dim} values", path.display(), fb.samples.len());
    }
    Ok(px.chunks(dim).map(<[u8]>::to_vec).collect())
}

/// Resuming a run with feedback: appends the feedback samples to the training set, labeled
/// with the feedback classes (the train and test sets then have `classes.total()` classes),
/// and returns their indices for the labeled pool, each repeated (see the module comment).
/// `labeled` is the run's ordinary labeled count.
pub fn append_to_training(split: &mut Loaded, fb: &FeedbackRecord, dir: &Path, labeled: usize) -> Result<Vec<usize>> {
    let Loaded::Images(s) = split else { invalid!("feedback is implemented for image runs") };
    let samples = load_samples(dir, fb, s.train.dim())?;
    let present = s.train.class_counts().iter().filter(|&&c| c > 0).count().max(1);
    let mut out = Vec::new();
    for mark in [Mark::FalsePositive, Mark::FalseNegative] {
        let of_kind: Vec<usize> = (0..samples.len()).filter(|&i| fb.samples[i].mark == mark).collect();
        if of_kind.is_empty() {
            continue;
        }
        let repeat = fb.repeat.unwrap_or_else(|| ((labeled as f64 / present as f64 / of_kind.len() as f64).round() as usize).max(1));
        let class = if mark == Mark::FalsePositive { fb.classes.false_positive() } else { fb.classes.false_negative() };
        for i in of_kind {
            s.train.pixels.extend_from_slice(&samples[i]);
            s.train.labels.push(class as u8);
            out.extend(std::iter::repeat_n(s.train.n, repeat));
            s.train.n += 1;
        }
    }
    for d in [&mut s.train, &mut s.test] {
        d.classes = fb.classes.total();
        d.class_names.extend(["false positive".to_string(), "false negative".to_string()]);
    }
    Ok(out)
}

/// AUCs of an anomaly run with feedback: eq. 6 adjusted, and both without the test samples
/// the user marked (those were trained on, so their own scores say little).
#[derive(Clone, Debug, Default)]
pub struct AdjustedAuc {
    pub auc_adjusted: Option<f64>,
    pub auc_unmarked: Option<f64>,
    pub auc_adjusted_unmarked: Option<f64>,
}

/// (p_fp, p_fn, adjusted score) per test sample; fills `auc` over the `known` samples.
pub fn adjust(
    fb: &FeedbackRecord,
    scores: &[f64],
    probs: &[f32],
    known: &[usize],
    positive: &[bool],
    auc: &mut AdjustedAuc,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f64>)> {
    let adj = crate::eval::feedback::adjusted_scores(scores, probs, fb.classes, fb.score_offset)?;
    let k = fb.classes.total();
    let p_fp: Vec<f32> = (0..scores.len()).map(|i| probs[i * k + fb.classes.false_positive()]).collect();
    let p_fn: Vec<f32> = (0..scores.len()).map(|i| probs[i * k + fb.classes.false_negative()]).collect();
    let auc_of = |s: &[f64], idx: &[usize]| {
        crate::eval::roc_auc(&idx.iter().map(|&i| s[i]).collect::<Vec<_>>(), &idx.iter().map(|&i| positive[i]).collect::<Vec<_>>())
    };
    let marked = fb.marked_test_indices();
    let unmarked: Vec<usize> = known.iter().copied().filter(|i| !marked.contains(i)).collect();
    auc.auc_adjusted = auc_of(&adj, known);
    auc.auc_unmarked = auc_of(scores, &unmarked);
    auc.auc_adjusted_unmarked = auc_of(&adj, &unmarked);
    Ok((p_fp, p_fn, adj))
}
