//! [`Run::open`]: a saved run folder as a model ready to use: class probabilities
//! ([`Run::predict_proba`]), latent means ([`Run::encode`]), anomaly scores ([`Run::score`]),
//! generated samples ([`Run::sample`]) and evaluation on a split ([`Run::evaluate`]).

use std::path::{Path, PathBuf};

use image::GrayImage;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::eval::grid::{class_style_grid, traverse, Decoder};
use crate::eval::Scorer;
use crate::graph::exec::ParamStore;
use crate::model::{build, Family, ModelSpec};
use crate::train::{EvalReport, Evaluator, TrainData};

use super::data::{DatasetName, Loaded};
use super::spec::RunConfig;

/// A saved run: its configuration and its weights on one backend.
pub struct Run<B: Backend> {
    pub dir: PathBuf,
    pub config: RunConfig,
    pub store: ParamStore<B>,
}

impl<B: Backend> Run<B> {
    /// Reads `dir`'s config.json and weights (every parameter checked by name and shape).
    pub fn open(be: &B, dir: &Path) -> Result<Self> {
        let saved = super::folder::load(dir).map_err(|e| Error::Invalid(format!("--run {}: {e}", dir.display())))?;
        let config = saved.config;
        // a damaged or hand-edited config.json may describe a model too large to allocate
        super::memory::check_model(&config.train.model, 1, 0.0).map_err(|e| Error::Invalid(format!("--run {}: {e}", dir.display())))?;
        let (graph, _) = build(&config.train.model, 1, 1)?;
        let store = ParamStore::new(be, &graph, 0)?;
        crate::train::load_weights_into(be, &store, &saved.weights, &saved.from)?;
        Ok(Run { dir: dir.to_path_buf(), config, store })
    }

    /// The model as trained.
    pub fn model(&self) -> &ModelSpec {
        &self.config.train.model
    }

    fn eval_batch(&self) -> usize {
        self.config.train.eval_batch
    }

    /// The run's dataset as trained on (`dataset`: another one read the same way), series
    /// standardised with the run's statistics.
    pub fn load_data(&self, dataset: Option<DatasetName>, data_dir: Option<&Path>) -> Result<Loaded> {
        self.config.load_data(dataset, data_dir)
    }

    /// Accuracy, log loss and ELBO terms on `data`.
    pub fn evaluate(&self, be: &B, data: TrainData<'_>) -> Result<EvalReport> {
        Evaluator::with_data(be, self.model(), &self.store, data, self.eval_batch())?.run(be, self.config.train.seed)
    }

    /// Class probabilities, `n x slots` row-major (per-step heads of an RNN pooled per window).
    pub fn predict_proba(&self, be: &B, data: TrainData<'_>) -> Result<Vec<f32>> {
        let ev = Evaluator::with_data(be, self.model(), &self.store, data, self.eval_batch())?;
        ev.probabilities(be, self.config.train.seed)?
            .ok_or_else(|| Error::Invalid(format!("{} has no classifier (an EU model): it predicts no classes", self.model().name())))
    }

    /// Posterior means of z, `n x latent` row-major (models with a decoder).
    pub fn encode(&self, be: &B, data: TrainData<'_>) -> Result<Vec<f32>> {
        Scorer::with_data(be, self.model(), &self.store, data, self.eval_batch())?.latent_means(be)
    }

    /// Anomaly score per sample (negative log reconstruction probability, mean over `samples`
    /// draws of z) and, for classifiers, the class probabilities (`n x classes`).
    pub fn score(&self, be: &B, data: TrainData<'_>, samples: usize, seed: u64) -> Result<(Vec<f64>, Option<Vec<f32>>)> {
        Scorer::with_data(be, self.model(), &self.store, data, self.eval_batch())?.run(be, samples, seed)
    }

    /// A grid of generated images: one row per class, one column per style (z ~ N(0, I)), or
    /// with `traverse_latent` a walk over the first two latent dimensions per class.
    pub fn sample(&self, be: &B, styles: usize, seed: u64, traverse_latent: bool) -> Result<GrayImage> {
        let spec = self.model();
        if spec.family == Family::Rnn {
            return Err(Error::Invalid(format!(
                "--run {}: {} is a recurrent model of sensor windows; sample grids are for image models (dense, cnn)",
                self.dir.display(),
                spec.name()
            )));
        }
        let side = (spec.input_dim as f64).sqrt() as usize;
        if side * side != spec.input_dim {
            return Err(Error::Invalid(format!(
                "the model's {} features are not a square image; sample grids need image data",
                spec.input_dim
            )));
        }
        let dec = Decoder::new(be, spec, &self.store, 100)?;
        if traverse_latent {
            traverse(be, &dec, styles, (side, side))
        } else {
            Ok(class_style_grid(be, &dec, styles, seed, (side, side))?.0)
        }
    }
}
