//! Training and evaluation of a model on a resident dataset.
//!
//! One `Trainer` owns the parameters (a [`ParamStore`]), the compiled training step and an
//! evaluator for the test split, all on one backend. A step writes the batch's indices,
//! labels and RNG counter (a few hundred bytes), then runs the whole compiled step as one
//! submission. Losses accumulate on the device and are read back every `metrics_every` steps,
//! which is also when divergence (a non-finite loss) is detected. Image and series data go
//! through the same code via [`TrainData`].

pub mod checkpoint;
mod data;
mod evaluate;
pub mod factors;
pub mod migrate;
pub mod semi;
pub mod stream;

pub use crate::data::{RowKind, RowSource, ShardRows};
pub use data::{pack_f16, TrainData};
pub use evaluate::{argmax_rows, write_unlabeled, EvalReport, Evaluator};

use std::path::Path;
use std::sync::Arc;

use crate::backend::Backend;
use crate::data::{BatchMode, Batcher, Dataset, DEFAULT_LABELED_SHARE};
use crate::error::{Error, Result};
use crate::graph::exec::{compile, CompileOptions, Optimizer, ParamStore, Program};
use crate::graph::LossKind;
use crate::model::{build, Handles, Kind, ModelSpec};

/// How many training labels to use.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelSpec {
    Count(usize),
    Fraction(f64),
    All,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub model: ModelSpec,
    pub dataset: String,
    pub labels: LabelSpec,
    /// Passes over the training set (see `data::Batcher` for what a pass means per kind).
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub optimizer: Optimizer,
    /// Read the accumulated losses back every this many steps.
    pub metrics_every: usize,
    pub eval_batch: usize,
    /// Semi-unsupervised mode: only these classes keep labels (see `semi`); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeled_classes: Option<Vec<usize>>,
    /// How the learning rate moves over the `epochs` (see [`LrSchedule`]).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// SS models with an entropy term: its weight rises linearly from 0 to
    /// `ModelSpec::entropy_weight` over this fraction of the planned steps (0: full weight from
    /// the first step). Early on pi is the nearly random guess of an untrained head, and
    /// sharpening it then locks in wrong clusters (seen on small data: RESULTS.md).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entropy_warmup: f32,
    /// Models with a Gaussian KL term (SS, EU): its weight rises linearly from 0 to
    /// `ModelSpec::kl_weight` over this fraction of the planned steps (0: full weight from the
    /// first step; Bowman et al. 2016's KL annealing): early on the reconstruction shapes z
    /// before the prior pulls it in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kl_warmup: f32,
    /// Semi-supervised batches (SS, M2, GM-DGM): the share of each batch's rows drawn from the
    /// labeled set (see [`crate::data::labeled_rows`]); the paper's 1:1 is 0.5.
    #[serde(default = "default_labeled_share", skip_serializing_if = "is_default_labeled_share")]
    pub labeled_share: f64,
    /// The fewest steps of an epoch: an epoch is one pass over the training set or this many
    /// steps, whichever is more (a small training set is passed over several times an epoch;
    /// 0: one pass, the paper's).
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub min_epoch_steps: usize,
}

fn is_zero_usize(x: &usize) -> bool {
    *x == 0
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

fn default_labeled_share() -> f64 {
    DEFAULT_LABELED_SHARE
}

fn is_default_labeled_share(x: &f64) -> bool {
    *x == DEFAULT_LABELED_SHARE
}

/// Steps of a warm-up (entropy, KL): the weight changes in this many increments.
const WARMUP_LEVELS: u32 = 32;

/// The level (0..=[`WARMUP_LEVELS`]) of a warm-up over `fraction` of `total` steps at 1-based
/// step `step`: level k weighs the term k / WARMUP_LEVELS of its full weight.
fn warmup_level(fraction: f32, step: u64, total: u64) -> u32 {
    let ramp = (fraction as f64 * total as f64).max(1.0);
    (((step as f64 / ramp) * WARMUP_LEVELS as f64).floor() as u32).min(WARMUP_LEVELS)
}

/// The learning rate over a run of `total` steps: constant (the paper's), or a cosine from the
/// optimizer's rate down to 1/20 of it at the last step (Loshchilov and Hutter 2017, without
/// restarts): late epochs take small steps, so the last weights move less from epoch to epoch.
/// Or a cooldown: the constant rate for the first 80% of the steps, then a half cosine down to
/// the same floor over the last [`COOLDOWN_FRACTION`] (the "warmup-stable-decay" shape of Hägele
/// et al. 2024 without the warm-up): the run trains at full rate as long as the constant does,
/// and the last weights are settled instead of one draw of the constant rate's noise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    Cosine,
    Cooldown,
}

/// The share of a run's steps over which [`LrSchedule::Cooldown`] lowers the rate.
pub const COOLDOWN_FRACTION: f64 = 0.2;

impl LrSchedule {
    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// The factor on the base rate at 1-based step `t` of `total`.
    pub fn factor(&self, t: u64, total: u64) -> f32 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let p = ((t.saturating_sub(1)) as f64 / (total.max(2) - 1) as f64).min(1.0);
                half_cosine(p)
            }
            LrSchedule::Cooldown => {
                // progress p in [0, 1] over the run; the decay covers p in [1 - COOLDOWN, 1]
                let p = ((t.saturating_sub(1)) as f64 / (total.max(2) - 1) as f64).min(1.0);
                half_cosine(((p - (1.0 - COOLDOWN_FRACTION)) / COOLDOWN_FRACTION).max(0.0))
            }
        }
    }
}

/// 1 at q = 0 down to the schedules' floor (1/20) at q = 1 along a half cosine.
fn half_cosine(q: f64) -> f32 {
    const FLOOR: f64 = 0.05;
    (FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + (std::f64::consts::PI * q).cos())) as f32
}

impl TrainConfig {
    /// The paper's settings for `model`: RMSprop(momentum 0.9, lr 5e-4), batch 128
    /// (64 labeled + 64 unlabeled for SS), 10 epochs.
    pub fn new(model: ModelSpec, dataset: &str) -> Self {
        TrainConfig {
            model,
            dataset: dataset.into(),
            labels: LabelSpec::Count(100),
            epochs: 10,
            batch_size: 128,
            seed: 0,
            optimizer: Optimizer::rmsprop(5e-4),
            metrics_every: 50,
            eval_batch: 500,
            labeled_classes: None,
            lr_schedule: LrSchedule::Constant,
            entropy_warmup: 0.0,
            kl_warmup: 0.0,
            labeled_share: DEFAULT_LABELED_SHARE,
            min_epoch_steps: 0,
        }
    }

    /// Whether the model trains on semi-supervised batches (labeled and unlabeled rows).
    pub fn semi_supervised(&self) -> bool {
        matches!(self.model.kind, Kind::Ss | Kind::M2 | Kind::Gmdgm)
    }

    pub fn validate(&self, n_train: usize) -> Result<()> {
        self.model.validate()?;
        if self.batch_size == 0 {
            return Err(Error::Invalid("--batch-size must be at least 1".into()));
        }
        if matches!(self.model.kind, Kind::Ss | Kind::M2 | Kind::Gmdgm) && self.batch_size < 2 {
            return Err(Error::Invalid(
                "--batch-size must be at least 2 for SS, M2 and GM-DGM models (half labeled, half unlabeled)".into(),
            ));
        }
        if self.eval_batch == 0 || self.metrics_every == 0 {
            return Err(Error::Invalid("eval batch and metrics interval must be at least 1".into()));
        }
        self.validate_settings()?;
        if let LabelSpec::Count(n) = self.labels {
            if n > n_train {
                return Err(Error::Invalid(format!("--labels {n} exceeds the {n_train} training samples")));
            }
        }
        Ok(())
    }

    /// The training levers (warm-ups, the labeled share) against their ranges and the model.
    pub fn validate_settings(&self) -> Result<()> {
        if !(self.entropy_warmup.is_finite() && (0.0..=1.0).contains(&self.entropy_warmup)) {
            return Err(Error::Invalid(format!("--entropy-warmup must be a fraction of the run in [0, 1] (got {})", self.entropy_warmup)));
        }
        if !(self.kl_warmup.is_finite() && (0.0..=1.0).contains(&self.kl_warmup)) {
            return Err(Error::Invalid(format!("--kl-warmup must be a fraction of the run in [0, 1] (got {})", self.kl_warmup)));
        }
        if self.kl_warmup > 0.0 && (!self.model.has_decoder() || self.model.sums_over_classes()) {
            return Err(Error::Invalid(format!(
                "--kl-warmup applies to the models with a Gaussian KL term (ss-*, eu-*), not {}{}",
                self.model.name(),
                if self.model.sums_over_classes() { " (it sums the ELBO over classes and takes no KL weight)" } else { "" }
            )));
        }
        if !(self.labeled_share.is_finite() && self.labeled_share > 0.0 && self.labeled_share < 1.0) {
            return Err(Error::Invalid(format!("--labeled-share must be in (0, 1) (got {})", self.labeled_share)));
        }
        if self.labeled_share != DEFAULT_LABELED_SHARE && !self.semi_supervised() {
            return Err(Error::Invalid(format!(
                "--labeled-share applies to the semi-supervised models (ss-*, m2-*, gmdgm-*), whose batches mix labeled and unlabeled rows; {} trains on batches that are all {}",
                self.model.name(),
                if self.model.kind == Kind::Es { "labeled" } else { "unlabeled" }
            )));
        }
        // (a batch below 2 rows is refused by `validate` with its own message)
        if self.semi_supervised() && self.batch_size >= 2 {
            let l = crate::data::labeled_rows(self.batch_size, self.labeled_share);
            if l == 0 || l == self.batch_size {
                return Err(Error::Invalid(format!(
                    "--labeled-share {} of --batch-size {} gives {l} labeled rows: a batch needs at least one labeled and one unlabeled row",
                    self.labeled_share, self.batch_size
                )));
            }
        }
        Ok(())
    }
}

/// Mean losses per sample over a window of steps (unscaled: rec and kl per sample as the
/// objective defines them, ce per labeled sample before alpha).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Losses {
    pub rec: Option<f64>,
    pub kl: Option<f64>,
    pub ce: Option<f64>,
    /// The optimised objective per batch.
    pub objective: f64,
}

/// The divisor that turns a KL term weighted by `w` back into the KL (a zero weight leaves the
/// zero it produced).
pub(crate) fn unweight(w: f32) -> f64 {
    if w > 0.0 {
        w as f64
    } else {
        1.0
    }
}

/// Packs u8 samples 4 per u32 word for a resident dataset buffer.
pub fn pack_u8(bytes: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    for (i, &b) in bytes.iter().enumerate() {
        words[i / 4] |= (b as u32) << ((i % 4) * 8);
    }
    words
}

/// The dataset resident on the device at one byte per value, with an error that says what to
/// do when it does not fit one binding.
pub fn upload_dataset<B: Backend>(be: &B, data: &Dataset) -> Result<B::Buf> {
    let spec = crate::model::ModelSpec::dense(crate::model::Kind::Ss, data.dim(), data.classes);
    TrainData::Images(data).upload(be, &spec)
}

/// A streamed source must hold the training set's rows in the kind and size the model takes.
fn check_source(source: &dyn RowSource, train: &TrainData<'_>, spec: &ModelSpec) -> Result<()> {
    let want = if matches!(train, TrainData::Images(_)) { RowKind::U8 } else { RowKind::F32 };
    if source.n() != train.n() || source.dim() != train.dim() || source.kind() != want {
        return Err(Error::Invalid(format!(
            "streamed source of {} rows x {} {:?} values does not match dataset '{}' ({} samples of {} for model {})",
            source.n(),
            source.dim(),
            source.kind(),
            train.name(),
            train.n(),
            train.describe(),
            spec.name()
        )));
    }
    Ok(())
}

/// A model being trained: parameters, compiled step, batcher and test evaluator.
pub struct Trainer<B: Backend> {
    pub cfg: TrainConfig,
    pub store: ParamStore<B>,
    program: Program<B>,
    batcher: Batcher,
    evaluator: Option<Evaluator<B>>,
    /// Global step count (also the RNG step and Adam's t).
    pub step: u64,
    pub epochs_done: usize,
    pub labeled: Vec<usize>,
    window_start: u64,
    window_steps: u64,
    /// The training graph's inputs.
    handles: Handles,
    /// Multi-factor models: every head's label of every training sample (see `factors`).
    factor_labels: Vec<Vec<u8>>,
    /// Streamed training: the shards (see [`stream`]); `None`: the set is resident.
    stream: Option<stream::Streamer>,
    /// The entropy warm-up's level the program was last set to (`None`: not set yet).
    entropy_level: Option<u32>,
    /// The KL warm-up's level the program was last set to (`None`: not set yet).
    kl_level: Option<u32>,
    /// The KL term's factor (the warm-up's) summed over the steps of the current loss window,
    /// to report the KL itself (see [`Trainer::take_losses`]).
    window_kl_factor: f64,
}

/// How a streamed trainer gets its rows: the source (whose rows are the training samples of
/// the `TrainData` given for shapes and labels) and the batches per shard.
#[derive(Clone)]
pub struct StreamSource {
    pub source: Arc<dyn RowSource>,
    pub shard_steps: usize,
}

impl<B: Backend> Trainer<B> {
    /// Compiles the model for `train` (and an evaluator for `test`, if given). `labeled` are
    /// the indices of training samples whose labels are used.
    pub fn new(be: &B, cfg: TrainConfig, train: &Dataset, test: Option<&Dataset>, labeled: Vec<usize>) -> Result<Self> {
        Self::with_data(be, cfg, TrainData::Images(train), test.map(TrainData::Images), labeled)
    }

    /// As [`Trainer::new`] for image or series data (the model family must match: see
    /// [`TrainData::check`]). `labeled` must hold labeled samples only.
    pub fn with_data(be: &B, cfg: TrainConfig, train: TrainData<'_>, test: Option<TrainData<'_>>, labeled: Vec<usize>) -> Result<Self> {
        if cfg.model.has_factor_heads() {
            return Err(Error::Invalid(format!(
                "model with factor_heads {:?} needs one label per head per sample: build it with Trainer::with_factor_labels",
                cfg.model.factor_heads
            )));
        }
        Self::build(be, cfg, train, test, labeled, Vec::new())
    }

    /// As [`Trainer::with_data`], streaming the training set in shards from `stream.source`
    /// instead of holding it on the device (see [`stream`]). `train` gives the shapes, names
    /// and labels; its values are not read (a set on disk passes a dataset without values).
    pub fn streamed(
        be: &B,
        cfg: TrainConfig,
        train: TrainData<'_>,
        stream: StreamSource,
        test: Option<TrainData<'_>>,
        labeled: Vec<usize>,
    ) -> Result<Self> {
        if cfg.model.has_factor_heads() {
            return Err(Error::Invalid("streamed training of multi-factor models is not supported".into()));
        }
        Self::build_bound(be, cfg, train, test, labeled, Vec::new(), None, Some(stream))
    }

    /// Resident when the training set fits one device buffer, else streamed from `stream`
    /// (with a note on stderr); returns whether it streams.
    pub fn resident_or_streamed(
        be: &B,
        cfg: TrainConfig,
        train: TrainData<'_>,
        stream: impl FnOnce() -> Result<StreamSource>,
        test: Option<TrainData<'_>>,
        labeled: Vec<usize>,
    ) -> Result<(Self, bool)> {
        if cfg.model.has_factor_heads() {
            return Ok((Self::with_data(be, cfg, train, test, labeled)?, false));
        }
        match train.try_upload(be, &cfg.model) {
            Ok(buf) => Ok((Self::build_bound(be, cfg, train, test, labeled, Vec::new(), Some(buf), None)?, false)),
            Err(Error::BufferTooLarge { limit, adapter, .. }) => {
                eprintln!(
                    "note: the training set ({} samples) does not fit the adapter's {:.0} MiB per buffer ({adapter}): streaming it in shards",
                    train.n(),
                    limit as f64 / 1048576.0
                );
                Ok((Self::streamed(be, cfg, train, stream()?, test, labeled)?, true))
            }
            Err(e) => Err(e),
        }
    }

    fn build(
        be: &B,
        cfg: TrainConfig,
        train: TrainData<'_>,
        test: Option<TrainData<'_>>,
        labeled: Vec<usize>,
        factor_labels: Vec<Vec<u8>>,
    ) -> Result<Self> {
        Self::build_bound(be, cfg, train, test, labeled, factor_labels, None, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn build_bound(
        be: &B,
        cfg: TrainConfig,
        train: TrainData<'_>,
        test: Option<TrainData<'_>>,
        labeled: Vec<usize>,
        factor_labels: Vec<Vec<u8>>,
        uploaded: Option<B::Buf>,
        stream: Option<StreamSource>,
    ) -> Result<Self> {
        train.check(&cfg.model)?;
        cfg.validate(train.n())?;
        if let Some(&i) = labeled.iter().find(|&&i| i < train.n() && train.label(i).is_none()) {
            return Err(Error::Invalid(format!("training window {i} of '{}' has no label but is in the labeled set", train.name())));
        }
        // streamed: the data input holds one shard of rows, written by the host per shard
        let src_rows = match &stream {
            Some(s) => {
                check_source(&*s.source, &train, &cfg.model)?;
                s.shard_steps.max(1) * cfg.batch_size
            }
            None => train.n(),
        };
        let (graph, handles) = build(&cfg.model, cfg.batch_size, src_rows)?;
        let store = ParamStore::new(be, &graph, cfg.seed)?;
        let mut opts = CompileOptions { optimizer: Some(cfg.optimizer), ..Default::default() };
        if stream.is_none() {
            let resident = match uploaded {
                Some(b) => b,
                None => train.upload(be, &cfg.model)?,
            };
            opts.bind.insert(handles.data, resident);
        }
        let program = compile(be, graph, &store, opts)?;
        be.write_f32(&store.hyper, &cfg.optimizer.hyper(1))?;
        let mode = match cfg.model.kind {
            // a multi-factor model without labels is a plain (beta-)VAE
            Kind::Ss if cfg.model.has_factor_heads() && labeled.is_empty() => BatchMode::Unsupervised,
            Kind::Ss | Kind::M2 | Kind::Gmdgm => BatchMode::SemiSupervised,
            Kind::Es => BatchMode::Supervised,
            Kind::Eu => BatchMode::Unsupervised,
        };
        let batcher = Batcher::with_labeled_share(mode, &train.labels_u8(), &labeled, cfg.batch_size, cfg.labeled_share, cfg.seed)?
            .with_min_epoch_steps(cfg.min_epoch_steps);
        let stream = match stream {
            Some(s) => Some(stream::Streamer::new(s.source, s.shard_steps, &batcher, cfg.model.series_f16)?),
            None => None,
        };
        let evaluator = match test {
            Some(t) => Some(Evaluator::with_data(be, &cfg.model, &store, t, cfg.eval_batch)?),
            None => None,
        };
        Ok(Trainer {
            cfg,
            store,
            program,
            batcher,
            evaluator,
            step: 0,
            epochs_done: 0,
            labeled,
            window_start: 0,
            window_steps: 0,
            handles,
            factor_labels,
            stream,
            entropy_level: None,
            kl_level: None,
            window_kl_factor: 0.0,
        })
    }

    /// Batches per shard when the training set is streamed, `None` when it is resident.
    pub fn shard_steps(&self) -> Option<usize> {
        self.stream.as_ref().map(|s| s.shard_steps)
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.batcher.steps_per_epoch()
    }

    /// Bytes of device memory this trainer's training step uses: parameters with gradients
    /// and optimizer state, planned temporaries, inputs and the resident training set (the
    /// evaluator's buffers are not counted).
    pub fn device_bytes(&self) -> usize {
        5 * self.store.total * 4 + self.program.temp_bytes + self.program.input_bytes()
    }

    /// Kernel launches in one training step (all recorded into one submission).
    pub fn launches_per_step(&self) -> usize {
        self.program.n_launches
    }

    /// Continues from `steps` steps and `epochs` epochs done (a resumed run, after
    /// [`Trainer::load`]): the step counter (which keys the noise and Adam's t) and the
    /// batcher's position are where an uninterrupted run would have them, so training goes on
    /// exactly as if it had not stopped (for the same labeled set).
    pub fn continue_from(&mut self, steps: u64, epochs: usize) {
        match &mut self.stream {
            // batches drawn ahead are dropped; a fresh shard starts at `steps`
            Some(s) => s.restart(&mut self.batcher, steps),
            None => self.batcher.skip(steps),
        }
        self.step = steps;
        self.window_start = steps;
        self.epochs_done = epochs;
        self.entropy_level = None;
        self.kl_level = None;
    }

    /// One training step (returns once submitted).
    pub fn step(&mut self, be: &B) -> Result<()> {
        let b = match &mut self.stream {
            None => {
                let b = self.batcher.next_batch();
                be.write_u32(self.program.input(self.handles.idx)?, &b.indices)?;
                b
            }
            Some(s) => {
                if let Some(shard) = s.next_shard(&mut self.batcher)? {
                    let data = self.program.input(self.handles.data)?;
                    match shard {
                        stream::Packed::Words(w) => be.write_u32(data, &w)?,
                        stream::Packed::Floats(v) => be.write_f32(data, &v)?,
                    }
                }
                let (j, bs) = (s.pos, self.cfg.batch_size);
                s.pos += 1;
                // batch j of the shard sits at rows j*bs .. (j+1)*bs of the data input
                let idx: Vec<u32> = (j * bs..(j + 1) * bs).map(|r| r as u32).collect();
                be.write_u32(self.program.input(self.handles.idx)?, &idx)?;
                s.current[j].clone()
            }
        };
        self.step += 1;
        if !self.factor_labels.is_empty() {
            self.write_factor_labels(be, &b)?;
        } else {
            // one label per step for the RNN's per-step heads
            be.write_u32(self.program.input(self.handles.labels)?, &self.handles.expand_labels(&b.labels))?;
        }
        be.write_u32(self.program.input(self.handles.counter)?, &crate::rng::counter(self.cfg.seed, self.step as u32))?;
        if matches!(self.cfg.optimizer, Optimizer::Adam { .. }) || !self.cfg.lr_schedule.is_constant() {
            let mut hyper = self.cfg.optimizer.hyper(self.step);
            // both optimizers hold the learning rate first
            let total = (self.cfg.epochs * self.steps_per_epoch()) as u64;
            hyper[0] *= self.cfg.lr_schedule.factor(self.step, total);
            be.write_f32(&self.store.hyper, &hyper)?;
        }
        self.warm_up(be)?;
        self.program.run(be)?;
        self.window_steps += 1;
        Ok(())
    }

    /// Sets the weights of the terms that warm up for the current step (see
    /// [`TrainConfig::entropy_warmup`] and [`TrainConfig::kl_warmup`]): a launch is prepared
    /// again only when a term's level changes.
    fn warm_up(&mut self, be: &B) -> Result<()> {
        let total = (self.cfg.epochs * self.steps_per_epoch()) as u64;
        if self.cfg.entropy_warmup > 0.0 && self.cfg.model.entropy_weight > 0.0 {
            let level = warmup_level(self.cfg.entropy_warmup, self.step, total);
            if self.entropy_level != Some(level) {
                self.program.set_loss_factor(be, LossKind::Entropy, level as f32 / WARMUP_LEVELS as f32)?;
                self.entropy_level = Some(level);
            }
        }
        if self.cfg.kl_warmup > 0.0 {
            let level = warmup_level(self.cfg.kl_warmup, self.step, total);
            let factor = level as f32 / WARMUP_LEVELS as f32;
            if self.kl_level != Some(level) {
                if !self.program.set_loss_factor(be, LossKind::Kl, factor)? {
                    return Err(Error::Invalid(format!("--kl-warmup: model {} has no KL term to warm up", self.cfg.model.name())));
                }
                self.kl_level = Some(level);
            }
            self.window_kl_factor += factor as f64;
        }
        Ok(())
    }

    /// Mean losses since the last call (waits for the device); a non-finite loss is an error.
    pub fn take_losses(&mut self, be: &B) -> Result<Losses> {
        let sums = self.program.take_metrics(be)?;
        let steps = self.window_steps.max(1) as f64;
        let (from, to) = (self.window_start + 1, self.step);
        self.window_start = self.step;
        self.window_steps = 0;
        // with a KL warm-up the term was weighed by its factor at each step: undo their mean (a
        // window spent entirely at factor 0 measured no KL)
        let kl_factor = if self.cfg.kl_warmup > 0.0 { std::mem::take(&mut self.window_kl_factor) / steps } else { 1.0 };
        let mut l = Losses::default();
        for (term, &s) in self.program.losses.iter().zip(&sums) {
            if !s.is_finite() {
                return Err(Error::Diverged { from_step: from, to_step: to, value: format!("{s} ({})", term.kind) });
            }
            l.objective += s as f64 / steps;
            let per_batch = s as f64 / steps;
            match term.kind {
                // per-row losses were scaled by 1/rows (x 1/features under mean normalisation),
                // so the batch sum is already the per-sample value being optimised
                LossKind::Rec => l.rec = Some(per_batch),
                LossKind::Kl if kl_factor > 0.0 => l.kl = Some(per_batch / unweight(self.cfg.model.kl_weight) / kl_factor),
                LossKind::Kl => {}
                // normalised by labeled count in the kernel; undo alpha. Multi-factor models:
                // the sum of the heads' CEs
                LossKind::Ce { .. } => *l.ce.get_or_insert(0.0) += per_batch / (term.scale as f64).max(f64::MIN_POSITIVE),
                LossKind::KlY | LossKind::Entropy | LossKind::Consistency => {}
            }
        }
        Ok(l)
    }

    pub fn evaluate(&self, be: &B) -> Result<Option<EvalReport>> {
        match &self.evaluator {
            Some(e) => Ok(Some(e.run(be, self.cfg.seed)?)),
            None => Ok(None),
        }
    }

    /// The weights and optimizer state, after checking they are finite (a non-finite value is
    /// divergence: it must never reach a checkpoint).
    pub fn weights(&self, be: &B) -> Result<checkpoint::Weights> {
        use crate::graph::exec::StoreBuffer;
        let params = self.store.read(be)?;
        for (name, _, v) in &params {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::Diverged {
                    from_step: self.window_start,
                    to_step: self.step,
                    value: format!("{} (parameter {name}, element {i})", v[i]),
                });
            }
        }
        Ok(checkpoint::Weights {
            params,
            state1: self.store.read_buffer(be, StoreBuffer::State1)?,
            state2: self.store.read_buffer(be, StoreBuffer::State2)?,
        })
    }

    /// Saves weights (and optimizer state) to `dir`/model.safetensors after checking they are
    /// finite (a run folder commits them with its configuration instead: `crate::run`).
    pub fn save(&self, be: &B, dir: &Path) -> Result<()> {
        checkpoint::save_weights(&dir.join(checkpoint::MODEL_FILE), &self.weights(be)?)
    }

    /// Loads weights saved by `save` for the same model.
    pub fn load(&self, be: &B, dir: &Path) -> Result<()> {
        load_into(be, &self.store, dir)
    }

    /// Loads weights already read (`path` names them in errors).
    pub fn load_weights(&self, be: &B, w: &checkpoint::Weights, path: &Path) -> Result<()> {
        load_weights_into(be, &self.store, w, path)
    }
}

/// Loads a checkpoint into a parameter store of the same model: every parameter by name
/// (missing or misshapen ones are errors) and the optimizer state where present.
pub fn load_into<B: Backend>(be: &B, store: &ParamStore<B>, dir: &Path) -> Result<()> {
    let path = dir.join(checkpoint::MODEL_FILE);
    load_weights_into(be, store, &checkpoint::load_weights(&path)?, &path)
}

/// As [`load_into`] for weights already read (`path` names them in errors).
pub fn load_weights_into<B: Backend>(be: &B, store: &ParamStore<B>, w: &checkpoint::Weights, path: &Path) -> Result<()> {
    use crate::graph::exec::StoreBuffer;
    let split = checkpoint::split_class_weights(w, &store.names, &store.shapes);
    let w = split.as_ref().unwrap_or(w);
    for name in &store.names {
        if !w.params.iter().any(|(n, _, _)| n == name) {
            return Err(Error::Io {
                path: path.to_path_buf(),
                msg: format!("the checkpoint has no parameter '{name}': it was saved from another model"),
            });
        }
    }
    for (which, tensors) in [(StoreBuffer::Params, &w.params), (StoreBuffer::State1, &w.state1), (StoreBuffer::State2, &w.state2)] {
        for (name, shape, v) in tensors {
            // Optimizer state as one flat buffer: the layout of checkpoints written before the
            // state was stored per parameter. The weights are still good; the state is dropped.
            if name.starts_with("__optimizer.") {
                eprintln!("note: {}: optimizer state '{name}' is in an older layout and is ignored (weights load; resumed training restarts RMSprop's averages)", path.display());
                continue;
            }
            store
                .write_buffer(be, which, name, v)
                .map_err(|e| Error::Io { path: path.to_path_buf(), msg: format!("{e} (checkpoint shape {shape:?})") })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{warmup_level, LrSchedule, WARMUP_LEVELS};

    #[test]
    fn warmup_rises_in_levels_over_its_fraction_of_the_run() {
        // a quarter of 1024 steps: 256 / 32 = 8 steps a level, full from step 256 on
        let level = |t| warmup_level(0.25, t, 1024);
        assert_eq!(level(1), 0);
        assert_eq!(level(7), 0);
        assert_eq!(level(8), 1);
        assert_eq!(level(128), WARMUP_LEVELS / 2);
        assert_eq!(level(255), WARMUP_LEVELS - 1);
        assert_eq!(level(256), WARMUP_LEVELS);
        assert_eq!(level(5000), WARMUP_LEVELS, "past the ramp (a resumed run with more epochs) it stays full");
        let level = |t| warmup_level(0.3, t, 1000);
        assert!((1..1000).all(|t| level(t + 1) >= level(t)), "the weight never falls");
        assert_eq!((level(299), level(301)), (WARMUP_LEVELS - 1, WARMUP_LEVELS));
        // a ramp shorter than a step is full from the first step
        assert_eq!(warmup_level(1e-6, 1, 1000), WARMUP_LEVELS);
        // ramp of 2 steps: half weight at step 1
        assert_eq!(warmup_level(0.125, 1, 16), WARMUP_LEVELS / 2);
    }

    #[test]
    fn cosine_schedule_starts_at_the_rate_and_ends_at_its_floor() {
        let total = 101;
        assert_eq!(LrSchedule::Constant.factor(57, total), 1.0);
        let c = |t| LrSchedule::Cosine.factor(t, total);
        assert!((c(1) - 1.0).abs() < 1e-6);
        assert!((c(51) - 0.525).abs() < 1e-6, "half way: {}", c(51));
        assert!((c(101) - 0.05).abs() < 1e-6);
        assert!((c(500) - 0.05).abs() < 1e-6, "past the end the floor holds");
        assert!((1..total).all(|t| c(t + 1) <= c(t)), "the rate never rises");
    }

    #[test]
    fn cooldown_keeps_the_rate_for_four_fifths_then_falls_to_the_floor() {
        let total = 101; // progress (t - 1) / 100
        let c = |t| LrSchedule::Cooldown.factor(t, total);
        assert!((1..=80).all(|t| c(t) == 1.0), "constant through 80%");
        assert!((c(81) - 1.0).abs() < 1e-6, "the cooldown starts at the rate: {}", c(81));
        assert!(c(82) < 1.0, "falling right after 80%");
        assert!((c(91) - 0.525).abs() < 1e-6, "half way through the cooldown: {}", c(91));
        assert!((c(101) - 0.05).abs() < 1e-6);
        assert!((c(500) - 0.05).abs() < 1e-6, "past the end the floor holds");
        assert!((1..total).all(|t| c(t + 1) <= c(t)), "the rate never rises");
    }
}
