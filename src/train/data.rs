//! What a model trains on: image samples (u8 [`Dataset`]) or sensor windows (f32
//! [`SeriesDataset`]). Both stay resident on the device and are gathered by index there
//! (`GatherRowsU8` at one byte per pixel, `GatherRowsF32` for standardised windows, which are
//! real-valued and not on a fixed scale, so bytes would lose them). [`TrainData`] is the one
//! borrowed view the trainer, evaluator and scorer take; it also checks that the data fits the
//! model family (images for dense/CNN, windows for RNN), naming both shapes when it does not.
//!
//! Labels: a series window may be unlabeled (`None`, e.g. an empty CSV cell); it is fed as
//! [`UNLABELED`], never enters a labeled subset and is left out of accuracy and log loss.

use crate::backend::{Backend, UNLABELED};
use crate::data::{Dataset, SeriesDataset};
use crate::error::{Error, Result};
use crate::model::{Family, ModelSpec};

use super::pack_u8;

#[derive(Clone, Copy, Debug)]
pub enum TrainData<'a> {
    Images(&'a Dataset),
    Series(&'a SeriesDataset),
}

impl<'a> From<&'a Dataset> for TrainData<'a> {
    fn from(d: &'a Dataset) -> Self {
        TrainData::Images(d)
    }
}

impl<'a> From<&'a SeriesDataset> for TrainData<'a> {
    fn from(d: &'a SeriesDataset) -> Self {
        TrainData::Series(d)
    }
}

impl TrainData<'_> {
    pub fn n(&self) -> usize {
        match self {
            TrainData::Images(d) => d.n,
            TrainData::Series(d) => d.n,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            TrainData::Images(d) => &d.name,
            TrainData::Series(d) => &d.name,
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            TrainData::Images(d) => d.classes,
            TrainData::Series(d) => d.classes,
        }
    }

    /// Values per sample.
    pub fn dim(&self) -> usize {
        match self {
            TrainData::Images(d) => d.dim(),
            TrainData::Series(d) => d.dim(),
        }
    }

    /// The class names, indexed by class.
    pub fn class_names(&self) -> &[String] {
        match self {
            TrainData::Images(d) => &d.class_names,
            TrainData::Series(d) => &d.class_names,
        }
    }

    /// Sample `i`'s id (a file path or row id when the data has them, else its index).
    pub fn id(&self, i: usize) -> String {
        match self {
            TrainData::Images(d) => d.id(i),
            TrainData::Series(d) => d.id(i),
        }
    }

    /// One label per sample, `None` where unlabeled.
    pub fn label(&self, i: usize) -> Option<u8> {
        match self {
            TrainData::Images(d) => d.label(i),
            TrainData::Series(d) => d.labels[i],
        }
    }

    /// Labels as the graph's input takes them: the class, or [`UNLABELED`].
    pub fn labels_u32(&self) -> Vec<u32> {
        (0..self.n()).map(|i| self.label(i).map_or(UNLABELED, |l| l as u32)).collect()
    }

    /// Labels for the batcher, which reads only those of the labeled subset (unlabeled windows
    /// are never in it, so their placeholder 0 is never used).
    pub fn labels_u8(&self) -> Vec<u8> {
        match self {
            TrainData::Images(d) => d.labels.clone(),
            TrainData::Series(d) => d.labels.iter().map(|l| l.unwrap_or(0)).collect(),
        }
    }

    /// "images of 28x28x1", "series windows of 128 steps x 6 channels" or "table rows of 13
    /// features" (one step a row).
    pub fn describe(&self) -> String {
        match self {
            TrainData::Images(d) => format!("images of {}x{}x{}", d.height, d.width, d.channels),
            TrainData::Series(d) if d.steps == 1 => format!("table rows of {} features", d.channels),
            TrainData::Series(d) => format!("series windows of {} steps x {} channels", d.steps, d.channels),
        }
    }

    /// Checks that the model family takes this kind of data and that the shapes agree.
    pub fn check(&self, spec: &ModelSpec) -> Result<()> {
        let series = matches!(self, TrainData::Series(_));
        let mismatch = match (spec.family, self) {
            (Family::Rnn, TrainData::Series(d)) => spec.series_shape != Some([d.steps, d.channels]),
            (Family::Rnn, TrainData::Images(_)) => true,
            (Family::Dense, TrainData::Series(d)) if spec.real_input => d.dim() != spec.input_dim,
            (_, TrainData::Series(_)) => true,
            (_, TrainData::Images(_)) if spec.real_input => true,
            (_, TrainData::Images(d)) => d.dim() != spec.input_dim,
        };
        if !mismatch {
            return Ok(());
        }
        let hint = match (spec.family == Family::Rnn, series) {
            (true, false) => {
                ": the recurrent models (ss-rnn, es-rnn, eu-rnn) take time series (--dataset uci-har, synthetic-sensor or csv)"
            }
            (false, true) => ": time series need a recurrent model (--model ss-rnn, es-rnn or eu-rnn)",
            _ => "",
        };
        Err(Error::Invalid(format!(
            "model {} expects {}, but dataset '{}' holds {}{hint}",
            spec.name(),
            spec.input_description(),
            self.name(),
            self.describe()
        )))
    }

    /// The samples resident on the device for `spec`: u8 packed 4 per word, f32, or f16
    /// packed 2 per word (`spec.series_f16`; a value beyond f16's range is an error).
    pub fn upload<B: Backend>(&self, be: &B, spec: &ModelSpec) -> Result<B::Buf> {
        self.try_upload(be, spec).map_err(|e| self.too_large(e, spec))
    }

    /// Bytes the set takes resident on the device for `spec`.
    pub fn resident_bytes(&self, spec: &ModelSpec) -> usize {
        match self {
            TrainData::Images(d) => d.pixels.len(),
            TrainData::Series(d) if spec.series_f16 => d.n * d.dim() * 2,
            TrainData::Series(d) => d.n * d.dim() * 4,
        }
    }

    /// As [`TrainData::upload`], with a set too large for one buffer left as
    /// [`Error::BufferTooLarge`] (what decides to stream it instead).
    pub fn try_upload<B: Backend>(&self, be: &B, spec: &ModelSpec) -> Result<B::Buf> {
        match self {
            TrainData::Images(d) => be.upload_u32(&pack_u8(&d.pixels)),
            TrainData::Series(d) if spec.series_f16 => be.upload_u32(&pack_f16(&d.values, &d.name, d.steps * d.channels)?),
            TrainData::Series(d) => be.upload_f32(&d.values),
        }
    }

    fn too_large(&self, e: Error, spec: &ModelSpec) -> Error {
        let bytes = self.resident_bytes(spec);
        match e {
            Error::BufferTooLarge { limit, adapter, .. } => Error::Invalid(format!(
                "dataset '{}' ({} samples, {:.0} MiB resident) does not fit the adapter's {:.0} MiB per buffer ({adapter}); stream it (ssvae train --stream), train on fewer samples (--max-train) or use --backend cpu",
                self.name(),
                self.n(),
                bytes as f64 / 1048576.0,
                limit as f64 / 1048576.0
            )),
            e => e,
        }
    }
}

/// f32 values as f16, two per u32 word (low half first), for a resident series dataset of
/// rows of `row_len` values; a value that f16 cannot hold (|v| > 65504) is an error naming the
/// window and position.
pub fn pack_f16(values: &[f32], name: &str, row_len: usize) -> Result<Vec<u32>> {
    let mut words = vec![0u32; values.len().div_ceil(2)];
    for (k, &v) in values.iter().enumerate() {
        let h = half::f16::from_f32(v);
        if !h.is_finite() && v.is_finite() {
            let row_len = row_len.max(1);
            return Err(Error::Invalid(format!(
                "dataset '{name}': value {v} (window {}, value {}) is beyond f16's range (65504); train without --data-f16 or rescale the data",
                k / row_len,
                k % row_len
            )));
        }
        words[k / 2] |= (h.to_bits() as u32) << ((k % 2) * 16);
    }
    Ok(words)
}
