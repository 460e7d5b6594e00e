//! Training from Python: the estimator's parameters (one JSON object, [`FitParams`]) become a
//! [`RunSpec`] as the CLI's flags do, and [`ssvae::run::train`] / [`ssvae::run::resume`] run
//! with the GIL released. Progress goes to a Python callable ([`PyObserver`]); Ctrl-C (or an
//! exception raised by the callable) stops training after the current step, with the steps
//! done checkpointed, and is raised once the core has returned.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use ssvae::model::{Family, Kind, Likelihood};
use ssvae::run::{
    self, DataSpec, DatasetName, EpochReport, ModelChoice, Observer, OptimizerKind, Recipe, ResumeChanges, RunSpec, RunStart, StepProgress,
};
use ssvae::train::LabelSpec;

use crate::{guard, on_engine, to_py, Engine};

/// How the estimator wrote its training data into the run folder.
#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum DataKind {
    /// `[n, features]` f32 NPY + labels NPY (a table).
    Table,
    /// `[n, steps, channels]` f32 NPY + labels NPY (windows).
    Series,
    /// An image folder: one sub-folder per class, `unlabeled/`.
    Images,
}

/// The estimator's parameters as the Python side sends them (every key; `None`: the model's
/// default, as for the CLI).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FitParams {
    backend: String,
    family: Family,
    kind: Kind,
    data: DataKind,
    /// The training data (a file or folder) and, for NPY data, its labels file.
    path: PathBuf,
    labels_file: Option<PathBuf>,
    /// The run folder.
    out: PathBuf,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    hidden: Option<Vec<usize>>,
    latent: Option<usize>,
    alpha: Option<f32>,
    dropout: Option<f32>,
    lr: Option<f32>,
    optimizer: OptimizerKind,
    likelihood: Option<Likelihood>,
    validation_labels: Option<usize>,
    patience: Option<usize>,
    score_samples: usize,
    recipe: Recipe,
}

impl FitParams {
    /// The spec `ssvae train --data PATH --test-data PATH [--labels-file L --test-labels-file L]
    /// --labels all ...` builds: every labeled sample trains, and the run's test split (what its
    /// summary and `ssvae eval` report) is the labeled training samples themselves, since a
    /// scikit-learn `fit` gets no test set.
    fn spec(&self) -> RunSpec {
        let mut data = DataSpec {
            dataset: match self.data {
                DataKind::Table => DatasetName::Table,
                DataKind::Series => DatasetName::Npy,
                DataKind::Images => DatasetName::Folder,
            },
            path: Some(self.path.clone()),
            test_path: Some(self.path.clone()),
            ..DataSpec::default()
        };
        data.table.labels_file = self.labels_file.clone();
        data.table.test_labels_file = self.labels_file.clone();
        RunSpec {
            data,
            model: ModelChoice {
                hidden: self.hidden.clone(),
                latent: self.latent,
                alpha: self.alpha,
                dropout: self.dropout,
                likelihood: self.likelihood,
                ..ModelChoice::new(self.family, self.kind)
            },
            labels: Some(LabelSpec::All),
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            optimizer: self.optimizer,
            lr: self.lr,
            score_samples: self.score_samples,
            validation_labels: self.validation_labels,
            patience: self.patience,
            recipe: self.recipe,
            out: Some(self.out.clone()),
            ..RunSpec::default()
        }
    }
}

/// Progress to a Python callable `callback(event: str, payload: str)` (`payload` a JSON
/// object), steps at most every 0.1 s.
struct PyObserver {
    callback: Option<Py<PyAny>>,
    last_step: Instant,
    /// The first exception the callable raised, or a KeyboardInterrupt.
    error: RefCell<Option<PyErr>>,
}

impl PyObserver {
    fn send(&mut self, event: &str, payload: serde_json::Value) {
        let Some(cb) = &self.callback else { return };
        if self.error.borrow().is_some() {
            return;
        }
        let r = Python::attach(|py| cb.call1(py, (event, payload.to_string())).map(drop));
        if let Err(e) = r {
            *self.error.borrow_mut() = Some(e);
        }
    }
}

impl Observer for PyObserver {
    fn started(&mut self, s: &RunStart) {
        let payload = serde_json::json!({
            "model": s.model, "dataset": s.dataset, "n_train": s.n_train, "n_test": s.n_test,
            "labeled": s.labeled, "optimizer": s.optimizer, "adapter": s.adapter,
            "out": s.out, "steps_per_epoch": s.steps_per_epoch, "epochs": s.epochs, "batch_size": s.batch_size,
        });
        self.send("start", payload);
    }
    fn step(&mut self, p: &StepProgress<'_>) {
        if self.last_step.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_step = Instant::now();
        let payload = serde_json::json!({
            "epoch": p.epoch, "step": p.step_in_epoch, "samples_per_s": p.samples_per_s,
            "objective": p.losses.map(|l| l.objective),
        });
        self.send("step", payload);
    }
    fn epoch(&mut self, e: &EpochReport) {
        self.send("epoch", serde_json::to_value(e).unwrap_or_default());
    }
    fn note(&mut self, msg: &str) {
        self.send("note", serde_json::json!({ "message": msg }));
    }
    fn finished(&mut self) {
        self.send("finished", serde_json::json!({}));
    }
    fn stop_requested(&self) -> bool {
        if self.error.borrow().is_some() {
            return true;
        }
        // Ctrl-C while the GIL is released: Python sees it only when asked
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            *self.error.borrow_mut() = Some(e);
            return true;
        }
        false
    }
}

/// Runs `work` on the engine `backend` opens, the GIL released, reporting to `callback`;
/// returns the summary as JSON.
fn run_training(
    py: Python<'_>,
    backend: &str,
    callback: Option<Py<PyAny>>,
    work: impl FnOnce(&Engine, &mut PyObserver) -> ssvae::Result<run::RunSummary> + Send,
) -> PyResult<String> {
    let backend = backend.to_string();
    let mut obs = PyObserver { callback, last_step: Instant::now(), error: RefCell::new(None) };
    let result = py.detach(|| {
        guard(|| {
            let engine = Engine::open(&backend).map_err(to_py)?;
            work(&engine, &mut obs).map_err(to_py)
        })
    });
    // an exception from the callback or Ctrl-C wins over the (interrupted) summary
    if let Some(e) = obs.error.into_inner() {
        return Err(e);
    }
    let summary = result?;
    serde_json::to_string(&summary).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Trains a new run as described by `params` (JSON, see [`FitParams`]); returns the summary
/// (JSON, as summary.json).
#[pyfunction]
#[pyo3(signature = (params, callback=None))]
pub fn train(py: Python<'_>, params: &str, callback: Option<Py<PyAny>>) -> PyResult<String> {
    let p: FitParams = serde_json::from_str(params).map_err(|e| PyValueError::new_err(format!("ssvae._core.train: {e}")))?;
    let spec = p.spec();
    run_training(py, &p.backend, callback, move |engine, obs| on_engine!(engine, be => run::train(be, &spec, obs)))
}

/// Continues the run in `run_dir` for `epochs` more passes over its (rewritten) data, e.g. with
/// labels that arrived later.
#[pyfunction]
#[pyo3(signature = (run_dir, backend, epochs, callback=None))]
pub fn resume(py: Python<'_>, run_dir: PathBuf, backend: &str, epochs: usize, callback: Option<Py<PyAny>>) -> PyResult<String> {
    let changes = ResumeChanges { epochs: Some(epochs), ..ResumeChanges::default() };
    run_training(py, backend, callback, move |engine, obs| on_engine!(engine, be => run::resume(be, &run_dir, &changes, obs)))
}

/// Points the run in `run_dir` at the data files in `data_dir` (same file names): a run folder
/// written by the estimator names its own `data/` by absolute path, so a copy (`save`, a
/// pickle) is re-committed through the library (config.json is part of the checksummed
/// checkpoint, so it is not edited in place).
#[pyfunction]
pub fn relocate(py: Python<'_>, run_dir: PathBuf, data_dir: PathBuf) -> PyResult<()> {
    py.detach(|| {
        guard(|| {
            let mut c = run::folder::load(&run_dir).map_err(to_py)?;
            let d = &mut c.config.spec.data;
            let moved = |p: &mut Option<PathBuf>| {
                if let Some(name) = p.as_ref().and_then(|p| p.file_name()).map(|n| n.to_owned()) {
                    *p = Some(data_dir.join(name));
                }
            };
            moved(&mut d.path);
            moved(&mut d.test_path);
            moved(&mut d.table.labels_file);
            moved(&mut d.table.test_labels_file);
            run::folder::commit(&run_dir, &c.config, &c.weights).map_err(to_py)
        })
    })
}
