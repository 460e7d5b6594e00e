//! Checkpoints: DIR/model.safetensors (every parameter by name, plus the optimizer's state
//! per parameter) and DIR/config.json (the model spec and training state). Both are written
//! atomically: to a temporary file in the same directory, flushed, then renamed over the old
//! one, so an interrupted write never leaves a half checkpoint.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Prefixes of the optimizer-state tensors (one per parameter, by name), so a checkpoint
/// resumes exactly on any backend whatever its buffer alignment.
pub const STATE1: &str = "__optimizer.state1.";
pub const STATE2: &str = "__optimizer.state2.";

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), msg: e.to_string() }
}

pub use crate::fsutil::{save_json, write_atomic};

/// A model's tensors: parameters and the optimizer's state, each by parameter name.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    pub params: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub state1: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub state2: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// `w` as a safetensors file (parameters by name, optimizer state under the [`STATE1`] and
/// [`STATE2`] prefixes); `path` names the file in errors.
pub fn weights_bytes(path: &Path, w: &Weights) -> Result<Vec<u8>> {
    let named: Vec<(String, &Vec<usize>, &Vec<f32>)> = w
        .params
        .iter()
        .map(|(n, s, v)| (n.clone(), s, v))
        .chain(w.state1.iter().map(|(n, s, v)| (format!("{STATE1}{n}"), s, v)))
        .chain(w.state2.iter().map(|(n, s, v)| (format!("{STATE2}{n}"), s, v)))
        .collect();
    let mut views = Vec::new();
    for (name, shape, v) in &named {
        views.push((name.clone(), TensorView::new(Dtype::F32, (*shape).clone(), bytemuck::cast_slice(v)).map_err(|e| io(path, e))?));
    }
    let mut info: HashMap<String, String> = conventions().into_iter().collect();
    info.insert("format".to_string(), "ssvae".to_string());
    safetensors::serialize(views, Some(info)).map_err(|e| io(path, e))
}

/// What a re-implementation needs beyond the tensors, written into the `__metadata__` map of
/// every model.safetensors (keys `ssvae.*`; `format` = "ssvae" as before). Readers ignore the
/// metadata, so files without it (older runs) load as they did. The run's own values (the
/// model spec with `logvar_limit`, the standardizer, class and feature names) are in
/// config.json beside it; `ssvae export` writes them into its files too.
pub fn conventions() -> Vec<(String, String)> {
    use crate::backend::cpu::loss::LEGACY_GAUSSIAN_VAR_FLOOR;
    use crate::graph::BN_EPS;
    use crate::model::DEFAULT_LOGVAR_LIMIT;
    [
        ("ssvae.weights_layout", "dense '{name}.weight' is [in, out] and y = x W + b ('{name}.bias' [out]); time-distributed dense layers apply it to every step; convolution '{name}.weight' is [k, k, in, out] over NHWC maps; a transposed convolution's '{name}.weight' is [k, k, out, in] (stored as the convolution it is the adjoint of); tensors are float32, row-major".to_string()),
        ("ssvae.input_scaling", "images: byte / 255 (0..1), NHWC, flattened in H, W, C order for dense models; tables and series: (x - mean) * (1 / std) per channel with config.json's standardizer (all means, then all standard deviations); std 0 marks a constant channel, which maps to 0; robust scaling (config spec.data.series.scaling = robust) then clips to +-50".to_string()),
        ("ssvae.activations", "hidden dense layers relu (CNN: dense without bias, then batch norm, then relu; dropout only in training); heads mu and logvar linear; pi softmax; Bernoulli decoder output sigmoid; Gaussian decoder: mean linear ('out' / 'out_mean'), variance softplus(raw) + floor ('out_var')".to_string()),
        ("ssvae.decoder_input", "concat(z, pi) along the last axis, z first (SS models; pi = class probabilities, or a one-hot to generate); z alone for EU and multi-factor models".to_string()),
        ("ssvae.batch_norm", format!("inference: gamma * (x - running_mean) / sqrt(running_var + eps) + beta over the channel (last NHWC) axis, then relu; eps = {BN_EPS}; running_var is the unbiased batch variance averaged with momentum 0.1")),
        ("ssvae.padding", "'same' as TensorFlow: ceil(in / stride) outputs, total padding max((out - 1) * stride + k - in, 0) split with the odd pixel after (bottom / right); a 'same' transposed convolution gives in * stride outputs, the adjoint of that convolution".to_string()),
        ("ssvae.lstm", "gates packed [i | f | g | o] along 4H (PyTorch's order); z = x W_ih + bias + h_{t-1} W_hh; i, f, o = sigmoid; g = tanh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t); h_0 = c_0 = 0; one bias".to_string()),
        ("ssvae.logvar_bound", format!("logvar = L * tanh(raw / L) with L = config.json train.model.logvar_limit (default {DEFAULT_LOGVAR_LIMIT}; null: raw logvar)")),
        ("ssvae.gaussian_var_floor", format!("the Gaussian decoder's variance is softplus(raw) + floor with floor = config.json train.model.var_floor (absent: {LEGACY_GAUSSIAN_VAR_FLOOR:e}), in standardised units")),
        ("ssvae.recurrent_heads", "recurrent models' heads are per step; a window's class probabilities are softmax(mean over steps of log max(p_t, 1.17549435e-38))".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Checkpoints written before a class-paired dense layer ([`crate::graph::Graph::class_dense`]:
/// M2's and GM-DGM's 'zenc') kept its weight as one [in + K, out] matrix under
/// '{name}.weight'. Where the model (`names`, `shapes`: its parameters) has '{name}.weight'
/// [in, out] and '{name}.class_weight' [K, out] and the checkpoint the one matrix and no
/// '{name}.class_weight', this returns the checkpoint with that matrix (and its optimizer
/// state) split at row `in`: the same function of the same values. None when nothing is in
/// the old layout.
pub fn split_class_weights(w: &Weights, names: &[String], shapes: &[Vec<usize>]) -> Option<Weights> {
    let suffix = format!(".{}", crate::graph::CLASS_WEIGHT);
    let mut out: Option<Weights> = None;
    for (name, class_shape) in names.iter().zip(shapes) {
        let Some(base) = name.strip_suffix(&suffix) else { continue };
        let weight = format!("{base}.weight");
        let Some(i) = names.iter().position(|n| *n == weight) else { continue };
        let (rows, classes) = (shapes[i][0], class_shape[0]);
        let split_ok = |t: &[(String, Vec<usize>, Vec<f32>)]| {
            !t.iter().any(|(n, _, _)| n == name)
                && t.iter().any(|(n, s, _)| *n == weight && s.len() == 2 && s[0] == rows + classes && s[1] == class_shape[1])
        };
        if !split_ok(&w.params) {
            continue;
        }
        let cur = out.get_or_insert_with(|| w.clone());
        for tensors in [&mut cur.params, &mut cur.state1, &mut cur.state2] {
            if let Some(j) = tensors.iter().position(|(n, s, _)| *n == weight && s.len() == 2 && s[0] == rows + classes) {
                let cols = tensors[j].1[1];
                let class_rows = tensors[j].2.split_off(rows * cols);
                tensors[j].1 = vec![rows, cols];
                // right after the weight: the store's order, which averages pair tensors by
                tensors.insert(j + 1, (name.clone(), vec![classes, cols], class_rows));
            }
        }
    }
    out
}

pub fn save_weights(path: &Path, w: &Weights) -> Result<()> {
    write_atomic(path, &weights_bytes(path, w)?)
}

pub fn load_weights(path: &Path) -> Result<Weights> {
    let bytes = std::fs::read(path).map_err(|e| io(path, format!("cannot read checkpoint: {e}")))?;
    weights_from_bytes(path, &bytes)
}

/// Reads a safetensors file written by [`weights_bytes`]; every value must be finite.
pub fn weights_from_bytes(path: &Path, bytes: &[u8]) -> Result<Weights> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| io(path, format!("not a valid safetensors file: {e}")))?;
    let mut w = Weights { params: Vec::new(), state1: Vec::new(), state2: Vec::new() };
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(io(path, format!("tensor '{name}' is {:?}, expected F32", view.dtype())));
        }
        let v: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let shape = view.shape().to_vec();
        // a damaged file (flipped bits, a hand edit) must not give scores without a word
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(io(
                path,
                format!("tensor '{name}' holds {} at element {i}: the checkpoint is damaged (every value must be finite); restore the run folder or train again", v[i]),
            ));
        }
        if let Some(n) = name.strip_prefix(STATE1) {
            w.state1.push((n.to_string(), shape, v));
        } else if let Some(n) = name.strip_prefix(STATE2) {
            w.state2.push((n.to_string(), shape, v));
        } else {
            w.params.push((name.clone(), shape, v));
        }
    }
    Ok(w)
}

pub fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let s = std::fs::read_to_string(path).map_err(|e| io(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&s).map_err(|e| io(path, format!("invalid run configuration: {e}")))
}
