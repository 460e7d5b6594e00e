//! What a run is asked to do ([`RunSpec`]) and what its folder records ([`RunConfig`], the
//! typed config.json).
//!
//! A `RunSpec` names the model by family and kind plus the settings the user overrode
//! ([`ModelChoice`]); the full [`ModelSpec`] depends on the data (input shape, classes), so it
//! is resolved once the data is loaded ([`RunSpec::resolve`]) and config.json keeps both: the
//! spec as asked and the [`TrainConfig`] as trained. Resuming uses the trained one; changes a
//! resume may make are [`ResumeChanges`].
//!
//! Versions: config.json written before the `run` module had no `version` and held the data
//! options beside `train`; [`RunConfig::load`] reads that layout too (version 1).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graph::exec::Optimizer;
use crate::model::{ConvLayer, DecoderInput, Family, Kind, Likelihood, LossNorm, ModelSpec, PiToDecoder};
use crate::train::{LabelSpec, LrSchedule, TrainConfig};

use super::data::{DataSpec, DatasetName, Loaded};
use super::feedback::FeedbackRecord;

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// config.json's layout version written by this build.
pub const FORMAT_VERSION: u32 = 2;

/// The optimizer by name; its learning rate is [`RunSpec::lr`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// The paper's: RMSprop with momentum 0.9.
    #[default]
    Rmsprop,
    Adam,
}

/// Which protocol fills in the settings a run leaves unset (README, "Recipes"). Every setting
/// given explicitly wins over both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// ssvae's defaults, chosen on validation splits (RESULTS.md, "Training levers"): the
    /// paper's model and optimizer plus [`RECIPE_ENTROPY_WEIGHT`] on SS models (no warm-up,
    /// constant learning rate) and their labeled share of a batch from
    /// [`recipe_labeled_share`] (a tenth with few labels, the paper's half with many).
    #[default]
    Default,
    /// The paper's protocol as the reproduction tables ran it: no entropy term.
    Paper,
}

impl Recipe {
    /// A config.json written before recipes existed was trained with the paper's settings.
    fn paper() -> Self {
        Recipe::Paper
    }
}

/// The default recipe's entropy weight on SS models (see [`ModelSpec::entropy_weight`]).
pub const RECIPE_ENTROPY_WEIGHT: f32 = 10.0;
/// The default recipe's entropy warm-up, a fraction of the run (see
/// [`TrainConfig::entropy_warmup`]): none. On MNIST (100 labels, validation split) a warm-up
/// over the first 30% took the entropy term's gain away (final accuracy 0.71 vs 0.80 without):
/// the clusters form in the first epoch.
pub const RECIPE_ENTROPY_WARMUP: f32 = 0.0;
/// The default recipe's KL warm-up (see [`TrainConfig::kl_warmup`]): none, the paper's.
pub const RECIPE_KL_WARMUP: f32 = 0.0;
/// The default recipe's smallest labeled share of an SS model's batch (see
/// [`TrainConfig::labeled_share`] and [`recipe_labeled_share`]): a tenth. With 100 labels the
/// paper's half replays each labeled sample ~500 times an epoch on MNIST and its cross-entropy
/// goes to zero early; a tenth let the unlabeled rows carry the batch (RESULTS.md, "The labeled
/// share").
pub const RECIPE_LABELED_SHARE: f64 = 0.1;
/// The labeled fraction of the training set from which the default recipe gives an SS model's
/// batches the paper's half instead of [`RECIPE_LABELED_SHARE`]: a tenth. With many labels a
/// tenth of the batch starves the classifier: UCI-HAR with 1000 labels (14% of the windows),
/// validation, 20 epochs: 0.905 with the half vs 0.790 with the fraction (0.136), every seed
/// (RESULTS.md, "The 1000-label column: UCI-HAR").
pub const RECIPE_HALF_SHARE_FRACTION: f64 = 0.1;

/// The labeled share the default recipe gives an SS model's batches of `batch` rows, when
/// `n_labeled` of the `n_train` training samples carry a label: [`RECIPE_LABELED_SHARE`] when
/// fewer than [`RECIPE_HALF_SHARE_FRACTION`] of them are labeled, else the paper's half; then
/// adjusted so that a batch has at least one labeled row and no more unlabeled rows than there
/// are training samples (a small table keeps its batch size). Returned as a share that
/// [`crate::data::labeled_rows`] maps back to those rows.
pub fn recipe_labeled_share(batch: usize, n_train: usize, n_labeled: usize) -> f64 {
    let half = crate::data::DEFAULT_LABELED_SHARE;
    if batch < 2 || n_train == 0 {
        return half; // refused later with its own message
    }
    let fraction = n_labeled as f64 / n_train as f64;
    let share = if fraction < RECIPE_HALF_SHARE_FRACTION { RECIPE_LABELED_SHARE } else { half };
    let rows = crate::data::labeled_rows(batch, share);
    let fitted = rows.max(1).max(batch.saturating_sub(n_train)).min(batch - 1);
    if fitted == rows {
        share
    } else {
        fitted as f64 / batch as f64
    }
}
/// The default recipe's variance floor of the Gaussian decoder of dense models of real-valued
/// data (tables; see [`ModelSpec::var_floor`]): 0.1, a standard deviation of at least about a
/// third of the feature's. With the legacy 1e-6 the decoder drives the variance of
/// near-constant and discrete-valued features (a pixel that is almost always 0) towards the
/// floor, and their 1/variance-weighted errors swamp the classifier: on validation splits (5
/// labels per class, 5 seeds) 784 pixel features as a table went from 0.476 to 0.602 (MNIST)
/// and 0.272 to 0.614 (Fashion-MNIST), wine and breast cancer unchanged within their spreads
/// (RESULTS.md, "The Gaussian decoder's variance floor"). SS models only: the plain VAE (EU),
/// an anomaly detector without a classifier, keeps the legacy floor (breast cancer, malignant
/// as the anomaly: AUC 0.657 with 0.1 vs 0.773 with 1e-6, every seed behind; the SS model's
/// AUC was level, 0.797 vs 0.799). The recurrent family keeps it too: on UCI-HAR 0.1 and 0.01
/// were level with it.
pub const RECIPE_VAR_FLOOR: f32 = 0.1;
/// The default recipe's hidden layers for dense models of tables of real values (one row a
/// sample; a CSV, TSV or NPY of features that are not all in [0, 1], so the decoder is
/// Gaussian): two of 256 units instead of the paper's 1024 (chosen for 784-pixel MNIST
/// images). On validation splits (5 labels per class, 5 seeds; RESULTS.md, "The width of dense
/// models of tables") SS_D on MNIST and Fashion-MNIST pixels as Gaussian tables of 1050 rows:
/// 0.602 -> 0.636 and 0.614 -> 0.649, of 7000 rows 0.650 -> 0.699 and 0.647 -> 0.662; breast
/// cancer 0.888 -> 0.910, wine level; ES_D likewise or level; anomaly AUCs level. A sixteenth
/// of the weights: a 30-feature table's run folder shrinks from ~51 MB to ~4 MB. Tables of
/// values in [0, 1] (the Bernoulli decoder) keep the paper's width (there 256 lost: MNIST
/// pixels 0.734 -> 0.713, Fashion 0.680 -> 0.644), as do image folders and series windows.
pub const RECIPE_TABLE_HIDDEN: [usize; 2] = [256, 256];
/// The default recipe's fewest steps of an epoch (see [`TrainConfig::min_epoch_steps`]) for
/// the same models of tables of real values as [`RECIPE_TABLE_HIDDEN`]: 100, so the default
/// 10 epochs are at least 1000 steps (one pass over a 900-row table is 8). On the validation
/// splits (5 labels per class, 5 seeds, with the 256 width; RESULTS.md, "The width of dense
/// models of tables") SS_D, while fewer than [`RECIPE_TABLE_FEW_LABELS_FRACTION`] of the
/// samples are labeled: MNIST pixels as a 1050-row Gaussian table 0.636 -> 0.687 and
/// Fashion-MNIST 0.649 -> 0.686 (ahead on every seed), breast cancer 0.910 -> 0.923, wine
/// 0.916 -> 0.937. At the paper's width and the legacy variance floor longer training had
/// collapsed the SS model on scikit-learn's digits (session 12); not with these. A table of
/// 12,800 rows or more is unchanged (one pass is 100 steps at batch 128).
pub const RECIPE_TABLE_MIN_EPOCH_STEPS: usize = 100;
/// The labeled fraction of the training set from which a table's epochs are one pass again
/// (see [`RECIPE_TABLE_MIN_EPOCH_STEPS`]): a quarter. With many labels the longer training
/// overfit them: validation splits, 5 seeds, SS_D with 100-step epochs vs one pass: wine with
/// 25 labels per class (86% labeled) 0.947 vs 0.958, breast cancer with 60 per class (43%)
/// 0.957 vs 0.970; with 5 per class (wine 17%, breast cancer 4%) it gained (above).
pub const RECIPE_TABLE_FEW_LABELS_FRACTION: f64 = 0.25;
/// The default recipe's label smoothing (see [`ModelSpec::label_smoothing`]): none, the paper's.
pub const RECIPE_LABEL_SMOOTHING: f32 = 0.0;
/// The default recipe's consistency weight on SS models of images (dense and CNN families) and
/// series windows (recurrent family) (see [`ModelSpec::consistency_weight`]).
pub const RECIPE_CONSISTENCY_WEIGHT: f32 = 10.0;
/// The consistency term's input noise when `--consistency-noise` is not given (see
/// [`ModelSpec::consistency_noise`]): 0.3, the input noise of the ladder networks on MNIST
/// (Rasmus et al. 2015), a third of a standard deviation on standardised data.
pub const DEFAULT_CONSISTENCY_NOISE: f32 = 0.3;
/// The default recipe's noise on images (pixels in [0, 1]): none, the shift alone (Fashion-MNIST,
/// validation split: 0.722 with the shift alone, 0.703 with noise 0.3 added).
pub const RECIPE_CONSISTENCY_NOISE_IMAGES: f32 = 0.0;
/// The default recipe's translation of images and series windows, as a fraction of their
/// length along the shifted axis (the smaller side of an image), when `--consistency-shift`
/// is not given (see [`ModelSpec::consistency_shift`]): 2 pixels of a 28 x 28 image, 8 steps of
/// a 128-step window.
pub const RECIPE_CONSISTENCY_SHIFT_FRACTION: f64 = 1.0 / 16.0;
/// The default recipe's amplitude scaling of series windows (see
/// [`ModelSpec::consistency_scale`]); images and tables get none.
pub const RECIPE_CONSISTENCY_SCALE_SERIES: f32 = 0.1;

/// The default recipe's translation for samples of `len` pixels or steps along the shifted
/// axis: [`RECIPE_CONSISTENCY_SHIFT_FRACTION`] of it, rounded, at least 1 (0 for `len` 1).
pub fn recipe_consistency_shift(len: usize) -> u32 {
    if len <= 1 {
        return 0;
    }
    ((len as f64 * RECIPE_CONSISTENCY_SHIFT_FRACTION).round() as u32).max(1)
}

/// The model as asked for: family and kind, and every setting the user chose (`None`: the
/// paper's default for that family, see [`ModelSpec`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelChoice {
    pub family: Family,
    pub kind: Kind,
    pub hidden: Option<Vec<usize>>,
    pub conv: Option<Vec<ConvLayer>>,
    pub dropout: Option<f32>,
    pub latent: Option<usize>,
    pub alpha: Option<f32>,
    pub kl_weight: Option<f32>,
    pub decoder_input: Option<DecoderInput>,
    pub loss_norm: Option<LossNorm>,
    /// Bound on |log-variance|; `Some(0.0)` disables it.
    pub logvar_limit: Option<f32>,
    /// RNN models: resident windows in f16.
    pub data_f16: bool,
    /// M2 / GM-DGM: classifier slots beyond the dataset's classes.
    pub extra_slots: Option<usize>,
    /// Dense models on real-valued data: the decoder's likelihood (`None`: chosen from the
    /// data, see [`RunSpec::likelihood_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<Likelihood>,
    /// SS models: weight of the entropy of pi on unlabeled rows (`None`: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_weight: Option<f32>,
    /// Models with a classifier: label smoothing of the cross-entropy's targets (`None`: the
    /// recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_smoothing: Option<f32>,
    /// SS models: the softmax pi, its straight-through one-hot or a Gumbel-softmax sample into the
    /// decoder (`None`: the paper's softmax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi_to_decoder: Option<PiToDecoder>,
    /// The temperature of `--pi-to-decoder gumbel` (`None`: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gumbel_temperature: Option<f32>,
    /// Models with a Gaussian decoder: its variance floor (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var_floor: Option<f32>,
    /// SS models: weight of pi's consistency under input noise (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_weight: Option<f32>,
    /// The consistency term's noise (`None`: [`DEFAULT_CONSISTENCY_NOISE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_noise: Option<f32>,
    /// The consistency term's translation in pixels / steps (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_shift: Option<u32>,
    /// The consistency term's amplitude scaling (`None`: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_scale: Option<f32>,
}

impl ModelChoice {
    pub fn new(family: Family, kind: Kind) -> Self {
        ModelChoice {
            family,
            kind,
            hidden: None,
            conv: None,
            dropout: None,
            latent: None,
            alpha: None,
            kl_weight: None,
            decoder_input: None,
            loss_norm: None,
            logvar_limit: None,
            data_f16: false,
            extra_slots: None,
            likelihood: None,
            entropy_weight: None,
            label_smoothing: None,
            pi_to_decoder: None,
            gumbel_temperature: None,
            var_floor: None,
            consistency_weight: None,
            consistency_noise: None,
            consistency_shift: None,
            consistency_scale: None,
        }
    }

    /// "ss-dense" and the like.
    pub fn name(&self) -> String {
        ModelSpec { family: self.family, kind: self.kind, ..ModelSpec::dense(self.kind, 1, 1) }.name()
    }

    /// Every setting of `m` made explicit (reading a version-1 config.json).
    fn from_spec(m: &ModelSpec) -> Self {
        ModelChoice {
            hidden: Some(m.hidden.clone()),
            conv: (m.family == Family::Cnn).then(|| m.conv.clone()),
            dropout: Some(m.dropout),
            latent: Some(m.latent),
            alpha: Some(m.alpha),
            kl_weight: Some(m.kl_weight),
            decoder_input: Some(m.decoder_input),
            loss_norm: Some(m.loss_norm),
            logvar_limit: Some(m.logvar_limit.unwrap_or(0.0)),
            data_f16: m.series_f16,
            entropy_weight: Some(m.entropy_weight),
            label_smoothing: Some(m.label_smoothing),
            pi_to_decoder: Some(m.pi_to_decoder),
            gumbel_temperature: (m.pi_to_decoder == PiToDecoder::Gumbel).then_some(m.gumbel_temperature),
            var_floor: m.has_gaussian_decoder().then_some(m.var_floor),
            consistency_weight: Some(m.consistency_weight),
            consistency_noise: (m.consistency_weight > 0.0).then_some(m.consistency_noise),
            consistency_shift: (m.consistency_weight > 0.0).then_some(m.consistency_shift),
            consistency_scale: (m.consistency_weight > 0.0).then_some(m.consistency_scale),
            ..ModelChoice::new(m.family, m.kind)
        }
    }
}

/// Everything a run is asked to do. `RunSpec::default()` is `ssvae train` without flags: SS_D
/// on the built-in synthetic glyphs, 100 labels, 10 epochs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSpec {
    pub data: DataSpec,
    pub model: ModelChoice,
    /// Labeled training samples (class-balanced count, fraction, or all); `None`:
    /// [`DEFAULT_LABELS`].
    pub labels: Option<LabelSpec>,
    /// Semi-unsupervised mode: only these classes keep labels.
    pub labeled_classes: Option<Vec<usize>>,
    /// Passes over the training set (with a resume: additional passes).
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub optimizer: OptimizerKind,
    /// Learning rate (`None`: 5e-4 for dense and CNN models, 1e-3 for RNN ones).
    pub lr: Option<f32>,
    /// Read the loss back (and check for divergence) every N steps.
    pub metrics_every: usize,
    /// Draws of z per anomaly score.
    pub score_samples: usize,
    /// Model selection: hold out this many labeled samples of each class as a validation set;
    /// the epoch with the best validation accuracy (then log loss) is kept as the run's model
    /// (best.safetensors) and reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_labels: Option<usize>,
    /// With `validation_labels`: stop after this many epochs without a better validation score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Weight averaging: the run's model (best.safetensors) is the mean of the weights at the
    /// end of the last `ceil(F x epochs)` epochs (`None`: the last epoch's weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_weights: Option<f64>,
    /// How the learning rate moves over the run (`None`: the recipe's: a cooldown over the
    /// last fifth under the default recipe, constant under the paper's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_schedule: Option<LrSchedule>,
    /// SS models with an entropy term: the fraction of the run over which its weight rises
    /// from 0 (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_warmup: Option<f32>,
    /// Models with a Gaussian KL term: the fraction of the run over which its weight rises
    /// from 0 (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_warmup: Option<f32>,
    /// Semi-supervised models: the share of each batch's rows drawn from the labeled set
    /// (`None`: the recipe's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeled_share: Option<f64>,
    /// The fewest steps of an epoch (see [`TrainConfig::min_epoch_steps`]; `None`: 0, one pass
    /// over the training set, in both recipes: RESULTS.md, "Small training sets").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_epoch_steps: Option<usize>,
    /// Which protocol fills in the settings left unset.
    #[serde(default = "Recipe::paper")]
    pub recipe: Recipe,
    /// The run folder (`None`: runs/<model>-<dataset>-<labels>-s<seed>, first free suffix).
    #[serde(skip)]
    pub out: Option<PathBuf>,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            data: DataSpec::default(),
            model: ModelChoice::new(Family::Dense, Kind::Ss),
            labels: None,
            labeled_classes: None,
            epochs: 10,
            batch_size: 128,
            seed: 0,
            optimizer: OptimizerKind::Rmsprop,
            lr: None,
            metrics_every: 50,
            score_samples: crate::eval::DEFAULT_SCORE_SAMPLES,
            validation_labels: None,
            patience: None,
            average_weights: None,
            lr_schedule: None,
            entropy_warmup: None,
            kl_warmup: None,
            min_epoch_steps: None,
            labeled_share: None,
            recipe: Recipe::Default,
            out: None,
        }
    }
}

/// The default labeled count of a new run.
pub const DEFAULT_LABELS: LabelSpec = LabelSpec::Count(100);

impl RunSpec {
    /// A default spec for this model on this dataset.
    pub fn new(family: Family, kind: Kind, dataset: DatasetName) -> Self {
        RunSpec { data: DataSpec { dataset, ..DataSpec::default() }, model: ModelChoice::new(family, kind), ..RunSpec::default() }
    }

    /// The labels asked for; by default [`DEFAULT_LABELS`] of a built-in dataset, and every
    /// label that users' data brings.
    pub fn labels_or_default(&self) -> LabelSpec {
        self.labels.unwrap_or(if self.data.dataset.is_users() { LabelSpec::All } else { DEFAULT_LABELS })
    }

    /// The dense decoder's likelihood for real-valued `split` (a table): as asked, else
    /// Bernoulli when every training value is in [0, 1] (no standardisation then), else
    /// Gaussian.
    pub fn likelihood_for(&self, split: &Loaded) -> Likelihood {
        if let Some(l) = self.model.likelihood {
            return l;
        }
        match split {
            Loaded::Series(s) if s.train.steps == 1 && s.train.values.iter().all(|v| (0.0..=1.0).contains(v)) => Likelihood::Bernoulli,
            Loaded::Series(_) => Likelihood::Gaussian,
            Loaded::Images(_) => Likelihood::Bernoulli,
        }
    }

    /// Checks every number of the spec against its range (before any data is read).
    pub fn validate(&self) -> Result<()> {
        if self.patience.is_some() && self.validation_labels.is_none() {
            invalid!("--patience needs --validation-labels N (the held-out labeled samples it watches)");
        }
        if self.patience == Some(0) {
            invalid!("--patience must be at least 1");
        }
        if let Some(f) = self.average_weights {
            if !(f > 0.0 && f <= 1.0) {
                invalid!("--average-weights {f}: must be a fraction of the epochs in (0, 1]");
            }
            if self.validation_labels.is_some() {
                invalid!("--average-weights and --validation-labels both choose the run's model (an average of epochs, or the best epoch); give one");
            }
        }
        check_settings(self.lr, self.model.alpha, self.epochs, self.metrics_every, self.score_samples)?;
        let m = &self.model;
        if let Some(w) = m.kl_weight.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            invalid!("--kl-weight must be a finite number >= 0 (got {w})");
        }
        if let Some(w) = m.entropy_weight.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            invalid!("--entropy-weight must be a finite number >= 0 (got {w})");
        }
        if let Some(f) = self.entropy_warmup.filter(|f| !(f.is_finite() && (0.0..=1.0).contains(f))) {
            invalid!("--entropy-warmup must be a fraction of the run in [0, 1] (got {f})");
        }
        if let Some(f) = self.kl_warmup.filter(|f| !(f.is_finite() && (0.0..=1.0).contains(f))) {
            invalid!("--kl-warmup must be a fraction of the run in [0, 1] (got {f})");
        }
        if let Some(r) = self.labeled_share.filter(|r| !(r.is_finite() && *r > 0.0 && *r < 1.0)) {
            invalid!("--labeled-share must be in (0, 1) (got {r})");
        }
        if let Some(w) = m.consistency_weight.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            invalid!("--consistency-weight must be a finite number >= 0 (got {w})");
        }
        if let Some(s) = m.consistency_noise.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            invalid!("--consistency-noise must be a finite standard deviation >= 0 (got {s})");
        }
        if let Some(s) = m.consistency_scale.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            invalid!("--consistency-scale must be a finite standard deviation >= 0 (got {s})");
        }
        if let Some(e) = m.label_smoothing.filter(|e| !(e.is_finite() && (0.0..1.0).contains(e))) {
            invalid!("--label-smoothing must be in [0, 1) (got {e})");
        }
        if let Some(f) = m.var_floor.filter(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0)) {
            invalid!("--var-floor must be in (0, 1], a variance in the data's standardised units (got {f})");
        }
        if let Some(d) = m.dropout.filter(|d| !(*d >= 0.0 && *d < 1.0)) {
            invalid!("--dropout must be in [0, 1) (got {d})");
        }
        if let Some(l) = m.logvar_limit.filter(|l| !(l.is_finite() && *l >= 0.0)) {
            invalid!("--logvar-limit must be a finite number >= 0, 0 to disable it (got {l})");
        }
        if self.batch_size == 0 {
            invalid!("--batch-size must be at least 1");
        }
        let (n_train, n_test) = self.data.synthetic;
        if matches!(self.data.dataset, DatasetName::Synthetic | DatasetName::SyntheticSensor) {
            if n_train == 0 || n_test == 0 {
                invalid!("--synthetic-train and --synthetic-test must be at least 1 (got {n_train} and {n_test})");
            }
            // glyphs: 784 bytes a sample; sensor windows: 128 steps x 3 channels of f32 (and
            // once more while standardised)
            let per = if self.data.dataset == DatasetName::Synthetic { 784.0 } else { 2.0 * 128.0 * 3.0 * 4.0 };
            super::memory::check_fits(
                (n_train as f64 + n_test as f64) * per,
                &format!("the built-in {} dataset of {n_train} + {n_test} samples", self.data.dataset),
                "use smaller --synthetic-train / --synthetic-test",
            )?;
        }
        Ok(())
    }

    /// The model and training configuration for `split` (the loaded data decides the input
    /// shape and class count). Every flag that does not apply to the model is an error naming it.
    pub fn resolve(&self, split: &Loaded) -> Result<TrainConfig> {
        let m = &self.model;
        let (family, kind, name, dataset) = (m.family, m.kind, m.name(), self.data.dataset);
        let mut spec = match (family, split) {
            (Family::Dense, Loaded::Images(s)) => ModelSpec::dense(kind, s.train.dim(), s.train.classes),
            (Family::Cnn, Loaded::Images(s)) => ModelSpec::cnn(kind, [s.train.height, s.train.width, s.train.channels], s.train.classes),
            (Family::Rnn, Loaded::Series(s)) => ModelSpec::rnn(kind, s.train.steps, s.train.channels, s.train.classes),
            // a table (one step per row) or flattened sensor windows: f32 features
            (Family::Dense, Loaded::Series(s)) if !spec_sums(kind) => {
                let mut d = ModelSpec::dense(kind, s.train.dim(), s.train.classes);
                d.real_input = true;
                d.likelihood = self.likelihood_for(split);
                d
            }
            (Family::Rnn, Loaded::Images(_)) => invalid!(
                "--model {name}: a recurrent model takes time series, but --dataset {dataset} holds {}; use --dataset uci-har, synthetic-sensor or csv, or a dense/cnn model",
                split.train().describe()
            ),
            (_, Loaded::Series(_)) => invalid!(
                "--model {name}: {} takes images, but --dataset {dataset} holds {}; use a dense model (ss-dense, es-dense, eu-dense) or a recurrent one (ss-rnn, es-rnn, eu-rnn)",
                if spec_sums(kind) { "M2 / GM-DGM" } else { "a CNN" },
                split.train().describe()
            ),
        };
        if let Some(c) = &m.conv {
            if family != Family::Cnn {
                invalid!("--conv applies to the CNN models (ss-cnn, es-cnn, eu-cnn), not {name}");
            }
            spec.conv = c.clone();
        }
        if let Some(d) = m.dropout {
            spec.dropout = d;
        }
        // a table of real values (the Gaussian decoder; the ES and EU models of it too) gets the
        // default recipe's width and epoch length; a table of values in [0, 1] (the Bernoulli
        // decoder) did better with the paper's width
        let real_table = self.recipe == Recipe::Default
            && family == Family::Dense
            && spec.likelihood == Likelihood::Gaussian
            && matches!(split, Loaded::Series(s) if s.train.steps == 1);
        match &m.hidden {
            Some(h) => spec.hidden = h.clone(),
            None if real_table => spec.hidden = RECIPE_TABLE_HIDDEN.to_vec(),
            None => {}
        }
        if let Some(l) = m.latent {
            spec.latent = l;
        }
        if let Some(a) = m.alpha {
            spec.alpha = a;
        }
        if let Some(w) = m.kl_weight {
            spec.kl_weight = w;
        }
        match m.entropy_weight {
            Some(w) => spec.entropy_weight = w,
            None if self.recipe == Recipe::Default && kind == Kind::Ss && !spec.has_factor_heads() => {
                spec.entropy_weight = RECIPE_ENTROPY_WEIGHT
            }
            None => {}
        }
        spec.label_smoothing = m.label_smoothing.unwrap_or(match self.recipe {
            Recipe::Default => RECIPE_LABEL_SMOOTHING,
            Recipe::Paper => 0.0,
        });
        if let Some(d) = m.decoder_input {
            spec.decoder_input = d;
        }
        if let Some(p) = m.pi_to_decoder {
            spec.pi_to_decoder = p;
        }
        if let Some(t) = m.gumbel_temperature {
            spec.gumbel_temperature = t;
        }
        match m.var_floor {
            Some(_) if !spec.has_gaussian_decoder() => invalid!(
                "--var-floor sets the variance floor of a Gaussian decoder (recurrent models, dense models of tables); {name} on {} has {}",
                split.train().describe(),
                if spec.has_decoder() { "a Bernoulli decoder" } else { "no decoder" }
            ),
            Some(f) => spec.var_floor = f,
            None if self.recipe == Recipe::Default && spec.family == Family::Dense && kind == Kind::Ss && spec.has_gaussian_decoder() => {
                spec.var_floor = RECIPE_VAR_FLOOR
            }
            None => {}
        }
        // the default recipe's consistency: SS models of images (dense and CNN) and series
        // windows (recurrent), where it was measured; not tables (no gain measured)
        let perturbable = match (spec.family, split) {
            (Family::Dense | Family::Cnn, Loaded::Images(_)) => true,
            (Family::Rnn, Loaded::Series(s)) => s.train.steps > 1,
            _ => false,
        };
        spec.consistency_weight = m.consistency_weight.unwrap_or(match self.recipe {
            Recipe::Default if kind == Kind::Ss && !spec.has_factor_heads() && perturbable => RECIPE_CONSISTENCY_WEIGHT,
            _ => 0.0,
        });
        for (given, flag) in [
            (m.consistency_noise.is_some(), "--consistency-noise"),
            (m.consistency_shift.is_some(), "--consistency-shift"),
            (m.consistency_scale.is_some(), "--consistency-scale"),
        ] {
            if given && spec.consistency_weight == 0.0 {
                invalid!("{flag} sets the consistency term's perturbation: give --consistency-weight W > 0 with it");
            }
        }
        if spec.consistency_weight > 0.0 {
            spec.consistency_noise = m.consistency_noise.unwrap_or(match (self.recipe, split) {
                (Recipe::Default, Loaded::Images(_)) => RECIPE_CONSISTENCY_NOISE_IMAGES,
                _ => DEFAULT_CONSISTENCY_NOISE,
            });
            let series = matches!(split, Loaded::Series(s) if s.train.steps > 1);
            spec.consistency_scale = m.consistency_scale.unwrap_or(match self.recipe {
                Recipe::Default if series => RECIPE_CONSISTENCY_SCALE_SERIES,
                _ => 0.0,
            });
            spec.consistency_shift = m.consistency_shift.unwrap_or(match (self.recipe, split) {
                (Recipe::Default, Loaded::Images(s)) => recipe_consistency_shift(s.train.height.min(s.train.width)),
                (Recipe::Default, Loaded::Series(s)) => recipe_consistency_shift(s.train.steps),
                _ => 0,
            });
            if spec.consistency_shift > 0 {
                spec.consistency_shape = match split {
                    Loaded::Images(s) => Some([s.train.height, s.train.width, s.train.channels]),
                    Loaded::Series(s) if s.train.steps > 1 => Some([s.train.steps, 1, s.train.channels]),
                    Loaded::Series(_) => invalid!(
                        "--consistency-shift moves images or series windows; {} has rows of features with no axis to shift along",
                        split.train().describe()
                    ),
                };
            }
        }
        let extra = m.extra_slots.unwrap_or(0);
        if extra > 0 && !spec.sums_over_classes() {
            invalid!("--extra-slots applies to the M2 and GM-DGM models (m2-dense, m2-cnn, gmdgm-dense, gmdgm-cnn), not {name}");
        }
        if spec.sums_over_classes() && (extra > 0 || self.labeled_classes.is_some()) {
            let classes = split.train().classes();
            let all: Vec<usize> = (0..classes).collect();
            spec.class_prior = crate::model::semi_unsupervised_prior(classes, self.labeled_classes.as_deref().unwrap_or(&all), extra)?;
            spec.classes = classes + extra;
        }
        if let Some(l) = m.logvar_limit {
            spec.logvar_limit = if l == 0.0 { None } else { Some(l) };
        }
        if m.data_f16 {
            if family != Family::Rnn {
                invalid!(
                    "--data-f16 applies to the recurrent models (their windows are f32 on the device); {name} stores images at one byte per pixel already"
                );
            }
            spec.series_f16 = true;
        }
        if let Some(n) = m.loss_norm {
            spec.loss_norm = n;
        }
        if let Some(l) = m.likelihood {
            if family != Family::Dense || spec.sums_over_classes() {
                invalid!("--likelihood applies to the dense models ss-dense, es-dense and eu-dense, not {name}");
            }
            spec.likelihood = l;
        }
        let mut c = TrainConfig::new(spec, dataset.as_str());
        c.batch_size = self.batch_size;
        c.seed = self.seed;
        c.epochs = self.epochs;
        c.metrics_every = self.metrics_every;
        c.labeled_classes = self.labeled_classes.clone();
        c.labels = self.labels_or_default();
        c.min_epoch_steps = self.min_epoch_steps.unwrap_or(if real_table { RECIPE_TABLE_MIN_EPOCH_STEPS } else { 0 });
        // the default recipe cools the rate down over the last fifth of the run: the last
        // weights are settled instead of one draw of the constant rate's epoch-to-epoch swing,
        // and the run trains at full rate as long as with the constant (a cosine over the whole
        // run halved the effective rate of short runs and cost UCI-HAR 2 points; RESULTS.md,
        // "The cooldown"); the paper's protocol keeps its constant rate
        c.lr_schedule = self.lr_schedule.unwrap_or(match self.recipe {
            Recipe::Default => LrSchedule::Cooldown,
            Recipe::Paper => LrSchedule::Constant,
        });
        c.entropy_warmup = self.entropy_warmup.unwrap_or(match self.recipe {
            Recipe::Default => RECIPE_ENTROPY_WARMUP,
            Recipe::Paper => 0.0,
        });
        c.kl_warmup = self.kl_warmup.unwrap_or(match self.recipe {
            Recipe::Default => RECIPE_KL_WARMUP,
            Recipe::Paper => 0.0,
        });
        // the default recipe's share depends on how many samples carry labels: it is set by
        // `resolve_labeled_share` once they are chosen; until then, the paper's half
        c.labeled_share = self.labeled_share.unwrap_or(crate::data::DEFAULT_LABELED_SHARE);
        // flags that do not apply to the model (or batch) are named before anything else is checked
        c.validate_settings()?;
        let lr = self.lr.unwrap_or(if family == Family::Rnn { 1e-3 } else { 5e-4 });
        c.optimizer = match self.optimizer {
            OptimizerKind::Rmsprop => Optimizer::rmsprop(lr),
            OptimizerKind::Adam => Optimizer::adam(lr),
        };
        Ok(c)
    }
}

impl RunSpec {
    /// The labeled share of `cfg` (resolved from this spec) once `n_labeled` of the `n_train`
    /// training samples are known to carry labels: the default recipe's SS models get
    /// [`recipe_labeled_share`] unless `--labeled-share` was given (not the multi-factor heads,
    /// which keep the paper's half, as they keep no entropy term); every other case keeps
    /// what [`RunSpec::resolve`] set.
    /// Likewise the default recipe's epoch length of tables ([`RECIPE_TABLE_MIN_EPOCH_STEPS`]) is
    /// for few labels: from [`RECIPE_TABLE_FEW_LABELS_FRACTION`] of the samples labeled on, one
    /// pass an epoch.
    pub fn resolve_labeled_share(&self, cfg: &mut TrainConfig, n_train: usize, n_labeled: usize) -> Result<()> {
        if self.min_epoch_steps.is_none() && n_labeled as f64 >= RECIPE_TABLE_FEW_LABELS_FRACTION * n_train as f64 {
            cfg.min_epoch_steps = 0;
        }
        if self.labeled_share.is_none() && self.recipe == Recipe::Default && cfg.model.kind == Kind::Ss && !cfg.model.has_factor_heads() {
            cfg.labeled_share = recipe_labeled_share(cfg.batch_size, n_train, n_labeled);
            cfg.validate_settings()?;
        }
        Ok(())
    }
}

fn spec_sums(kind: Kind) -> bool {
    matches!(kind, Kind::M2 | Kind::Gmdgm)
}

/// The learning rate of `o`.
pub fn optimizer_lr(o: &Optimizer) -> f32 {
    match *o {
        Optimizer::RmsProp { lr, .. } | Optimizer::Adam { lr, .. } => lr,
    }
}

/// The settings a new run and a resume share, checked against their ranges.
fn check_settings(lr: Option<f32>, alpha: Option<f32>, epochs: usize, metrics_every: usize, score_samples: usize) -> Result<()> {
    if let Some(lr) = lr.filter(|l| !(l.is_finite() && *l > 0.0)) {
        invalid!("--lr must be a positive finite number (got {lr})");
    }
    if let Some(a) = alpha.filter(|a| !(a.is_finite() && *a >= 0.0)) {
        invalid!("--alpha must be a finite number >= 0 (got {a})");
    }
    if epochs == 0 {
        invalid!("--epochs must be at least 1");
    }
    if metrics_every == 0 {
        invalid!("--metrics-every must be at least 1");
    }
    if score_samples == 0 {
        invalid!("--score-samples must be at least 1");
    }
    Ok(())
}

/// What a resumed run may change (everything else is the saved run's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResumeChanges {
    /// Additional passes (default 10).
    pub epochs: Option<usize>,
    pub labels: Option<LabelSpec>,
    pub lr: Option<f32>,
    pub alpha: Option<f32>,
    pub score_samples: Option<usize>,
    /// Read the loss back every N steps.
    pub metrics_every: Option<usize>,
    /// The folder to continue in (default: the resumed one).
    pub out: Option<PathBuf>,
}

impl ResumeChanges {
    /// Checks every number given against its range.
    pub fn validate(&self) -> Result<()> {
        check_settings(self.lr, self.alpha, self.epochs.unwrap_or(1), self.metrics_every.unwrap_or(1), self.score_samples.unwrap_or(1))
    }
}

/// A run folder's config.json: the spec as asked, the configuration as trained, and where
/// training stands.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub version: u32,
    pub spec: RunSpec,
    /// The resolved model and training settings (what `--resume` and [`super::Run::open`] use).
    pub train: TrainConfig,
    /// Labeled training samples of the dataset used (feedback samples not counted).
    pub labels_used: usize,
    pub epochs_done: usize,
    pub steps_done: u64,
    /// Per-channel means then standard deviations of the training windows (series runs).
    pub standardizer: Option<Vec<f32>>,
    /// Image runs: the training images' height, width and channels (what new samples to
    /// score must have; a dense model alone knows only their product).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<[usize; 3]>,
    /// Anomaly feedback (false positives / negatives as extra classes), see [`super::feedback`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackRecord>,
    /// The class names, by class index (what logs, grids and predictions show).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
    /// Tables and series: the feature (channel) names the model takes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_names: Vec<String>,
    /// Runs with model selection: where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// Runs with weight averaging: how many epochs best.safetensors averages so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<Average>,
}

/// Weight averaging's record in config.json: the first epoch the rule averages (for this
/// run's total of epochs) and how many epoch-end weights the stored mean holds; they are the
/// last `epochs` epochs done.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Average {
    pub from_epoch: usize,
    pub epochs: usize,
}

/// Model selection's record in config.json: the validation set's size and the epoch chosen.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// Labeled samples held out for validation.
    pub validation_samples: usize,
    pub best_epoch: usize,
    pub best_accuracy: f64,
    pub best_log_loss: f64,
}

/// config.json before version 2 (no `version`, data options beside `train`).
#[derive(serde::Deserialize)]
struct ConfigV1 {
    train: TrainConfig,
    labels_used: usize,
    epochs_done: usize,
    steps_done: u64,
    max_train: Option<usize>,
    #[serde(default)]
    validation: Option<usize>,
    synthetic: (usize, usize),
    data_dir: Option<PathBuf>,
    #[serde(default)]
    anomaly_class: Option<usize>,
    #[serde(default)]
    series: super::data::SeriesOptions,
    #[serde(default)]
    standardizer: Option<Vec<f32>>,
    #[serde(default)]
    feedback: Option<FeedbackRecord>,
}

impl ConfigV1 {
    fn upgrade(self) -> Result<RunConfig> {
        let t = &self.train;
        let spec = RunSpec {
            data: DataSpec {
                dataset: DatasetName::parse(&t.dataset)?,
                data_dir: self.data_dir,
                synthetic: self.synthetic,
                series: self.series,
                max_train: self.max_train,
                validation: self.validation,
                anomaly_class: self.anomaly_class,
                ..DataSpec::default()
            },
            model: ModelChoice::from_spec(&t.model),
            labels: Some(t.labels),
            labeled_classes: t.labeled_classes.clone(),
            epochs: t.epochs,
            batch_size: t.batch_size,
            seed: t.seed,
            optimizer: match t.optimizer {
                Optimizer::RmsProp { .. } => OptimizerKind::Rmsprop,
                Optimizer::Adam { .. } => OptimizerKind::Adam,
            },
            lr: Some(optimizer_lr(&t.optimizer)),
            metrics_every: t.metrics_every,
            ..RunSpec::default()
        };
        Ok(RunConfig {
            version: FORMAT_VERSION,
            spec,
            train: self.train,
            labels_used: self.labels_used,
            epochs_done: self.epochs_done,
            steps_done: self.steps_done,
            standardizer: self.standardizer,
            image_shape: None, // legacy runs: the CNN's input shape still applies
            feedback: self.feedback,
            class_names: Vec::new(),
            feature_names: Vec::new(),
            selection: None,
            average: None,
        })
    }
}

impl RunConfig {
    /// Reads a config.json file (either layout version).
    pub(crate) fn load_file(path: &Path) -> Result<RunConfig> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), msg: format!("cannot read: {e}") })?;
        Self::from_json(path, &bytes)
    }

    /// Parses config.json's bytes (`path` names them in errors): version 2, or the layout
    /// before it (no `version`).
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<RunConfig> {
        let bad = |e: serde_json::Error| Error::Io { path: path.to_path_buf(), msg: format!("invalid run configuration: {e}") };
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(bad)?;
        match v.get("version").and_then(|x| x.as_u64()) {
            None => serde_json::from_value::<ConfigV1>(v).map_err(bad)?.upgrade(),
            Some(n) if n == FORMAT_VERSION as u64 => serde_json::from_value(v).map_err(bad),
            Some(n) => Err(Error::Io {
                path: path.to_path_buf(),
                msg: format!("config.json version {n} is newer than this ssvae understands ({FORMAT_VERSION}); update ssvae"),
            }),
        }
    }

    /// The run's dataset with its own test split (series standardised with the stored
    /// statistics), or `dataset` read the same way. `--validation` is not applied: this is the
    /// test split even for a run that was evaluated on a validation hold-out (see
    /// [`RunConfig::load_run_splits`]).
    pub fn load_data(&self, dataset: Option<DatasetName>, data_dir: Option<&Path>) -> Result<Loaded> {
        let d = &self.spec.data;
        let mut l = d.load_named(dataset.unwrap_or(d.dataset), data_dir.or(d.data_dir.as_deref()), self.spec.seed)?;
        self.standardize_loaded(&mut l)?;
        Ok(l)
    }

    /// The splits the run trained and was evaluated on: `--max-train` and `--validation`
    /// applied (a run trained with `--validation N` was evaluated on that hold-out, which is
    /// then the test split here), series standardised with the stored statistics.
    /// `data_dir` overrides where the dataset's files are.
    pub fn load_run_splits(&self, data_dir: Option<&Path>) -> Result<Loaded> {
        let d = &self.spec.data;
        let mut l = d.load_named(d.dataset, data_dir.or(d.data_dir.as_deref()), self.spec.seed)?;
        d.apply_subsets(&mut l)?;
        self.standardize_loaded(&mut l)?;
        Ok(l)
    }

    fn standardize_loaded(&self, l: &mut Loaded) -> Result<()> {
        if let (Loaded::Series(s), Some(st)) = (l, self.standardizer.as_deref()) {
            super::data::standardize(s, Some(st), self.spec.data.series.scaling)?;
        }
        Ok(())
    }
}
