//! [`Model`]: a run folder opened on a backend ([`ssvae::run::Run`]), predicting numpy arrays.
//!
//! New samples are checked against the run as `ssvae predict` checks files: an image's height,
//! width and channels, a table's feature count, a window's steps and channels; tables and
//! windows are standardised with the run's stored statistics.

use std::path::PathBuf;

use numpy::PyArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::GpuBackend;
use ssvae::data::{Dataset, SeriesDataset, Standardizer};
use ssvae::model::Family;
use ssvae::run::{Run, Samples, SeriesScaling};
use ssvae::Backend;

use crate::arrays::{features, pixels, to_array};
use crate::{guard, to_py, Engine};

/// A run and the backend its weights live on.
enum Opened {
    Cpu(CpuBackend, Run<CpuBackend>),
    Gpu(GpuBackend, Run<GpuBackend>),
}

macro_rules! on_run {
    ($o:expr, ($be:ident, $run:ident) => $body:expr) => {
        match $o {
            Opened::Cpu($be, $run) => $body,
            Opened::Gpu($be, $run) => $body,
        }
    };
}

/// What the model takes: images, table rows or windows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Images([usize; 3]),
    Table(usize),
    Series([usize; 2]),
}

/// A saved run as a model (`ssvae._core.Model(run_dir, backend)`).
#[pyclass(module = "ssvae._core")]
pub struct Model {
    opened: Opened,
    input: Input,
}

fn open<B: Backend>(be: &B, dir: &std::path::Path) -> ssvae::Result<(Run<B>, Input)> {
    let run = Run::open(be, dir)?;
    let spec = run.model();
    let input = if spec.family == Family::Rnn {
        Input::Series(spec.series_shape.ok_or_else(|| ssvae::Error::Invalid("an RNN run without a window shape".into()))?)
    } else if spec.real_input {
        Input::Table(spec.input_dim)
    } else {
        Input::Images(run.image_shape().ok_or_else(|| ssvae::Error::Invalid(format!("--run {}: unknown image shape", dir.display())))?)
    };
    Ok((run, input))
}

impl Model {
    fn config(&self) -> &ssvae::run::RunConfig {
        on_run!(&self.opened, (_be, run) => &run.config)
    }

    fn class_names_vec(&self) -> Vec<String> {
        on_run!(&self.opened, (_be, run) => run.class_names())
    }

    /// `x` as the run's samples, checked and standardised.
    fn samples(&self, x: &Bound<'_, PyAny>) -> PyResult<Samples> {
        let names = self.class_names_vec();
        let c = self.config();
        match self.input {
            Input::Images([h, w, ch]) => {
                let (px, shape) = pixels(x)?;
                if shape.len() != 4 || shape[1..] != [h, w, ch] {
                    return Err(PyValueError::new_err(format!(
                        "X: images of shape {:?} (n, height, width, channels), the model was trained on {h}x{w} with {ch} channel(s)",
                        shape
                    )));
                }
                let n = shape[0];
                Ok(Samples::Images(Dataset {
                    name: "X".into(),
                    pixels: px,
                    labels: vec![0; n],
                    n,
                    height: h,
                    width: w,
                    channels: ch,
                    classes: names.len(),
                    class_names: names,
                    unlabeled: vec![true; n],
                    ids: Vec::new(),
                }))
            }
            input => {
                let (values, shape) = features(x)?;
                let (n, steps, channels) = match (input, &shape[..]) {
                    (Input::Table(d), &[n, f]) if f == d => (n, 1, f),
                    (Input::Series([s, ch]), &[n, s2, ch2]) if [s2, ch2] == [s, ch] => (n, s, ch),
                    (Input::Table(d), _) => {
                        return Err(PyValueError::new_err(format!("X has shape {shape:?}; the model takes rows of {d} features (n, {d})")))
                    }
                    (Input::Series([s, ch]), _) => {
                        return Err(PyValueError::new_err(format!(
                            "X has shape {shape:?}; the model takes windows of {s} steps x {ch} channels (n, {s}, {ch})"
                        )))
                    }
                    (Input::Images(_), _) => unreachable!(),
                };
                let mut channel_names = c.feature_names.clone();
                if channel_names.len() != channels {
                    channel_names = (0..channels).map(|k| k.to_string()).collect();
                }
                let mut ds = SeriesDataset::new("X", values, vec![None; n], steps, names, channel_names).map_err(to_py)?;
                if let Some(st) = c.standardizer.as_deref() {
                    Standardizer::from_vec(st).and_then(|s| s.apply(&mut ds)).map_err(to_py)?;
                    if c.spec.data.series.scaling == Some(SeriesScaling::Robust) {
                        let clip = ssvae::run::data::ROBUST_CLIP;
                        ds.values.iter_mut().for_each(|v| *v = v.clamp(-clip, clip));
                    }
                } else if let Some(k) = ds.values.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(PyValueError::new_err(format!(
                        "X: sample {} holds {}, but the model's Bernoulli decoder takes values in [0, 1]",
                        k / (steps * channels),
                        ds.values[k]
                    )));
                }
                Ok(Samples::Series(ds))
            }
        }
    }
}

#[pymethods]
impl Model {
    /// Opens the run folder `run_dir` on `backend` ('auto', 'cpu', 'gpu', or an API).
    #[new]
    fn new(run_dir: PathBuf, backend: &str) -> PyResult<Self> {
        guard(|| {
            let engine = Engine::open(backend).map_err(to_py)?;
            let (opened, input) = match engine {
                Engine::Cpu(be) => {
                    let (run, input) = open(&be, &run_dir).map_err(to_py)?;
                    (Opened::Cpu(be, run), input)
                }
                Engine::Gpu(be) => {
                    let (run, input) = open(&be, &run_dir).map_err(to_py)?;
                    (Opened::Gpu(be, run), input)
                }
            };
            Ok(Model { opened, input })
        })
    }

    /// The run's config.json as trained (JSON).
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.config()).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The class names by class index.
    fn class_names(&self) -> Vec<String> {
        self.class_names_vec()
    }

    /// ("images", [h, w, c]), ("table", [features]) or ("series", [steps, channels]).
    fn input_kind(&self) -> (&'static str, Vec<usize>) {
        match self.input {
            Input::Images(s) => ("images", s.to_vec()),
            Input::Table(d) => ("table", vec![d]),
            Input::Series(s) => ("series", s.to_vec()),
        }
    }

    /// "cpu" or the adapter the run is open on.
    fn backend(&self) -> String {
        on_run!(&self.opened, (be, _run) => be.describe())
    }

    /// Class probabilities `[n, slots]`.
    fn predict_proba<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let s = self.samples(x)?;
        let n = s.data().n();
        let p = py.detach(|| guard(|| on_run!(&self.opened, (be, run) => run.predict_proba(be, s.data())).map_err(to_py)))?;
        to_array(py, p.clone(), &[n, p.len() / n.max(1)])
    }

    /// Anomaly scores `[n]` (negative log reconstruction probability, mean over `draws` draws
    /// of z; higher = more anomalous), as `ssvae predict`'s `score` column.
    fn score_samples(&self, py: Python<'_>, x: &Bound<'_, PyAny>, draws: usize, seed: u64) -> PyResult<Vec<f64>> {
        let s = self.samples(x)?;
        py.detach(|| guard(|| on_run!(&self.opened, (be, run) => run.score(be, s.data(), draws, seed)).map(|r| r.0).map_err(to_py)))
    }

    /// Posterior means of z `[n, latent]` (an RNN's: the mean over each window's steps).
    fn transform<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let s = self.samples(x)?;
        let n = s.data().n();
        let latent = self.config().train.model.latent;
        let z = py.detach(|| guard(|| on_run!(&self.opened, (be, run) => run.encode(be, s.data())).map_err(to_py)))?;
        let steps = (z.len() / (n * latent).max(1)).max(1);
        let mut out = vec![0f32; n * latent];
        for (i, row) in out.chunks_mut(latent).enumerate() {
            for t in 0..steps {
                for (k, o) in row.iter_mut().enumerate() {
                    *o += z[(i * steps + t) * latent + k] / steps as f32;
                }
            }
        }
        to_array(py, out, &[n, latent])
    }

    /// `n_per_class` generated images per class (z ~ N(0, I), seeded; the same z for every
    /// class), `[classes * n_per_class, h, w, c]` values in [0, 1], and each one's class.
    fn sample<'py>(&self, py: Python<'py>, n_per_class: usize, seed: u64) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, Vec<i64>)> {
        let Input::Images([h, w, c]) = self.input else {
            return Err(PyValueError::new_err(
                "sample() generates images; this model was trained on a table or on windows (its decoder's output is not an image)",
            ));
        };
        let spec = self.config().train.model.clone();
        if !spec.decoder_takes_pi() {
            return Err(PyValueError::new_err(format!(
                "{} has no decoder that takes the class, so it cannot generate samples of a class",
                spec.name()
            )));
        }
        let classes = spec.classes;
        let zs: Vec<Vec<f32>> =
            (0..classes).flat_map(|_| (0..n_per_class).map(|j| ssvae::eval::grid::style_z(seed, j, spec.latent))).collect();
        let labels: Vec<usize> = (0..classes).flat_map(|k| std::iter::repeat_n(k, n_per_class)).collect();
        let cells = py.detach(|| {
            guard(|| {
            on_run!(&self.opened, (be, run) => ssvae::eval::grid::Decoder::new(be, &spec, &run.store, 100).and_then(|d| d.decode(be, &zs, &labels)))
                .map_err(to_py)
            })
        })?;
        let arr = to_array(py, cells, &[labels.len(), h, w, c])?;
        Ok((arr, labels.into_iter().map(|l| l as i64).collect()))
    }
}
