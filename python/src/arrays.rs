//! numpy arrays in and out. Inputs are read in place (float32, float64 or uint8, any strides:
//! a transposed NCHW view costs no copy on the Python side) into the one owned buffer the core's
//! datasets hold; outputs are new arrays.

use std::path::PathBuf;

use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{guard, to_py};

/// An array's values in logical (C) order, converted by `f`, and its shape.
fn read_as<T: Copy>(
    x: &Bound<'_, PyAny>,
    what: &str,
    f32_to: impl Fn(f32) -> T,
    f64_to: impl Fn(f64) -> T,
    u8_to: impl Fn(u8) -> T,
) -> PyResult<(Vec<T>, Vec<usize>)> {
    fn collect<S: numpy::Element + Copy, T>(a: &PyReadonlyArrayDyn<'_, S>, f: impl Fn(S) -> T) -> (Vec<T>, Vec<usize>) {
        let shape = a.shape().to_vec();
        // C order: one pass over the slice; otherwise (Fortran order, strided views) ndarray
        // walks the strides in logical order (as_slice would give a Fortran array's memory order)
        let values = match a.as_slice() {
            Ok(s) if a.is_c_contiguous() => s.iter().map(|&v| f(v)).collect(),
            _ => a.as_array().iter().map(|&v| f(v)).collect(),
        };
        (values, shape)
    }
    if let Ok(a) = x.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok(collect(&a, f32_to));
    }
    if let Ok(a) = x.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        return Ok(collect(&a, f64_to));
    }
    if let Ok(a) = x.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        return Ok(collect(&a, u8_to));
    }
    let dtype = x.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| "not an array".into());
    Err(PyTypeError::new_err(format!("{what} must be a numpy array of float32, float64 or uint8 (got {dtype})")))
}

/// Real-valued features (tables, windows) as f32, every value checked to be finite.
pub fn features(x: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, Vec<usize>)> {
    let (v, shape) = read_as(x, "X", |v| v, |v| v as f32, |v| v as f32)?;
    if let Some(k) = v.iter().position(|v| !v.is_finite()) {
        let per: usize = shape[1..].iter().product();
        return Err(PyValueError::new_err(format!(
            "X contains NaN or infinity (sample {}, value {} of the sample); remove or impute it first",
            k / per.max(1),
            k % per.max(1)
        )));
    }
    Ok((v, shape))
}

/// Images as bytes: uint8 as they are, floats in [0, 1] scaled to 0..255.
pub fn pixels(x: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, Vec<usize>)> {
    // out of range or NaN floats become a marker that is checked below (no u8 is 256)
    let (v, shape) = read_as(x, "X", |v| scale(v as f64), scale, |v| v as u16)?;
    if let Some(k) = v.iter().position(|&b| b > 255) {
        let per: usize = shape[1..].iter().product();
        return Err(PyValueError::new_err(format!(
            "X: image sample {} holds a value outside [0, 1] (or NaN); float images must be in [0, 1], uint8 images in 0..255",
            k / per.max(1)
        )));
    }
    Ok((v.into_iter().map(|b| b as u8).collect(), shape))
}

fn scale(v: f64) -> u16 {
    if (0.0..=1.0).contains(&v) {
        (v * 255.0).round() as u16
    } else {
        256
    }
}

/// A new float32 array of `shape` holding `values`.
pub fn to_array<'py>(py: Python<'py>, values: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    numpy::PyArray1::from_vec(py, values).reshape(shape.to_vec())
}

/// Writes `[n, h, w, c]` images (c = 1 or 3) as an image folder the CLI reads: `dir/<label>/
/// <i>.png`, and `dir/unlabeled/<i>.png` where `labels[i] < 0`; class folders are named by the
/// label numbers (read back in numeric order).
#[pyfunction]
pub fn write_image_folder(py: Python<'_>, dir: PathBuf, x: &Bound<'_, PyAny>, labels: Vec<i64>) -> PyResult<()> {
    let (px, shape) = pixels(x)?;
    let &[n, h, w, c] = &shape[..] else {
        return Err(PyValueError::new_err(format!("images must be [n, height, width, channels], got shape {shape:?}")));
    };
    if labels.len() != n {
        return Err(PyValueError::new_err(format!("{} labels for {n} images", labels.len())));
    }
    py.detach(|| {
        guard(|| {
            for (i, &l) in labels.iter().enumerate() {
                let sub = if l < 0 { dir.join("unlabeled") } else { dir.join(l.to_string()) };
                std::fs::create_dir_all(&sub).map_err(|e| to_py(ssvae::Error::Io { path: sub.clone(), msg: e.to_string() }))?;
                let d = h * w * c;
                ssvae::data::write_png(&sub.join(format!("{i:07}.png")), &px[i * d..(i + 1) * d], h, w, c).map_err(to_py)?;
            }
            Ok(())
        })
    })
}
