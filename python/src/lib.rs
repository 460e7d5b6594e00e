//! `ssvae._core`: the Rust side of the Python package. It is deliberately small: train or
//! resume a run folder ([`fit`]), open one as a model ([`model::Model`]), and write images as
//! an image folder. The scikit-learn estimator (parameters, classes_, input checks that are
//! about Python types) lives in Python (`ssvae/_estimator.py`).
//!
//! Why the training data goes through files: a run folder is the unit the CLI evaluates,
//! resumes and predicts with, and it names its data by path (config.json). The estimator
//! writes `X` and `y` into the run folder (`data/`, formats the CLI reads: an NPY table, NPY
//! windows, or an image folder of PNGs), so a run trained in Python opens in `ssvae eval` and
//! `ssvae train --resume` as it is, and the estimator needs no second, in-memory data path in
//! the core. Predictions take numpy arrays directly (no files).
//!
//! Errors: `ssvae::Error` becomes `ValueError` (bad input: the core's message as it is),
//! `OSError` (files) or `RuntimeError` (devices, divergence); a panic is caught at the boundary
//! and raised as `RuntimeError("internal error ...")`, never unwinding into Python.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::{GpuBackend, GpuOptions};

mod arrays;
mod fit;
mod model;

/// `ssvae::Error` as the Python exception a caller expects.
pub(crate) fn to_py(e: ssvae::Error) -> PyErr {
    match e {
        ssvae::Error::Invalid(_) | ssvae::Error::Shape { .. } => PyValueError::new_err(e.to_string()),
        ssvae::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

/// Runs `f`, turning a panic into a `RuntimeError` (a panic is a bug in ssvae, and must not
/// unwind through the interpreter).
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!("internal error in ssvae (please report it): {msg}")))
        }
    }
}

/// Where to compute: the CPU reference backend or a wgpu device.
pub(crate) enum Engine {
    Cpu(CpuBackend),
    Gpu(GpuBackend),
}

impl Engine {
    /// `auto` (a hardware GPU, else the CPU backend, as the CLI's `--backend auto`), `cpu`,
    /// `gpu` (the best adapter, software ones included) or an API (`vulkan`, `metal`, `dx12`,
    /// `gl`).
    pub(crate) fn open(name: &str) -> ssvae::Result<Engine> {
        let api = match name {
            "cpu" => return Ok(Engine::Cpu(CpuBackend::new())),
            "auto" | "gpu" => None,
            "vulkan" | "metal" | "dx12" | "gl" => Some(name.to_string()),
            other => {
                return Err(ssvae::Error::Invalid(format!(
                    "backend='{other}': use 'auto', 'cpu', 'gpu', or an API: 'vulkan', 'metal', 'dx12', 'gl'"
                )))
            }
        };
        let opened = GpuBackend::new(&GpuOptions { backends: api, ..Default::default() });
        if name != "auto" {
            return Ok(Engine::Gpu(opened?));
        }
        match opened {
            // a software rasterizer (lavapipe) is far slower than the CPU backend
            Ok(g) if g.adapter().device_type != "Cpu" => Ok(Engine::Gpu(g)),
            Ok(_) => Ok(Engine::Cpu(CpuBackend::new())),
            Err(e @ ssvae::Error::Invalid(_)) => Err(e),
            Err(_) => Ok(Engine::Cpu(CpuBackend::new())),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Engine::Cpu(b) => ssvae::Backend::describe(b),
            Engine::Gpu(b) => ssvae::Backend::describe(b),
        }
    }
}

/// Runs `$body` with `$be` bound to the engine's backend (a generic call on either type).
macro_rules! on_engine {
    ($engine:expr, $be:ident => $body:expr) => {
        match $engine {
            $crate::Engine::Cpu($be) => $body,
            $crate::Engine::Gpu($be) => $body,
        }
    };
}
pub(crate) use on_engine;

/// The name of the backend `backend` opens ("cpu" or the adapter), for messages and tests.
#[pyfunction]
fn describe_backend(py: Python<'_>, backend: &str) -> PyResult<String> {
    let name = backend.to_string();
    py.detach(move || guard(|| Engine::open(&name).map(|e| e.describe()).map_err(to_py)))
}

/// Panics inside [`guard`] (the tests check that a panic in the core arrives as a Python
/// exception and the interpreter goes on).
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    py.detach(|| guard(|| panic!("a deliberate panic (ssvae._core._panic_for_tests)")))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(describe_backend, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(fit::train, m)?)?;
    m.add_function(wrap_pyfunction!(fit::resume, m)?)?;
    m.add_function(wrap_pyfunction!(fit::relocate, m)?)?;
    m.add_function(wrap_pyfunction!(arrays::write_image_folder, m)?)?;
    m.add_class::<model::Model>()?;
    m.add("FORMAT_VERSION", ssvae::run::FORMAT_VERSION)?;
    Ok(())
}
