//! Training with several labels per sample: the multi-factor model of the paper's section 4
//! (one head per labeled generating factor, see [`crate::model`]), and the experiment behind
//! its Table 12 (betaVAE score against the number of labeled samples).
//!
//! Labeling is all or nothing per sample, as in the paper: N chosen training samples carry
//! every factor's label and the rest none. The batcher is the SS batcher (half of each batch
//! drawn with replacement from the N, half from a permutation of all samples, unlabeled), so
//! its "labeled row" flag decides which rows get labels; the labels themselves come from the
//! per-head tables given here (one per head, one entry per sample). N = 0 trains the same
//! model as a plain (beta-)VAE on fully unlabeled batches: the heads then get no gradient and
//! never touch the encoder.
//!
//! The experiment runs a fixed number of STEPS for every N rather than epochs: an SS epoch
//! (one pass over the unlabeled half-batches) has twice the steps of a VAE epoch, so equal
//! epochs would give the N = 0 cell half the updates. It scores the posterior means of a
//! held-out sprite set with [`crate::eval::beta_vae_score_of_latents`], drawing each pair's
//! partner from held-out sprites sharing the factor's value (encoding the 2 x 64 x 4096 images
//! of freshly rendered votes instead would cost far more than training on a CPU).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;

use crate::backend::{Backend, UNLABELED};
use crate::data::sprites::{sprites, SpriteDataset, SpriteFactors, SPRITE_FACTORS};
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::eval::{beta_vae_score_of_latents, BetaVaeConfig, BetaVaeScore, Scorer};
use crate::graph::exec::{compile, CompileOptions, Optimizer, ParamStore};
use crate::model::{build_mode, labels_input_name, ModelSpec};

use super::{write_unlabeled, Losses, TrainConfig, TrainData, Trainer};

impl<B: Backend> Trainer<B> {
    /// A multi-factor model's trainer: `factor_labels[k][i]` is head k's class of training
    /// sample i; the samples in `labeled` use all of theirs, the others none (empty `labeled`:
    /// a plain VAE). Errors name the head and sample whose label does not fit.
    pub fn with_factor_labels(
        be: &B,
        cfg: TrainConfig,
        train: TrainData<'_>,
        test: Option<TrainData<'_>>,
        labeled: Vec<usize>,
        factor_labels: Vec<Vec<u8>>,
    ) -> Result<Self> {
        let heads = &cfg.model.factor_heads;
        if heads.is_empty() {
            return Err(Error::Invalid("factor labels were given for a model without factor_heads".into()));
        }
        if factor_labels.len() != heads.len() {
            return Err(Error::Invalid(format!(
                "factor_heads: the model has {} heads but {} label tables were given",
                heads.len(),
                factor_labels.len()
            )));
        }
        for (k, (table, &classes)) in factor_labels.iter().zip(heads).enumerate() {
            if table.len() != train.n() {
                return Err(Error::Invalid(format!("factor head {k}: {} labels for {} training samples", table.len(), train.n())));
            }
            if let Some(i) = table.iter().position(|&c| c as usize >= classes) {
                return Err(Error::Invalid(format!("factor head {k}: sample {i} has class {} but the head has {classes}", table[i])));
            }
        }
        Self::build(be, cfg, train, test, labeled, factor_labels)
    }

    /// Each head's labels input for batch `b`: the sample's class on rows the batcher marked
    /// labeled, `UNLABELED` elsewhere.
    pub(super) fn write_factor_labels(&self, be: &B, b: &Batch) -> Result<()> {
        for (k, table) in self.factor_labels.iter().enumerate() {
            let labels: Vec<u32> =
                b.indices.iter().zip(&b.labels).map(|(&i, &l)| if l == UNLABELED { UNLABELED } else { table[i as usize] as u32 }).collect();
            be.write_u32(self.program.input(&labels_input_name(k))?, &labels)?;
        }
        Ok(())
    }
}

/// The label tables of the sprite factors `which` (indices into [`SPRITE_FACTORS`]).
pub fn sprite_factor_labels(factors: &[SpriteFactors], which: &[usize]) -> Result<Vec<Vec<u8>>> {
    which
        .iter()
        .map(|&k| {
            if k >= SPRITE_FACTORS.len() {
                return Err(Error::Invalid(format!("--factor-heads: sprites have no factor {k} (0 shape, 1 scale, 2 rotation, 3 x, 4 y)")));
            }
            Ok(factors.iter().map(|f| f[k] as u8).collect())
        })
        .collect()
}

/// Accuracy of every head of a multi-factor model on `pixels` (u8 samples) with true classes
/// `labels[k][i]` (inference mode; the graph sees no labels).
pub fn factor_head_accuracy<B: Backend>(
    be: &B,
    spec: &ModelSpec,
    store: &ParamStore<B>,
    pixels: &[u8],
    labels: &[Vec<u8>],
    batch: usize,
) -> Result<Vec<f64>> {
    let n = pixels.len() / spec.input_dim.max(1);
    if n == 0 || labels.len() != spec.factor_heads.len() || labels.iter().any(|l| l.len() != n) {
        return Err(Error::Invalid(format!(
            "factor accuracy: {n} samples, {} label tables for {} heads (need one label per head per sample)",
            labels.len(),
            spec.factor_heads.len()
        )));
    }
    let batch = batch.min(n).max(1);
    let (graph, handles) = build_mode(spec, batch, n, false)?;
    let mut keep = handles.factor_pi.clone();
    keep.sort();
    let resident = be.upload_u32(&super::pack_u8(pixels))?;
    let program = compile(be, graph, store, CompileOptions { keep, bind: [("data".to_string(), resident)].into(), ..Default::default() })?;
    let mut correct = vec![0usize; labels.len()];
    for start in (0..n).step_by(batch) {
        let rows = (n - start).min(batch);
        let idx: Vec<u32> = (0..batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
        be.write_u32(program.input("idx")?, &idx)?;
        write_unlabeled(be, &program, &handles, batch)?;
        be.write_u32(program.input("counter")?, &crate::rng::counter(0, 0))?;
        program.run(be)?;
        for (k, &t) in handles.factor_pi.iter().enumerate() {
            let classes = spec.factor_heads[k];
            let p = program.read(be, t)?;
            let arg = crate::eval::argmax_rows(&p[..rows * classes], classes)?;
            correct[k] += arg.iter().enumerate().filter(|&(r, &a)| a == labels[k][start + r] as usize).count();
        }
    }
    program.take_metrics(be)?;
    Ok(correct.iter().map(|&c| c as f64 / n as f64).collect())
}

/// One cell of the Table 12 experiment on built-in sprites.
#[derive(Clone, Debug)]
pub struct FactorExperiment {
    /// A multi-factor model (`factor_heads` = the classes of the factors in `factors`).
    pub model: ModelSpec,
    /// The sprite factors the heads predict, in head order.
    pub factors: Vec<usize>,
    pub train_size: usize,
    /// Held-out sprites encoded for the betaVAE score and head accuracies.
    pub test_size: usize,
    /// N: training samples with all their factor labels (0: a plain VAE).
    pub labeled: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    /// Seeds the data, the labeled subset, the initialisation, the batches and the votes.
    pub seed: u64,
    pub beta_vae: BetaVaeConfig,
}

/// What one cell measured.
#[derive(Clone, Debug)]
pub struct FactorOutcome {
    pub score: BetaVaeScore,
    /// Accuracy of each head on the held-out sprites.
    pub head_accuracy: Vec<f64>,
    /// Mean losses over the last 50 steps.
    pub final_losses: Losses,
    pub train_seconds: f64,
    pub total_seconds: f64,
}

/// Trains and scores one cell (see the module comment).
pub fn run_factor_experiment<B: Backend>(be: &B, e: &FactorExperiment) -> Result<FactorOutcome> {
    let t0 = Instant::now();
    let sizes: Vec<usize> = e.factors.iter().map(|&k| SPRITE_FACTORS.get(k).map_or(0, |f| f.1)).collect();
    if e.model.factor_heads != sizes {
        return Err(Error::Invalid(format!(
            "factor_heads {:?} do not match the classes {sizes:?} of sprite factors {:?}",
            e.model.factor_heads, e.factors
        )));
    }
    if e.labeled > e.train_size {
        return Err(Error::Invalid(format!("--labels {} exceeds the {} training sprites", e.labeled, e.train_size)));
    }
    let train: SpriteDataset = sprites(e.train_size, e.factors[0], e.seed)?;
    let test: SpriteDataset = sprites(e.test_size, e.factors[0], e.seed ^ 0x7E57_0000)?;
    let labeled: Vec<usize> = sample(&mut StdRng::seed_from_u64(e.seed ^ 0x1AB3_1ED), e.train_size, e.labeled).into_vec();
    let mut cfg = TrainConfig::new(e.model.clone(), "sprites");
    cfg.batch_size = e.batch_size;
    cfg.seed = e.seed;
    cfg.optimizer = e.optimizer;
    cfg.labels = super::LabelSpec::Count(e.labeled);
    let tables = sprite_factor_labels(&train.factors, &e.factors)?;
    let mut t = Trainer::with_factor_labels(be, cfg, TrainData::Images(&train.data), None, labeled, tables)?;
    let mut final_losses = Losses::default();
    for s in 0..e.steps {
        t.step(be)?;
        if (s + 1) % 50 == 0 || s + 1 == e.steps {
            final_losses = t.take_losses(be)?;
        }
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let scorer = Scorer::new(be, &e.model, &t.store, &test.data.pixels, 500)?;
    let latents = scorer.latent_means(be)?;
    let score = beta_vae_score_of_latents(&test.factors, &latents, &BetaVaeConfig { seed: e.seed, ..e.beta_vae })?;
    let head_accuracy =
        factor_head_accuracy(be, &e.model, &t.store, &test.data.pixels, &sprite_factor_labels(&test.factors, &e.factors)?, 500)?;
    Ok(FactorOutcome { score, head_accuracy, final_losses, train_seconds, total_seconds: t0.elapsed().as_secs_f64() })
}
