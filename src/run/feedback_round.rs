//! One feedback round ([`apply_feedback`]): the user's marks are read and checked, recorded in
//! the run folder (see [`super::feedback`] for what is kept), the classifier is extended on the
//! first round, and the run resumes training. Every input is checked before the folder changes.

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::data::{read_idx, Dataset};
use crate::error::{Error, Result};
use crate::eval::feedback::FeedbackClasses;
use crate::model::{Family, Kind};
use crate::train::checkpoint;

use super::data::{read_samples, Loaded};
use super::feedback::{load_samples, FeedbackRecord, FeedbackSample, Mark, MODEL_BEFORE, SAMPLES_FILE, SUMMARY_BEFORE};
use super::spec::{ResumeChanges, RunConfig};
use super::summary::{Observer, RunSummary};

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// The run's test set as its anomaly_scores.csv numbers it (all classes, after --max-train
/// and --validation).
fn run_test_set(run: &RunConfig) -> Result<Dataset> {
    let Loaded::Images(s) = run.spec.data.load_subsets(run.spec.seed)? else {
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
pub fn apply_feedback<B: Backend>(be: &B, dir: &Path, req: &FeedbackRequest, obs: &mut dyn Observer) -> Result<RunSummary> {
    let saved = super::folder::load(dir).map_err(|e| Error::Invalid(format!("--run {}: {e}", dir.display())))?;
    let mut run = saved.config;
    let mut weights = saved.weights;
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
        let grown = crate::train::migrate::extend_classes(&weights, &spec, &new_spec)?;
        checkpoint::save_weights(&dir.join(MODEL_BEFORE), &weights)?;
        if let Some(s) = &prev_summary {
            checkpoint::save_json(&dir.join(SUMMARY_BEFORE), s)?;
        }
        weights = grown;
        run.train.model = new_spec;
    }
    write_idx(&dir.join(SAMPLES_FILE), &rows, test.dim())?;
    let count = |m: Mark| record.samples.iter().filter(|s| s.mark == m).count();
    let (n_fp, n_fn) = (count(Mark::FalsePositive), count(Mark::FalseNegative));
    run.feedback = Some(record);
    // the extended model and the record of the marks that trained it: one commit
    super::folder::commit(dir, &run, &weights)?;
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
