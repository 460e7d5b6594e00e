//! [`train`] and [`resume`]: a [`RunSpec`] (or a saved run plus [`ResumeChanges`]) becomes a run
//! folder and a [`RunSummary`].
//!
//! Both first prepare everything that can fail on bad input (data, model, labels, the output
//! folder) and only then create the folder. Per epoch the folder gets the weights, config.json
//! and a metrics.jsonl line; at the end the anomaly scores (anomaly runs) and summary.json.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::data::DiskSeries;
use crate::error::{Error, Result};
use crate::eval::Scorer;
use crate::graph::exec::Optimizer;
use crate::model::Kind;
use crate::train::checkpoint::{self, Weights, METRICS_FILE};
use crate::train::Evaluator;
use crate::train::{EvalReport, LabelSpec, Losses, RowSource, StreamSource, TrainConfig, TrainData, Trainer};

use super::data::{labels_of, npy_split, standardize, DatasetName, Loaded, DEFAULT_SHARD_STEPS};
use super::feedback::{self, AdjustedAuc};
use super::folder;
use super::spec::{Average, ResumeChanges, RunConfig, RunSpec, Selection, FORMAT_VERSION};
use super::summary::{EpochReport, GroupScores, Observer, RunStart, RunSummary, StepProgress};

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), msg: e.to_string() }
}

/// Trains a new run as `ssvae train` does.
pub fn train<B: Backend>(be: &B, spec: &RunSpec, obs: &mut dyn Observer) -> Result<RunSummary> {
    spec.validate()?;
    let mut spec = spec.clone();
    let spec = &mut spec;
    // an NPY of windows (3-D), or of rows when streamed, is read by the NPY reader
    if let Some(p) = &spec.data.path {
        if matches!(spec.data.dataset, DatasetName::Csv | DatasetName::Table) && super::data::is_npy_rows(p, spec.data.stream) {
            spec.data.dataset = DatasetName::Npy;
        }
    }
    let (mut loaded, mut disk) = load_for_run(spec)?;
    let anomalous = anomaly_classes(&spec.data, &loaded)?;
    let standardizer = match &mut disk {
        Some(d) => {
            // rows on disk are real values: a Gaussian decoder on standardised values
            if spec.model.family == crate::model::Family::Dense {
                spec.model.likelihood.get_or_insert(crate::model::Likelihood::Gaussian);
            }
            prepare_disk(&mut loaded, d, spec, None)?
        }
        None => {
            let scale = needs_standardizing(spec, &loaded)?;
            prepare_split(&mut loaded, spec, &anomalous, scale, None)?
        }
    };
    let split = run_data(loaded, &anomalous)?;
    let mut cfg = spec.resolve(&split)?;
    if check_sizes(&cfg, &split, spec.data.stream)? {
        spec.data.stream = true;
    }
    let (labeled, validation) = hold_out_validation(pick_labels(&cfg, &split, &anomalous)?, &split, spec.validation_labels, spec.seed)?;
    // the default recipe's labeled share follows the labels chosen; it never needs more
    // unlabeled rows than the training set holds (`recipe_labeled_share`), so the sizes checked
    // above with the paper's half still hold
    spec.resolve_labeled_share(&mut cfg, split.train().n(), labeled.len())?;
    if !validation.is_empty() && disk.is_some() {
        invalid!(
            "--validation-labels: model selection is not supported on data streamed from disk (NPY); give a test split with --test-data"
        );
    }
    let out = match &spec.out {
        Some(o) => o.clone(),
        None => default_out(&cfg),
    };
    if folder::has_run(&out) {
        invalid!(
            "--out {}: this folder already holds a trained run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        );
    }
    let n_labels = labeled.len();
    let run = RunConfig {
        version: FORMAT_VERSION,
        spec: spec.clone(),
        train: cfg,
        labels_used: n_labels,
        epochs_done: 0,
        steps_done: 0,
        standardizer,
        image_shape: match &*split {
            Loaded::Images(s) => Some([s.train.height, s.train.width, s.train.channels]),
            Loaded::Series(_) => None,
        },
        feedback: None,
        class_names: split.train().class_names().to_vec(),
        feature_names: match &*split {
            Loaded::Series(s) => s.train.channel_names.clone(),
            Loaded::Images(_) => Vec::new(),
        },
        selection: None,
        average: None,
    };
    let epochs = run.train.epochs;
    execute(be, Prepared { run, split, labeled, validation, out, resume_from: None, resume_best: None, epochs, anomalous, disk }, obs)
}

/// The run's data: NPY rows too large for memory (or streamed: `--stream`) stay on disk
/// (returned beside a split whose training set has no values); everything else is loaded.
fn load_for_run(spec: &mut RunSpec) -> Result<(Loaded, Option<DiskSeries>)> {
    if spec.data.dataset != DatasetName::Npy {
        return Ok((spec.data.load_subsets(spec.seed)?, None));
    }
    let (mut split, disk) = npy_split(&spec.data)?;
    let bytes = (disk.n * disk.row_len() * 4) as f64;
    if !spec.data.stream && super::memory::available_bytes().is_some_and(|a| 2.0 * bytes > a) {
        eprintln!(
            "note: {} ({:.1} GiB of rows) would take over half the memory available: streaming it from disk",
            disk.path.display(),
            bytes / (1u64 << 30) as f64
        );
        spec.data.stream = true;
    }
    if spec.data.stream {
        return Ok((Loaded::Series(split), Some(disk)));
    }
    split.train = disk.read_all(&split.train.name, split.train.class_names.clone())?;
    Ok((Loaded::Series(split), None))
}

/// Standardisation of rows read from disk: statistics from one chunked pass over the file (or
/// `stored`), applied to the test split now and to the training rows as they are gathered.
fn prepare_disk(split: &mut Loaded, disk: &mut DiskSeries, spec: &RunSpec, stored: Option<&[f32]>) -> Result<Option<Vec<f32>>> {
    if spec.data.series.scaling == Some(super::data::SeriesScaling::Robust) {
        invalid!("--scaling robust is not supported for data streamed from disk (it needs every value in memory); use --scaling standard");
    }
    let s = match stored {
        Some(v) => {
            crate::data::Standardizer::from_vec(v).map_err(|e| Error::Invalid(format!("config.json: the stored standardizer: {e}")))?
        }
        None => disk.fit_standardizer()?,
    };
    let v = s.to_vec();
    if let Loaded::Series(sp) = split {
        standardize(sp, Some(&v), None)?;
    }
    disk.set_scaling(s)?;
    Ok(Some(v))
}

/// Continues the run in `dir` (weights and optimizer state) for `changes.epochs` more passes,
/// e.g. with more labels.
pub fn resume<B: Backend>(be: &B, dir: &Path, changes: &ResumeChanges, obs: &mut dyn Observer) -> Result<RunSummary> {
    let saved = folder::load(dir).map_err(|e| Error::Invalid(format!("--resume {}: {e}", dir.display())))?;
    let mut run = saved.config;
    changes.validate()?;
    let epochs = changes.epochs.unwrap_or(10);
    if let Some(lr) = changes.lr {
        run.train.optimizer = match run.train.optimizer {
            Optimizer::RmsProp { alpha, momentum, eps, .. } => Optimizer::RmsProp { lr, alpha, momentum, eps },
            Optimizer::Adam { beta1, beta2, eps, .. } => Optimizer::Adam { lr, beta1, beta2, eps },
        };
        run.spec.lr = Some(lr);
    }
    if let Some(a) = changes.alpha {
        run.train.model.alpha = a;
        run.spec.model.alpha = Some(a);
    }
    if let Some(l) = changes.labels {
        run.train.labels = l;
        run.spec.labels = Some(l);
    }
    if let Some(s) = changes.score_samples {
        run.spec.score_samples = s;
    }
    if let Some(n) = changes.metrics_every {
        run.train.metrics_every = n;
        run.spec.metrics_every = n;
    }
    let (mut loaded, mut disk) = load_for_run(&mut run.spec)?;
    let anomalous = anomaly_classes(&run.spec.data, &loaded)?;
    match &mut disk {
        Some(d) => {
            if run.feedback.is_some() {
                invalid!("--resume {}: feedback runs cannot stream their data from disk", dir.display());
            }
            prepare_disk(&mut loaded, d, &run.spec, run.standardizer.as_deref())?;
        }
        None => {
            prepare_split(&mut loaded, &run.spec, &anomalous, run.standardizer.is_some(), run.standardizer.as_deref())?;
        }
    }
    let mut split = run_data(loaded, &anomalous)?;
    let (mut labeled, validation) =
        hold_out_validation(pick_labels(&run.train, &split, &anomalous)?, &split, run.spec.validation_labels, run.spec.seed)?;
    // dataset labels used; feedback samples join the pool after them
    run.labels_used = labeled.len();
    if let Some(fb) = &run.feedback {
        labeled.extend(feedback::append_to_training(&mut split.train_split, fb, dir, run.labels_used)?);
    }
    let out = changes.out.clone().unwrap_or_else(|| dir.to_path_buf());
    if out != dir && folder::has_run(&out) {
        invalid!(
            "--out {}: this folder already holds a trained run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        );
    }
    let prepared = Prepared {
        run,
        split,
        labeled,
        validation,
        out,
        resume_from: Some((saved.weights, saved.from)),
        resume_best: saved.best,
        epochs,
        anomalous,
        disk,
    };
    execute(be, prepared, obs)
}

/// The largest semi-supervised batch whose unlabeled rows (a `share` of it labeled) fit in `n`
/// training samples (2n for the paper's half).
fn largest_ss_batch(n: usize, share: f64) -> usize {
    let mut b = (n as f64 / (1.0 - share)).ceil() as usize + 1;
    while b > 1 && b - crate::data::labeled_rows(b, share) > n {
        b -= 1;
    }
    b
}

/// The batch fits the training set, and the model and data fit the machine's memory; returns
/// whether the training set must be streamed to fit (`streamed`: it already is).
fn check_sizes(cfg: &TrainConfig, split: &Loaded, streamed: bool) -> Result<bool> {
    let n = split.train().n();
    // an SS batch is labeled rows (drawn with replacement; half by default) and a pass over the
    // data; other batches are all one or the other
    let unlabeled_rows =
        if cfg.semi_supervised() { cfg.batch_size - crate::data::labeled_rows(cfg.batch_size, cfg.labeled_share) } else { cfg.batch_size };
    // ES batches are labeled rows drawn with replacement: any batch size works
    if unlabeled_rows > n && cfg.model.kind != Kind::Es {
        invalid!(
            "--batch-size {}: a batch would hold {unlabeled_rows} rows of the {n} training samples; use --batch-size {} or less",
            cfg.batch_size,
            if unlabeled_rows == cfg.batch_size { n } else { largest_ss_batch(n, cfg.labeled_share) }
        );
    }
    let shard_rows = 2 * cfg.batch_size * DEFAULT_SHARD_STEPS; // two shards (double buffering)
    let streamed_bytes = (shard_rows + split.test().n()) as f64 * split.train().dim() as f64 * 4.0;
    if streamed {
        super::memory::check_model(&cfg.model, cfg.batch_size, streamed_bytes)?;
        return Ok(false);
    }
    let data_bytes = (split.train().n() + split.test().n()) as f64 * split.train().dim() as f64 * 4.0;
    match super::memory::check_model(&cfg.model, cfg.batch_size, data_bytes) {
        Err(e) if super::memory::check_model(&cfg.model, cfg.batch_size, streamed_bytes).is_ok() => {
            eprintln!("note: {e}; streaming the training set in shards instead of holding it resident");
            Ok(true)
        }
        r => r.map(|_| false),
    }
}

/// The run's data: `train_split` is what the model trains and is evaluated on (the anomaly
/// class left out), `full_test` the test split with every class (what anomaly runs score).
struct RunData {
    train_split: Loaded,
    full_test: Loaded,
}

/// Everything checked; nothing written yet.
struct Prepared {
    run: RunConfig,
    split: RunData,
    labeled: Vec<usize>,
    /// Model selection: labeled training samples held out (their labels unused in training).
    validation: Vec<usize>,
    /// A resumed run's selected weights.
    resume_best: Option<Weights>,
    out: PathBuf,
    /// A resumed run's weights and the checkpoint folder they came from.
    resume_from: Option<(Weights, PathBuf)>,
    epochs: usize,
    /// Anomaly runs: the classes left out of training and detected in the test split.
    anomalous: Vec<usize>,
    /// NPY rows streamed from disk (the split's training set then holds no values).
    disk: Option<DiskSeries>,
}

/// The anomaly protocol's anomalous classes: `--anomaly-class`, or every class that
/// `--normal-classes` (or folders named `normal` / `abnormal`) does not name; empty otherwise.
fn anomaly_classes(data: &super::DataSpec, split: &Loaded) -> Result<Vec<usize>> {
    let classes = split.train().classes();
    if let Some(k) = data.anomaly_class {
        if k >= classes {
            invalid!("--anomaly-class {k}: {} has classes 0..{}", data.dataset, classes - 1);
        }
        return Ok(vec![k]);
    }
    let names = split.train().class_names().to_vec();
    let Some(normal) = super::user_data::normal_classes_of(data, &names) else { return Ok(Vec::new()) };
    for n in &normal {
        if !names.contains(n) {
            invalid!("--normal-classes: no class '{n}'; the data's classes are {}", names.join(", "));
        }
    }
    let anomalous: Vec<usize> = (0..classes).filter(|&c| !normal.contains(&names[c])).collect();
    if anomalous.is_empty() {
        invalid!(
            "--normal-classes: every class ({}) is normal; an anomaly run needs anomalous samples in its test split",
            names.join(", ")
        );
    }
    eprintln!(
        "note: anomaly run: trains on the normal class(es) {}; detects {} in the test split",
        normal.join(", "),
        anomalous.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(anomalous)
}

/// Whether series or table values are standardised: always, except a table for a Bernoulli
/// decoder (values in [0, 1], checked here).
fn needs_standardizing(spec: &RunSpec, split: &Loaded) -> Result<bool> {
    let Loaded::Series(s) = split else { return Ok(false) };
    if spec.model.family != crate::model::Family::Dense || spec.likelihood_for(split) == crate::model::Likelihood::Gaussian {
        return Ok(true);
    }
    if let Some(k) = s.train.values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        let d = s.train.dim();
        invalid!(
            "--likelihood bernoulli needs values in [0, 1], but sample {} feature {} is {}; use --likelihood gaussian (standardised features)",
            s.train.id(k / d),
            s.train.channel_names.get(k % d).map_or("?", String::as_str),
            s.train.values[k]
        );
    }
    Ok(false)
}

/// Standardises series (with the statistics of the windows trained on, or `stored`) when
/// `scale`; leaves the anomalous classes out of the statistics. Returns the standardizer
/// applied.
fn prepare_split(split: &mut Loaded, spec: &RunSpec, anomalous: &[usize], scale: bool, stored: Option<&[f32]>) -> Result<Option<Vec<f32>>> {
    let mut standardizer = None;
    if let (Loaded::Series(s), true) = (&mut *split, scale) {
        let mut fit_on = s.clone();
        if !anomalous.is_empty() {
            fit_on.train = s.train.subset(
                &(0..s.train.n).filter(|&i| !s.train.labels[i].is_some_and(|l| anomalous.contains(&(l as usize)))).collect::<Vec<_>>(),
            );
        }
        let v = standardize(&mut fit_on, stored, spec.data.series.scaling)?;
        standardize(s, Some(&v), spec.data.series.scaling)?;
        standardizer = Some(v);
    }
    Ok(standardizer)
}

impl std::ops::Deref for RunData {
    type Target = Loaded;
    fn deref(&self) -> &Loaded {
        &self.train_split
    }
}

/// Splits `loaded` into the training view (anomalous classes removed) and the full test split.
fn run_data(loaded: Loaded, anomalous: &[usize]) -> Result<RunData> {
    let full_test = loaded.clone();
    let mut split = loaded;
    if !anomalous.is_empty() {
        let keep = |d: crate::train::TrainData<'_>| {
            (0..d.n()).filter(|&i| !d.label(i).is_some_and(|l| anomalous.contains(&(l as usize)))).collect::<Vec<_>>()
        };
        let (tr, te) = (keep(split.train()), keep(split.test()));
        split.subset_train(&tr);
        split.subset_test(&te);
        if split.test().n() == 0 {
            invalid!("anomaly run: no normal samples are left in the test split to evaluate on (check --validation, --test-data)");
        }
    }
    Ok(RunData { train_split: split, full_test })
}

/// Class-balanced labeled subset over the classes present in the training set (all of them,
/// except the anomalous classes of the anomaly protocol). Unlabeled samples (series windows
/// without a label, images under `unlabeled/`) are never picked.
fn labeled_indices(spec: LabelSpec, labels: &[Option<u8>], classes: usize, seed: u64, absent: &[usize]) -> Result<Vec<usize>> {
    let have: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    // the present classes numbered compactly, so the class-balanced quota ignores absent ones
    let compact: Vec<usize> = (0..classes)
        .scan(0, |k, c| {
            Some(if absent.contains(&c) {
                usize::MAX
            } else {
                *k += 1;
                *k - 1
            })
        })
        .collect();
    let labels: Vec<u8> = have.iter().map(|&i| compact[labels[i].unwrap() as usize] as u8).collect();
    let classes = classes - absent.len();
    let picked = match spec {
        LabelSpec::All => (0..have.len()).collect(),
        LabelSpec::Count(n) => crate::data::label_subset(&labels, classes, n, seed)?,
        LabelSpec::Fraction(f) => crate::data::label_fraction(&labels, classes, f, seed)?,
    };
    Ok(picked.into_iter().map(|i| have[i]).collect())
}

fn pick_labels(cfg: &TrainConfig, split: &Loaded, anomalous: &[usize]) -> Result<Vec<usize>> {
    let anomaly_class = (!anomalous.is_empty()).then_some(());
    if anomaly_class.is_some() && !cfg.model.has_decoder() {
        invalid!("an anomaly run needs a model with a decoder to score reconstructions (an ss- or eu- model), not {}", cfg.model.name());
    }
    match (&cfg.labeled_classes, cfg.labels) {
        _ if cfg.model.kind == Kind::Eu => Ok(Vec::new()),
        (Some(lc), LabelSpec::Count(n)) if anomaly_class.is_none() => {
            let Some(labels) = labels_of(split.train()).into_iter().collect::<Option<Vec<u8>>>() else {
                invalid!("--labeled-classes needs a dataset where every training sample has a label");
            };
            crate::train::semi::labeled_subset_in_classes(&labels, split.train().classes(), lc, n, cfg.seed)
        }
        (Some(_), _) => invalid!("--labeled-classes needs --labels N (a count) and no --anomaly-class"),
        (None, _) => labeled_indices(cfg.labels, &labels_of(split.train()), split.train().classes(), cfg.seed, anomalous),
    }
}

/// runs/<model>-<dataset>-<labels>-s<seed>, else the same with -2, -3, ... (the first without
/// a trained run).
fn default_out(cfg: &TrainConfig) -> PathBuf {
    let l = match cfg.labels {
        LabelSpec::All => "all".to_string(),
        LabelSpec::Count(n) => n.to_string(),
        LabelSpec::Fraction(f) => format!("f{f}"),
    };
    let base = format!("runs/{}-{}-{}-s{}", cfg.model.name(), cfg.dataset, l, cfg.seed);
    (1..)
        .map(|k| PathBuf::from(if k == 1 { base.clone() } else { format!("{base}-{k}") }))
        .find(|p| !folder::has_run(p))
        .expect("some suffix is free")
}

fn describe_optimizer(o: &Optimizer) -> String {
    match o {
        Optimizer::RmsProp { lr, .. } => format!("RMSprop lr {lr}"),
        Optimizer::Adam { lr, .. } => format!("Adam lr {lr}"),
    }
}

/// The training loop and the end-of-run scoring.
fn execute<B: Backend>(be: &B, p: Prepared, obs: &mut dyn Observer) -> Result<RunSummary> {
    let Prepared { mut run, split, labeled, validation, out, resume_from, resume_best, epochs, anomalous, disk } = p;
    let cfg = run.train.clone();
    let n_labels = run.labels_used;
    let mut trainer = build_trainer(be, &mut run, &split, disk, labeled)?;
    if let Some((w, from)) = &resume_from {
        trainer.load_weights(be, w, from)?;
        trainer.continue_from(run.steps_done, run.epochs_done);
    }
    // a folder holds a complete checkpoint from the moment it exists (a new folder: the initial
    // or resumed weights, committed in a sibling and renamed into place), and its log no epoch
    // beyond that checkpoint's (an epoch interrupted between its log line and its commit left one)
    if !folder::has_run(&out) {
        folder::create_with(&out, &run, &trainer.weights(be)?)?;
    }
    write_labeled(&out, split.train(), &trainer.labeled)?;
    trim_metrics(&out.join(METRICS_FILE), run.epochs_done)?;
    // model selection: the held-out labeled samples, evaluated after every epoch
    let val_split = (!validation.is_empty()).then(|| {
        let mut v = split.train_split.clone();
        v.test_from_train(&validation);
        v
    });
    let val_eval = match &val_split {
        Some(v) => Some(Evaluator::with_data(be, &cfg.model, &trainer.store, v.test(), cfg.eval_batch)?),
        None => None,
    };
    // a resumed run's selected or averaged weights, in this model's layout (a checkpoint of
    // M2 / GM-DGM written before their class-paired layer: see split_class_weights)
    let mut best: Option<Weights> =
        resume_best.map(|b| checkpoint::split_class_weights(&b, &trainer.store.names, &trainer.store.shapes).unwrap_or(b));
    let adapter = be.describe();
    // the CPU reference backend describes itself as "cpu (N threads, simd build)"
    let backend = if adapter.starts_with("cpu (") { "cpu" } else { "gpu" };
    let spe = trainer.steps_per_epoch();
    obs.started(&RunStart {
        model: cfg.model.name(),
        dataset: cfg.dataset.clone(),
        n_train: split.train().n(),
        n_test: split.test().n(),
        labeled: if cfg.model.kind == Kind::Eu { 0 } else { n_labels },
        optimizer: describe_optimizer(&cfg.optimizer),
        software_adapter: backend == "gpu" && adapter.contains("Cpu)"),
        adapter: adapter.clone(),
        out: out.clone(),
        steps_per_epoch: spe,
        epochs,
        batch_size: cfg.batch_size,
    });
    let metrics_path = out.join(METRICS_FILE);
    let mut metrics_file = std::fs::OpenOptions::new().create(true).append(true).open(&metrics_path).map_err(|e| io(&metrics_path, e))?;
    let start = Instant::now();
    let (mut train_seconds, mut samples) = (0f64, 0u64);
    let mut last_eval = EvalReport::default();
    run.spec.epochs = run.epochs_done + epochs;
    run.train.epochs = run.spec.epochs;
    // the learning-rate schedule spans the whole run (a resume stretches it over the new total)
    trainer.cfg.epochs = run.train.epochs;
    // weight averaging: the epochs from `average_from` on are averaged into the run's model
    let average_from = run.spec.average_weights.map(|f| average_start(run.spec.epochs, f));
    // a run interrupted mid-epoch (Ctrl-C) finishes that epoch first; it counts as one of `epochs`
    let mut resume_at = (run.steps_done.saturating_sub(run.epochs_done as u64 * spe as u64) as usize).min(spe);
    let mut interrupted = false;
    'epochs: for _ in 0..epochs {
        let t0 = Instant::now();
        let first = std::mem::take(&mut resume_at);
        let mut losses = Losses::default();
        for s in first..spe {
            trainer.step(be)?;
            let read = (s + 1) % cfg.metrics_every == 0 || s + 1 == spe;
            if read {
                losses = trainer.take_losses(be)?;
            }
            let rate = ((s + 1 - first) * cfg.batch_size) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            obs.step(&StepProgress {
                epoch: trainer.epochs_done + 1,
                step_in_epoch: s + 1,
                losses: read.then_some(&losses),
                samples_per_s: rate,
            });
            if obs.stop_requested() {
                // the steps so far become a checkpoint; a resume continues this epoch
                be.sync()?;
                trainer.take_losses(be)?; // divergence is never committed
                train_seconds += t0.elapsed().as_secs_f64();
                samples += ((s + 1 - first) * cfg.batch_size) as u64;
                run.steps_done = trainer.step;
                folder::commit(&out, &run, &trainer.weights(be)?)?;
                interrupted = true;
                break 'epochs;
            }
        }
        be.sync()?;
        let epoch_secs = t0.elapsed().as_secs_f64();
        train_seconds += epoch_secs;
        samples += ((spe - first) * cfg.batch_size) as u64;
        trainer.epochs_done += 1;
        last_eval = trainer.evaluate(be)?.unwrap_or_default();
        run.epochs_done = trainer.epochs_done;
        run.steps_done = trainer.step;
        let weights = trainer.weights(be)?;
        let mut improved = false;
        let mut val_report = None;
        if let Some(ve) = &val_eval {
            let r = ve.run(be, cfg.seed)?;
            let (acc, ll) = (r.accuracy.unwrap_or(0.0), r.log_loss.unwrap_or(f64::INFINITY));
            improved = run.selection.as_ref().is_none_or(|s| acc > s.best_accuracy || (acc == s.best_accuracy && ll < s.best_log_loss));
            if improved {
                run.selection = Some(Selection {
                    validation_samples: validation.len(),
                    best_epoch: trainer.epochs_done,
                    best_accuracy: acc,
                    best_log_loss: ll,
                });
                best = Some(Weights { params: weights.params.clone(), ..Weights::default() });
            }
            val_report = Some(r);
        }
        if let Some(from) = average_from.filter(|&from| trainer.epochs_done >= from) {
            // a running mean of the epoch-end weights; a resume that moved the rule's first
            // epoch (more epochs) starts the mean again
            let k = match (&run.average, &best) {
                (Some(a), Some(_)) if a.from_epoch == from => a.epochs,
                _ => 0,
            };
            let params = match (k, best.take()) {
                (1.., Some(mut mean)) => {
                    running_mean(&mut mean.params, &weights.params, k)?;
                    mean.params
                }
                _ => weights.params.clone(),
            };
            best = Some(Weights { params, ..Weights::default() });
            run.average = Some(Average { from_epoch: from, epochs: k + 1 });
            improved = true;
        }
        folder::commit_with_best(&out, &run, &weights, if improved { best.as_ref() } else { None })?;
        let mut line = EpochReport::new(trainer.epochs_done, trainer.step, &losses, &last_eval, epoch_secs, (spe - first) * cfg.batch_size);
        if let Some(r) = &val_report {
            line.validation_accuracy = r.accuracy;
            line.validation_log_loss = r.log_loss;
        }
        let json = serde_json::to_string(&line).map_err(|e| io(&metrics_path, e))?;
        writeln!(metrics_file, "{json}").map_err(|e| io(&metrics_path, e))?;
        obs.epoch(&line);
        if let (Some(p), Some(s)) = (run.spec.patience, &run.selection) {
            if trainer.epochs_done >= s.best_epoch + p {
                obs.note(&format!(
                    "early stop: no better validation score in {p} epoch(s) since epoch {} (accuracy {:.4})",
                    s.best_epoch, s.best_accuracy
                ));
                break;
            }
        }
    }
    obs.finished();
    let mut summary = RunSummary {
        model: cfg.model.name(),
        dataset: cfg.dataset.clone(),
        labels: if cfg.model.kind == Kind::Eu { 0 } else { n_labels },
        epochs: trainer.epochs_done,
        accuracy: last_eval.accuracy,
        log_loss: last_eval.log_loss,
        test_rec: last_eval.rec,
        test_kl: last_eval.kl,
        train_seconds,
        samples_per_s: samples as f64 / train_seconds.max(1e-9),
        backend: backend.into(),
        adapter,
        seed: cfg.seed,
        alpha: cfg.model.alpha,
        out: out.clone(),
        evaluated_on: if run.spec.data.validation.is_some() { "validation" } else { "test" }.into(),
        anomaly_class: run.spec.data.anomaly_class,
        labeled_classes: cfg.labeled_classes.clone(),
        slots: cfg.model.classes,
        ..RunSummary::default()
    };
    if interrupted {
        // no end-of-run scoring and no summary.json: the run is not finished
        summary.interrupted = true;
        summary.steps = trainer.step;
        summary.seconds = start.elapsed().as_secs_f64();
        return Ok(summary);
    }
    summary.steps = trainer.step;
    if let (Some(s), Some(b)) = (&run.selection, &best) {
        // the run's model is the selected epoch's: its test figures are the run's
        let e = report_runs_model(be, &mut trainer, b, &mut summary)?;
        summary.selected_epoch = Some(s.best_epoch);
        summary.validation_accuracy = Some(s.best_accuracy);
        obs.note(&format!(
            "model selection: epoch {} of {} (validation accuracy {:.4} on {} held-out labeled samples); its test accuracy {}",
            s.best_epoch,
            trainer.epochs_done,
            s.best_accuracy,
            s.validation_samples,
            fmt_opt(e.accuracy)
        ));
    }
    if let (Some(a), Some(b)) = (&run.average, &best) {
        // the run's model is the average: its test figures are the run's
        let e = report_runs_model(be, &mut trainer, b, &mut summary)?;
        let first = trainer.epochs_done + 1 - a.epochs;
        summary.averaged_epochs = Some([first, trainer.epochs_done]);
        obs.note(&format!(
            "weight average: epochs {first}-{} ({} epoch-end weights); its {} accuracy {} (last epoch {})",
            trainer.epochs_done,
            a.epochs,
            summary.evaluated_on,
            fmt_opt(e.accuracy),
            fmt_opt(summary.last_epoch_accuracy)
        ));
    }
    if !anomalous.is_empty() {
        score_anomalies(be, &run, &trainer, &split.full_test, &anomalous, &out, &mut summary, obs)?;
    }
    // cluster-and-label for semi-unsupervised runs and every M2 / GM-DGM
    if cfg.model.has_classifier() && (cfg.labeled_classes.is_some() || cfg.model.sums_over_classes()) {
        let lc = cfg.labeled_classes.clone().unwrap_or_default();
        let Loaded::Images(images) = &*split else {
            invalid!("cluster-and-label scoring (--labeled-classes, M2, GM-DGM) needs an image dataset");
        };
        let c = crate::eval::cluster::cluster_scores(
            be,
            &cfg.model,
            &trainer.store,
            &images.train,
            &images.test,
            &lc,
            cfg.eval_batch,
            cfg.seed,
        )?;
        obs.note(&format!(
            "cluster-and-label: accuracy {:.4}, labeled classes {}, unlabeled classes {}",
            c.accuracy,
            fmt_opt(c.labeled_class_accuracy),
            fmt_opt(c.unlabeled_class_accuracy)
        ));
        summary.cluster_accuracy = Some(c.accuracy);
        summary.labeled_class_accuracy = c.labeled_class_accuracy;
        summary.unlabeled_class_accuracy = c.unlabeled_class_accuracy;
        summary.slot_class = Some(c.slot_class.clone());
        summary.cluster_labeled_slots_kept = c.labeled_slots_kept.as_ref().map(|g| GroupScores {
            accuracy: g.accuracy,
            labeled_class_accuracy: g.labeled_class_accuracy,
            unlabeled_class_accuracy: g.unlabeled_class_accuracy,
        });
    }
    summary.seconds = start.elapsed().as_secs_f64();
    checkpoint::save_json(&out.join(super::SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// Loads `model` (the selected epoch's or the averaged weights) into the trainer and makes its
/// evaluation the run's figures in `summary`, keeping the last epoch's accuracy beside them.
fn report_runs_model<B: Backend>(be: &B, trainer: &mut Trainer<B>, model: &Weights, summary: &mut RunSummary) -> Result<EvalReport> {
    for (name, _, v) in &model.params {
        trainer.store.write(be, name, v)?;
    }
    let e = trainer.evaluate(be)?.unwrap_or_default();
    summary.last_epoch_accuracy = summary.accuracy;
    (summary.accuracy, summary.log_loss, summary.test_rec, summary.test_kl) = (e.accuracy, e.log_loss, e.rec, e.kl);
    Ok(e)
}

/// The trainer: resident, or streamed (`--stream`, data on disk, or a set too large for one
/// device buffer); a run that streams records it in config.json.
fn build_trainer<B: Backend>(
    be: &B,
    run: &mut RunConfig,
    split: &RunData,
    disk: Option<DiskSeries>,
    labeled: Vec<usize>,
) -> Result<Trainer<B>> {
    let cfg = run.train.clone();
    let shard_steps = run.spec.data.shard_steps.unwrap_or(DEFAULT_SHARD_STEPS);
    // the in-memory set shared with the thread that prepares shards (a copy)
    let in_memory = |t: TrainData<'_>| -> Arc<dyn RowSource> {
        match t {
            TrainData::Images(d) => Arc::new(d.clone()),
            TrainData::Series(d) => Arc::new(d.clone()),
        }
    };
    let (train, test) = (split.train(), Some(split.test()));
    let (trainer, streamed) = match disk {
        Some(d) => (Trainer::streamed(be, cfg, train, StreamSource { source: Arc::new(d), shard_steps }, test, labeled)?, true),
        None if run.spec.data.stream => {
            (Trainer::streamed(be, cfg, train, StreamSource { source: in_memory(train), shard_steps }, test, labeled)?, true)
        }
        None => {
            Trainer::resident_or_streamed(be, cfg, train, || Ok(StreamSource { source: in_memory(train), shard_steps }), test, labeled)?
        }
    };
    if streamed {
        run.spec.data.stream = true;
        eprintln!(
            "note: training set streamed in shards of {shard_steps} steps ({} samples per shard)",
            shard_steps * run.train.batch_size
        );
    }
    Ok(trainer)
}

/// The first epoch that weight averaging takes in a run of `total` epochs: the last
/// `ceil(fraction x total)` epochs (at least one) are averaged.
fn average_start(total: usize, fraction: f64) -> usize {
    let n = ((total as f64 * fraction).ceil() as usize).clamp(1, total.max(1));
    total.max(1) + 1 - n
}

/// `mean` (the mean of `k` epoch-end weights) takes in `w`: mean += (w - mean) / (k + 1).
fn running_mean(mean: &mut [(String, Vec<usize>, Vec<f32>)], w: &[(String, Vec<usize>, Vec<f32>)], k: usize) -> Result<()> {
    if mean.len() != w.len() {
        invalid!("weight average: {} tensors stored, the model has {}", mean.len(), w.len());
    }
    let r = 1.0 / (k as f64 + 1.0);
    for ((name, _, m), (wn, _, v)) in mean.iter_mut().zip(w) {
        if name != wn || m.len() != v.len() {
            invalid!("weight average: the stored '{name}' does not match the model's '{wn}'");
        }
        for (a, &b) in m.iter_mut().zip(v) {
            *a = (*a as f64 + (b as f64 - *a as f64) * r) as f32;
        }
    }
    Ok(())
}

/// Model selection: `per_class` labeled samples of every class (seeded) leave the labeled set
/// and become the validation set (they stay in training as unlabeled samples). Returns
/// (labeled, validation), sorted.
fn hold_out_validation(labeled: Vec<usize>, split: &Loaded, per_class: Option<usize>, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let Some(k) = per_class.filter(|&k| k > 0) else { return Ok((labeled, Vec::new())) };
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let train = split.train();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); train.classes()];
    for &i in &labeled {
        if let Some(l) = train.label(i) {
            by_class[l as usize].push(i);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5e1e_c7ed);
    let mut validation = Vec::new();
    for (c, members) in by_class.iter_mut().enumerate() {
        if members.is_empty() {
            continue; // a class without labels (anomaly runs, semi-unsupervised)
        }
        if members.len() <= k {
            invalid!(
                "--validation-labels {k}: class '{}' has {} labeled sample(s); it needs more than {k} so that some still train",
                train.class_names().get(c).map_or("?", String::as_str),
                members.len()
            );
        }
        members.shuffle(&mut rng);
        validation.extend_from_slice(&members[..k]);
    }
    validation.sort_unstable();
    let held: std::collections::HashSet<usize> = validation.iter().copied().collect();
    Ok((labeled.into_iter().filter(|i| !held.contains(i)).collect(), validation))
}

/// labeled.csv: the id and class of every training sample that kept its label.
fn write_labeled(out: &Path, train: crate::train::TrainData<'_>, labeled: &[usize]) -> Result<()> {
    let mut csv = String::from("id,label\n");
    let names = train.class_names();
    for &i in labeled {
        if i < train.n() {
            let l = train.label(i).map_or(String::new(), |l| names.get(l as usize).cloned().unwrap_or_else(|| l.to_string()));
            csv += &format!("{},{}\n", csv_cell(&train.id(i)), csv_cell(&l));
        }
    }
    crate::fsutil::write_atomic(&out.join(super::LABELED_FILE), csv.as_bytes())
}

/// Drops the lines of `path` (metrics.jsonl) whose epoch is beyond `epochs`.
fn trim_metrics(path: &Path, epochs: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let epoch_of = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["epoch"].as_u64());
    let kept: Vec<&str> = text.lines().filter(|l| epoch_of(l).is_some_and(|e| e as usize <= epochs)).collect();
    if kept.len() != text.lines().count() {
        let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
        crate::fsutil::write_atomic(path, body.as_bytes())?;
    }
    Ok(())
}

/// A CSV cell: quoted when it holds a delimiter, a quote or a line break.
pub(crate) fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Anomaly runs: scores every test sample (all classes), the ROC AUC of detecting the
/// `anomalous` classes, and anomaly_scores.csv (with the eq. 6 columns when the run has
/// feedback).
#[allow(clippy::too_many_arguments)]
fn score_anomalies<B: Backend>(
    be: &B,
    run: &RunConfig,
    trainer: &Trainer<B>,
    full: &Loaded,
    anomalous: &[usize],
    out: &Path,
    summary: &mut RunSummary,
    obs: &mut dyn Observer,
) -> Result<()> {
    let cfg = &run.train;
    let test = full.test();
    let samples = run.spec.score_samples;
    let scorer = Scorer::with_data(be, &cfg.model, &trainer.store, test, cfg.eval_batch)?;
    let (scores, probs) = scorer.run(be, samples, cfg.seed)?;
    // unlabeled test windows are neither anomalous nor normal: scored, not in the AUC
    let known: Vec<usize> = (0..test.n()).filter(|&i| test.label(i).is_some()).collect();
    let positive: Vec<bool> = (0..test.n()).map(|i| test.label(i).is_some_and(|l| anomalous.contains(&(l as usize)))).collect();
    summary.auc = crate::eval::roc_auc(
        &known.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
        &known.iter().map(|&i| positive[i]).collect::<Vec<_>>(),
    );
    let mut adjusted = AdjustedAuc::default();
    let mut csv = String::from("index,label,anomalous,score");
    let adj = match (&run.feedback, &probs) {
        (Some(fb), Some(p)) => {
            csv += ",p_false_positive,p_false_negative,adjusted_score";
            Some(feedback::adjust(fb, &scores, p, &known, &positive, &mut adjusted)?)
        }
        _ => None,
    };
    csv += ",id\n";
    for (i, s) in scores.iter().enumerate() {
        let label = test.label(i).map_or(String::new(), |l| test.class_names()[l as usize].clone());
        csv += &format!("{i},{},{},{s}", csv_cell(&label), positive[i] as u8);
        if let Some((p_fp, p_fn, adj)) = &adj {
            csv += &format!(",{},{},{}", p_fp[i], p_fn[i], adj[i]);
        }
        csv += &format!(",{}\n", csv_cell(&test.id(i)));
    }
    checkpoint::write_atomic(&out.join(super::ANOMALY_SCORES_FILE), csv.as_bytes())?;
    let names: Vec<&str> = anomalous.iter().map(|&c| test.class_names().get(c).map_or("?", String::as_str)).collect();
    obs.note(&format!(
        "anomalous class(es) {}: ROC AUC {} over {} test samples ({} anomalous), {samples} draws of z each",
        names.join(", "),
        fmt_opt(summary.auc),
        scores.len(),
        positive.iter().filter(|&&p| p).count(),
    ));
    if adj.is_some() {
        obs.note(&format!("with feedback (eq. 6): ROC AUC {}", fmt_opt(adjusted.auc_adjusted)));
    }
    summary.auc_adjusted = adjusted.auc_adjusted;
    summary.auc_unmarked = adjusted.auc_unmarked;
    summary.auc_adjusted_unmarked = adjusted.auc_adjusted_unmarked;
    Ok(())
}
