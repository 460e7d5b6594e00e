//! Multichannel time series as f32 windows: the input of the recurrent (RNN) models.
//!
//! Image data stays in [`Dataset`](super::Dataset) as bytes; sensor windows are real-valued and
//! not on a fixed scale, so they get their own type rather than a reinterpretation of the byte
//! one. A [`SeriesDataset`] holds `n` windows of `steps` time steps of `channels` values each, row
//! major: window after window, inside a window step after step, inside a step channel after
//! channel, so `values[(i * steps + t) * channels + c]`, which is also the `[batch, time,
//! features]` layout the LSTM consumes.
//!
//! Labels are `Option<u8>` per window: `None` is a window without a label (the unlabeled part of
//! semi-supervised training, e.g. an empty label cell in a CSV file), not a class.
//!
//! Sensor channels come in unrelated units (g, rad/s, rpm) and scales, so a Gaussian decoder
//! needs them standardised. [`Standardizer`] is fitted on the *training* windows only (the test
//! set must not leak into preprocessing) and stored with the model, so that scoring new data
//! later applies the identical transform.

use crate::error::{Error, Result};

/// A set of f32 windows of equal length and channel count, with optional class labels.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDataset {
    pub name: String,
    /// `n * steps * channels` values: window, then time step, then channel.
    pub values: Vec<f32>,
    /// One entry per window: its class (`< classes`) or `None` when unlabeled.
    pub labels: Vec<Option<u8>>,
    pub n: usize,
    pub steps: usize,
    pub channels: usize,
    pub classes: usize,
    /// `classes` names, indexed by class.
    pub class_names: Vec<String>,
    /// `channels` names, indexed by channel.
    pub channel_names: Vec<String>,
    /// Per window: its id (a table's id column or "row K"); empty: the window index.
    pub ids: Vec<String>,
}

impl SeriesDataset {
    /// Builds a dataset after checking that every part agrees: `values.len() == n * steps *
    /// channels` with `n = labels.len()`, one name per class and channel, labels below the
    /// number of classes and every value finite.
    pub fn new(
        name: impl Into<String>,
        values: Vec<f32>,
        labels: Vec<Option<u8>>,
        steps: usize,
        class_names: Vec<String>,
        channel_names: Vec<String>,
    ) -> Result<Self> {
        let name = name.into();
        let (n, channels, classes) = (labels.len(), channel_names.len(), class_names.len());
        let bad = |msg: String| Err(Error::Invalid(format!("series dataset '{name}': {msg}")));
        if steps == 0 || channels == 0 {
            return bad(format!("windows must have at least one step and one channel, got {steps} x {channels}"));
        }
        if classes > 256 {
            return bad(format!("{classes} classes, at most 256 fit a u8 label"));
        }
        if values.len() != n * steps * channels {
            return bad(format!(
                "{} values, but {n} windows x {steps} steps x {channels} channels = {}",
                values.len(),
                n * steps * channels
            ));
        }
        if let Some((i, l)) = labels.iter().enumerate().find_map(|(i, l)| l.filter(|&l| l as usize >= classes).map(|l| (i, l))) {
            return bad(format!("window {i} has label {l}, but there are {classes} classes"));
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            let d = steps * channels;
            return bad(format!(
                "value {} at window {}, step {}, channel {} is not finite",
                values[k],
                k / d,
                k % d / channels,
                k % channels
            ));
        }
        Ok(SeriesDataset { name, values, labels, n, steps, channels, classes, class_names, channel_names, ids: Vec::new() })
    }

    /// Values per window: `steps * channels`.
    pub fn dim(&self) -> usize {
        self.steps * self.channels
    }

    /// The values of window `i` (`steps x channels`, row major; panics when `i >= n`).
    pub fn window(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.values[i * d..(i + 1) * d]
    }

    /// The windows at `idx`, in that order (repeats allowed; panics on an index `>= n`).
    pub fn subset(&self, idx: &[usize]) -> SeriesDataset {
        let d = self.dim();
        let mut values = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            values.extend_from_slice(self.window(i));
        }
        SeriesDataset {
            name: self.name.clone(),
            values,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            n: idx.len(),
            steps: self.steps,
            channels: self.channels,
            classes: self.classes,
            class_names: self.class_names.clone(),
            channel_names: self.channel_names.clone(),
            ids: if self.ids.is_empty() { Vec::new() } else { idx.iter().map(|&i| self.ids[i].clone()).collect() },
        }
    }

    /// Window `i`'s id: its row id when known, else its index.
    pub fn id(&self, i: usize) -> String {
        self.ids.get(i).cloned().unwrap_or_else(|| i.to_string())
    }

    /// Copies the windows at `idx` into `out`, which is resized to `idx.len() * dim()`: the input
    /// of one batch (the same signature as [`Dataset::gather_f32`](super::Dataset::gather_f32)).
    pub fn gather_f32(&self, idx: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(idx.len() * self.dim());
        for &i in idx {
            out.extend_from_slice(self.window(i as usize));
        }
    }

    /// Number of labeled windows of each class (unlabeled windows are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0usize; self.classes];
        for l in self.labels.iter().flatten() {
            c[*l as usize] += 1;
        }
        c
    }

    /// Number of windows that carry a label.
    pub fn labeled_count(&self) -> usize {
        self.labels.iter().filter(|l| l.is_some()).count()
    }

    /// Indices of the labeled windows, ascending.
    pub fn labeled_indices(&self) -> Vec<usize> {
        self.labels.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| i).collect()
    }
}

/// A training and a test set of the same kind (same steps, channels and classes).
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSplit {
    pub train: SeriesDataset,
    pub test: SeriesDataset,
}

impl SeriesSplit {
    /// Fits a [`Standardizer`] on the training windows and applies it to both sets; returns it
    /// so it can be saved with the model.
    pub fn standardize(&mut self) -> Result<Standardizer> {
        let s = Standardizer::fit(&self.train)?;
        s.apply(&mut self.train)?;
        s.apply(&mut self.test)?;
        Ok(s)
    }
}

/// Per-channel affine normalisation `(x - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// A channel whose standard deviation is below this fraction of its mean's magnitude (or of
    /// 1) is constant in the training data (a disconnected sensor, a fixed speed). It carries no
    /// information, so it is standardised to exactly 0 everywhere (its standard deviation is
    /// stored as 0): dividing by a tiny floor instead turned any later deviation into scores of
    /// 1e11 and more.
    pub const CONSTANT_RELATIVE: f64 = 1e-6;

    /// Mean and (population) standard deviation of each channel over all steps of all windows of
    /// `train`. Two passes with f64 accumulation, so a large offset (total acceleration around
    /// 1 g) does not cancel the variance. Fails on an empty dataset.
    pub fn fit(train: &SeriesDataset) -> Result<Self> {
        let c = train.channels;
        let count = train.n * train.steps;
        if count == 0 || c == 0 || train.values.len() != count * c {
            return Err(Error::Invalid(format!(
                "cannot fit a standardizer on '{}': it has no windows (or its shape does not match its values)",
                train.name
            )));
        }
        let mut sum = vec![0f64; c];
        for step in train.values.chunks_exact(c) {
            for (s, &v) in sum.iter_mut().zip(step) {
                *s += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count as f64).collect();
        let mut sq = vec![0f64; c];
        for step in train.values.chunks_exact(c) {
            for ((q, &v), m) in sq.iter_mut().zip(step).zip(&mean) {
                let d = v as f64 - m;
                *q += d * d;
            }
        }
        Ok(Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: sq
                .iter()
                .zip(&mean)
                .map(|(&q, m)| {
                    let sd = (q / count as f64).sqrt();
                    if sd <= Self::CONSTANT_RELATIVE * m.abs().max(1.0) {
                        0.0
                    } else {
                        sd as f32
                    }
                })
                .collect(),
        })
    }

    /// As [`Standardizer::fit`] with robust statistics: each channel's median, and 1.4826 x its
    /// median absolute deviation (the standard deviation for normal data) as the scale, so a
    /// few extreme values (a sentinel 1e30, a glitch) do not set the scale of every other
    /// value. A channel whose deviation is 0 for most values falls back to its standard
    /// deviation (a mostly-idle sensor is not constant).
    pub fn fit_robust(train: &SeriesDataset) -> Result<Self> {
        let plain = Self::fit(train)?;
        let c = train.channels;
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            let mut v: Vec<f32> = train.values.iter().skip(ch).step_by(c).copied().collect();
            let mid = v.len() / 2;
            let median = *v.select_nth_unstable_by(mid, f32::total_cmp).1;
            let mut dev: Vec<f32> = v.iter().map(|x| (x - median).abs()).collect();
            let mad = *dev.select_nth_unstable_by(mid, f32::total_cmp).1;
            mean.push(median);
            std.push(if mad > 0.0 && mad.is_finite() { 1.4826 * mad } else { plain.std[ch] });
        }
        Ok(Standardizer { mean, std })
    }

    /// The channels that were constant in the training data (mapped to 0).
    pub fn constant_channels(&self) -> Vec<usize> {
        (0..self.std.len()).filter(|&c| self.std[c] == 0.0).collect()
    }

    /// Number of channels this standardizer was fitted on.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `ds` in place; fails when its channel count differs.
    pub fn apply(&self, ds: &mut SeriesDataset) -> Result<()> {
        self.check(ds.channels, &ds.name)?;
        self.apply_values(&mut ds.values);
        Ok(())
    }

    /// Standardises raw `steps x channels` rows in place (`values.len()` a multiple of the
    /// channel count; a trailing partial step is left alone).
    pub fn apply_values(&self, values: &mut [f32]) {
        if self.channels() == 0 {
            return;
        }
        // a constant channel (std 0) maps to 0
        let inv: Vec<f32> = self.std.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 }).collect();
        for step in values.chunks_exact_mut(self.channels()) {
            for ((v, m), i) in step.iter_mut().zip(&self.mean).zip(&inv) {
                *v = (*v - m) * i;
            }
        }
    }

    /// The inverse of [`Standardizer::apply_values`]: back to the original units (e.g. to plot
    /// reconstructions).
    pub fn invert_values(&self, values: &mut [f32]) {
        if self.channels() == 0 {
            return;
        }
        for step in values.chunks_exact_mut(self.channels()) {
            for ((v, m), s) in step.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
    }

    fn check(&self, channels: usize, name: &str) -> Result<()> {
        if channels != self.channels() || self.std.len() != self.mean.len() {
            return Err(Error::Invalid(format!(
                "standardizer was fitted on {} channels ({} standard deviations) but '{name}' has {channels}",
                self.channels(),
                self.std.len()
            )));
        }
        Ok(())
    }

    /// `mean` followed by `std`, for storing as one tensor in a checkpoint.
    pub fn to_vec(&self) -> Vec<f32> {
        self.mean.iter().chain(&self.std).copied().collect()
    }

    /// The inverse of [`Standardizer::to_vec`]. Fails on an odd or zero length, a non-finite
    /// value or a negative standard deviation (0 marks a constant channel).
    pub fn from_vec(v: &[f32]) -> Result<Self> {
        if v.is_empty() || v.len() % 2 != 0 {
            return Err(Error::Invalid(format!(
                "a stored standardizer must hold means then standard deviations (an even, non-zero count), got {} values",
                v.len()
            )));
        }
        let (mean, std) = v.split_at(v.len() / 2);
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(Error::Invalid(format!("a stored standardizer holds the non-finite value {x}")));
        }
        if let Some((c, s)) = std.iter().enumerate().find(|(_, &s)| s < 0.0) {
            return Err(Error::Invalid(format!("a stored standardizer has standard deviation {s} for channel {c}; it must be >= 0")));
        }
        Ok(Standardizer { mean: mean.to_vec(), std: std.to_vec() })
    }
}
