//! `ssvae feedback`: a user's corrections of an anomaly run (the paper's equation 6, see
//! `ssvae::eval::feedback`) become two extra classifier classes, the model is extended
//! (`ssvae::train::migrate`) and retrained from where it stopped, and the test set is scored
//! again, raw and adjusted.
//!
//! What is kept in the run folder, so a later `train --resume` or another `feedback` round
//! trains on the same corrections: the marked samples themselves (`feedback_samples.idx`, u8,
//! one row per sample: a test index may not be resolvable later, and image files may move)
//! and, in config.json, each sample's kind and origin. The first round also keeps the model
//! before the extension (`model.before-feedback.safetensors`, `summary.before-feedback.json`).
//!
//! Scope: image runs of an SS model trained by `ssvae anomaly` (feedback corrects anomaly
//! detections, so the run must have an anomaly class; the score needs a decoder and the
//! adjustment a classifier). The feedback samples are weighted by repetition in the labeled
//! draws, by default so that each feedback class is drawn about as often as an average
//! dataset class (a few dozen marks among tens of thousands of labels would otherwise be
//! seen a handful of times and barely move the classifier).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ssvae::backend::cpu::CpuBackend;
use ssvae::data::{read_idx, Dataset};
use ssvae::eval::feedback::FeedbackClasses;
use ssvae::model::{Family, Kind};
use ssvae::train::checkpoint::{self, CONFIG_FILE, MODEL_FILE};
use ssvae::Backend;

use crate::cli_data::Loaded;
use crate::cli_train::RunConfig;
use crate::DeviceArgs;

/// The marked samples, one u8 row each, in the order of `FeedbackRecord::samples`.
pub(crate) const SAMPLES_FILE: &str = "feedback_samples.idx";
const MODEL_BEFORE: &str = "model.before-feedback.safetensors";
const SUMMARY_BEFORE: &str = "summary.before-feedback.json";

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
    /// Times each feedback sample enters the labeled pool (default: each feedback class as
    /// often as an average dataset class).
    #[arg(long)]
    repeat: Option<usize>,
    /// Draws of z per anomaly score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    score_samples: usize,
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mark {
    FalsePositive,
    FalseNegative,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct FeedbackSample {
    pub(crate) mark: Mark,
    /// "test:<index>" or "<file>#<row>".
    pub(crate) source: String,
}

/// The feedback of a run, in config.json.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct FeedbackRecord {
    pub(crate) classes: FeedbackClasses,
    pub(crate) samples: Vec<FeedbackSample>,
    #[serde(default)]
    pub(crate) repeat: Option<usize>,
    /// Subtracted from scores before eq. 6; 0 for the Bernoulli NLL, which is never negative.
    #[serde(default)]
    pub(crate) score_offset: f64,
}

impl FeedbackRecord {
    /// Test-set indices the user marked (their AUC contribution is also reported without them).
    pub(crate) fn marked_test_indices(&self) -> Vec<usize> {
        self.samples.iter().filter_map(|s| s.source.strip_prefix("test:")?.parse().ok()).collect()
    }
}

pub fn feedback(a: FeedbackArgs) -> Result<()> {
    let summary = match a.dev.open()? {
        Some(gpu) => run_feedback(&gpu, "gpu", a)?,
        None => run_feedback(&CpuBackend::new(), "cpu", a)?,
    };
    println!("{summary}");
    Ok(())
}

/// The run's test set as its anomaly_scores.csv numbers it (all classes, after --max-train
/// and --validation).
fn run_test_set(run: &RunConfig) -> Result<Dataset> {
    let Loaded::Images(mut s) = run.load_data(&run.train.dataset, run.data_dir.as_deref())? else {
        bail!("feedback is implemented for image runs");
    };
    if let Some(m) = run.max_train {
        s.train = s.train.subset(&(0..m.min(s.train.n)).collect::<Vec<_>>());
    }
    if let Some(v) = run.validation {
        let n = s.train.n;
        s.test = s.train.subset(&(n.saturating_sub(v)..n).collect::<Vec<_>>());
    }
    Ok(s.test)
}

/// Reads one --false-positives / --false-negatives file into (source, sample bytes).
fn read_marks(flag: &str, path: &Path, test: &Dataset) -> Result<Vec<(String, Vec<u8>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))?;
    let empty = || {
        anyhow::anyhow!(
            "{flag} {}: the file is empty; list indices of the run's test set (one per line), rows of anomaly_scores.csv, or images",
            path.display()
        )
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
            bail!("{flag} {}: images of {per} values ({:?}), the model expects {dim}", path.display(), &dims[1..]);
        }
        if px.is_empty() {
            return Err(empty());
        }
        return Ok(images(px));
    }
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{flag} {}: neither an IDX file nor text", path.display()))?;
    let lines: Vec<(usize, &str)> =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim().trim_start_matches('\u{feff}'))).filter(|(_, l)| !l.is_empty()).collect();
    let first_cell = |l: &str| l.split(',').next().unwrap_or("").trim().to_string();
    let with_header = first_cell(lines[0].1).eq_ignore_ascii_case("index");
    let is_index_list = with_header || lines.iter().all(|(_, l)| l.parse::<usize>().is_ok());
    if !is_index_list {
        return Ok(images(
            crate::cli_eval::read_samples(path, dim).with_context(|| format!("{flag}: not a list of test indices, so read as images"))?,
        ));
    }
    let rows = if with_header { &lines[1..] } else { &lines[..] };
    if rows.is_empty() {
        bail!("{flag} {}: only a header line, no rows marked", path.display());
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for &(ln, l) in rows {
        let cell = first_cell(l);
        let i: usize =
            cell.parse().map_err(|_| anyhow::anyhow!("{flag} {} line {ln}: '{cell}' is not a test-set index", path.display()))?;
        if i >= test.n {
            bail!(
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
    Ok(checkpoint::write_atomic(path, &b)?)
}

/// The stored feedback samples of a run (one row of `dim` bytes each).
fn load_samples(dir: &Path, fb: &FeedbackRecord, dim: usize) -> Result<Vec<Vec<u8>>> {
    let path = dir.join(SAMPLES_FILE);
    let (dims, px) = read_idx(&path).with_context(|| format!("the run's feedback samples ({})", path.display()))?;
    if dims.len() != 2 || dims[1] != dim || dims[0] != fb.samples.len() {
        bail!("{}: holds {dims:?}, config.json lists {} feedback samples of {dim} values", path.display(), fb.samples.len());
    }
    Ok(px.chunks(dim).map(<[u8]>::to_vec).collect())
}

/// Resuming a run with feedback: appends the feedback samples to the training set, labeled
/// with the feedback classes (the train and test sets then have `classes.total()` classes),
/// and returns their indices for the labeled pool, each repeated (see the module comment).
/// `labeled` is the run's ordinary labeled count.
pub(crate) fn append_to_training(split: &mut Loaded, fb: &FeedbackRecord, dir: &Path, labeled: usize) -> Result<Vec<usize>> {
    let Loaded::Images(s) = split else { bail!("feedback is implemented for image runs") };
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

fn run_feedback<B: Backend>(be: &B, backend: &str, a: FeedbackArgs) -> Result<serde_json::Value> {
    let dir = &a.run;
    let mut run: RunConfig = checkpoint::load_json(&dir.join(CONFIG_FILE)).with_context(|| format!("--run {}", dir.display()))?;
    let spec = run.train.model.clone();
    match spec.kind {
        Kind::Ss => {}
        Kind::Eu => bail!("--run {}: {} has no classifier; feedback trains two extra classes of an SS model's classifier (train the run with --model ss-dense or ss-cnn)", dir.display(), spec.name()),
        Kind::Es => bail!("--run {}: {} has no decoder to score anomalies with; feedback needs an SS model", dir.display(), spec.name()),
        _ => bail!("--run {}: feedback is implemented for SS models (ss-dense, ss-cnn), not {}", dir.display(), spec.name()),
    }
    if spec.family == Family::Rnn {
        bail!("--run {}: feedback is implemented for image models (ss-dense, ss-cnn), not {}", dir.display(), spec.name());
    }
    if run.anomaly_class.is_none() {
        bail!("--run {}: not an anomaly run; feedback corrects the detections of `ssvae anomaly --anomaly-class K`", dir.display());
    }
    if !dir.join(MODEL_FILE).exists() {
        bail!("--run {}: no {MODEL_FILE} in this folder", dir.display());
    }
    if a.false_positives.is_none() && a.false_negatives.is_none() {
        bail!("give --false-positives FILE and/or --false-negatives FILE");
    }
    let test = run_test_set(&run)?;
    let read = |flag: &str, p: &Option<PathBuf>| p.as_ref().map_or(Ok(Vec::new()), |p| read_marks(flag, p, &test));
    let (fp, fnn) = (read("--false-positives", &a.false_positives)?, read("--false-negatives", &a.false_negatives)?);

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
                    bail!("sample {source} is marked both as {} and as {} (as {s}); mark each sample once", what(mark), what(*m));
                }
                continue; // already recorded with this mark
            }
            existing.push((mark, source.clone(), px.clone()));
            record.samples.push(FeedbackSample { mark, source });
            rows.push(px);
        }
    }
    if a.repeat.is_some() {
        record.repeat = a.repeat;
    }
    if a.repeat == Some(0) {
        bail!("--repeat must be at least 1");
    }
    let prev_summary: Option<serde_json::Value> = checkpoint::load_json(&dir.join("summary.json")).ok();
    if first {
        // extend the classifier (and the decoder's pi input) by the two feedback classes
        let mut new_spec = spec.clone();
        new_spec.classes = record.classes.total();
        let weights = checkpoint::load_weights(&dir.join(MODEL_FILE))?;
        let grown = ssvae::train::migrate::extend_classes(&weights, &spec, &new_spec)?;
        std::fs::copy(dir.join(MODEL_FILE), dir.join(MODEL_BEFORE))
            .with_context(|| format!("keeping {}", dir.join(MODEL_BEFORE).display()))?;
        if let Some(s) = &prev_summary {
            checkpoint::save_json(&dir.join(SUMMARY_BEFORE), s)?;
        }
        checkpoint::save_weights(&dir.join(MODEL_FILE), &grown)?;
        run.train.model = new_spec;
    }
    write_idx(&dir.join(SAMPLES_FILE), &rows, test.dim())?;
    let (n_fp, n_fn) = (
        record.samples.iter().filter(|s| s.mark == Mark::FalsePositive).count(),
        record.samples.iter().filter(|s| s.mark == Mark::FalseNegative).count(),
    );
    run.feedback = Some(record);
    checkpoint::save_json(&dir.join(CONFIG_FILE), &run)?;
    if !a.quiet {
        eprintln!(
            "feedback: {n_fp} false positives, {n_fn} false negatives recorded in {}; retraining for {} epochs",
            dir.display(),
            a.epochs
        );
    }

    let mut args: Vec<String> =
        ["--resume", &dir.to_string_lossy(), "--epochs", &a.epochs.to_string(), "--score-samples", &a.score_samples.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if a.quiet {
        args.push("--quiet".into());
    }
    let mut summary = crate::cli_train::run_train(be, backend, crate::cli_train::parse_train_args(&args)?)?;
    summary["auc_before_feedback"] = prev_summary.as_ref().map_or(serde_json::Value::Null, |s| s["auc"].clone());
    summary["false_positives"] = n_fp.into();
    summary["false_negatives"] = n_fn.into();
    checkpoint::save_json(&dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// AUCs of an anomaly run with feedback: eq. 6 adjusted, and both without the test samples
/// the user marked (those were trained on, so their own scores say little).
#[derive(Default)]
pub(crate) struct AdjustedAuc {
    pub(crate) auc_adjusted: Option<f64>,
    pub(crate) auc_unmarked: Option<f64>,
    pub(crate) auc_adjusted_unmarked: Option<f64>,
}

/// (p_fp, p_fn, adjusted score) per test sample; fills `auc` over the `known` samples.
pub(crate) fn adjust(
    fb: &FeedbackRecord,
    scores: &[f64],
    probs: &[f32],
    known: &[usize],
    positive: &[bool],
    auc: &mut AdjustedAuc,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f64>)> {
    let adj = ssvae::eval::feedback::adjusted_scores(scores, probs, fb.classes, fb.score_offset)?;
    let k = fb.classes.total();
    let p_fp: Vec<f32> = (0..scores.len()).map(|i| probs[i * k + fb.classes.false_positive()]).collect();
    let p_fn: Vec<f32> = (0..scores.len()).map(|i| probs[i * k + fb.classes.false_negative()]).collect();
    let auc_of = |s: &[f64], idx: &[usize]| {
        ssvae::eval::roc_auc(&idx.iter().map(|&i| s[i]).collect::<Vec<_>>(), &idx.iter().map(|&i| positive[i]).collect::<Vec<_>>())
    };
    let marked = fb.marked_test_indices();
    let unmarked: Vec<usize> = known.iter().copied().filter(|i| !marked.contains(i)).collect();
    auc.auc_adjusted = auc_of(&adj, known);
    auc.auc_unmarked = auc_of(scores, &unmarked);
    auc.auc_adjusted_unmarked = auc_of(&adj, &unmarked);
    Ok((p_fp, p_fn, adj))
}
