//! Scoring multi-factor models (paper section 4): each head's accuracy, and the experiment
//! behind the paper's Table 12 (betaVAE score against the number of labeled samples), which
//! trains through `crate::train::Trainer::with_factor_labels`.
//!
//! The experiment runs a fixed number of STEPS for every N rather than epochs: an SS epoch
//! (one pass over the unlabeled half-batches) has twice the steps of a VAE epoch, so equal
//! epochs would give the N = 0 cell half the updates. It scores the posterior means of a
//! held-out sprite set with [`super::beta_vae_score_of_latents`], drawing each pair's
//! partner from held-out sprites sharing the factor's value (encoding the 2 x 64 x 4096 images
//! of freshly rendered votes instead would cost far more than training on a CPU).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;

use super::{beta_vae_score_of_latents, BetaVaeConfig, BetaVaeScore, Scorer};
use crate::backend::Backend;
use crate::data::sprites::{sprites, SpriteDataset, SPRITE_FACTORS};
use crate::error::{Error, Result};
use crate::graph::exec::{compile, CompileOptions, Optimizer, ParamStore};
use crate::model::{build_mode, ModelSpec};
use crate::train::factors::sprite_factor_labels;
use crate::train::{argmax_rows, pack_u8, write_unlabeled, LabelSpec, Losses, TrainConfig, TrainData, Trainer};

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
    let resident = be.upload_u32(&pack_u8(pixels))?;
    let program = compile(be, graph, store, CompileOptions { keep, bind: [(handles.data, resident)].into(), ..Default::default() })?;
    let mut correct = vec![0usize; labels.len()];
    for start in (0..n).step_by(batch) {
        let rows = (n - start).min(batch);
        let idx: Vec<u32> = (0..batch).map(|r| (start + r.min(rows - 1)) as u32).collect();
        be.write_u32(program.input(handles.idx)?, &idx)?;
        write_unlabeled(be, &program, &handles, batch)?;
        be.write_u32(program.input(handles.counter)?, &crate::rng::counter(0, 0))?;
        program.run(be)?;
        for (k, &t) in handles.factor_pi.iter().enumerate() {
            let classes = spec.factor_heads[k];
            let p = program.read(be, t)?;
            let arg = argmax_rows(&p[..rows * classes], classes)?;
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
    cfg.labels = LabelSpec::Count(e.labeled);
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
