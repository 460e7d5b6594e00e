//! Exporting a saved run for use outside ssvae (`ssvae export`).
//!
//! - [`Format::Onnx`]: `encoder.onnx` (raw input `x` -> `probs`, `mu`, `logvar`, as far as the
//!   model has them) and `decoder.onnx` (`z`, then `pi` -> `mean`, and `var` for Gaussian
//!   likelihoods), opset 17, written by a small hand-written protobuf encoder ([`proto`]); see
//!   [`onnx`] for what the graphs compute.
//! - [`Format::Torch`]: `ssvae_model.py` (needs only torch; `safetensors` when installed) and
//!   `weights.safetensors` (the parameters only, no optimizer state). `load(dir)` returns an
//!   `nn.Module` with `forward(x) -> (probs, mu, logvar)` and `decode(z, pi)`.
//!
//! Both take RAW data: images as NHWC values 0..255, tables as [n, features] and series as
//! [n, steps, channels] in the data's units; the run's scaling (bytes / 255, or the run's
//! standardizer, robust scaling clipped) is inside. Both are built from one layer list
//! ([`plan`]) that mirrors `model::build_mode` in inference mode, so they agree with each other
//! and with `ssvae predict` (benches/export/check.py measures it).
//!
//! Supported: the dense, CNN and recurrent families, kinds SS, ES (encoder only) and EU (no pi).
//! M2, GM-DGM and multi-factor models are refused with a message.

pub mod onnx;
pub mod plan;
pub mod proto;
pub mod torch;

use std::path::{Path, PathBuf};

use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::model::{Family, ModelSpec};
use crate::run::{DatasetName, Run, Samples, SeriesScaling};

/// What to export to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Onnx,
    Torch,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "onnx" => Ok(Format::Onnx),
            "torch" | "pytorch" => Ok(Format::Torch),
            _ => Err(Error::Invalid(format!("unknown export format '{s}': expected onnx or torch"))),
        }
    }
}

/// The run's input scaling: per-channel means and standard deviations (0 marks a constant
/// channel, which maps to 0) and the clip of robust scaling.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scaling {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub clip: Option<f32>,
}

/// What the exported model takes, per sample.
#[derive(Clone, Debug)]
pub enum Input {
    /// Image bytes as values 0..255, NHWC (height, width, channels).
    Image([usize; 3]),
    /// Real values: [features] for tables, [steps, channels] for series; standardised inside
    /// when the run was.
    Real { dims: Vec<usize>, scaling: Option<Scaling> },
}

impl Input {
    /// The input's shape per sample.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Input::Image(s) => s.to_vec(),
            Input::Real { dims, .. } => dims.clone(),
        }
    }
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        match self {
            Input::Image(s) => Some(*s),
            Input::Real { .. } => None,
        }
    }
}

/// What `export` wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub model: String,
    /// The input the model takes per sample (after the batch axis).
    pub input_shape: Vec<usize>,
    pub parameters: usize,
}

/// The input of `run`'s model, as [`Run::read_samples`] reads it before scaling.
pub fn run_input(run: &Run<CpuBackend>) -> Result<Input> {
    let c = &run.config;
    let spec = run.model();
    let scaling = c
        .standardizer
        .as_deref()
        .map(|v| -> Result<Scaling> {
            let s = crate::data::Standardizer::from_vec(v)?;
            let clip = (c.spec.data.series.scaling == Some(SeriesScaling::Robust)).then_some(crate::run::data::ROBUST_CLIP);
            Ok(Scaling { mean: s.mean, std: s.std, clip })
        })
        .transpose()?;
    Ok(match spec.family {
        Family::Rnn => {
            let [t, ch] = spec.series_shape.ok_or_else(|| Error::Invalid("an RNN run without a window shape".into()))?;
            Input::Real { dims: vec![t, ch], scaling }
        }
        Family::Cnn => Input::Image(spec.input_shape.ok_or_else(|| Error::Invalid("a CNN run without an image shape".into()))?),
        Family::Dense if spec.real_input => Input::Real { dims: vec![spec.input_dim], scaling },
        Family::Dense => Input::Image(c.image_shape.unwrap_or_else(|| {
            // as Run::read_samples: a square gray image when the size is one, else a row
            let side = (spec.input_dim as f64).sqrt() as usize;
            if side * side == spec.input_dim {
                [side, side, 1]
            } else {
                [1, spec.input_dim, 1]
            }
        })),
    })
}

fn supported(spec: &ModelSpec) -> Result<()> {
    if spec.sums_over_classes() || spec.has_factor_heads() {
        return Err(Error::Invalid(format!(
            "export supports the SS, ES and EU models (dense, cnn, rnn); {}{} is not supported",
            spec.name(),
            if spec.has_factor_heads() { " with factor heads" } else { "" }
        )));
    }
    Ok(())
}

/// Metadata written into every exported file: the conventions of the checkpoint format
/// ([`crate::train::checkpoint::conventions`]) and the run's own values.
pub fn metadata(run: &Run<CpuBackend>, input: &Input) -> Result<Vec<(String, String)>> {
    let c = &run.config;
    let mut m = crate::train::checkpoint::conventions();
    m.push(("ssvae.model".into(), serde_json::to_string(run.model()).map_err(|e| Error::Invalid(e.to_string()))?));
    m.push(("ssvae.class_names".into(), serde_json::to_string(&run.class_names()).unwrap_or_default()));
    if !c.feature_names.is_empty() {
        m.push(("ssvae.feature_names".into(), serde_json::to_string(&c.feature_names).unwrap_or_default()));
    }
    m.push(("ssvae.input_shape".into(), format!("{:?}", input.dims())));
    if let Input::Real { scaling: Some(s), .. } = input {
        m.push(("ssvae.standardizer".into(), serde_json::to_string(s).unwrap_or_default()));
    }
    Ok(m)
}

/// Exports the run in `dir` to `out` (created) in `format`.
pub fn export(dir: &Path, format: Format, out: &Path) -> Result<Exported> {
    if !dir.is_dir() {
        return Err(Error::Invalid(format!("--run {}: no such run folder", dir.display())));
    }
    let be = CpuBackend::new();
    let run = Run::open(&be, dir)?;
    let spec = run.model().clone();
    supported(&spec)?;
    let input = run_input(&run)?;
    let tensors = run.store.read(&be)?;
    let params: onnx::Params = tensors.iter().map(|(n, s, v)| (n.as_str(), (s.as_slice(), v.as_slice()))).collect();
    let meta = metadata(&run, &input)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Io { path: out.to_path_buf(), msg: format!("cannot create: {e}") })?;
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = out.join(name);
        crate::fsutil::write_atomic(&p, bytes)?;
        files.push(p);
        Ok(())
    };
    match format {
        Format::Onnx => {
            write("encoder.onnx", &onnx::encoder(&spec, &input, &params, &meta)?)?;
            if spec.has_decoder() {
                write("decoder.onnx", &onnx::decoder(&spec, &input, &params, &meta)?)?;
            }
        }
        Format::Torch => {
            write("ssvae_model.py", torch::module(&spec, &input, &run.class_names())?.as_bytes())?;
            write("weights.safetensors", &torch::weights(&tensors, &meta)?)?;
        }
    }
    let parameters = tensors.iter().map(|(_, _, v)| v.len()).sum();
    Ok(Exported { files, model: spec.name(), input_shape: input.dims(), parameters })
}

/// The samples in `data` as the exported model takes them (raw, before scaling: image bytes
/// as 0..255, table rows and series windows in the data's units), read as `ssvae predict`
/// reads them, with their ids: for checking an export against `ssvae predict`.
pub fn raw_samples(dir: &Path, data: &Path) -> Result<(Vec<f32>, Vec<usize>, Vec<String>)> {
    let be = CpuBackend::new();
    let run = Run::open(&be, dir)?;
    let input = run_input(&run)?;
    let spec = run.model();
    let c = &run.config;
    let d = &c.spec.data;
    let (values, ids) = match (spec.family, &input) {
        (Family::Rnn, _) => {
            let shape = spec.series_shape.expect("an RNN input");
            let ds = crate::run::data::read_series_input(data, &d.series, d.dataset == DatasetName::Csv, shape, None)?;
            let ids = (0..ds.n).map(|i| ds.id(i)).collect();
            (ds.values, ids)
        }
        (_, Input::Real { .. }) => {
            let s = &d.series;
            let mut o = crate::data::TableOptions {
                label_column: s.label_column.clone(),
                unlabeled_value: d.table.unlabeled_value.clone(),
                columns: Some(c.feature_names.clone()).filter(|f| !f.is_empty()).or_else(|| s.columns.clone()),
                id_column: d.table.id_column.clone(),
                delimiter: crate::run::user_data::delimiter(s.delimiter)?,
                header: s.no_header.then_some(false),
                labels_path: None,
                class_names: Some(run.class_names()),
                allow_new_classes: true,
            };
            if let Some(l) = &o.label_column {
                let head = crate::run::data::first_line(data)?;
                if !l.starts_with('#') && !head.split([',', ';', '\t', ' ']).any(|c| c.trim().trim_matches('"') == l) {
                    o.label_column = None;
                }
            }
            let t = crate::data::load_table(data, &o).map_err(|e| Error::Invalid(format!("--data {}: {e}", data.display())))?;
            let n = t.values.len() / spec.input_dim.max(1);
            let ids = if t.ids.is_empty() { (0..n).map(|i| format!("row {}", i + 1)).collect() } else { t.ids };
            (t.values, ids)
        }
        (_, Input::Image(_)) => {
            let Samples::Images(ds) = run.read_samples(data)? else {
                return Err(Error::Invalid("expected images".into()));
            };
            let ids = (0..ds.n).map(|i| crate::train::TrainData::Images(&ds).id(i)).collect();
            (ds.pixels.iter().map(|&b| b as f32).collect(), ids)
        }
    };
    let shape = std::iter::once(ids.len()).chain(input.dims()).collect();
    Ok((values, shape, ids))
}

/// `values` as a NumPy .npy file (little-endian f32, C order).
pub fn npy_f32(values: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, then \n
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytemuck::cast_slice(values));
    out
}
