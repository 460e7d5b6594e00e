//! Predictions of a saved run on new data ([`Run::read_samples`], [`Run::predict`]): every run
//! kind predicts what it can (class probabilities with a classifier, anomaly scores and latent
//! means with a decoder), one row per sample keyed by its id, and [`Predictions::to_csv`]
//! writes them as `ssvae predict` does.
//!
//! New data is read the way the run's training data was and checked against it: an image
//! folder with the run's image size and channels, a table with the run's feature columns (by
//! name) and statistics, a sensor log with the run's CSV options and statistics.

use std::path::Path;

use crate::backend::Backend;
use crate::data::{self, Dataset, ImageFolderOptions, SeriesDataset, TableOptions};
use crate::error::{Error, Result};
use crate::eval::Scorer;
use crate::model::Family;
use crate::train::TrainData;

use super::data::{read_images, read_series_input, DatasetName};
use super::open::Run;

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

/// Samples read for a run: images, or real-valued windows / table rows (standardised with the
/// run's statistics). Labels are kept where the input has them (for checking predictions).
pub enum Samples {
    Images(Dataset),
    Series(SeriesDataset),
}

impl Samples {
    pub fn data(&self) -> TrainData<'_> {
        match self {
            Samples::Images(d) => TrainData::Images(d),
            Samples::Series(d) => TrainData::Series(d),
        }
    }
}

/// What a run predicts for `n` samples.
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    pub ids: Vec<String>,
    /// The class name of each sample's label, where the input had one.
    pub labels: Vec<Option<String>>,
    /// The class names of the probability columns.
    pub class_names: Vec<String>,
    /// `n x classes` probabilities (models with a classifier).
    pub probs: Option<Vec<f32>>,
    /// Anomaly score per sample: the negative log-likelihood of the sample under the decoder,
    /// mean over draws of z (models with a decoder; higher = more anomalous).
    pub scores: Option<Vec<f64>>,
    /// Runs with anomaly feedback: the adjusted score of eq. 6.
    pub adjusted: Option<Vec<f64>>,
    /// `n x latent` posterior means of z (an RNN's: the mean over the window's steps).
    pub latent: Option<Vec<f32>>,
    pub latent_dim: usize,
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of the most probable class of sample `i`.
    pub fn predicted(&self, i: usize) -> Option<usize> {
        let p = self.probs.as_ref()?;
        let k = self.class_names.len();
        let row = &p[i * k..(i + 1) * k];
        Some((0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b }))
    }

    /// The CSV `ssvae predict` writes: id, label (when the input had labels), predicted,
    /// p_<class> per class, score, adjusted_score, z0.. (each where the run has it).
    pub fn to_csv(&self) -> String {
        let has_labels = self.labels.iter().any(Option::is_some);
        let mut head = vec!["id".to_string()];
        if has_labels {
            head.push("label".into());
        }
        if self.probs.is_some() {
            head.push("predicted".into());
            head.extend(self.class_names.iter().map(|c| format!("p_{c}")));
        }
        if self.scores.is_some() {
            head.push("score".into());
        }
        if self.adjusted.is_some() {
            head.push("adjusted_score".into());
        }
        if self.latent.is_some() {
            head.extend((0..self.latent_dim).map(|k| format!("z{k}")));
        }
        let mut out = head.iter().map(|h| super::train::csv_cell(h)).collect::<Vec<_>>().join(",");
        out.push('\n');
        let k = self.class_names.len();
        for i in 0..self.len() {
            let mut row = vec![super::train::csv_cell(&self.ids[i])];
            if has_labels {
                row.push(super::train::csv_cell(self.labels[i].as_deref().unwrap_or("")));
            }
            if let Some(p) = &self.probs {
                row.push(super::train::csv_cell(&self.class_names[self.predicted(i).unwrap_or(0)]));
                row.extend(p[i * k..(i + 1) * k].iter().map(|v| format!("{v}")));
            }
            if let Some(s) = &self.scores {
                row.push(format!("{}", s[i]));
            }
            if let Some(a) = &self.adjusted {
                row.push(format!("{}", a[i]));
            }
            if let Some(z) = &self.latent {
                row.extend(z[i * self.latent_dim..(i + 1) * self.latent_dim].iter().map(|v| format!("{v}")));
            }
            out += &row.join(",");
            out.push('\n');
        }
        out
    }
}

impl<B: Backend> Run<B> {
    /// The run's class names (by index; runs saved before names were recorded: the indices).
    pub fn class_names(&self) -> Vec<String> {
        let k = self.model().classes;
        let mut names = self.config.class_names.clone();
        names.truncate(k);
        names.extend((names.len()..k).map(|c| c.to_string()));
        names
    }

    /// Reads new samples at `path` the way the run's training data was read, checked against
    /// the run (shape, channels, feature columns) and standardised with its statistics.
    pub fn read_samples(&self, path: &Path) -> Result<Samples> {
        let c = &self.config;
        let spec = self.model();
        let d = &c.spec.data;
        let class_names = self.class_names();
        match (spec.family, d.dataset) {
            (Family::Rnn, _) => {
                let shape = spec.series_shape.ok_or_else(|| Error::Invalid("an RNN run without a window shape".into()))?;
                let on_csv = d.dataset == DatasetName::Csv;
                let mut ds = read_series_input(path, &d.series, on_csv, shape, c.standardizer.as_deref())?;
                relabel(&mut ds.labels, &ds.class_names, &class_names);
                ds.class_names = class_names;
                Ok(Samples::Series(ds))
            }
            (Family::Dense, DatasetName::Table | DatasetName::Csv | DatasetName::UciHar | DatasetName::SyntheticSensor) => {
                self.read_table_samples(path, &class_names)
            }
            _ => self.read_image_samples(path, class_names),
        }
    }

    fn read_table_samples(&self, path: &Path, class_names: &[String]) -> Result<Samples> {
        let c = &self.config;
        let d = &c.spec.data;
        if d.dataset != DatasetName::Table {
            invalid!("predict on a dense run trained on {} is not supported; train the dense model on a table (--data FILE)", d.dataset);
        }
        let s = &d.series;
        let mut o = TableOptions {
            label_column: s.label_column.clone(),
            unlabeled_value: d.table.unlabeled_value.clone(),
            columns: Some(c.feature_names.clone()).filter(|f| !f.is_empty()).or_else(|| s.columns.clone()),
            id_column: d.table.id_column.clone(),
            delimiter: super::user_data::delimiter(s.delimiter)?,
            header: s.no_header.then_some(false),
            labels_path: None,
            class_names: Some(class_names.to_vec()),
            allow_new_classes: true,
        };
        // a file to predict may lack the label column the run was trained with
        if let Some(l) = &o.label_column {
            if !l.starts_with('#') && !first_line_has(path, l)? {
                o.label_column = None;
            }
        }
        let t = data::load_table(path, &o).map_err(|e| Error::Invalid(format!("--data {}: {e}", path.display())))?;
        if !c.feature_names.is_empty() && t.feature_names != c.feature_names {
            invalid!(
                "--data {}: feature columns {} differ from the run's {}",
                path.display(),
                t.feature_names.join(","),
                c.feature_names.join(",")
            );
        }
        if t.feature_names.len() != self.model().input_dim {
            invalid!("--data {}: {} feature columns, the model takes {}", path.display(), t.feature_names.len(), self.model().input_dim);
        }
        // labels the run never saw (an anomaly test file) are kept by name, not as classes
        let names = t.class_names.clone();
        let labels = t.labels.iter().map(|l| l.filter(|&l| l < 256).map(|l| l as u8)).collect();
        let mut ds = SeriesDataset::new(path.display().to_string(), t.values, labels, 1, names, t.feature_names)?;
        ds.ids = t.ids;
        if let Some(st) = c.standardizer.as_deref() {
            let st = crate::data::Standardizer::from_vec(st)?;
            st.apply(&mut ds)?;
            if d.series.scaling == Some(super::data::SeriesScaling::Robust) {
                ds.values.iter_mut().for_each(|v| *v = v.clamp(-super::data::ROBUST_CLIP, super::data::ROBUST_CLIP));
            }
        } else if let Some(k) = ds.values.iter().position(|v| !(0.0..=1.0).contains(v)) {
            invalid!(
                "--data {}: row {} has value {} in column {}; the run's Bernoulli decoder takes values in [0, 1]",
                path.display(),
                ds.id(k / ds.channels),
                ds.values[k],
                ds.channel_names[k % ds.channels]
            );
        }
        Ok(Samples::Series(ds))
    }

    fn read_image_samples(&self, path: &Path, class_names: Vec<String>) -> Result<Samples> {
        let c = &self.config;
        let spec = self.model();
        let [h, w, ch] = c.image_shape.or(spec.input_shape).unwrap_or_else(|| {
            let side = (spec.input_dim as f64).sqrt() as usize;
            if side * side == spec.input_dim {
                [side, side, 1]
            } else {
                [1, spec.input_dim, 1]
            }
        });
        let size = c.spec.data.images.size.map(|[h, w]| (h, w));
        let check = |what: &str, (fh, fw, fc): (usize, usize, usize)| -> Result<()> {
            if (fh, fw, fc) != (h, w, ch) {
                invalid!(
                    "--data {}: {what} {fh}x{fw} with {fc} channel(s), the run was trained on {h}x{w} with {ch}; resize them or train with --image-size",
                    path.display()
                );
            }
            Ok(())
        };
        let mut ds = if path.is_dir() {
            let o = ImageFolderOptions {
                size,
                channels: Some(ch),
                unlabeled_dir: c.spec.data.images.unlabeled_dir.clone(),
                class_names: Some(class_names.clone()),
                allow_new_classes: true,
            };
            let set = data::load_image_folder(path, &o).map_err(|e| Error::Invalid(format!("--data {}: {e}", path.display())))?;
            check("images of", (set.height, set.width, set.channels))?;
            let unlabeled: Vec<bool> = set.labels.iter().map(|l| l.is_none_or(|l| l >= 256)).collect();
            Dataset {
                name: path.display().to_string(),
                n: set.labels.len(),
                labels: set.labels.iter().map(|l| l.filter(|&l| l < 256).unwrap_or(0) as u8).collect(),
                unlabeled,
                ids: set.ids,
                pixels: set.pixels,
                height: set.height,
                width: set.width,
                channels: set.channels,
                classes: set.class_names.len(),
                class_names: set.class_names,
            }
        } else if data::is_image_file(path) {
            let (pixels, fh, fw, fc) = data::read_image_file(path, size, Some(ch))?;
            check("an image of", (fh, fw, fc))?;
            one_set(path, pixels, 1, [h, w, ch], vec![path.display().to_string()], &class_names)
        } else {
            let pixels = read_images(path, spec.input_dim, Some([h, w, ch]))?;
            let n = pixels.len() / spec.input_dim;
            one_set(path, pixels, n, [h, w, ch], Vec::new(), &class_names)
        };
        if ds.class_names.len() < class_names.len() {
            ds.class_names = class_names;
        }
        Ok(Samples::Images(ds))
    }

    /// Predicts `samples`: class probabilities, anomaly scores (`draws` of z each, seeded) and
    /// latent means, as far as the model has them.
    pub fn predict(&self, be: &B, samples: &Samples, draws: usize, seed: u64) -> Result<Predictions> {
        let spec = self.model();
        let data = samples.data();
        data.check(spec)?;
        let n = data.n();
        let names = data.class_names().to_vec();
        let mut p = Predictions {
            ids: (0..n).map(|i| data.id(i)).collect(),
            labels: (0..n).map(|i| data.label(i).map(|l| names.get(l as usize).cloned().unwrap_or_else(|| l.to_string()))).collect(),
            class_names: self.class_names(),
            ..Predictions::default()
        };
        if spec.has_decoder() {
            let scorer = Scorer::with_data(be, spec, &self.store, data, self.config.train.eval_batch)?;
            let (scores, probs) = scorer.run(be, draws, seed)?;
            let z = scorer.latent_means(be)?;
            let per = z.len() / n.max(1);
            let steps = per / spec.latent.max(1);
            p.latent = Some(mean_over_steps(&z, n, steps.max(1), spec.latent));
            p.latent_dim = spec.latent;
            if let (Some(fb), Some(pr)) = (&self.config.feedback, &probs) {
                p.adjusted = Some(crate::eval::feedback::adjusted_scores(&scores, pr, fb.classes, fb.score_offset)?);
            }
            p.scores = Some(scores);
            p.probs = probs;
        } else {
            p.probs = Some(self.predict_proba(be, data)?);
        }
        Ok(p)
    }
}

/// `n` windows of `steps x latent` means, averaged over steps (one step: unchanged).
fn mean_over_steps(z: &[f32], n: usize, steps: usize, latent: usize) -> Vec<f32> {
    if steps == 1 {
        return z.to_vec();
    }
    let mut out = vec![0f32; n * latent];
    for i in 0..n {
        for t in 0..steps {
            for k in 0..latent {
                out[i * latent + k] += z[(i * steps + t) * latent + k] / steps as f32;
            }
        }
    }
    out
}

/// Maps labels numbered by `from` names onto `to`'s numbering (unknown names: unlabeled).
fn relabel(labels: &mut [Option<u8>], from: &[String], to: &[String]) {
    for l in labels.iter_mut() {
        *l = l.and_then(|k| from.get(k as usize)).and_then(|name| to.iter().position(|t| t == name)).map(|k| k as u8);
    }
}

/// Unlabeled image samples read from one file (IDX, CSV or a single image).
fn one_set(path: &Path, pixels: Vec<u8>, n: usize, [h, w, c]: [usize; 3], ids: Vec<String>, class_names: &[String]) -> Dataset {
    Dataset {
        name: path.display().to_string(),
        labels: vec![0; n],
        unlabeled: vec![true; n],
        ids,
        pixels,
        n,
        height: h,
        width: w,
        channels: c,
        classes: class_names.len(),
        class_names: class_names.to_vec(),
    }
}

/// Whether the header line of the table at `path` names `column`.
fn first_line_has(path: &Path, column: &str) -> Result<bool> {
    let line = super::data::first_line(path)?;
    Ok(line.split([',', ';', '\t', ' ']).any(|c| c.trim().trim_matches('"') == column))
}
