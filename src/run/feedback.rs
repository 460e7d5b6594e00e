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

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::data::{read_idx, Dataset};
use crate::error::{Error, Result};
use crate::eval::feedback::FeedbackClasses;
use crate::model::{Family, Kind};
use crate::train::checkpoint::{self, MODEL_FILE};

use super::data::{read_samples, Loaded};
use super::spec::{ResumeChanges, RunConfig};
use super::summary::{Observer, RunSummary};

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// The marked samples, one u8 row each, in the order of `FeedbackRecord::samples`.
pub const SAMPLES_FILE: &str = "feedback_samples.idx";
const MODEL_BEFORE: &str = "model.before-feedback.safetensors";
const SUMMARY_BEFORE: &str = "summary.before-feedback.json";

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

/// The run's test set as its anomaly_scores.csv numbers it (all classes, after --max-train
/// and --validation).
fn run_test_set(run: &RunConfig) -> Result<Dataset> {
    let Loaded::Images(s) = run.spec.data.load_subsets()? else {
        invalid!("feedback is implemented for image runs");
    };
    Ok(s.test)
}

/// Reads one --false-positives / --false-negatives file into (source, sample bytes).
fn read_marks(flag: &str, path: &Path, test: &Dataset) -> Result<Vec<(String, Vec<u8>)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Invalid(format!("{flag} {}: {e}", path.display())))?;
    let empty = || {
        Error::Invalid(format!(
            "{flag} {}: the file is empty; list indices of the run's test set (one per line), rows of anomaly_scores.csv, or images",
            path.display()
        ))
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(empty());
    }
    let dim = test.dim();
    let name = path.file_name().map_or("input".into(), |n| n.to_string_lossy().to_string());
    let images = |px: Vec<u8>| px.chunks(dim).enumerate().map(|(i, c)| (format!("{name}#{i}"), c.to_vec())).collect::<Vec<_>>();
    if let Ok((dims, px)) = read_idx(path) {
        let per: usize = dims[1..].iter().product();
        if per != dim {
            invalid!("{flag} {}: images of {per} values ({:?}), the model expects {dim}", path.display(), &dims[1..]);
        }
        if px.is_empty() {
            return Err(empty());
        }
        return Ok(images(px));
    }
    let text = String::from_utf8(bytes).map_err(|_| Error::Invalid(format!("{flag} {}: neither an IDX file nor text", path.display())))?;
    let lines: Vec<(usize, &str)> =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim().trim_start_matches('\u{feff}'))).filter(|(_, l)| !l.is_empty()).collect();
    let first_cell = |l: &str| l.split(',').next().unwrap_or("").trim().to_string();
    let with_header = first_cell(lines[0].1).eq_ignore_ascii_case("index");
    let is_index_list = with_header || lines.iter().all(|(_, l)| l.parse::<usize>().is_ok());
    if !is_index_list {
        return Ok(images(
            read_samples(path, dim).map_err(|e| Error::Invalid(format!("{flag}: not a list of test indices, so read as images: {e}")))?,
        ));
    }
    let rows = if with_header { &lines[1..] } else { &lines[..] };
    if rows.is_empty() {
        invalid!("{flag} {}: only a header line, no rows marked", path.display());
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for &(ln, l) in rows {
        let cell = first_cell(l);
        let i: usize =
            cell.parse().map_err(|_| Error::Invalid(format!("{flag} {} line {ln}: '{cell}' is not a test-set index", path.display())))?;
        if i >= test.n {
            invalid!(
                "{flag} {} line {ln}: index {i} is out of range: the run's test set has {} samples (0..{})",
                path.display(),
                test.n,
                test.n - 1
            );
        }
        let source = format!("test:{i}");
        if !out.iter().any(|(s, _)| *s == source) {
            out.push((source, test.sample(i).to_vec()));
        }
    }
    Ok(out)
}

/// Writes n samples of `dim` bytes as a two-dimensional IDX file (n x dim).
fn write_idx(path: &Path, rows: &[Vec<u8>], dim: usize) -> Result<()> {
    let mut b = vec![0u8, 0, 0x08, 2];
    b.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    b.extend_from_slice(&(dim as u32).to_be_bytes());
    rows.iter().for_each(|r| b.extend_from_slice(r));
    checkpoint::write_atomic(path, &b)
}

/// The stored feedback samples of a run (one row of `dim` bytes each).
fn load_samples(dir: &Path, fb: &FeedbackRecord, dim: usize) -> Result<Vec<Vec<u8>>> {
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

/// One feedback round: the files of marked samples and how to retrain.
#[derive(Clone, Debug)]
pub struct FeedbackRequest {
    /// Normal samples the detector scored high: test-set indices (one per line), rows of
    /// anomaly_scores.csv with its header, or images (IDX or CSV).
    pub false_positives: Option<PathBuf>,
    /// Anomalies the detector scored low (same formats).
    pub false_negatives: Option<PathBuf>,
    /// Additional passes over the training set.
    pub epochs: usize,
    /// Times each feedback sample enters the labeled pool (default: each feedback class as
    /// often as an average dataset class).
    pub repeat: Option<usize>,
    pub score_samples: usize,
}

/// Records the marks of `req` in the run `dir`, extends the classifier on the first round and
/// retrains (see the module comment). Every input is checked before the folder changes.
pub fn feedback<B: Backend>(be: &B, dir: &Path, req: &FeedbackRequest, obs: &mut dyn Observer) -> Result<RunSummary> {
    let mut run = RunConfig::load(dir).map_err(|e| Error::Invalid(format!("--run {}: {e}", dir.display())))?;
    let spec = run.train.model.clone();
    let name = spec.name();
    match spec.kind {
        Kind::Ss => {}
        Kind::Eu => invalid!(
            "--run {}: {name} has no classifier; feedback trains two extra classes of an SS model's classifier (train the run with --model ss-dense or ss-cnn)",
            dir.display()
        ),
        Kind::Es => invalid!("--run {}: {name} has no decoder to score anomalies with; feedback needs an SS model", dir.display()),
        _ => invalid!("--run {}: feedback is implemented for SS models (ss-dense, ss-cnn), not {name}", dir.display()),
    }
    if spec.family == Family::Rnn {
        invalid!("--run {}: feedback is implemented for image models (ss-dense, ss-cnn), not {name}", dir.display());
    }
    if run.spec.data.anomaly_class.is_none() {
        invalid!("--run {}: not an anomaly run; feedback corrects the detections of `ssvae anomaly --anomaly-class K`", dir.display());
    }
    if !dir.join(MODEL_FILE).exists() {
        invalid!("--run {}: no {MODEL_FILE} in this folder", dir.display());
    }
    if req.false_positives.is_none() && req.false_negatives.is_none() {
        invalid!("give --false-positives FILE and/or --false-negatives FILE");
    }
    if req.epochs == 0 {
        invalid!("--epochs must be at least 1");
    }
    if req.repeat == Some(0) {
        invalid!("--repeat must be at least 1");
    }
    let test = run_test_set(&run)?;
    let read = |flag: &str, p: &Option<PathBuf>| p.as_ref().map_or(Ok(Vec::new()), |p| read_marks(flag, p, &test));
    let (fp, fnn) = (read("--false-positives", &req.false_positives)?, read("--false-negatives", &req.false_negatives)?);

    let first = run.feedback.is_none();
    let mut record = run.feedback.clone().unwrap_or(FeedbackRecord {
        classes: FeedbackClasses { base: spec.classes },
        samples: Vec::new(),
        repeat: None,
        score_offset: 0.0,
    });
    let mut rows = if first { Vec::new() } else { load_samples(dir, &record, test.dim())? };
    let mut existing: Vec<(Mark, String, Vec<u8>)> =
        record.samples.iter().zip(&rows).map(|(s, r)| (s.mark, s.source.clone(), r.clone())).collect();
    for (mark, marks) in [(Mark::FalsePositive, fp), (Mark::FalseNegative, fnn)] {
        for (source, px) in marks {
            if let Some((m, s, _)) = existing.iter().find(|(_, s, p)| *s == source || *p == px) {
                if *m != mark {
                    let what = |m: Mark| if m == Mark::FalsePositive { "a false positive" } else { "a false negative" };
                    invalid!("sample {source} is marked both as {} and as {} (as {s}); mark each sample once", what(mark), what(*m));
                }
                continue; // already recorded with this mark
            }
            existing.push((mark, source.clone(), px.clone()));
            record.samples.push(FeedbackSample { mark, source });
            rows.push(px);
        }
    }
    if req.repeat.is_some() {
        record.repeat = req.repeat;
    }
    let summary_path = dir.join(super::SUMMARY_FILE);
    let prev_summary: Option<RunSummary> = checkpoint::load_json(&summary_path).ok();
    if first {
        // extend the classifier (and the decoder's pi input) by the two feedback classes
        let mut new_spec = spec.clone();
        new_spec.classes = record.classes.total();
        let weights = checkpoint::load_weights(&dir.join(MODEL_FILE))?;
        let grown = crate::train::migrate::extend_classes(&weights, &spec, &new_spec)?;
        std::fs::copy(dir.join(MODEL_FILE), dir.join(MODEL_BEFORE))
            .map_err(|e| Error::Io { path: dir.join(MODEL_BEFORE), msg: format!("keeping the model before feedback: {e}") })?;
        if let Some(s) = &prev_summary {
            checkpoint::save_json(&dir.join(SUMMARY_BEFORE), s)?;
        }
        checkpoint::save_weights(&dir.join(MODEL_FILE), &grown)?;
        run.train.model = new_spec;
    }
    write_idx(&dir.join(SAMPLES_FILE), &rows, test.dim())?;
    let count = |m: Mark| record.samples.iter().filter(|s| s.mark == m).count();
    let (n_fp, n_fn) = (count(Mark::FalsePositive), count(Mark::FalseNegative));
    run.feedback = Some(record);
    run.save(dir)?;
    obs.note(&format!(
        "feedback: {n_fp} false positives, {n_fn} false negatives recorded in {}; retraining for {} epochs",
        dir.display(),
        req.epochs
    ));
    let changes = ResumeChanges { epochs: Some(req.epochs), score_samples: Some(req.score_samples), ..ResumeChanges::default() };
    let mut summary = super::train::resume(be, dir, &changes, obs)?;
    summary.auc_before_feedback = prev_summary.and_then(|s| s.auc);
    summary.false_positives = Some(n_fp);
    summary.false_negatives = Some(n_fn);
    checkpoint::save_json(&summary_path, &summary)?;
    Ok(summary)
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
