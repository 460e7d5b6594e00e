//! Datasets: IDX files (MNIST, Fashion-MNIST), built-in synthetic generators, label
//! subsetting and the batcher.
//!
//! - [`Dataset`] holds u8 samples (`n x height x width x channels`, row major, sample after
//!   sample) with one class label per sample; [`Split`] is a train and a test set.
//! - [`read_idx`] / [`load_idx_dataset`] read the official MNIST and Fashion-MNIST files, gzipped
//!   (detected by the magic bytes, not the name) or raw; every malformed file is an
//!   [`Error::Io`](crate::Error::Io) naming the file and what is wrong with it.
//! - [`synthetic`] renders a seeded, MNIST-like 10-class glyph dataset in-process (no download);
//!   [`render_glyph`] draws one glyph from explicit style factors. [`sprites`] renders 64x64
//!   images with known independent factors (shape, scale, rotation, x, y) for the betaVAE score.
//! - [`load_image_folder`] reads users' folders of PNG, JPEG, BMP or TIFF files into an
//!   [`ImageSet`]: one sub-folder per class (torchvision / Hugging Face layout), an `unlabeled/`
//!   folder, or a `labels.csv`; [`read_image_file`] decodes one file the same way.
//! - Time series ([`SeriesDataset`]: f32 windows x steps x channels, labels optional per
//!   window): [`load_har`] reads UCI-HAR's own folder layout (`.txt` or `.txt.gz`),
//!   [`load_csv_series`] users' CSV files (a row per window, or a row per time step cut into
//!   windows per sequence), [`sensor_synth`] generates a rotating machine's vibration with fault
//!   modes in-process; [`Standardizer`] holds per-channel statistics of the training split.
//! - [`sprites`] renders a dSprites-like set with five known, independent generating factors
//!   (for disentanglement metrics).
//! - Tables of features for the dense models ([`Table`]: one row per sample, optional labels and
//!   row ids): [`load_table`] reads CSV / TSV / whitespace-separated text (gzipped or not) and
//!   NumPy `.npy` arrays, and Parquet files with the default `parquet` feature; [`is_table_file`]
//!   tells such paths by their extension.
//! - [`label_subset`] picks a class-balanced, seeded set of labeled samples (the "100 labels" of
//!   the paper); [`label_fraction`] a stratified fraction of the training set.
//!
//! # Batcher semantics
//!
//! Every batch has exactly `batch_size` rows (the compiled graph has static shapes). A row is a
//! training-sample index plus a label, which is the sample's class where the loss may use it and
//! [`UNLABELED`](crate::backend::UNLABELED) (`u32::MAX`) otherwise.
//!
//! - [`BatchMode::SemiSupervised`] (the SS models): the first `L = batch_size / 2` rows are
//!   labeled, drawn uniformly *with replacement* from the labeled set (the paper, section 2.3:
//!   the few labeled samples are up-sampled so that every batch holds labeled and unlabeled data
//!   1:1; `--labeled-share R` makes it `L = floor(R * batch_size)`, see [`labeled_rows`]). The
//!   other `U = batch_size - L` rows walk through a seeded permutation of *all* training
//!   samples (the labeled ones included) with their labels hidden. One epoch is
//!   `ceil(n_train / U)` steps, i.e. one pass over the training set in the unlabeled part; when
//!   `n_train` is not a multiple of `U` the last chunk of a permutation is completed from the next
//!   one, which is drawn fresh each time a permutation is used up.
//! - [`BatchMode::Supervised`] (ES, the encoder trained on labels only): every row is labeled,
//!   drawn with replacement from the labeled set; `steps_per_epoch = ceil(n_train / batch_size)`,
//!   so an ES epoch processes as many rows as an epoch of the unsupervised models.
//! - [`BatchMode::Unsupervised`] (EU): a seeded permutation of all samples, all rows unlabeled,
//!   `ceil(n_train / batch_size)` steps, continuing into the next permutation like SS.
//!
//! The labeled draws and the permutations use two separate generators seeded from the one seed,
//! so a batcher is a deterministic function of its arguments.

mod batcher;
mod csv_series;
pub mod disk;
mod har;
mod idx;
mod image_folder;
pub mod make;
mod sensor_synth;
mod series;
pub mod sprites;
mod subset;
mod synthetic;
mod table;

use std::path::PathBuf;

pub use batcher::{labeled_rows, Batch, BatchMode, Batcher, DEFAULT_LABELED_SHARE};
pub use csv_series::{load_csv_series, CsvLayout, CsvReport, CsvSeriesOptions, FlatOrder, MAX_CLASSES};
pub use disk::{read_npy_header, read_npy_labels, DiskSeries, NpyHeader, NpyWriter, RowKind, RowSource, ShardRows};
pub use har::{load_har, HAR_CHANNELS, HAR_CLASSES, HAR_DEFAULT_CHANNELS, HAR_STEPS};
pub use idx::{load_idx_dataset, read_idx, read_idx_bytes, IdxDataset, IDX_FILES};
pub use image_folder::{is_image_file, load_image_folder, read_image_file, write_png, ImageFolderOptions, ImageSet};
pub use sensor_synth::{sensor_synth, sensor_synth_with, SensorSynthConfig, SENSOR_CLASSES};
pub use series::{SeriesDataset, SeriesSplit, Standardizer};
pub use sprites::{render_sprite, sprites, SpriteDataset, SPRITE_FACTORS, SPRITE_SIZE};
pub use subset::{label_fraction, label_subset};
pub use synthetic::{
    render_glyph, render_glyph_into, synthetic, synthetic_factors, GlyphStyle, GLYPH_SIZE, STYLE_FACTORS, SYNTHETIC_CLASSES,
};
pub use table::{is_table_file, load_table, Delimiter, Table, TableOptions, MAX_TABLE_CLASSES};

/// A labeled image dataset held as bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    /// `n * height * width * channels` bytes, row major (channels last), sample after sample.
    pub pixels: Vec<u8>,
    /// One class per sample, each `< classes`.
    pub labels: Vec<u8>,
    pub n: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub classes: usize,
    pub class_names: Vec<String>,
    /// Per sample: whether it carries no label (an image under `unlabeled/`); empty when every
    /// sample is labeled. An unlabeled sample's `labels` entry is a placeholder 0.
    pub unlabeled: Vec<bool>,
    /// Per sample: its id (a file path relative to the data folder); empty: the sample index.
    pub ids: Vec<String>,
}

impl Dataset {
    /// Sample `i`'s label, `None` when it has none.
    pub fn label(&self, i: usize) -> Option<u8> {
        (!self.unlabeled.get(i).copied().unwrap_or(false)).then(|| self.labels[i])
    }

    /// Sample `i`'s id: its file path when known, else its index.
    pub fn id(&self, i: usize) -> String {
        self.ids.get(i).cloned().unwrap_or_else(|| i.to_string())
    }

    /// Values per sample: `height * width * channels`.
    pub fn dim(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The bytes of sample `i` (panics when `i >= n`).
    pub fn sample(&self, i: usize) -> &[u8] {
        let d = self.dim();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// The samples at `idx`, in that order (repeats allowed; panics on an index `>= n`).
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let d = self.dim();
        let mut pixels = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            pixels.extend_from_slice(self.sample(i));
        }
        Dataset {
            name: self.name.clone(),
            pixels,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            n: idx.len(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            classes: self.classes,
            class_names: self.class_names.clone(),
            unlabeled: if self.unlabeled.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.unlabeled[i]).collect() },
            ids: if self.ids.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.ids[i].clone()).collect() },
        }
    }

    /// Number of labeled samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0usize; self.classes];
        for i in 0..self.n {
            if let Some(l) = self.label(i) {
                c[l as usize] += 1;
            }
        }
        c
    }

    /// Writes the samples at `idx` as f32 in [0, 1] (byte / 255) into `out`, which is resized
    /// to `idx.len() * dim()`: the input of one batch.
    pub fn gather_f32(&self, idx: &[u32], out: &mut Vec<f32>) {
        let d = self.dim();
        out.clear();
        out.reserve(idx.len() * d);
        for &i in idx {
            out.extend(self.sample(i as usize).iter().map(|&b| b as f32 / 255.0));
        }
    }
}

/// A training and a test set of the same kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

/// Where datasets live by default: `$SSVAE_DATA` when set (and not empty), else `./data` when
/// that directory exists, else `None`. Each dataset is a sub-directory (`mnist/`,
/// `fashion-mnist/`).
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("SSVAE_DATA") {
        if !v.is_empty() {
            return Some(PathBuf::from(v));
        }
    }
    let local = PathBuf::from("data");
    local.is_dir().then_some(local)
}
