//! [`Run::open`]: a saved run folder as a model ready to use: class probabilities
//! ([`Run::predict_proba`]), latent means ([`Run::encode`]), anomaly scores ([`Run::score`]),
//! generated samples ([`Run::sample`]) and evaluation on a split ([`Run::evaluate`]).

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::eval::grid::{class_style_grid, traverse, Decoder};
use crate::eval::plot::label_grid;
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
        // a run with model selection is the selected epoch's model
        let mut weights = saved.weights;
        if let Some(best) = saved.best {
            weights.params = best.params;
        }
        crate::train::load_weights_into(be, &store, &weights, &saved.from)?;
        Ok(Run { dir: dir.to_path_buf(), config, store })
    }

    /// The model as trained.
    pub fn model(&self) -> &ModelSpec {
        &self.config.train.model
    }

    fn eval_batch(&self) -> usize {
        self.config.train.eval_batch
    }

    /// The run's dataset with its test split (`dataset`: another one read the same way), series
    /// standardised with the run's statistics. A `--validation` hold-out is not applied.
    pub fn load_data(&self, dataset: Option<DatasetName>, data_dir: Option<&Path>) -> Result<Loaded> {
        self.config.load_data(dataset, data_dir)
    }

    /// The splits the run trained and was evaluated on (`--validation N`: the hold-out is the
    /// test split), see [`RunConfig::load_run_splits`].
    pub fn load_run_splits(&self, data_dir: Option<&Path>) -> Result<Loaded> {
        self.config.load_run_splits(data_dir)
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

    /// The height, width and channels of the run's images (a dense model on images knows
    /// only their product: the run records the shape; older runs: square, one channel).
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        let spec = self.model();
        if let Some(s) = self.config.image_shape.or(spec.input_shape) {
            return Some(s);
        }
        let side = (spec.input_dim as f64).sqrt() as usize;
        (side * side == spec.input_dim && !spec.real_input).then_some([side, side, 1])
    }

    /// A grid of generated images with the class names on its rows: one row per class, one
    /// column per style (z ~ N(0, I); `style_labels` numbers the columns), or with
    /// `traverse_latent` a walk over the first two latent dimensions per class (the class
    /// names above each block). Cells are scaled `scale` times (nearest neighbour).
    pub fn sample(&self, be: &B, styles: usize, seed: u64, traverse_latent: bool, scale: usize, style_labels: bool) -> Result<RgbImage> {
        let spec = self.model();
        if spec.family == Family::Rnn || spec.real_input {
            return Err(Error::Invalid(format!(
                "--run {}: {} was trained on {}; sample grids are for image models",
                self.dir.display(),
                spec.name(),
                if spec.family == Family::Rnn { "sensor windows" } else { "a table of features" }
            )));
        }
        let Some([h, w, c]) = self.image_shape() else {
            return Err(Error::Invalid(format!(
                "the model's {} features are not a known image shape; sample grids need image data",
                spec.input_dim
            )));
        };
        let dec = Decoder::new(be, spec, &self.store, 100)?;
        let names = self.class_names();
        if traverse_latent {
            let g = traverse(be, &dec, styles, (h, w, c))?;
            let per = g.cols / names.len().max(1);
            let cols: Vec<String> =
                (0..g.cols).map(|k| if spec.decoder_takes_pi() && k % per == 0 { names[k / per].clone() } else { String::new() }).collect();
            label_grid(&g.cells, (g.rows, g.cols), g.shape, scale, &[], Some(&cols))
        } else {
            let g = class_style_grid(be, &dec, styles, seed, (h, w, c))?;
            let rows: Vec<String> = if spec.decoder_takes_pi() { names } else { vec!["z ~ N(0, I)".into()] };
            let cols: Vec<String> = (1..=g.cols).map(|k| format!("style {k}")).collect();
            label_grid(&g.cells, (g.rows, g.cols), g.shape, scale, &rows, style_labels.then_some(&cols[..]))
        }
    }
}
