//! `ssvae train` and `ssvae eval`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ssvae::backend::cpu::CpuBackend;
use ssvae::data::{self, Split};
use ssvae::eval::Scorer;
use ssvae::graph::exec::{Optimizer, ParamStore};
use ssvae::model::{build, ConvLayer, DecoderInput, Family, Kind, LossNorm, ModelSpec};
use ssvae::train::checkpoint::{self, CONFIG_FILE, METRICS_FILE};
use ssvae::train::{EvalReport, LabelSpec, TrainConfig, Trainer};
use ssvae::Backend;

use crate::cli_data::{self, labels_of, Loaded, SeriesArgs};
use crate::DeviceArgs;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// ss-dense (the paper's model), es-dense (encoder + classifier only), eu-dense (plain VAE),
    /// the convolutional ss-cnn, es-cnn, eu-cnn (the paper's Table 14), the recurrent ss-rnn,
    /// es-rnn, eu-rnn for time series (Table 15), or m2-dense / m2-cnn (Kingma's M2) and
    /// gmdgm-dense / gmdgm-cnn (Gaussian-mixture DGM, semi-unsupervised).
    #[arg(long, default_value = "ss-dense")]
    model: String,
    /// Images: synthetic (built in, no download), mnist or fashion-mnist. Time series (for the
    /// rnn models): uci-har, synthetic-sensor (built in) or csv (--train-csv ...).
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    #[command(flatten)]
    series: SeriesArgs,
    /// Folder holding the dataset's files (default: $SSVAE_DATA/<dataset>, then ./data/<dataset>).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Semi-unsupervised mode: only these classes keep labels (e.g. 0,1,2,8,9); --labels then
    /// counts labels over these classes. Scored by cluster-and-label.
    #[arg(long, value_delimiter = ',')]
    labeled_classes: Option<Vec<usize>>,
    /// M2 / GM-DGM: classifier slots beyond the dataset's classes, for classes learned without
    /// labels (prior mass: see README).
    #[arg(long)]
    extra_slots: Option<usize>,
    /// Number of labeled training samples (class-balanced), or `all`.
    #[arg(long)]
    labels: Option<String>,
    /// Fraction of training samples that keep their label, in (0, 1] (instead of --labels).
    #[arg(long, conflicts_with = "labels")]
    label_fraction: Option<f64>,
    /// Passes over the training set (default 10; with --resume: additional passes).
    #[arg(long)]
    epochs: Option<usize>,
    /// Rows per step; SS models use half labeled, half unlabeled.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    dev: DeviceArgs,
    /// Output folder (default: runs/<model>-<dataset>-<labels>-s<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Weight of the classification loss (default 1000, see README).
    #[arg(long)]
    alpha: Option<f32>,
    /// Weight of the KL term (beta of a beta-VAE; default 1, the ELBO).
    #[arg(long)]
    kl_weight: Option<f32>,
    /// Learning rate (default: the paper's, 5e-4 for dense and CNN models, 1e-3 for RNN ones).
    #[arg(long)]
    lr: Option<f32>,
    /// rmsprop (the paper's, momentum 0.9) or adam.
    #[arg(long, default_value = "rmsprop")]
    optimizer: String,
    /// Encoder widths (the decoder mirrors them); for a CNN, its dense layers (default 512); for
    /// an RNN dense,lstm,dense (default 40,40,30).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// CNN convolutions as channels:kernel:stride, e.g. 64:3:1,64:3:1,64:3:2 (the default).
    #[arg(long, value_delimiter = ',')]
    conv: Option<Vec<String>>,
    /// CNN dropout rate after its dense layers (default 0.5).
    #[arg(long)]
    dropout: Option<f32>,
    #[arg(long)]
    latent: Option<usize>,
    /// What feeds the decoder in training: pi (the paper's) or true-label (one-hot on labeled rows).
    #[arg(long)]
    decoder_input: Option<String>,
    /// Reconstruction and KL as a sum (the usual ELBO) or a mean over features (the blog's).
    #[arg(long)]
    loss_norm: Option<String>,
    /// Bound on |log-variance| (logvar = L tanh(raw / L)); 0 disables it.
    #[arg(long)]
    logvar_limit: Option<f32>,
    /// RNN models: keep the training windows on the device as f16 (half the memory: twice
    /// the windows fit the adapter's per-binding limit); values are rounded to 3 significant
    /// digits. Images are already stored at one byte per pixel.
    #[arg(long)]
    data_f16: bool,
    /// Continue a saved run (weights and optimizer state), e.g. with more --labels.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Use only the first N training samples (quick experiments).
    #[arg(long)]
    max_train: Option<usize>,
    /// Hold out the last N training samples and evaluate on them instead of the test split
    /// (for choosing hyper-parameters without looking at the test set).
    #[arg(long)]
    validation: Option<usize>,
    /// Built-in dataset sizes (train, test), for synthetic and synthetic-sensor.
    #[arg(long, default_value_t = 10000)]
    synthetic_train: usize,
    #[arg(long, default_value_t = 2000)]
    synthetic_test: usize,
    /// Read the loss back (and check for divergence) every N steps.
    #[arg(long, default_value_t = 50)]
    metrics_every: usize,
    /// No progress bar or per-epoch lines (the final JSON line is still printed).
    #[arg(long)]
    quiet: bool,
    /// Anomaly protocol: leave this class out of training, then score the test set and report
    /// the ROC AUC of detecting it (used by `ssvae anomaly`).
    #[arg(long)]
    pub anomaly_class: Option<usize>,
    /// Draws of z per anomaly score.
    #[arg(long, default_value_t = ssvae::eval::DEFAULT_SCORE_SAMPLES)]
    score_samples: usize,
}

/// What config.json holds: the training configuration and where training stands.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RunConfig {
    pub(crate) train: TrainConfig,
    pub(crate) labels_used: usize,
    pub(crate) epochs_done: usize,
    steps_done: u64,
    pub(crate) max_train: Option<usize>,
    #[serde(default)]
    pub(crate) validation: Option<usize>,
    pub(crate) synthetic: (usize, usize),
    pub(crate) data_dir: Option<PathBuf>,
    #[serde(default)]
    pub(crate) anomaly_class: Option<usize>,
    /// How a series dataset was read (channels, CSV layout).
    #[serde(default)]
    pub(crate) series: SeriesArgs,
    /// Per-channel means then standard deviations of the training windows (series runs).
    #[serde(default)]
    pub(crate) standardizer: Option<Vec<f32>>,
    /// Anomaly feedback (false positives / negatives as extra classes), see `cli_feedback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) feedback: Option<crate::cli_feedback::FeedbackRecord>,
}

impl RunConfig {
    /// The run's dataset as it was trained on (series standardised with the stored statistics).
    pub(crate) fn load_data(&self, dataset: &str, data_dir: Option<&Path>) -> Result<Loaded> {
        let mut l = cli_data::load_any(dataset, data_dir, self.synthetic, &self.series)?;
        if let Loaded::Series(s) = &mut l {
            cli_data::standardize(s, self.standardizer.as_deref())?;
        }
        Ok(l)
    }
}

pub(crate) fn load_dataset(name: &str, data_dir: Option<&Path>, synthetic: (usize, usize)) -> Result<Split> {
    cli_data::load_images(name, data_dir, synthetic)
}

fn parse_labels(labels: &Option<String>, fraction: Option<f64>, default: LabelSpec) -> Result<LabelSpec> {
    Ok(match (labels.as_deref(), fraction) {
        (_, Some(f)) => LabelSpec::Fraction(f),
        (Some("all"), None) => LabelSpec::All,
        (Some(n), None) => LabelSpec::Count(n.parse().with_context(|| format!("--labels: expected a number or 'all', got '{n}'"))?),
        (None, None) => default,
    })
}

/// Class-balanced labeled subset over the classes present in the training set (all of them,
/// except the left-out class of the anomaly protocol).
/// Unlabeled samples (series windows without a label) are never picked.
fn labeled_indices(spec: LabelSpec, labels: &[Option<u8>], classes: usize, seed: u64, absent: Option<usize>) -> Result<Vec<usize>> {
    let have: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    let (labels, classes): (Vec<u8>, usize) = match absent {
        Some(k) => (have.iter().map(|&i| labels[i].unwrap()).map(|y| if y as usize > k { y - 1 } else { y }).collect(), classes - 1),
        None => (have.iter().map(|&i| labels[i].unwrap()).collect(), classes),
    };
    let picked = match spec {
        LabelSpec::All => (0..have.len()).collect(),
        LabelSpec::Count(n) => data::label_subset(&labels, classes, n, seed)?,
        LabelSpec::Fraction(f) => data::label_fraction(&labels, classes, f, seed)?,
    };
    Ok(picked.into_iter().map(|i| have[i]).collect())
}

pub fn train(a: TrainArgs) -> Result<()> {
    let summary = match a.dev.open()? {
        Some(gpu) => run_train(&gpu, "gpu", a)?,
        None => run_train(&CpuBackend::new(), "cpu", a)?,
    };
    println!("{summary}");
    Ok(())
}

/// Parses `ssvae train` arguments (for the reproduction runner).
pub fn parse_train_args(args: &[String]) -> Result<TrainArgs> {
    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        a: TrainArgs,
    }
    let argv = std::iter::once("train".to_string()).chain(args.iter().cloned());
    Ok(<P as clap::Parser>::try_parse_from(argv)?.a)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Trains as `ssvae train` does and returns the summary (also written to OUT/summary.json).
pub fn run_train<B: Backend>(be: &B, backend: &str, a: TrainArgs) -> Result<serde_json::Value> {
    let previous: Option<RunConfig> = match &a.resume {
        Some(dir) => Some(checkpoint::load_json(&dir.join(CONFIG_FILE)).with_context(|| format!("--resume {}", dir.display()))?),
        None => None,
    };
    let synthetic = previous.as_ref().map_or((a.synthetic_train, a.synthetic_test), |p| p.synthetic);
    let max_train = a.max_train.or(previous.as_ref().and_then(|p| p.max_train));
    // a resumed run keeps its validation hold-out (else held-out samples would become training data)
    let validation = a.validation.or(previous.as_ref().and_then(|p| p.validation));
    let data_dir = a.data_dir.clone().or(previous.as_ref().and_then(|p| p.data_dir.clone()));
    let dataset = previous.as_ref().map_or(a.dataset.clone(), |p| p.train.dataset.clone());
    if previous.is_some() && a.dataset != "synthetic" && a.dataset != dataset {
        bail!("--resume: the run was trained on {dataset}, not {}", a.dataset);
    }
    let series_args = previous.as_ref().map_or(a.series.clone(), |p| p.series.clone());
    let mut split = cli_data::load_any(&dataset, data_dir.as_deref(), synthetic, &series_args)?;
    let n_train = split.train().n();
    if let Some(m) = max_train {
        if m == 0 || m > n_train {
            bail!("--max-train {m}: must be between 1 and the {n_train} training samples");
        }
        split.subset_train(&(0..m).collect::<Vec<_>>());
    }
    if let Some(v) = validation {
        let n_train = split.train().n();
        if v == 0 || v >= n_train {
            bail!("--validation {v}: must be between 1 and the {n_train} training samples minus one");
        }
        let n = n_train - v;
        split.test_from_train(&(n..n_train).collect::<Vec<_>>());
        split.subset_train(&(0..n).collect::<Vec<_>>());
    }

    let anomaly_class = a.anomaly_class.or(previous.as_ref().and_then(|p| p.anomaly_class));
    if let Some(k) = anomaly_class {
        let classes = split.train().classes();
        if k >= classes {
            bail!("--anomaly-class {k}: {dataset} has classes 0..{}", classes - 1);
        }
    }
    // series: standardise with statistics of the windows trained on (the anomaly class left
    // out), or the resumed run's
    let mut standardizer = None;
    if let Loaded::Series(s) = &mut split {
        let stored = previous.as_ref().and_then(|p| p.standardizer.clone());
        let mut fit_on = s.clone();
        if let Some(k) = anomaly_class {
            fit_on.train = s.train.subset(&(0..s.train.n).filter(|&i| s.train.labels[i] != Some(k as u8)).collect::<Vec<_>>());
        }
        let v = cli_data::standardize(&mut fit_on, stored.as_deref())?;
        cli_data::standardize(s, Some(&v))?;
        standardizer = Some(v);
    }
    let full_test = split.clone();
    if let Some(k) = anomaly_class {
        let keep = |d: ssvae::train::TrainData<'_>| (0..d.n()).filter(|&i| d.label(i) != Some(k as u8)).collect::<Vec<_>>();
        let (tr, te) = (keep(split.train()), keep(split.test()));
        split.subset_train(&tr);
        split.subset_test(&te);
    }
    if anomaly_class.is_some() && split.test().n() == 0 {
        bail!("--anomaly-class: no normal samples are left to evaluate on (check --validation)");
    }
    let mut cfg = match &previous {
        Some(p) => p.train.clone(),
        None => {
            let (family, kind) = ModelSpec::parse_name(&a.model)?;
            let mut spec = match (family, &split) {
                (Family::Dense, Loaded::Images(s)) => ModelSpec::dense(kind, s.train.dim(), s.train.classes),
                (Family::Cnn, Loaded::Images(s)) => ModelSpec::cnn(kind, [s.train.height, s.train.width, s.train.channels], s.train.classes),
                (Family::Rnn, Loaded::Series(s)) => ModelSpec::rnn(kind, s.train.steps, s.train.channels, s.train.classes),
                (Family::Rnn, Loaded::Images(_)) => bail!(
                    "--model {}: a recurrent model takes time series, but --dataset {dataset} holds {}; use --dataset uci-har, synthetic-sensor or csv, or a dense/cnn model",
                    a.model,
                    split.train().describe()
                ),
                (_, Loaded::Series(_)) => bail!(
                    "--model {}: dense and CNN models take images, but --dataset {dataset} holds {}; use --model ss-rnn, es-rnn or eu-rnn",
                    a.model,
                    split.train().describe()
                ),
            };
            if let Some(c) = &a.conv {
                if family != Family::Cnn {
                    bail!("--conv applies to the CNN models (ss-cnn, es-cnn, eu-cnn), not {}", a.model);
                }
                spec.conv = c.iter().map(|l| parse_conv(l)).collect::<Result<_>>()?;
            }
            if let Some(d) = a.dropout {
                spec.dropout = d;
            }
            if let Some(h) = &a.hidden {
                spec.hidden = h.clone();
            }
            if let Some(l) = a.latent {
                spec.latent = l;
            }
            if let Some(al) = a.alpha {
                spec.alpha = al;
            }
            if let Some(w) = a.kl_weight {
                spec.kl_weight = w;
            }
            if let Some(d) = &a.decoder_input {
                spec.decoder_input = match d.as_str() {
                    "pi" => DecoderInput::Pi,
                    "true-label" => DecoderInput::TrueLabel,
                    _ => bail!("--decoder-input: expected pi or true-label, got '{d}'"),
                };
            }
            let extra = a.extra_slots.unwrap_or(0);
            if extra > 0 && !spec.sums_over_classes() {
                bail!("--extra-slots applies to the M2 and GM-DGM models (m2-dense, m2-cnn, gmdgm-dense, gmdgm-cnn), not {}", a.model);
            }
            if spec.sums_over_classes() && (extra > 0 || a.labeled_classes.is_some()) {
                let classes = split.train().classes();
                let all: Vec<usize> = (0..classes).collect();
                spec.class_prior = ssvae::model::semi_unsupervised_prior(classes, a.labeled_classes.as_deref().unwrap_or(&all), extra)?;
                spec.classes = classes + extra;
            }
            if let Some(l) = a.logvar_limit {
                spec.logvar_limit = if l == 0.0 { None } else { Some(l) };
            }
            if a.data_f16 {
                if family != Family::Rnn {
                    bail!("--data-f16 applies to the recurrent models (their windows are f32 on the device); {} stores images at one byte per pixel already", a.model);
                }
                spec.series_f16 = true;
            }
            if let Some(n) = &a.loss_norm {
                spec.loss_norm = match n.as_str() {
                    "sum" => LossNorm::Sum,
                    "mean" => LossNorm::Mean,
                    _ => bail!("--loss-norm: expected sum or mean, got '{n}'"),
                };
            }
            let mut c = TrainConfig::new(spec, &dataset);
            c.batch_size = a.batch_size;
            c.seed = a.seed;
            c.metrics_every = a.metrics_every;
            c.labeled_classes = a.labeled_classes.clone();
            let lr = a.lr.unwrap_or(if family == Family::Rnn { 1e-3 } else { 5e-4 });
            c.optimizer = match a.optimizer.as_str() {
                "rmsprop" => Optimizer::rmsprop(lr),
                "adam" => Optimizer::adam(lr),
                o => bail!("--optimizer: expected rmsprop or adam, got '{o}'"),
            };
            c
        }
    };
    if previous.is_some() {
        if let Some(lr) = a.lr {
            cfg.optimizer = match cfg.optimizer {
                Optimizer::RmsProp { alpha, momentum, eps, .. } => Optimizer::RmsProp { lr, alpha, momentum, eps },
                Optimizer::Adam { beta1, beta2, eps, .. } => Optimizer::Adam { lr, beta1, beta2, eps },
            };
        }
        if let Some(al) = a.alpha {
            cfg.model.alpha = al;
        }
    }
    cfg.labels = parse_labels(&a.labels, a.label_fraction, previous.as_ref().map_or(LabelSpec::Count(100), |p| p.train.labels))?;
    if anomaly_class.is_some() && !cfg.model.has_decoder() {
        bail!("--anomaly-class needs a model with a decoder to score reconstructions (an ss- or eu- model), not {}", cfg.model.name());
    }
    let add_epochs = a.epochs.unwrap_or(10);
    if add_epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let mut labeled = match (&cfg.labeled_classes, cfg.labels) {
        _ if cfg.model.kind == Kind::Eu => Vec::new(),
        (Some(lc), LabelSpec::Count(n)) if anomaly_class.is_none() => {
            let Some(labels) = labels_of(split.train()).into_iter().collect::<Option<Vec<u8>>>() else {
                bail!("--labeled-classes needs a dataset where every training sample has a label");
            };
            ssvae::train::semi::labeled_subset_in_classes(&labels, split.train().classes(), lc, n, cfg.seed)?
        }
        (Some(_), _) => bail!("--labeled-classes needs --labels N (a count) and no --anomaly-class"),
        (None, _) => labeled_indices(cfg.labels, &labels_of(split.train()), split.train().classes(), cfg.seed, anomaly_class)?,
    };
    // dataset labels used; feedback samples (resumed feedback runs) join the pool after them
    let n_labels = labeled.len();
    let feedback = previous.as_ref().and_then(|p| p.feedback.clone());
    if let (Some(fb), Some(dir)) = (&feedback, &a.resume) {
        labeled.extend(crate::cli_feedback::append_to_training(&mut split, fb, dir, n_labels)?);
    }
    let out = a.out.clone().or(a.resume.clone()).unwrap_or_else(|| {
        let l = match cfg.labels {
            LabelSpec::All => "all".to_string(),
            LabelSpec::Count(n) => n.to_string(),
            LabelSpec::Fraction(f) => format!("f{f}"),
        };
        // a fresh folder: runs/<name>, else runs/<name>-2, -3, ...
        let base = format!("runs/{}-{}-{}-s{}", cfg.model.name(), dataset, l, cfg.seed);
        (1..)
            .map(|k| PathBuf::from(if k == 1 { base.clone() } else { format!("{base}-{k}") }))
            .find(|p| !p.join(checkpoint::MODEL_FILE).exists())
            .expect("some suffix is free")
    });
    if a.resume.as_ref() != Some(&out) && out.join(checkpoint::MODEL_FILE).exists() {
        bail!(
            "--out {}: this folder already holds a trained run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;

    let mut trainer = Trainer::with_data(be, cfg.clone(), split.train(), Some(split.test()), labeled.clone())?;
    if let (Some(dir), Some(p)) = (&a.resume, &previous) {
        trainer.load(be, dir)?;
        trainer.step = p.steps_done;
        trainer.epochs_done = p.epochs_done;
    }
    let adapter = be.describe();
    let quiet = a.quiet;
    if backend == "gpu" && adapter.contains("Cpu)") && !quiet {
        eprintln!("note: {adapter} is a software rasterizer; the CPU backend (--backend cpu or auto) is much faster on this machine");
    }
    if !quiet {
        eprintln!(
            "training {} on {} ({} train / {} test, {} labeled) with {} on {}; output {}",
            cfg.model.name(),
            dataset,
            split.train().n(),
            split.test().n(),
            if cfg.model.kind == Kind::Eu { 0 } else { n_labels },
            match cfg.optimizer {
                Optimizer::RmsProp { lr, .. } => format!("RMSprop lr {lr}"),
                Optimizer::Adam { lr, .. } => format!("Adam lr {lr}"),
            },
            adapter,
            out.display()
        );
    }
    let spe = trainer.steps_per_epoch();
    let bar = if quiet || !std::io::stdout().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new((spe * add_epochs) as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]").expect("valid template"),
        );
        b
    };
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(METRICS_FILE))
        .with_context(|| format!("{}", out.join(METRICS_FILE).display()))?;
    let start = Instant::now();
    let (mut train_seconds, mut samples) = (0f64, 0u64);
    let mut last_eval = EvalReport::default();
    for _ in 0..add_epochs {
        let t0 = Instant::now();
        let mut losses = ssvae::train::Losses::default();
        for s in 0..spe {
            trainer.step(be)?;
            if (s + 1) % cfg.metrics_every == 0 || s + 1 == spe {
                losses = trainer.take_losses(be).map_err(|e| anyhow::anyhow!("{e}"))?;
                let el = t0.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "epoch {} rec {} kl {} ce {}  {:.0} samples/s",
                    trainer.epochs_done + 1,
                    fmt_opt(losses.rec),
                    fmt_opt(losses.kl),
                    fmt_opt(losses.ce),
                    ((s + 1) * cfg.batch_size) as f64 / el
                ));
            }
            bar.inc(1);
        }
        be.sync()?;
        let epoch_secs = t0.elapsed().as_secs_f64();
        train_seconds += epoch_secs;
        samples += (spe * cfg.batch_size) as u64;
        trainer.epochs_done += 1;
        last_eval = trainer.evaluate(be)?.unwrap_or_default();
        trainer.save(be, &out)?;
        let run = RunConfig {
            train: cfg.clone(),
            labels_used: n_labels,
            epochs_done: trainer.epochs_done,
            steps_done: trainer.step,
            max_train,
            validation,
            synthetic,
            data_dir: data_dir.clone(),
            anomaly_class,
            series: series_args.clone(),
            standardizer: standardizer.clone(),
            feedback: feedback.clone(),
        };
        checkpoint::save_json(&out.join(CONFIG_FILE), &run)?;
        let line = serde_json::json!({
            "epoch": trainer.epochs_done, "step": trainer.step,
            "train_rec": losses.rec, "train_kl": losses.kl, "train_ce": losses.ce, "train_objective": losses.objective,
            "test_accuracy": last_eval.accuracy, "test_log_loss": last_eval.log_loss, "test_rec": last_eval.rec, "test_kl": last_eval.kl,
            "epoch_seconds": epoch_secs, "samples_per_s": (spe * cfg.batch_size) as f64 / epoch_secs,
        });
        writeln!(metrics_file, "{line}")?;
        if !quiet {
            bar.suspend(|| {
                eprintln!(
                    "epoch {:>3}: train rec {} kl {} ce {} | test accuracy {} log loss {} rec {} | {:.1}s",
                    trainer.epochs_done,
                    fmt_opt(losses.rec),
                    fmt_opt(losses.kl),
                    fmt_opt(losses.ce),
                    fmt_opt(last_eval.accuracy),
                    fmt_opt(last_eval.log_loss),
                    fmt_opt(last_eval.rec),
                    epoch_secs
                )
            });
        }
    }
    bar.finish_and_clear();
    let mut auc = None;
    let mut adjusted = crate::cli_feedback::AdjustedAuc::default();
    if let Some(k) = anomaly_class {
        let test = full_test.test();
        let scorer = Scorer::with_data(be, &cfg.model, &trainer.store, test, cfg.eval_batch)?;
        let (scores, probs) = scorer.run(be, a.score_samples, cfg.seed)?;
        // unlabeled test windows are neither anomalous nor normal: scored, not in the AUC
        let known: Vec<usize> = (0..test.n()).filter(|&i| test.label(i).is_some()).collect();
        let positive: Vec<bool> = (0..test.n()).map(|i| test.label(i) == Some(k as u8)).collect();
        auc = ssvae::eval::roc_auc(
            &known.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
            &known.iter().map(|&i| positive[i]).collect::<Vec<_>>(),
        );
        let mut csv = String::from("index,label,anomalous,score");
        let adj = match (&feedback, &probs) {
            (Some(fb), Some(p)) => {
                csv += ",p_false_positive,p_false_negative,adjusted_score";
                Some(crate::cli_feedback::adjust(fb, &scores, p, &known, &positive, &mut adjusted)?)
            }
            _ => None,
        };
        csv += "\n";
        for (i, s) in scores.iter().enumerate() {
            let label = test.label(i).map_or(String::new(), |l| l.to_string());
            csv += &format!("{i},{label},{},{s}", positive[i] as u8);
            if let Some((p_fp, p_fn, adj)) = &adj {
                csv += &format!(",{},{},{}", p_fp[i], p_fn[i], adj[i]);
            }
            csv += "\n";
        }
        checkpoint::write_atomic(&out.join("anomaly_scores.csv"), csv.as_bytes())?;
        if !quiet {
            eprintln!(
                "anomaly class {k}: ROC AUC {} over {} test samples ({} anomalous), {} draws of z each",
                fmt_opt(auc),
                scores.len(),
                positive.iter().filter(|&&p| p).count(),
                a.score_samples
            );
            if adj.is_some() {
                eprintln!("with feedback (eq. 6): ROC AUC {}", fmt_opt(adjusted.auc_adjusted));
            }
        }
    }
    // cluster-and-label for semi-unsupervised runs and every M2 / GM-DGM
    let cluster = if cfg.model.has_classifier() && (cfg.labeled_classes.is_some() || cfg.model.sums_over_classes()) {
        let lc = cfg.labeled_classes.clone().unwrap_or_default();
        let crate::cli_data::Loaded::Images(images) = &split else {
            bail!("cluster-and-label scoring (--labeled-classes, M2, GM-DGM) needs an image dataset");
        };
        let c =
            ssvae::train::semi::cluster_scores(be, &cfg.model, &trainer.store, &images.train, &images.test, &lc, cfg.eval_batch, cfg.seed)?;
        if !quiet {
            eprintln!(
                "cluster-and-label: accuracy {:.4}, labeled classes {}, unlabeled classes {}",
                c.accuracy,
                fmt_opt(c.labeled_class_accuracy),
                fmt_opt(c.unlabeled_class_accuracy)
            );
        }
        Some(c)
    } else {
        None
    };
    let summary = serde_json::json!({
        "model": cfg.model.name(), "dataset": dataset, "labels": if cfg.model.kind == Kind::Eu { 0 } else { n_labels },
        "epochs": trainer.epochs_done, "accuracy": last_eval.accuracy, "log_loss": last_eval.log_loss,
        "test_rec": last_eval.rec, "test_kl": last_eval.kl,
        "seconds": start.elapsed().as_secs_f64(), "train_seconds": train_seconds, "samples_per_s": samples as f64 / train_seconds.max(1e-9),
        "backend": backend, "adapter": adapter, "seed": cfg.seed, "alpha": cfg.model.alpha, "out": out,
        "evaluated_on": if validation.is_some() { "validation" } else { "test" },
        "anomaly_class": anomaly_class, "auc": auc, "auc_adjusted": adjusted.auc_adjusted,
        "auc_unmarked": adjusted.auc_unmarked, "auc_adjusted_unmarked": adjusted.auc_adjusted_unmarked,
        "labeled_classes": cfg.labeled_classes, "slots": cfg.model.classes,
        "cluster_accuracy": cluster.as_ref().map(|c| c.accuracy),
        "labeled_class_accuracy": cluster.as_ref().and_then(|c| c.labeled_class_accuracy),
        "unlabeled_class_accuracy": cluster.as_ref().and_then(|c| c.unlabeled_class_accuracy),
        "slot_class": cluster.as_ref().map(|c| c.slot_class.clone()),
        "cluster_labeled_slots_kept": cluster.as_ref().and_then(|c| c.labeled_slots_kept.clone()),
    });
    checkpoint::save_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// A saved run's configuration and its weights in a parameter store on `be`.
pub(crate) fn load_run<B: Backend>(be: &B, dir: &Path) -> Result<(RunConfig, ParamStore<B>)> {
    let run: RunConfig = checkpoint::load_json(&dir.join(CONFIG_FILE)).with_context(|| format!("--run {}", dir.display()))?;
    if !dir.join(checkpoint::MODEL_FILE).exists() {
        bail!(
            "--run {}: no {} in this folder (was training interrupted before the first epoch ended?)",
            dir.display(),
            checkpoint::MODEL_FILE
        );
    }
    let (graph, _) = build(&run.train.model, 1, 1)?;
    let store = ParamStore::new(be, &graph, 0)?;
    ssvae::train::load_into(be, &store, dir)?;
    Ok((run, store))
}

/// Parses one `--conv` layer, "channels:kernel:stride".
fn parse_conv(s: &str) -> Result<ConvLayer> {
    let v: Vec<usize> = s
        .split(':')
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--conv: '{s}' is not channels:kernel:stride (three whole numbers)"))?;
    match v[..] {
        [channels, kernel, stride] => Ok(ConvLayer { channels, kernel, stride }),
        _ => bail!("--conv: '{s}' is not channels:kernel:stride"),
    }
}
