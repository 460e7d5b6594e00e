//! Training with several labels per sample: the multi-factor model of the paper's section 4
//! (one head per labeled generating factor, see [`crate::model`]). The experiment behind its
//! Table 12 (betaVAE score against the number of labeled samples) trains through this and is
//! scored in `crate::eval::factors`.
//!
//! Labeling is all or nothing per sample, as in the paper: N chosen training samples carry
//! every factor's label and the rest none. The batcher is the SS batcher (half of each batch
//! drawn with replacement from the N, half from a permutation of all samples, unlabeled), so
//! its "labeled row" flag decides which rows get labels; the labels themselves come from the
//! per-head tables given here (one per head, one entry per sample). N = 0 trains the same
//! model as a plain (beta-)VAE on fully unlabeled batches: the heads then get no gradient and
//! never touch the encoder.

use crate::backend::{Backend, UNLABELED};
use crate::data::sprites::{SpriteFactors, SPRITE_FACTORS};
use crate::data::Batch;
use crate::error::{Error, Result};

use super::{TrainConfig, TrainData, Trainer};

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
        for (table, &input) in self.factor_labels.iter().zip(&self.handles.head_labels) {
            let labels: Vec<u32> =
                b.indices.iter().zip(&b.labels).map(|(&i, &l)| if l == UNLABELED { UNLABELED } else { table[i as usize] as u32 }).collect();
            be.write_u32(self.program.input(input)?, &labels)?;
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
